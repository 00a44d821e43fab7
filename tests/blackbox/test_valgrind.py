"""pmd under valgrind: no memory errors, no definite leaks.

A short scenario that goes through most of the agent: dependencies, a
readiness probe, a restart policy, output capture and replay, every
command, a reload that adds, changes and removes services, malformed
frames, and a shutdown by SIGTERM.  valgrind's exit code (99 on any error,
a definite leak included) and its summary decide.  Skipped in sanitizer
builds (valgrind and ASan do not mix) and where valgrind is missing.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402

SERVICES = """
  db: { command = "echo db up; exec sleep 1000"; ready = { exec = "true"; interval = 0.2; }; };
  api: { command = "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line $i; done; exec sleep 1000";
         depends_on = { db = "ready"; }; };
  flaky: { command = "echo oops >&2; exit 3"; restart = "on-failure";
           backoff_initial = 0.2; max_restarts = 2; };
  gone: { command = "sleep 1000"; };
  late: { command = "sleep 1000"; ready = { exec = "false"; initial_delay = 0.5; deadline = 0.5; }; };
"""

RELOADED = """
  db: { command = "echo db up; exec sleep 1000"; ready = { exec = "true"; interval = 0.2; }; };
  api: { command = "echo api v2; exec sleep 1000"; depends_on = { db = "ready"; }; };
  flaky: { command = "echo oops >&2; exit 3"; restart = "on-failure";
           backoff_initial = 0.2; max_restarts = 2; log_format = "json"; };
  fresh: { command = "exec sleep 1000"; };
"""


@unittest.skipIf(os.environ.get("PM_SANITIZE", "").upper() in ("ON", "1", "TRUE"),
                 "sanitizer build: valgrind does not run ASan binaries")
@unittest.skipIf(shutil.which("valgrind") is None, "valgrind not installed")
class ValgrindTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        self.vglog = self.path("valgrind.log")
        wrapper = self.write_file("pmd-valgrind.sh", (
            "#!/bin/sh\n"
            "exec valgrind --error-exitcode=99 --leak-check=full "
            "--errors-for-leak-kinds=definite --show-leak-kinds=definite "
            "--log-file=%s %s \"$@\"\n") % (self.vglog, pmtest.PMD))
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
        self._real = pmtest.PMD
        pmtest.PMD = wrapper

    def tearDown(self):
        pmtest.PMD = self._real
        super().tearDown()

    def test_scenario_is_clean(self):
        agent = self.start_agent(SERVICES, timeout=60)
        agent.wait_state("api", "running", timeout=60)
        agent.wait_state("flaky", "failed", timeout=60)
        #  Its deadline and first attempt come due together.
        agent.wait_state("late", "failed", timeout=60)
        for cmd, args in (("status", {}), ("hello", {}),
                          ("logs", {"tail": 50}),
                          ("logs", {"names": ["api"], "since": 10}),
                          ("stop", {"names": ["db"], "with_dependents": True}),
                          ("start", {"names": ["api"]}),
                          ("restart", {"all": True, "timeout": 30}),
                          ("signal", {"names": ["gone"], "signal": "HUP"}),
                          ("wait", {"names": ["gone"], "for": "stopped",
                                    "timeout": 30}),
                          ("lease", {"pid": os.getpid()})):
            reply = agent.request(cmd, args, timeout=60)
            self.assertIn("ok", reply)
        client = agent.default_client()
        for frame in (b"\xc1", b"\x93\x01\x02\x03", b"\x81\xa1v\x02"):
            client.raw(frame, timeout=30)
        #  pmctl too, through the commands that decode the most.
        for args in (("status",), ("logs", "-n", "20"), ("ping",),
                     ("events",), ("wait", "db", "--for", "running"),
                     ("--json", "status")):
            done = subprocess.run(
                ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                 "--errors-for-leak-kinds=definite", pmtest.PMCTL,
                 "-c", agent.config] + list(args),
                env=self.env, capture_output=True, text=True, timeout=120)
            self.assertEqual(done.returncode, 0, "pmctl %s under valgrind:\n"
                             "%s" % (" ".join(args), done.stderr[-4000:]))
        with open(agent.config) as f:
            text = f.read()
        self.write_file("pmbus.cfg", text.replace(SERVICES, RELOADED))
        reply = agent.request("reload", timeout=60)
        self.assertTrue(reply["ok"], reply)
        agent.proc.send_signal(signal.SIGTERM)
        agent.wait_exit(120)
        self.check_report(agent.proc.returncode)

    def check_report(self, code):
        with open(self.vglog) as f:
            report = f.read()
        self.assertEqual(code, 0, "pmd (under valgrind) exited %s:\n%s"
                         % (code, report[-6000:]))
        #  valgrind really ran pmd, and counted nothing.
        self.assertIn("Memcheck", report)
        self.assertIn("ERROR SUMMARY: 0 errors", report, report[-6000:])
        self.assertNotRegex(report, r"definitely lost: [1-9]")
        self.assertIn("All heap blocks were freed", report,
                      "memory still held at exit:\n" + report[-3000:])
        self.assertNotIn("Invalid read", report)
        self.assertNotIn("Invalid write", report)
        self.assertNotIn("uninitialised", report)

    def pmctl_clean(self, *args):
        """pmctl ARGS under valgrind; returns its stdout."""
        done = subprocess.run(
            ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
             "--errors-for-leak-kinds=definite", pmtest.PMCTL] + list(args),
            env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, "pmctl %s under valgrind:\n"
                         "%s" % (" ".join(args), done.stderr[-4000:]))
        return done.stdout

    def test_broker_is_clean(self):
        """pmbroker under valgrind: an agent registering, requests split
        and merged, events forwarded, malformed frames, SIGTERM."""
        import zmq
        vglog = self.path("broker-valgrind.log")
        at = [self.path(n) for n in ("bc.sock", "be.sock", "ba.sock")]
        config = self.write_file("broker.cfg", (
            'broker: { name = "lab"; control = "ipc://%s"; events = '
            '"ipc://%s"; agents = "ipc://%s"; heartbeat = 0.2; };\n'
            % tuple(at)))
        broker = subprocess.Popen(
            ["valgrind", "--error-exitcode=99", "--leak-check=full",
             "--errors-for-leak-kinds=definite",
             "--show-leak-kinds=definite", "--log-file=" + vglog,
             pmtest.PMBROKER, "-c", config],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=self.env)
        try:
            agent = self.start_agent(config=self.config(
                '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n',
                agent_extra='broker = { endpoint = "ipc://%s"; }; ' % at[2]),
                timeout=60)
            agent.wait_state("web", "running", timeout=60)
            remote = ["--connect", "ipc://" + at[0]]
            pmtest.wait_until(lambda: "connected" in subprocess.run(
                [pmtest.PMCTL] + remote + ["agents"], capture_output=True,
                text=True, env=self.env, timeout=60).stdout, 60,
                what="the agent registered")
            sub = self.track(self.context.socket(zmq.SUB))
            sub.subscribe(b"state/")
            sub.connect("ipc://" + at[1])
            for args in (["status"], ["restart", "web@t"], ["stop", "nope"],
                         ["logs", "-n", "5"], ["ping"]):
                subprocess.run([pmtest.PMCTL] + remote + args,
                               capture_output=True, env=self.env, timeout=60)
            raw = self.track(self.context.socket(zmq.DEALER))
            raw.connect("ipc://" + at[0])
            raw.send(b"\xc1")
            self.assertTrue(raw.poll(30000))
            rogue = self.track(self.context.socket(zmq.DEALER))
            rogue.connect("ipc://" + at[2])
            rogue.send_multipart([b"REGISTER", b"i", b"\xc1"])
            rogue.send_multipart([b"HEARTBEAT"])
            agent.proc.send_signal(signal.SIGTERM)
            agent.wait_exit(120)
        finally:
            broker.send_signal(signal.SIGTERM)
            code = broker.wait(120)
        with open(vglog) as f:
            report = f.read()
        self.assertEqual(code, 0, report[-6000:])
        self.assertIn("ERROR SUMMARY: 0 errors", report, report[-6000:])
        self.assertIn("All heap blocks were freed", report, report[-3000:])

    def test_curve_is_clean(self):
        """TCP with CURVE: the ZAP handler admitting and refusing, keys
        read again, a malformed frame over TCP; keygen and --connect in
        pmctl."""
        import zmq
        import zmq.auth
        keys = self.path("keys")
        os.makedirs(os.path.join(keys, "clients"))
        for name in ("server", "client", "stranger"):
            self.pmctl_clean("keygen", os.path.join(keys, name))
        shutil.copy(os.path.join(keys, "client"),
                    os.path.join(keys, "clients"))
        port_c, port_e = pmtest.free_port(), pmtest.free_port()
        config = self.config('  s: { command = "sleep 1000"; };\n',
                             agent_extra=(
            'control = "tcp://127.0.0.1:%d"; events = "tcp://127.0.0.1:%d"; '
            'curve = { secret_key = "keys/server_secret"; '
            'clients = "keys/clients"; }; ' % (port_c, port_e)))
        agent = self.start_agent(config=config, timeout=60)
        agent.wait_state("s", "running", timeout=60)
        remote = ["--connect", "tcp://127.0.0.1:%d" % port_c,
                  "--server-key", os.path.join(keys, "server"),
                  "--key", os.path.join(keys, "client_secret")]
        self.assertIn("running", self.pmctl_clean(*remote, "status"))
        server, _ = zmq.auth.load_certificate(os.path.join(keys, "server"))
        for name in ("stranger", "client"):
            sock = self.track(self.context.socket(zmq.DEALER))
            sock.linger = 0
            public, secret = zmq.auth.load_certificate(
                os.path.join(keys, name + "_secret"))
            sock.curve_serverkey, sock.curve_publickey = server, public
            sock.curve_secretkey = secret
            sock.connect("tcp://127.0.0.1:%d" % port_c)
            sock.send(b"\xc1")
            answered = sock.poll(3000 if name == "client" else 500)
            self.assertEqual(bool(answered), name == "client")
        agent.proc.send_signal(signal.SIGHUP)
        self.assertTrue(agent.request("reload", timeout=60)["ok"])
        agent.proc.send_signal(signal.SIGTERM)
        agent.wait_exit(120)
        self.check_report(agent.proc.returncode)


if __name__ == "__main__":
    unittest.main()
