"""test_follow_logs.py - `pmd --follow-logs` on a stdout nobody reads

pmd's stdout is a pipe the test does not read while a service prints
20 MB of numbered lines.  The pipe fills at once; then:

- the agent stays responsive: `pmctl status` is answered within a bound
  while the pipe is full;
- the service is not held up: it runs to `completed` (its lines still go
  to its log file, whole);
- once the test reads the pipe, every line comes out whole and in order,
  or is counted by a marker "pmd: N lines not shown" standing exactly
  where lines are missing.
"""

import array
import fcntl
import os
import re
import select
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import Deadline  # noqa: E402

PYTHON = "/usr/bin/python3"
LINES = 200000                # of 100 bytes: 20 MB
F_GETPIPE_SZ = 1032

ECHOED = re.compile(rb"^big +\| (\d{7}) y{92}$")
MARKER = re.compile(rb"^pmd: (\d+) lines? not shown$")


class FollowLogsTest(pmtest.AgentTest):

    def spawn_following(self, config, stdout_fd):
        """pmd --follow-logs with stdout_fd as its stdout, as an Agent the
        harness stops and reaps."""
        err = self.path("pmd.err")
        with open(err, "wb") as fe:
            proc = subprocess.Popen([pmtest.PMD, "-c", config,
                                     "--follow-logs"],
                                    stdin=subprocess.DEVNULL, stdout=stdout_fd,
                                    stderr=fe, env=self.env, cwd=self.tmp)
        agent = pmtest.Agent(self, config, proc, self.path("pmd.out"), err)
        self.agents.append(agent)
        self.wait_hello(agent)
        return agent

    def test_stalled_stdout(self):
        self.script("big.py", """\
import sys
w = sys.stdout.write
for i in range(%d):
    w("%%07d %%s\\n" %% (i, "y" * 92))
""" % LINES, shell=PYTHON)
        config = self.config(
            '  big: { command = "./big.py"; autostart = false; '
            'log_max_size = 0; };\n')
        reader, writer = os.pipe()
        self.addCleanup(os.close, reader)
        agent = self.spawn_following(config, writer)
        os.close(writer)

        reply = agent.request("start", {"names": ["big"], "wait": "none"})
        self.assertTrue(reply.get("ok"), reply)
        #  Each poll of the state is a request the agent must answer.
        agent.wait_state("big", "completed", timeout=60)

        #  Nobody read: the pipe is full (its last pages may be partly
        #  used: writes do not always merge into them).
        waiting = array.array("i", [0])
        fcntl.ioctl(reader, termios.FIONREAD, waiting)
        capacity = fcntl.fcntl(reader, F_GETPIPE_SZ)
        self.assertGreater(waiting[0], capacity // 2)
        started = time.monotonic()
        code, out, err = self.run_pmctl("status", "big", timeout=10)
        took = time.monotonic() - started
        self.assertEqual(code, 0, err)
        self.assertIn("completed", out)
        self.assertLess(took, 5.0, "status took %.1fs with stdout full"
                        % took)
        with open(self.path("logs", "big.log"), "rb") as f:
            self.assertEqual(sum(1 for _ in f), LINES)

        #  Now read: lines and markers until every line is accounted for.
        shown = dropped = markers = 0
        expected = 0
        pending = b""
        deadline = Deadline(60)
        while shown + dropped < LINES:
            if deadline.passed():
                self.fail("after 60s: %d lines shown, %d counted as dropped "
                          "of %d" % (shown, dropped, LINES))
            ready, _, _ = select.select([reader], [], [],
                                        min(0.5, deadline.left()))
            if not ready:
                continue
            data = os.read(reader, 1 << 16)
            self.assertNotEqual(data, b"", "pmd's stdout closed early")
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                match = ECHOED.match(line)
                if match:
                    self.assertEqual(int(match.group(1)), expected,
                                     "a line out of order or lost "
                                     "without a marker")
                    expected += 1
                    shown += 1
                    continue
                match = MARKER.match(line)
                self.assertIsNotNone(match, "neither a line nor a marker: %r"
                                     % line[:200])
                dropped += int(match.group(1))
                expected += int(match.group(1))
                markers += 1
        self.assertGreaterEqual(markers, 1)
        self.assertGreater(dropped, 0)
        sys.stderr.write("\n%d lines shown, %d dropped, %d markers\n"
                         % (shown, dropped, markers))
        #  A clean exit (sanitizer builds exit non-zero on a report).
        reply = agent.request("shutdown", timeout=30)
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(agent.wait_exit(30), 0, agent.logs_tail())

    def run_three_lines(self, stdout_fd):
        """Runs a service printing three lines (one of them long) under
        pmd --follow-logs with stdout_fd as stdout, to completion."""
        self.script("three.py", """\
import sys
sys.stdout.write("one\\n" + "z" * 3000 + "\\nthree\\n")
""", shell=PYTHON)
        config = self.config(
            '  three: { command = "./three.py"; autostart = false; };\n')
        agent = self.spawn_following(config, stdout_fd)
        reply = agent.request("start", {"names": ["three"], "wait": "none"})
        self.assertTrue(reply.get("ok"), reply)
        agent.wait_state("three", "completed", timeout=30)
        return agent

    def test_file_stdout(self):
        """A file as stdout: every line, "name | line", name padded to
        the longest service name."""
        path = self.path("echo.out")
        with open(path, "wb") as out:
            agent = self.run_three_lines(out.fileno())
        want = b"three | one\nthree | " + b"z" * 3000 + b"\nthree | three\n"
        pmtest.wait_until(lambda: pmtest.read_bytes(path) == want, 10,
                          what="the three lines in %s" % path)
        reply = agent.request("shutdown", timeout=30)
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(agent.wait_exit(30), 0, agent.logs_tail())

    def test_terminal_stdout(self):
        """A terminal as stdout: the lines arrive, and the terminal's
        file description (shared with whoever else uses the terminal)
        stays blocking: the agent made its own."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        try:
            agent = self.run_three_lines(slave)
            self.assertEqual(fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK,
                             0)
        finally:
            os.close(slave)
        got = b""
        deadline = Deadline(10)
        while b"three | three" not in got and not deadline.passed():
            ready, _, _ = select.select([master], [], [],
                                        min(0.5, deadline.left()))
            if ready:
                got += os.read(master, 1 << 16)
        #  The terminal turns "\n" into "\r\n".
        self.assertEqual(got.replace(b"\r\n", b"\n"),
                         b"three | one\nthree | " + b"z" * 3000
                         + b"\nthree | three\n")
        reply = agent.request("shutdown", timeout=30)
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(agent.wait_exit(30), 0, agent.logs_tail())


if __name__ == "__main__":
    pmtest.main()
