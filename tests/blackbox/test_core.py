"""test_core.py - regressions of the supervisor core (issue 9)

Drives the real pmd ($PMD) over the raw protocol.  Each test reproduces a
bug a review of the supervisor found, and checks the documented behaviour
instead:

- a readiness verdict reached from inside a reload (the reload cuts an
  unfinished line longer than the new log_line_max, and that piece passes
  a `log` probe) must not settle the supervisor halfway through the swap:
  the agent survives (under ASan it used to abort), the reload is
  answered, and the service becomes running;
- a reload that fails (an added service's log file cannot be opened) must
  not consume the remembered sequence numbers of a removed service: when
  the name comes back later its state and log streams go on at +1.
"""

import fcntl
import os
import struct
import sys
import termios

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402

SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


def svc(name, body):
    return "  %s: { %s };\n" % (name, body)


def unread_bytes(pid, fd):
    """Bytes written to the pipe on fd of process pid that nobody has read
    yet (FIONREAD on the same pipe, opened through /proc)."""
    f = os.open("/proc/%d/fd/%d" % (pid, fd), os.O_RDONLY | os.O_NONBLOCK)
    try:
        buf = fcntl.ioctl(f, termios.FIONREAD, struct.pack("i", 0))
        return struct.unpack("i", buf)[0]
    finally:
        os.close(f)


class CoreTest(pmtest.AgentTest):

    def test_verdict_inside_reload_does_not_reenter(self):
        #  w prints READY and 300 more bytes without a newline: an
        #  unfinished line of 305 bytes, under log_line_max 1024.
        self.script("w.sh", "printf 'READY%0300d' 0\nexec sleep 1000\n")
        waiter = ('command = "./w.sh"; stop_timeout = 1.0; '
                  'log_line_max = %d; ready = { log = "READY"; timeout = 60.0; };')
        others = "".join(svc("s%d" % i, SLEEP) for i in range(8))
        agent = self.start_agent(others + svc("w", waiter % 1024))
        record = agent.wait_state("w", "starting")
        #  The agent has read the 305 bytes (they sit in its line buffer).
        wait_until(lambda: unread_bytes(record["pid"], 1) == 0, 10.0,
                   what="the agent to read w's output")
        self.assertEqual(agent.record("w")["state"], "starting")
        #  Only w is left, and its lines are now at most 100 bytes: the
        #  reload itself ends the held line, and its piece says READY.
        self.config(svc("w", waiter % 100))
        reply = agent.request("reload", timeout=15.0)
        self.assertTrue(agent.alive(), "pmd died in the reload\n%s"
                        % agent.logs_tail())
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(sorted(reply["reload"]["removed"]),
                         ["s%d" % i for i in range(8)])
        self.assertEqual(agent.wait_state("w", "running")["pid"],
                         record["pid"])
        names = set(agent.status())
        wait_until(lambda: set(agent.status()) == {"w", pmtest.PROBE}, 10.0,
                   what="the removed services to be gone, have %s" % names)

    def test_failed_reload_keeps_seq_of_removed_service(self):
        self.script("a.sh", "echo hello from a\nexec sleep 1000\n")
        a = svc("a", 'command = "./a.sh"; stop_timeout = 1.0;')
        agent = self.start_agent(a)
        agent.wait_state("a", "running")
        wait_until(lambda: agent.request("logs", {"names": ["a"]})
                   ["logs"][0]["last"] == 1, 10.0, what="a's line")
        sub = agent.subscribe("state/t/a/", "log/t/a/")
        #  Remove a: it stops and its entry goes.
        self.config("")
        self.assertTrue(agent.request("reload").get("ok"))
        wait_until(lambda: "a" not in agent.status(), 10.0,
                   what="a to be removed")
        sub.wait_for(lambda e: e.get("new") == "stopped", what="a stopped")
        last_state = max(e["seq"] for e in sub.state_events("a"))
        #  Add it back together with a service whose log file cannot be
        #  opened: refused, nothing changes.
        self.write_file("plain", "not a directory\n")
        self.config(a + svc("n", SLEEP + ' log_file = "%s";'
                            % self.path("plain", "n.log")))
        reply = agent.request("reload")
        self.assertEqual(reply.get("error", {}).get("code"), "bad-config",
                         reply)
        #  Add it back for real: both streams go on where they stopped.
        count = len(sub.events)
        self.config(a)
        self.assertTrue(agent.request("reload", timeout=20.0).get("ok"))
        first = sub.wait_for(lambda e: e.get("kind") == "state", start=count,
                             what="a's first state event")
        self.assertEqual(first["seq"], last_state + 1, sub.summary())
        line = sub.wait_for(lambda e: e.get("kind") == "log", start=count,
                            what="a's new line")
        self.assertEqual(line["seq"], 2, sub.summary())


if __name__ == "__main__":
    pmtest.main()
