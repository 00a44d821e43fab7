"""test_pmctl_real.py - pmctl's up, down, is-running, lease, wait, logs and
events against the real pmd

Every agent here is started the way a user starts one: `pmctl up`, which
runs `pmd --daemon` and returns once the agent accepts commands.  The
daemon is re-parented to this process (pmtest makes it a subreaper), so
the harness still sees every process; each test stops its agent with
`pmctl down` (registered as a cleanup, so a failing test does too).

Followers (`pmctl logs -f`, `pmctl events -f`) run as child processes
whose output is read by threads; a test waits for what it expects to
appear (bounded), never for time to pass.  Services that must print
only when the test says so block on a FIFO the test opens.
"""

import base64
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import (EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT,  # noqa: E402
                    EXIT_UNREACHABLE, EXIT_USAGE, pid_alive, wait_until)

PMCTL = pmtest.PMCTL


class Follower:
    """A pmctl process whose stdout and stderr are collected as they come."""

    def __init__(self, test, config, *args):
        self.args = args
        self.proc = subprocess.Popen(
            [PMCTL, "-c", config] + list(args), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=test.env,
            cwd=test.tmp)
        self.out = bytearray()
        self.err = bytearray()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout,
                                                      self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr,
                                                      self.err), daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read(self, pipe, into):
        while True:
            data = os.read(pipe.fileno(), 65536)
            if not data:
                return
            with self._lock:
                into.extend(data)

    def text(self):
        with self._lock:
            return bytes(self.out).decode("utf-8", "replace")

    def errors(self):
        with self._lock:
            return bytes(self.err).decode("utf-8", "replace")

    def wait_output(self, predicate, timeout, what):
        """Waits until predicate(stdout text) holds (or the process ends)."""
        def check():
            if predicate(self.text()):
                return True
            if self.proc.poll() is not None:
                raise AssertionError(
                    "pmctl %s exited with %s before %s\nstdout: %s\n"
                    "stderr: %s" % (" ".join(self.args), self.proc.returncode,
                                    what, self.text()[-2000:],
                                    self.errors()))
            return False
        try:
            wait_until(check, timeout, what=what)
        except AssertionError as e:
            raise AssertionError("%s\nstdout (end): %r\nstderr: %s"
                                 % (e, self.text()[-500:], self.errors()))

    def finish(self, timeout=10.0, sig=None):
        """Sends sig (if any) and returns the exit code once it exits."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("pmctl %s still running %gs after %s"
                                 % (" ".join(self.args), timeout,
                                    sig or "the end"))
        self._close()
        return code

    def _close(self):
        for thread in self._threads:
            thread.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if not pipe.closed:
                pipe.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._close()


class PmctlRealTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        self.followers = []
        self.configs = []
        self.sleepers = []
        #  Runs before the harness's cleanup (cleanups are last in, first
        #  out): agents started by `up` are not the harness's own.
        self.addCleanup(self._stop_everything)

    def _stop_everything(self):
        for follower in self.followers:
            follower.kill()
        for config in self.configs:
            self.pmctl(config, "down", "--timeout", "15", timeout=30)
        for sleeper in self.sleepers:
            if sleeper.poll() is None:
                sleeper.kill()
            sleeper.wait(5)

    # -- helpers -----------------------------------------------------------

    def project(self, services, name="pmbus.cfg"):
        """A config with services (and no probe service); down at the end."""
        path = self.config(services, name=name, probe=False)
        self.configs.append(path)
        return path

    def pmctl(self, config, *args, timeout=30.0):
        """(exit code, stdout, stderr) of pmctl -c config args; output is
        decoded with surrogateescape: lines are bytes."""
        try:
            done = subprocess.run([PMCTL, "-c", config] + list(args),
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, env=self.env,
                                  timeout=timeout, cwd=self.tmp)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("pmctl %s did not finish within %gs "
                                 "(stdout %r, stderr %r)"
                                 % (" ".join(args), timeout, e.stdout,
                                    e.stderr))
        return (done.returncode,
                done.stdout.decode("utf-8", "surrogateescape"),
                done.stderr.decode("utf-8", "surrogateescape"))

    def ok(self, config, *args, timeout=30.0):
        code, out, err = self.pmctl(config, *args, timeout=timeout)
        self.assertEqual(code, EXIT_OK, "pmctl %s: exit %d\nstdout: %s\n"
                         "stderr: %s" % (" ".join(args), code, out, err))
        return out, err

    def follow(self, config, *args):
        follower = Follower(self, config, *args)
        self.followers.append(follower)
        return follower

    def sleeper(self):
        proc = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL)
        self.sleepers.append(proc)
        return proc

    def rundir(self):
        return os.path.join(self.xdg, "pmbus", pmtest.AGENT_NAME)

    def agent_pid(self):
        with open(os.path.join(self.rundir(), "pmd.pid")) as f:
            return int(f.read())

    def wait_gone(self, pid, timeout=15.0):
        """Waits until pid has exited and reaps it.  A daemon started by
        `up` is our child (pmtest made us the subreaper), and only a
        whole thread group can be reaped: /proc shows the leader as a
        zombie while the agent's other threads (and the files they share,
        its lock among them) may still be on their way out."""
        def gone():
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                return done == pid
            except ChildProcessError:
                return not os.path.exists("/proc/%d" % pid)
        wait_until(gone, timeout, what="process %d to exit" % pid)

    def fifo(self, name):
        path = self.path(name)
        os.mkfifo(path)
        return path

    def open_fifo(self, path, data=b"go\n", timeout=10.0):
        """Writes to a FIFO once its reader has opened it (bounded)."""
        def opened():
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:          # ENXIO: no reader yet
                return None
        fd = wait_until(lambda: opened(), timeout,
                        what="a reader on %s" % path)
        os.write(fd, data)
        os.close(fd)

    def service_pids(self, config):
        out, _ = self.ok(config, "--json", "status")
        return [s["pid"] for s in json.loads(out)["services"] if s["pid"]]

    # -- up, status, down --------------------------------------------------

    def test_up_then_status_never_fails(self):
        config = self.project(
            '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n')
        for i in range(50):
            out, err = self.ok(config, "up")
            self.assertRegex(out, r"^agent t started \(pid \d+\)\n"
                                  r"web  running\n$")
            out, err = self.ok(config, "status")
            self.assertRegex(out, r"\nweb +running +\d+ ")
            out, err = self.ok(config, "down")
            self.assertEqual(out, "agent t stopped\n")
        code, out, _ = self.pmctl(config, "is-running")
        self.assertEqual((code, out), (EXIT_FAILED, "not running\n"))

    def test_up_bad_config(self):
        config = self.project(
            '  web: { command = "sleep 1000"; };\n'
            '  api: { comand = "sleep 1000"; };\n')
        code, out, err = self.pmctl(config, "up")
        self.assertEqual(code, EXIT_USAGE, err)
        self.assertEqual(out, "")
        #  pmd's own message, with the file and the line (line 4: the
        #  agent line, "services: {", web, then api).
        self.assertIn("pmctl: cannot start the agent: %s:4:" % config, err)
        self.assertIn("comand", err)
        self.assertEqual(len(err.splitlines()), 1, err)
        code, out, err = self.pmctl(config, "is-running")
        self.assertEqual((code, out), (EXIT_FAILED, "not running\n"))

    def test_up_twice_just_starts(self):
        config = self.project(
            '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n'
            '  api: { command = "sleep 1000"; stop_timeout = 1.0; };\n'
            '  extra: { command = "sleep 1000"; stop_timeout = 1.0;'
            ' autostart = false; };\n')
        out, _ = self.ok(config, "up")
        pid = self.agent_pid()
        self.assertEqual(out, "agent t started (pid %d)\n"
                              "web  running\n"
                              "api  running\n" % pid)
        self.ok(config, "stop", "api")
        out, err = self.ok(config, "up")
        self.assertEqual((out, err), ("web  running  already-running\n"
                                      "api  running\n", ""))
        self.assertEqual(self.agent_pid(), pid)
        out, _ = self.ok(config, "up", "extra")
        self.assertEqual(out, "extra  running\n")
        code, out, err = self.pmctl(config, "up", "nope")
        self.assertEqual((code, out), (EXIT_USAGE, ""))
        self.assertEqual(err, "pmctl: unknown service: nope\n")
        states = {s["name"]: s["state"] for s in json.loads(
            self.ok(config, "--json", "status")[0])["services"]}
        self.assertEqual(states, {"web": "running", "api": "running",
                                  "extra": "running"})

    def test_up_runs_one_shots_once(self):
        #  A fresh agent starts its autostart services itself; up waits
        #  for them and never starts a finished one-shot a second time.
        config = self.project(
            '  migrate: { command = "echo migrated"; };\n'
            '  web: { command = "sleep 1000"; stop_timeout = 1.0;'
            ' depends_on = { migrate = "completed"; }; };\n'
            '  extra: { command = "sleep 1000"; stop_timeout = 1.0;'
            ' autostart = false; };\n')
        for _ in range(5):
            out, err = self.ok(config, "up")
            self.assertRegex(out, r"^agent t started \(pid \d+\)\n"
                                  r"migrate  (running|completed)\n"
                                  r"web      running\n$")
            self.ok(config, "wait", "migrate", "--for", "completed")
            self.assertEqual(self.ok(config, "logs", "migrate"),
                             ("migrated\n", ""))
            self.ok(config, "down")
        #  Named on a fresh agent: the autostart one is waited for, the
        #  other started.
        out, err = self.ok(config, "up", "migrate", "extra")
        self.assertRegex(out, r"^agent t started \(pid \d+\)\n"
                              r"extra  running\n"
                              r"migrate  (running|completed)\n$")
        self.ok(config, "wait", "migrate", "--for", "completed")
        self.assertEqual(self.ok(config, "logs", "migrate"),
                         ("migrated\n", ""))

    def test_up_autostart_failure(self):
        config = self.project(
            '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n'
            '  broken: { command = "./does-not-exist"; };\n')
        code, out, err = self.pmctl(config, "up")
        self.assertEqual(code, EXIT_FAILED, err)
        self.assertIn("agent t started", out)
        self.assertIn("pmctl: cannot wait for 'broken': is failed: ", err)
        self.assertIn("No such file or directory", err)
        #  The agent stays up with what could start.
        self.assertEqual(self.pmctl(config, "is-running")[0], EXIT_OK)
        self.ok(config, "wait", "web", "--for", "running")

    def test_is_running(self):
        config = self.project(
            '  web: { command = "echo hi; exec sleep 1000";'
            ' stop_timeout = 1.0; };\n')
        code, out, err = self.pmctl(config, "is-running")
        self.assertEqual((code, out, err), (EXIT_FAILED, "not running\n", ""))
        self.ok(config, "up")
        pid = self.agent_pid()
        code, out, err = self.pmctl(config, "is-running")
        self.assertEqual((code, out, err),
                         (EXIT_OK, "running (pid %d)\n" % pid, ""))
        code, out, err = self.pmctl(config, "is-running", "-q")
        self.assertEqual((code, out, err), (EXIT_OK, "", ""))
        self.ok(config, "down")
        code, out, err = self.pmctl(config, "is-running")
        self.assertEqual((code, out), (EXIT_FAILED, "not running\n"))

        #  Killed: its lock file stays behind, but nobody holds the lock.
        self.ok(config, "up")
        pid = self.agent_pid()
        services = self.service_pids(config)
        follower = self.follow(config, "logs", "-f", "web")
        follower.wait_output(lambda text: text == "hi\n", 10, "the tail")
        os.kill(pid, signal.SIGKILL)
        self.wait_gone(pid)
        self.assertTrue(os.path.exists(os.path.join(self.rundir(),
                                                    "pmd.lock")))
        code, out, err = self.pmctl(config, "is-running")
        self.assertEqual((code, out, err), (EXIT_FAILED, "not running\n", ""))
        #  A follower of a killed agent says so, with exit code 3.
        self.assertEqual(follower.finish(10), EXIT_UNREACHABLE)
        self.assertIn("exited without shutting down", follower.errors())
        #  The next up takes over the stale directory (and kills what the
        #  dead agent left).
        self.ok(config, "up")
        self.assertNotEqual(self.agent_pid(), pid)
        self.ok(config, "down")
        pmtest.kill_and_reap(services)

    def test_is_running_sends_nothing(self):
        #  A lock held by a process that answers nothing at all.
        config = self.project('  web: { command = "sleep 1000"; };\n')
        os.makedirs(self.rundir(), 0o700)
        with open(os.path.join(self.rundir(), "pmd.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with open(os.path.join(self.rundir(), "pmd.pid"), "w") as f:
                f.write("%d\n" % os.getpid())
            start = time.monotonic()
            code, out, err = self.pmctl(config, "is-running")
            self.assertEqual((code, out, err),
                             (EXIT_OK, "running (pid %d)\n" % os.getpid(),
                              ""))
            self.assertLess(time.monotonic() - start, 5)

    def test_down_answers_a_parked_start(self):
        config = self.project(
            '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n'
            '  slow: { command = "sleep 1000"; autostart = false;'
            ' stop_timeout = 1.0;'
            ' ready = { exec = "false"; interval = 0.05; deadline = 0.0; };'
            ' };\n')
        self.ok(config, "up")
        pid = self.agent_pid()
        parked = self.follow(config, "start", "slow")

        def starting():
            out, _ = self.ok(config, "--json", "status", "slow")
            return json.loads(out)["services"][0]["state"] == "starting"
        wait_until(starting, 10, what="slow starting")
        out, err = self.ok(config, "down")
        self.assertEqual(out, "agent t stopped\n")
        self.assertEqual(parked.finish(10), EXIT_UNREACHABLE)
        self.assertIn("shutting down", parked.errors())
        self.wait_gone(pid)
        code, out, _ = self.pmctl(config, "down")
        self.assertEqual((code, out), (EXIT_OK, "no agent running\n"))

    # -- leases --------------------------------------------------------------

    def test_leases(self):
        config = self.project(
            '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n'
            '  api: { command = "sleep 1000"; stop_timeout = 1.0; };\n')
        first, second = self.sleeper(), self.sleeper()
        self.ok(config, "up", "--lease", str(first.pid))
        pid = self.agent_pid()
        services = self.service_pids(config)
        self.assertEqual(len(services), 2)
        out, _ = self.ok(config, "lease", str(second.pid))
        self.assertEqual(out, "leases   %d, %d\n" % (first.pid, second.pid))
        code, out, err = self.pmctl(config, "lease", "999999999")
        self.assertEqual(code, EXIT_FAILED)
        self.assertIn("999999999", err)

        first.kill()
        first.wait(5)

        def one_lease():
            out, _ = self.ok(config, "ping")
            return "leases   %d\n" % second.pid in out
        wait_until(one_lease, 10, what="the first lease to end")
        self.assertTrue(pid_alive(pid))
        self.assertEqual(self.pmctl(config, "is-running")[0], EXIT_OK)

        second.kill()
        second.wait(5)
        self.wait_gone(pid)
        for service in services:
            self.assertFalse(pid_alive(service), "service %d left" % service)
        code, out, _ = self.pmctl(config, "is-running")
        self.assertEqual((code, out), (EXIT_FAILED, "not running\n"))
        #  It shut down cleanly: its last words are in its own log.
        with open(self.path("logs", "pmd.agent.log")) as f:
            self.assertIn("shutdown complete", f.read())

    # -- wait ------------------------------------------------------------------

    def test_wait(self):
        config = self.project(
            '  web: { command = "sleep 1000"; stop_timeout = 1.0; };\n'
            '  once: { command = "true"; autostart = false; };\n'
            '  broken: { command = "./does-not-exist"; autostart = false; };\n')
        self.ok(config, "up")
        out, _ = self.ok(config, "wait", "web", "--for", "running")
        self.assertEqual(out, "web  running\n")
        self.ok(config, "wait", "web", "--for", "ready")

        #  Cannot get there without a command.
        code, out, err = self.pmctl(config, "wait", "web", "once", "--for",
                                    "running")
        self.assertEqual(code, EXIT_FAILED, err)
        self.assertEqual(err, "pmctl: cannot wait for 'once': is inactive, "
                              "and cannot become running without a "
                              "command\n")
        code, out, err = self.pmctl(config, "wait", "--all", "--for",
                                    "running")
        self.assertEqual(code, EXIT_FAILED)

        #  Timeout.
        start = time.monotonic()
        code, out, err = self.pmctl(config, "wait", "web", "--for",
                                    "stopped", "--timeout", "0.3")
        self.assertEqual(code, EXIT_TIMEOUT, err)
        self.assertEqual(err, "pmctl: timed out after 0.3 s: not stopped "
                              "yet: web (running)\n")
        self.assertLess(time.monotonic() - start, 5)

        #  Reached later: a parked wait answered by someone else's stop.
        waiter = self.follow(config, "wait", "web", "--for", "stopped")
        self.ok(config, "stop", "web")
        self.assertEqual(waiter.finish(10), EXIT_OK, waiter.errors())
        self.assertEqual(waiter.text(), "web  stopped\n")

        self.ok(config, "start", "once", "--wait", "none")
        self.ok(config, "wait", "once", "--for", "completed")
        code, _, _ = self.pmctl(config, "start", "broken")
        self.assertEqual(code, EXIT_FAILED)
        self.ok(config, "wait", "broken", "--for", "failed")

        code, out, err = self.pmctl(config, "wait", "web", "nope", "--for",
                                    "stopped")
        self.assertEqual((code, out, err),
                         (EXIT_USAGE, "", "pmctl: unknown service: nope\n"))

    # -- logs ------------------------------------------------------------------

    LOG_SERVICES = (
        '  a: { command = "printf \'a1\\\\na2\\\\na3\\\\n\'";'
        ' autostart = false; };\n'
        '  b: { command = "printf \'b1\\\\nb2\\\\n\'"; autostart = false; };\n'
        '  c: { command = "printf \'c1\\\\n\'"; autostart = false; };\n'
        '  e: { command = "echo oops >&2"; autostart = false; };\n'
        '  r: { command = "seq 1 20"; autostart = false; log_ring = 5; };\n'
        '  x: { command = "printf \'ok\\\\n\\\\377\\\\376bin\\\\n\'";'
        ' autostart = false; };\n'
        '  idle: { command = "sleep 1000"; autostart = false; };\n')

    def test_logs_tail(self):
        config = self.project(self.LOG_SERVICES)
        self.ok(config, "up")
        #  One after the other, so that their lines' times are in order.
        for name in ("a", "b", "c", "e", "r", "x"):
            self.ok(config, "start", name, "--wait", "none")
            self.ok(config, "wait", name, "--for", "completed")

        self.assertEqual(self.ok(config, "logs", "a"), ("a1\na2\na3\n", ""))
        self.assertEqual(self.ok(config, "logs", "-n", "2", "a"),
                         ("a2\na3\n", ""))
        self.assertEqual(self.ok(config, "logs", "-n", "0", "a"), ("", ""))
        self.assertEqual(self.ok(config, "logs", "e"), ("oops\n", ""))
        self.assertEqual(self.ok(config, "logs", "idle"), ("", ""))
        #  Some: prefixed, padded, merged by time.
        self.assertEqual(self.ok(config, "logs", "-n", "2", "b", "a"),
                         ("a | a2\na | a3\nb | b1\nb | b2\n", ""))
        self.assertEqual(self.ok(config, "logs", "-n", "1", "e", "a"),
                         ("a | a3\ne ! oops\n", ""))
        #  All.
        self.assertEqual(self.ok(config, "logs", "-n", "1"),
                         ("a    | a3\nb    | b2\nc    | c1\ne    ! oops\n"
                          "r    | 20\nx    | \udcff\udcfebin\n", ""))

        #  What the ring no longer holds is said, exactly.
        self.assertEqual(
            self.ok(config, "logs", "-n", "10", "r"),
            ("16\n17\n18\n19\n20\n",
             "-- r: 5 lines (11..15) are no longer in memory (see the log "
             "file) --\n"))
        out, err = self.ok(config, "logs", "--json", "-n", "10", "r")
        objects = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(objects[0], {"service": "r", "gone": [11, 15]})
        self.assertEqual([o["line"] for o in objects[1:]],
                         ["16", "17", "18", "19", "20"])

        out, err = self.ok(config, "logs", "--json", "x")
        first, second = [json.loads(line) for line in out.splitlines()]
        self.assertEqual((first["service"], first["seq"], first["stream"],
                          first["line"]), ("x", 1, "out", "ok"))
        self.assertNotIn("line_base64", first)
        self.assertEqual(second["line"], "\ufffd\ufffdbin")
        self.assertEqual(base64.b64decode(second["line_base64"]),
                         b"\xff\xfebin")

        #  Unknown names: exit 2, all of them named, nothing printed.
        code, out, err = self.pmctl(config, "logs", "a", "nope", "zip")
        self.assertEqual((code, out, err),
                         (EXIT_USAGE, "", "pmctl: unknown service: nope, "
                                          "zip\n"))
        code, out, err = self.pmctl(config, "logs", "-f", "nope")
        self.assertEqual((code, out, err),
                         (EXIT_USAGE, "", "pmctl: unknown service: nope\n"))

    def test_logs_follow_one(self):
        config = self.project(
            '  counter: { command = "./counter.sh"; autostart = false; };\n')
        self.script("counter.sh",
                    "echo ready\nread go < ./go.fifo\nseq 1 20000\n")
        fifo = self.fifo("go.fifo")
        self.ok(config, "up")
        self.ok(config, "start", "counter")
        wait_until(lambda: self.ok(config, "logs", "counter")[0] == "ready\n",
                   10, what="counter ready")
        follower = self.follow(config, "logs", "-f", "-n", "1", "counter")
        #  The tail is printed: the follower subscribed and fetched.
        follower.wait_output(lambda text: text == "ready\n", 10, "the tail")
        self.open_fifo(fifo)
        follower.wait_output(lambda text: text.endswith("\n20000\n"), 60,
                             "line 20000")
        self.assertEqual(follower.finish(10, signal.SIGINT), EXIT_OK,
                         follower.errors())
        expected = "ready\n" + "".join("%d\n" % i for i in range(1, 20001))
        text = follower.text()
        if text != expected:
            lines = text.splitlines()
            self.fail("follower printed %d lines, expected 20001; first "
                      "difference at line %d\nstderr: %s"
                      % (len(lines), next((i for i, (x, y) in enumerate(
                          zip(lines, expected.splitlines())) if x != y),
                          min(len(lines), 20001)), follower.errors()))
        self.assertEqual(follower.errors(), "")

    def test_logs_follow_recovers_what_it_missed(self):
        #  The follower is stopped while the service writes 1,000,000
        #  lines: more than the agent's queue for it (one message here:
        #  subscriber_queue 1), pmctl's own (256 messages of up to 1024
        #  lines), the sockets' buffers and the ring (10000 lines) hold.
        #  Once resumed it must print what it still can, each line once
        #  and in order, say exactly which lines are gone, and notice the
        #  drop at the very end of the burst (no later line reveals that
        #  one).
        total = 1000000
        path = self.config(
            '  counter: { command = "./counter.sh"; autostart = false; };\n',
            agent_extra="subscriber_queue = 1; ", probe=False)
        self.configs.append(path)
        config = path
        self.script("counter.sh",
                    "echo ready\nread go < ./go.fifo\nseq 1 %d\n" % total)
        fifo = self.fifo("go.fifo")
        self.ok(config, "up")
        self.ok(config, "start", "counter")
        wait_until(lambda: self.ok(config, "logs", "counter")[0] == "ready\n",
                   10, what="counter ready")
        follower = self.follow(config, "logs", "-f", "-n", "1", "counter")
        follower.wait_output(lambda text: text == "ready\n", 10, "the tail")
        follower.proc.send_signal(signal.SIGSTOP)
        try:
            self.open_fifo(fifo)
            self.ok(config, "wait", "counter", "--for", "completed",
                    timeout=60)
        finally:
            follower.proc.send_signal(signal.SIGCONT)
        follower.wait_output(lambda text: text.endswith("\n%d\n" % total),
                             60, "the last line")
        self.assertEqual(follower.finish(10, signal.SIGINT), EXIT_OK)
        lines = follower.text().splitlines()
        self.assertEqual(lines[0], "ready")
        numbers = [int(line) for line in lines[1:]]
        #  seq 1 is "ready": number n is seq n + 1.
        gone = []
        for line in follower.errors().splitlines():
            match = re.match(r"^-- counter: (\d+) lines \((\d+)\.\.(\d+)\) "
                             r"are no longer in memory \(see the log file\) "
                             r"--$", line)
            self.assertTrue(match, line)
            count, first, last = (int(g) for g in match.groups())
            self.assertEqual(count, last - first + 1)
            gone.append((first - 1, last - 1))
        self.assertTrue(gone, "no line was lost: the test proves nothing")
        #  In order, once each, and what is missing is exactly what was
        #  reported gone.
        self.assertEqual(numbers, sorted(set(numbers)))
        missing = set(range(1, total + 1)) - set(numbers)
        reported = set()
        for first, last in gone:
            reported.update(range(first, last + 1))
        self.assertEqual(missing, reported)
        self.assertEqual(numbers[-1], total)

    def test_logs_follow_all_two_followers(self):
        config = self.project(
            '  aa: { command = "./a.sh"; autostart = false; };\n'
            '  b: { command = "./b.sh"; autostart = false; };\n')
        for name, short in (("a.sh", "a"), ("b.sh", "b")):
            self.script(name, "echo ready\nread go < ./%s.fifo\n"
                              "seq 1 5000\necho err >&2\n" % short)
        fifos = [self.fifo("a.fifo"), self.fifo("b.fifo")]
        self.ok(config, "up")
        self.ok(config, "start", "aa", "b")
        wait_until(lambda: sorted(self.ok(config, "logs", "-n", "1")[0]
                                  .splitlines())
                   == ["aa | ready", "b  | ready"], 10, what="both ready")
        followers = [self.follow(config, "logs", "-f", "-n", "1")
                     for _ in range(2)]
        for follower in followers:
            follower.wait_output(lambda text: text.count("| ready\n") == 2,
                                 10, "both tails")
        for fifo in fifos:
            self.open_fifo(fifo)
        for follower in followers:
            follower.wait_output(lambda text: text.count("! err\n") == 2
                                 and text.count("| 5000\n") == 2, 60,
                                 "both services' last lines")
        #  One is stopped by Ctrl-C, the other by the agent's shutdown.
        self.assertEqual(followers[0].finish(10, signal.SIGINT), EXIT_OK)
        self.ok(config, "down")
        self.assertEqual(followers[1].finish(10), EXIT_OK,
                         followers[1].errors())
        self.assertEqual(followers[1].errors(), "pmctl: agent t has shut "
                                                "down\n")
        expected = ["ready"] + [str(i) for i in range(1, 5001)]
        for follower in followers:
            out = {"aa": [], "b": []}
            err = {"aa": [], "b": []}
            for line in follower.text().splitlines():
                name, _, rest = line.partition(" ")
                rest = rest.lstrip(" ")
                self.assertIn(rest[:2], ("| ", "! "), line)
                (out if rest[0] == "|" else err)[name].append(rest[2:])
            #  Standard output and error are two pipes: their relative
            #  order is the agent's reading order; each is in order.
            self.assertEqual(out, {"aa": expected, "b": expected})
            self.assertEqual(err, {"aa": ["err"], "b": ["err"]})

    def test_logs_follow_some(self):
        """-f with two of three services: their lines, each once and in
        order; nothing of the third."""
        config = self.project(
            '  aa: { command = "./a.sh"; autostart = false; };\n'
            '  b: { command = "./b.sh"; autostart = false; };\n'
            '  c: { command = "./c.sh"; autostart = false; };\n')
        for short in ("a", "b", "c"):
            self.script("%s.sh" % short, "echo ready\nread go < ./%s.fifo\n"
                        "seq 1 2000\n" % short)
        fifos = [self.fifo("%s.fifo" % short) for short in ("a", "b", "c")]
        self.ok(config, "up")
        self.ok(config, "start", "aa", "b", "c")
        wait_until(lambda: len(self.ok(config, "logs", "-n", "1")[0]
                               .splitlines()) == 3, 10, what="all ready")
        follower = self.follow(config, "logs", "-f", "-n", "1", "aa", "b")
        follower.wait_output(lambda text: text.count("| ready\n") == 2, 10,
                             "both tails")
        for fifo in fifos:
            self.open_fifo(fifo)
        follower.wait_output(lambda text: text.count("| 2000\n") == 2, 60,
                             "both services' last lines")
        #  c's last line is out too before we stop looking.
        wait_until(lambda: self.ok(config, "logs", "-n", "1", "c")[0]
                   == "2000\n", 10, what="c done")
        self.assertEqual(follower.finish(10, signal.SIGINT), EXIT_OK)
        expected = ["ready"] + [str(i) for i in range(1, 2001)]
        out = {"aa": [], "b": []}
        for line in follower.text().splitlines():
            name, _, rest = line.partition(" ")
            self.assertIn(name, out, line)
            out[name].append(rest.lstrip(" ")[2:])
        self.assertEqual(out, {"aa": expected, "b": expected})

    # -- events ----------------------------------------------------------------

    def test_events_follow(self):
        config = self.project(
            '  web: { command = "sleep 1000"; autostart = false;'
            ' stop_timeout = 1.0; };\n')
        self.ok(config, "up")
        out, _ = self.ok(config, "events")
        self.assertRegex(out, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} web "
                              r"inactive seq=0\n$")
        follower = self.follow(config, "events", "-f", "web")
        follower.wait_output(lambda text: "inactive seq=0\n" in text, 10,
                             "the snapshot")
        self.ok(config, "start", "web")
        self.ok(config, "stop", "web")
        follower.wait_output(lambda text: "stopping -> stopped" in text, 10,
                             "web stopped")
        self.assertEqual(follower.finish(10, signal.SIGTERM), EXIT_OK)
        lines = [line.split(" ", 3)[3] for line in
                 follower.text().splitlines()]
        self.assertEqual(len(lines), 6, follower.text())
        self.assertEqual(lines[0], "inactive seq=0")
        self.assertEqual(lines[1], "inactive -> waiting seq=1")
        self.assertRegex(lines[2], r"^waiting -> starting \(pid \d+\) seq=2$")
        self.assertRegex(lines[3], r"^starting -> running \(pid \d+\) seq=3$")
        self.assertRegex(lines[4], r"^running -> stopping \(pid \d+\) seq=4$")
        self.assertEqual(lines[5], "stopping -> stopped seq=5")
        self.assertEqual(follower.errors(), "")


if __name__ == "__main__":
    pmtest.main()
