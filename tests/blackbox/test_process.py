"""test_process.py - how pmd runs, watches and stops real processes

Exec failures, exit codes, signals from outside, restart policies,
stop escalation to SIGKILL, process groups with grandchildren (and what a
main process leaves behind), a service flooding its output (and its last
lines before exiting or stopping), stdin, environment, working directory,
argv, separate log files, the agent's own shutdown (SIGTERM, SIGINT, the
command, a second SIGTERM), its lock against a second agent, two agents
side by side, and what a SIGKILLed agent leaves for the next one.
Each service is a small script written into the test's temp dir.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402


def tail(path, size=65536):
    """The last size bytes of path (b"" if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read()
    except OSError:
        return b""


class ProcessTest(pmtest.AgentTest):

    def log_path(self, name):
        return self.path("logs", "%s.log" % name)

    def wait_log(self, name, text, timeout=10.0):
        """Waits until the service's log file holds text (bytes); returns
        the file's content."""
        path = self.log_path(name)

        def check():
            data = tail(path, 1 << 20)
            return data if text in data else None
        return wait_until(check, timeout, what="%r in %s" % (text, path))

    # -- how processes end ------------------------------------------------

    def test_exec_failure(self):
        self.write_file("not-executable.sh", "#!/bin/sh\necho hi\n", 0o644)
        agent = self.start_agent("""\
  nofile: { command = "./does-not-exist"; };
  noargv: { argv = ["/nonexistent/dir/prog", "x"]; };
  noperm: { command = "./not-executable.sh"; };
  nodir:  { command = "true"; working_dir = "missing-dir"; };
  later:  { command = "./does-not-exist"; autostart = false; };
""")
        for name, text in (("nofile", "No such file or directory"),
                           ("noargv", "No such file or directory"),
                           ("noperm", "Permission denied"),
                           ("nodir", "No such file or directory")):
            record = agent.wait_state(name, "failed")
            self.assertIn(text, record["error"], record)
            self.assertIsNone(record["pid"], record)
            self.assertIsNone(record["exit_code"], record)
            self.assertIsNone(record["signal"], record)
            self.assertFalse(record["ready"], record)
        self.assertIn("missing-dir", agent.record("nodir")["error"])
        #  A start that cannot exec is a failed start, with the reason.
        reply = agent.request("start", {"names": ["later"]})
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"]["code"], "failed")
        result = reply["results"][0]
        self.assertEqual((result["name"], result["ok"], result["state"]),
                         ("later", False, "failed"))
        self.assertIn("No such file or directory", result["error"])
        self.assertIn("No such file or directory", reply["error"]["message"])

    def test_exit_code(self):
        self.script("exit3.sh", "echo about to fail\nexit 3\n")
        agent = self.start_agent('  crash: { command = "./exit3.sh"; };\n')
        record = agent.wait_state("crash", "failed")
        self.assertEqual(record["exit_code"], 3)
        self.assertIsNone(record["signal"])
        self.assertEqual(record["error"], "exited with code 3")
        self.assertIsNone(record["pid"])
        self.assertIn(b"about to fail", agent.service_log("crash"))

    def test_exit_zero_completes(self):
        agent = self.start_agent('  once: { command = "echo once"; };\n')
        record = agent.wait_state("once", "completed")
        self.assertEqual(record["exit_code"], 0)
        self.assertIsNone(record["signal"])
        self.assertIsNone(record["error"])
        self.assertIsNone(record["pid"])
        self.assertEqual(agent.service_log("once"), b"once\n")

    def test_killed_by_its_own_signal(self):
        agent = self.start_agent('  abort: { argv = ["/bin/sh", "-c", '
                                 '"kill -ABRT $$"]; };\n')
        record = agent.wait_state("abort", "failed")
        self.assertEqual(record["signal"], "SIGABRT")
        self.assertIsNone(record["exit_code"])
        self.assertEqual(record["error"], "killed by SIGABRT")

    def test_killed_from_outside(self):
        agent = self.start_agent("""\
  victim: { command = "sleep 1000"; stop_timeout = 1.0; };
  other:  { command = "sleep 1000"; stop_timeout = 1.0; };
""")
        pid = agent.wait_state("victim", "running")["pid"]
        os.kill(pid, signal.SIGKILL)
        record = agent.wait_state("victim", "failed")
        self.assertEqual(record["signal"], "SIGKILL")
        self.assertIsNone(record["exit_code"])
        self.assertIsNone(record["pid"])
        self.assertIn("SIGKILL", record["error"])
        pid = agent.wait_state("other", "running")["pid"]
        os.kill(pid, signal.SIGTERM)
        record = agent.wait_state("other", "failed")
        self.assertEqual(record["signal"], "SIGTERM")

    def test_restart_policy(self):
        """restart = "on-failure" / "always" (DESIGN "Configuration"): a
        service that ends is started again by its policy, after a backoff
        announced in next_start; stop ends the cycle."""
        self.script("flaky.sh", 'echo "run $$"\nexit 3\n')
        agent = self.start_agent("""\
  flaky: { command = "./flaky.sh"; restart = "on-failure"; autostart = false;
           backoff_initial = 0.2; backoff_max = 0.4; };
  again: { command = "echo again"; restart = "always"; autostart = false;
           backoff_initial = 0.2; backoff_max = 0.4; };
""")
        sub = agent.subscribe()
        self.assertTrue(agent.request("start", {"names": ["flaky", "again"],
                                                "wait": "none"})["ok"])
        for name in ("flaky", "again"):
            backoff = sub.wait_for(lambda e: e["service"] == name
                                   and e["new"] == "backoff",
                                   what="%s in backoff" % name)
            record = backoff["record"]
            self.assertIsNone(record["pid"])
            self.assertIsInstance(record["next_start"], float, record)
            self.assertGreater(record["next_start"], backoff["ts"])
            self.assertLess(record["next_start"], backoff["ts"] + 1.0)
            again = sub.wait_for(lambda e: e["service"] == name
                                 and e["new"] == "starting"
                                 and e["record"]["restarts"] >= 1,
                                 what="%s started again" % name)
            self.assertGreaterEqual(again["ts"], record["next_start"] - 0.05)
        #  The second run has written its line (a stop sent earlier could
        #  end it before its echo).
        wait_until(lambda: tail(self.log_path("flaky")).count(b"run ") >= 2,
                   10.0, what="flaky's second run in its log")
        reply = agent.request("stop", {"names": ["flaky", "again"]})
        self.assertTrue(reply["ok"], reply)
        for name in ("flaky", "again"):
            record = agent.record(name)
            #  Between two runs a policy service is in backoff (or running):
            #  either way the stop ends the cycle.
            self.assertEqual(record["state"], "stopped", record)
            self.assertIsNone(record["pid"])
            self.assertIsNone(record["next_start"])
        self.assertGreaterEqual(
            tail(self.log_path("flaky")).count(b"run "), 2)

    # -- stopping ---------------------------------------------------------

    def test_stop_escalates_to_sigkill(self):
        self.script("stubborn.sh", "trap '' TERM\necho ready\n"
                    "while :; do sleep 1; done\n")
        agent = self.start_agent('  stubborn: { command = "./stubborn.sh"; '
                                 'stop_timeout = 1.0; };\n')
        pid = agent.wait_state("stubborn", "running")["pid"]
        self.wait_log("stubborn", b"ready\n")
        t0 = time.monotonic()
        reply = agent.request("stop", {"names": ["stubborn"]}, timeout=15)
        took = time.monotonic() - t0
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["state"], "stopped")
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5.0)
        record = agent.record("stubborn")
        self.assertEqual(record["state"], "stopped")
        self.assertEqual(record["signal"], "SIGKILL")
        self.assertIsNone(record["pid"])
        self.assertFalse(os.path.exists("/proc/%d" % pid))
        self.assertEqual(self.service_processes(agent), {})

    def service_processes(self, agent):
        """Our live descendants other than the agents (and their services'
        zombies)."""
        agents = {a.pid for a in self.agents}
        return {p: s for p, s in pmtest.descendants().items()
                if p not in agents and s[0] != "Z"}

    def test_stop_kills_the_whole_group(self):
        #  The grandchild ignores TERM; its parent does not.
        self.script("family.sh", "(trap '' TERM; exec sleep 1000) &\n"
                    "echo \"grandchild $!\"\nsleep 1000 &\nwait\n")
        agent = self.start_agent('  family: { command = "./family.sh"; '
                                 'stop_timeout = 1.0; };\n')
        pid = agent.wait_state("family", "running")["pid"]
        data = self.wait_log("family", b"grandchild ")
        grandchild = int(data.split(b"grandchild ")[1].split()[0])
        wait_until(lambda: len(self.service_processes(agent)) >= 3, 10,
                   what="the service's three processes")
        members = self.service_processes(agent)
        self.assertIn(grandchild, members)
        for p, stat in members.items():
            self.assertEqual(stat[2], pid, "%d not in the service's group"
                             % p)
        t0 = time.monotonic()
        reply = agent.request("stop", {"names": ["family"]}, timeout=15)
        took = time.monotonic() - t0
        self.assertTrue(reply["ok"], reply)
        #  Stopped means the whole group is gone, not just its leader.
        self.assertGreaterEqual(took, 0.9)
        self.assertFalse(os.path.exists("/proc/%d" % grandchild))
        self.assertEqual(self.service_processes(agent), {},
                         pmtest.describe(self.service_processes(agent)))
        self.assertEqual(agent.record("family")["state"], "stopped")

    def test_stop_kills_processes_that_left_the_group(self):
        """A process that left the service's process group (setsid) is
        still found, by the marks in its environment, and killed when the
        service stops; another service's processes are left alone."""
        self.script("escape.sh", "setsid sleep 1000 &\necho \"escaped $!\"\n"
                    "exec sleep 1000\n")
        agent = self.start_agent(
            '  escape: { command = "./escape.sh"; stop_timeout = 2.0; };\n'
            '  other: { command = "./escape.sh"; stop_timeout = 2.0; };\n')
        agent.wait_state("escape", "running")
        agent.wait_state("other", "running")
        data = self.wait_log("escape", b"escaped ")
        escaped = int(data.split(b"escaped ")[1].split()[0])
        data = self.wait_log("other", b"escaped ")
        bystander = int(data.split(b"escaped ")[1].split()[0])
        self.assertTrue(pmtest.pid_alive(escaped))
        #  It really left the group.
        self.assertNotEqual(pmtest.proc_stat(escaped)[2],
                            agent.record("escape")["pid"])
        reply = agent.request("stop", {"names": ["escape"]}, timeout=15)
        self.assertTrue(reply["ok"], reply)
        wait_until(lambda: not pmtest.pid_alive(escaped), 5,
                   what="the escaped process to be killed")
        self.assertTrue(pmtest.pid_alive(bystander),
                        "another service's process was killed")
        self.assertIn("left its process group", agent.logs_tail(50))

    def test_leftovers_of_a_completed_service_are_stopped(self):
        """A main process that exits by itself leaves its group behind:
        the agent stops what is left (stop signal, then SIGKILL)."""
        self.script("daemonish.sh", "sleep 1000 &\necho \"child $!\"\n"
                    "(trap '' TERM; exec sleep 1000) &\n"
                    "echo \"stubborn $!\"\nexit 0\n")
        agent = self.start_agent('  daemonish: { command = "./daemonish.sh";'
                                 ' stop_timeout = 1.0; };\n')
        record = agent.wait_state("daemonish", "completed")
        self.assertEqual(record["exit_code"], 0)
        data = self.wait_log("daemonish", b"stubborn ")
        child = int(data.split(b"child ")[1].split()[0])
        stubborn = int(data.split(b"stubborn ")[1].split()[0])
        wait_until(lambda: not pmtest.pid_alive(child)
                   and not pmtest.pid_alive(stubborn), 10,
                   what="the leftovers of daemonish to be killed")
        wait_until(lambda: self.service_processes(agent) == {}, 5,
                   what="no service process left")

    # -- output -----------------------------------------------------------

    def test_chatty_service_does_not_block(self):
        lines = 200000          # ~20 MB on stdout
        self.script("chatty.py", """\
import sys, time
pad = "x" * 90
err = sys.stderr
for i in range(%d):
    err.write("e %%08d\\n" %% i)
err.flush()
out = sys.stdout
for i in range(%d):
    out.write("o %%08d %%s\\n" %% (i, pad))
out.write("DONE\\n")
out.flush()
time.sleep(1000)
""" % (1000, lines), shell="/usr/bin/python3")
        agent = self.start_agent('  chatty: { command = "./chatty.py"; '
                                 'autostart = false; stop_timeout = 1.0; };\n')
        #  A subscriber that never reads must not slow the service down.
        idle = agent.subscribe("log/t/chatty/")
        idle.sock.rcvhwm = 10
        t0 = time.monotonic()
        self.assertTrue(agent.request("start", {"names": ["chatty"]})["ok"])
        path = self.log_path("chatty")
        wait_until(lambda: b"DONE\n" in tail(path), 60,
                   what="DONE in the chatty log")
        took = time.monotonic() - t0
        self.assertEqual(agent.record("chatty")["state"], "running")

        def read_all():
            """The log and its rotated backups, oldest first; None until
            every stderr line is in."""
            parts = []
            for k in range(9, 0, -1):
                backup = "%s.%d" % (path, k)
                if os.path.exists(backup):
                    with open(backup, "rb") as f:
                        parts.append(f.read())
            with open(path, "rb") as f:
                parts.append(f.read())
            data = b"".join(parts)
            if data.count(b"e ") < 1000:
                return None
            #  Rotation never cuts a line in two.
            for part in parts:
                self.assertTrue(part == b"" or part.endswith(b"\n"))
            return data
        data = wait_until(read_all, 10, what="every stderr line")
        out, err, done = [], [], 0
        for line in data.split(b"\n")[:-1]:
            if line.startswith(b"o "):
                out.append(line)
            elif line.startswith(b"e "):
                err.append(line)
            elif line == b"DONE":
                done += 1
            else:
                self.fail("torn or unexpected line %r" % line[:200])
        self.assertEqual(done, 1)
        self.assertEqual(len(out), lines)
        self.assertEqual(len(err), 1000)
        pad = b"x" * 90
        for i, line in enumerate(out):
            if line != b"o %08d %s" % (i, pad):
                self.fail("stdout line %d is %r" % (i, line[:200]))
        for i, line in enumerate(err):
            self.assertEqual(line, b"e %08d" % i)
        #  And the agent still answers promptly.
        self.assertTrue(agent.request("hello", timeout=5)["ok"])
        sys.stderr.write("(20 MB through in %.1fs) " % took)

    def test_burst_then_exit_all_logged(self):
        """Every line is in the log file by the time the exit is known."""
        self.script("burst.py", """\
import sys
for i in range(100000):
    sys.stdout.write("%06d\\n" % i)
sys.stderr.write("last words\\n")
""", shell="/usr/bin/python3")
        agent = self.start_agent('  burst: { command = "./burst.py"; '
                                 'autostart = false; };\n')
        sub = agent.subscribe("state/t/burst/")
        self.assertTrue(agent.request("start", {"names": ["burst"],
                                                "wait": "none"})["ok"])
        sub.wait_for(lambda e: e["new"] == "completed", 30,
                     what="burst completed")
        #  No waiting here: the exit event promises the lines are in.
        data = agent.service_log("burst")
        lines = data.split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertIn(b"last words", lines)
        lines.remove(b"last words")
        self.assertEqual(lines[:-1], [b"%06d" % i for i in range(100000)])

    def test_last_words_persisted_at_stop(self):
        """Output written while stopping is in the log once stop returns."""
        self.script("polite.sh", "trap 'echo \"bye $$\"; exit 0' TERM\n"
                    "echo ready\nwhile :; do sleep 0.2; done\n")
        agent = self.start_agent('  polite: { command = "./polite.sh"; '
                                 'stop_timeout = 2.0; };\n')
        pid = agent.wait_state("polite", "running")["pid"]
        self.wait_log("polite", b"ready\n")
        reply = agent.request("stop", {"names": ["polite"]}, timeout=15)
        self.assertTrue(reply["ok"], reply)
        self.assertIn(b"bye %d\n" % pid, agent.service_log("polite"))
        record = agent.record("polite")
        self.assertEqual(record["state"], "stopped")
        #  It exited by itself on the stop signal.
        self.assertEqual(record["exit_code"], 0)
        self.assertIsNone(record["signal"])

    def test_logs_kept_apart(self):
        agent = self.start_agent("""\
  one: { command = "echo from-one"; };
  two: { command = "echo from-two"; };
""")
        agent.wait_state("one", "completed")
        agent.wait_state("two", "completed")
        self.assertEqual(agent.service_log("one"), b"from-one\n")
        self.assertEqual(agent.service_log("two"), b"from-two\n")
        with open(self.path("logs", "pmd.agent.log"), "rb") as f:
            own = f.read()
        self.assertIn(b"one", own)
        self.assertNotIn(b"from-one", own)

    # -- what a service is given -------------------------------------------

    def test_stdin_is_dev_null(self):
        self.script("stdin.sh", 'echo "fd0=$(readlink /proc/$$/fd/0)"\n'
                    'if read line; then echo "read:$line"; '
                    'else echo eof; fi\n')
        agent = self.start_agent('  stdin: { command = "./stdin.sh"; };\n')
        agent.wait_state("stdin", "completed")
        self.assertEqual(agent.service_log("stdin"), b"fd0=/dev/null\neof\n")

    def test_environment_and_working_dir(self):
        os.mkdir(self.path("work"))
        self.script("env.sh", 'echo "pwd=$(pwd)"\necho "FOO=$FOO"\n'
                    'echo "NUM=$NUM"\necho "SVC=$PMBUS_SERVICE"\n'
                    'echo "AGENT=$PMBUS_AGENT"\n'
                    'echo "INHERITED=$PMTEST_INHERITED"\n'
                    'echo "OVERRIDE=$PMTEST_OVERRIDE"\n')
        self.env["PMTEST_INHERITED"] = "from-agent"
        self.env["PMTEST_OVERRIDE"] = "from-agent"
        self.env["PMBUS_SERVICE"] = "wrong"
        agent = self.start_agent("""\
  envy: {
    command = "../env.sh";
    working_dir = "work";
    environment = { FOO = "bar baz"; NUM = 42; PMTEST_OVERRIDE = "from-config"; };
  };
""")
        agent.wait_state("envy", "completed")
        lines = agent.service_log("envy").decode().splitlines()
        self.assertEqual(lines, [
            "pwd=%s" % self.path("work"), "FOO=bar baz", "NUM=42",
            "SVC=envy", "AGENT=t", "INHERITED=from-agent",
            "OVERRIDE=from-config"])

    def test_argv_form(self):
        self.script("args.sh", 'for a in "$@"; do echo "[$a]"; done\n')
        agent = self.start_agent("""\
  direct: { argv = ["./args.sh", "a b", "c;d", "$HOME", "*"]; };
  split:  { command = "./args.sh one  two"; };
  shell:  { command = "./args.sh 'a b' $((1+2))"; };
""")
        for name in ("direct", "split", "shell"):
            agent.wait_state(name, "completed")
        self.assertEqual(agent.service_log("direct"),
                         b"[a b]\n[c;d]\n[$HOME]\n[*]\n")
        self.assertEqual(agent.service_log("split"), b"[one]\n[two]\n")
        self.assertEqual(agent.service_log("shell"), b"[a b]\n[3]\n")
        self.assertEqual(agent.record("direct")["command"],
                         "./args.sh a b c;d $HOME *")

    # -- the agent's own life ---------------------------------------------

    SHUTDOWN_SERVICES = """\
  db:   { command = "./svc.sh db";  stop_timeout = 2.0; };
  api:  { command = "./svc.sh api"; stop_timeout = 2.0;
          depends_on = { db = "started"; }; };
  web:  { command = "./svc.sh web"; stop_timeout = 2.0;
          depends_on = { api = "started"; }; };
  lone: { command = "./svc.sh lone"; stop_timeout = 2.0; };
"""

    def shutdown_by_signal(self, signum):
        self.script("svc.sh", "trap 'echo \"$1 bye\"; exit 0' TERM INT\n"
                    "echo \"$1 up\"\nwhile :; do sleep 0.2; done\n")
        agent = self.start_agent(self.SHUTDOWN_SERVICES)
        names = ("db", "api", "web", "lone")
        for name in names:
            agent.wait_state(name, "running")
            self.wait_log(name, b"%s up\n" % name.encode())
        sub = agent.subscribe("state/t/", "agent/t/")
        t0 = time.monotonic()
        agent.proc.send_signal(signum)
        self.assertEqual(agent.wait_exit(15), 0, agent.logs_tail())
        took = time.monotonic() - t0
        self.assertLess(took, 5.0)
        #  Everything the agent published before exiting reached us.
        sub.wait_for(lambda e: e.get("kind") == "agent"
                     and e.get("event") == "shutdown", 5,
                     what="the agent's shutdown event")
        order = sub.transitions()
        for name in names:
            self.assertIn((name, "running", "stopping"), order, order)
            self.assertIn((name, "stopping", "stopped"), order, order)
        #  Reverse dependency order: a dependent is stopped before what it
        #  depends on begins to stop.
        for dependent, dependency in (("web", "api"), ("api", "db")):
            self.assertLess(order.index((dependent, "stopping", "stopped")),
                            order.index((dependency, "running", "stopping")),
                            order)
        #  The services' last words are in their files.
        for name in names:
            self.assertIn(b"%s bye\n" % name.encode(),
                          agent.service_log(name))
        #  Nothing left behind: sockets, pid file, lock, processes.
        for leftover in ("control.sock", "events.sock", "pmd.pid",
                         "pmd.lock"):
            self.assertFalse(os.path.exists(os.path.join(agent.rundir,
                                                         leftover)),
                             leftover)
        self.assertEqual(self.service_processes(agent), {})

    def test_shutdown_on_sigterm(self):
        self.shutdown_by_signal(signal.SIGTERM)

    def test_shutdown_on_sigint(self):
        self.shutdown_by_signal(signal.SIGINT)

    def test_shutdown_command(self):
        self.script("svc.sh", "trap 'echo \"$1 bye\"; exit 0' TERM\n"
                    "echo \"$1 up\"\nwhile :; do sleep 0.2; done\n")
        agent = self.start_agent(self.SHUTDOWN_SERVICES)
        for name in ("db", "api", "web", "lone"):
            agent.wait_state(name, "running")
        reply = agent.request("shutdown", timeout=15)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(agent.wait_exit(10), 0)
        self.assertFalse(os.path.exists(os.path.join(agent.rundir,
                                                     "control.sock")))
        #  Once down, a new request finds nobody; nothing hangs.
        client = agent.client()
        rid = client.send("hello")
        with self.assertRaises(AssertionError):
            client.wait_reply(rid, 0.3)

    def test_shutdown_waits_for_stop_timeout(self):
        self.script("stubborn.sh", "trap '' TERM\necho ready\n"
                    "while :; do sleep 0.05; done\n")
        agent = self.start_agent('  stubborn: { command = "./stubborn.sh"; '
                                 'stop_timeout = 1.0; };\n')
        pid = agent.wait_state("stubborn", "running")["pid"]
        self.wait_log("stubborn", b"ready\n")
        t0 = time.monotonic()
        reply = agent.request("shutdown", timeout=15)
        self.assertTrue(reply["ok"], reply)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertEqual(agent.wait_exit(10), 0)
        self.assertFalse(pmtest.pid_alive(pid))

    def test_second_sigterm_skips_stop_timeouts(self):
        self.script("stubborn.sh", "trap '' TERM\necho ready\n"
                    "while :; do sleep 0.05; done\n")
        agent = self.start_agent('  stubborn: { command = "./stubborn.sh"; '
                                 'stop_timeout = 60.0; };\n')
        agent.wait_state("stubborn", "running")
        self.wait_log("stubborn", b"ready\n")
        agent.proc.send_signal(signal.SIGTERM)
        agent.wait_state("stubborn", "stopping")
        t0 = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait_exit(10), 0, agent.logs_tail())
        self.assertLess(time.monotonic() - t0, 5)

    def test_agents_side_by_side(self):
        """Two agents, two names, one runtime base: each finds its own."""
        os.mkdir(self.path("one"))
        os.mkdir(self.path("two"))
        first = self.start_agent(config=self.config(
            '  s1: { command = "sleep 1000"; stop_timeout = 1.0; };\n',
            name="one/pmbus.cfg"))
        second = self.start_agent(config=self.config(
            '  s2: { command = "sleep 1000"; stop_timeout = 1.0; };\n',
            name="two/pmbus.cfg", agent_name="u"), name="u")
        self.assertEqual(second.request("hello")["agent"], "u")
        self.assertEqual(set(first.status()), {"s1", pmtest.PROBE})
        self.assertEqual(set(second.status()), {"s2", pmtest.PROBE})
        first.wait_state("s1", "running")
        second.wait_state("s2", "running")
        self.assertNotEqual(first.rundir, second.rundir)

    def test_second_agent_refused(self):
        config = self.config('  s: { command = "sleep 1000"; '
                             'stop_timeout = 1.0; };\n')
        first = self.start_agent(config=config)
        pid = first.wait_state("s", "running")["pid"]
        second = self.spawn_pmd(config)
        self.assertEqual(second.wait_exit(10), 3, second.logs_tail())
        with open(second.stderr_path) as f:
            message = f.read()
        self.assertIn(str(first.pid), message)
        self.assertIn("already running", message)
        #  The first one is untouched: same pid file, same sockets, same
        #  service process.
        self.assertTrue(first.alive())
        with open(first.pidfile) as f:
            self.assertEqual(int(f.read()), first.pid)
        self.assertTrue(first.request("hello")["ok"])
        fresh = first.client()
        reply = fresh.request("status", {"names": ["s"]})
        self.assertEqual(reply["services"][0]["pid"], pid)
        self.assertTrue(pmtest.pid_alive(pid))

    def test_dead_agent_leaves_nothing_in_the_way(self):
        """After a SIGKILLed agent: its services die with it, a new agent
        takes over the stale socket files and kills what the old one's
        services left (here a grandchild, orphaned to us)."""
        self.script("parent.sh", 'sleep 1000 &\necho "child $!"\n'
                    'exec sleep 1000\n')
        config = self.config('  s: { command = "./parent.sh"; '
                             'stop_timeout = 1.0; };\n')
        first = self.start_agent(config=config)
        pid = first.wait_state("s", "running")["pid"]
        data = self.wait_log("s", b"child ")
        grandchild = int(data.split(b"child ")[1].split()[0])
        first.proc.kill()
        first.wait_exit(10)
        self.assertTrue(os.path.exists(os.path.join(first.rundir,
                                                    "control.sock")))
        #  The direct child gets SIGKILL when its agent dies.
        wait_until(lambda: not pmtest.pid_alive(pid), 5,
                   what="the service of the killed agent to die")
        self.assertTrue(pmtest.pid_alive(grandchild))
        second = self.start_agent(config=config)
        self.assertEqual(second.request("hello")["pid"], second.pid)
        second.wait_state("s", "running")
        #  The grandchild is ours now (subreaper): dead means a zombie.
        wait_until(lambda: not pmtest.pid_alive(grandchild), 5,
                   what="the old grandchild to be killed")
        pmtest.reap_zombie_children(skip={a.pid for a in self.agents})

if __name__ == "__main__":
    pmtest.main()
