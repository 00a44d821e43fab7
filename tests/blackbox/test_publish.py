"""test_publish.py - the events socket's subscription set, from raw XPUB
traffic

The agent's XPUB tells it which topic prefixes are subscribed, and the
agent encodes only what some prefix matches (proto/PROTOCOL.md 1.3).
Those prefixes are bytes from peers.  Checked here with an XSUB socket
that sends subscription frames by hand (1 + prefix, 0 + prefix), and the
agent's debug log (pmd -v), which gives the number of prefixes held at
every change:

- a prefix holding a NUL byte is held once and removed by its own
  unsubscription: 3,000 subscribe/unsubscribe cycles leave the set as it
  was, and a normal subscriber still gets every line;
- past 10,000 prefixes a new one is refused, with one warning, and the
  agent publishes everything from then on: a subscriber whose prefixes
  were refused misses nothing;
- frames that are not subscriptions, and prefixes longer than any topic,
  change nothing and do not hurt the agent.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zmq  # noqa: E402

import pmtest  # noqa: E402
from pmtest import read_bytes, wait_until  # noqa: E402

#  prefixes.h: PM_PREFIXES_MAX.
PREFIXES_MAX = 10000

#  publish.c's debug line for each change of the set.
CHANGE = re.compile(rb"events: (subscribed to|unsubscribed from) '([^']*)' "
                    rb"\((\d+) prefixes held\)")
FULL = re.compile(rb"events: a subscription to '[^']*' is past the %d "
                  rb"prefixes" % PREFIXES_MAX)

LINES = 200
TALKER = '  talker: { command = "./talker.sh"; autostart = false; };\n'


class SubscriptionSetTest(pmtest.AgentTest):

    def start(self):
        self.script("talker.sh", 'i=1\nwhile [ $i -le %d ]; do '
                    'echo "line $i"; i=$((i+1)); done\n' % LINES)
        return self.start_agent(TALKER, args=("-v",))

    def xsub(self, agent):
        """A raw XSUB on the agent's events socket.  No send limit: past
        one, libzmq would drop subscription frames on our side."""
        sock = self.track(self.context.socket(zmq.XSUB))
        sock.linger = 0
        sock.sndhwm = 0
        sock.connect(agent.events)
        return sock

    def changes(self, agent):
        """[(verb, prefix as logged, count)] from the agent's debug log."""
        return [(m.group(1).decode(), m.group(2), int(m.group(3)))
                for m in CHANGE.finditer(read_bytes(agent.stderr_path))]

    def logged(self, agent, pattern):
        """How many times pattern (bytes or a compiled regex) is in the
        agent's log."""
        if isinstance(pattern, bytes):
            pattern = re.compile(re.escape(pattern))
        return len(pattern.findall(read_bytes(agent.stderr_path)))

    def wait_change(self, agent, verb, prefix, timeout=60.0):
        """The count logged with the last change (verb, prefix), waiting
        for one to appear."""
        def find():
            found = [c for c in self.changes(agent)
                     if c[0] == verb and c[1] == prefix]
            return found[-1] if found else None
        return wait_until(find, timeout, what="the agent logging %s %r\n%s"
                          % (verb, prefix, agent.logs_tail()))[2]

    def assert_every_line(self, agent, sub):
        """Starts talker; sub gets all its lines, in order."""
        reply = agent.request("start", {"names": ["talker"], "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        sub.wait_for(lambda e: e.get("new") == "completed", 30,
                     what="talker completed")
        lines = [e for e in sub.events if e["kind"] == "log"]
        self.assertEqual([e["seq"] for e in lines], list(range(1, LINES + 1)))
        self.assertEqual([e["line"] for e in lines],
                         ["line %d" % i for i in range(1, LINES + 1)])

    def finish(self, agent):
        """Shuts agent down: it exits 0, and (in a sanitizer build) with
        nothing to report."""
        self.assertTrue(agent.request("shutdown", timeout=30)["ok"])
        self.assertEqual(agent.wait_exit(30), 0, agent.logs_tail())
        self.assertEqual(self.logged(agent, re.compile(
            rb"Sanitizer|runtime error")), 0, agent.logs_tail())

    def test_nul_prefix_cycles_leave_the_set_unchanged(self):
        agent = self.start()
        xsub = self.xsub(agent)
        xsub.send(b"\x01mark/before/")
        before = self.wait_change(agent, "subscribed to", b"mark/before/")
        for _ in range(3000):
            xsub.send(b"\x01log/\x00x")
            xsub.send(b"\x00log/\x00x")
        xsub.send(b"\x01mark/after/")
        after = self.wait_change(agent, "subscribed to", b"mark/after/")
        self.assertEqual(after, before + 1,
                         "prefixes held before the cycles (with mark/before/)"
                         " and after them (with mark/after/ too)")
        cycles = [c for c in self.changes(agent) if c[1] == b"log/\\x00x"]
        self.assertEqual(len(cycles), 6000)
        self.assertEqual({c[2] for c in cycles}, {before, before + 1})
        sub = agent.subscribe("log/t/talker/", "state/t/talker/")
        self.assert_every_line(agent, sub)
        self.finish(agent)

    def test_past_the_cap_everything_is_published(self):
        agent = self.start()
        xsub = self.xsub(agent)
        for i in range(PREFIXES_MAX):
            xsub.send(b"\x01junk/%d/" % i)
        held = self.wait_change(agent, "subscribed to",
                                b"junk/%d/" % (PREFIXES_MAX - 1))
        self.assertEqual(held, PREFIXES_MAX)
        self.assertEqual(self.logged(agent, FULL), 0, agent.logs_tail())
        for i in range(5):
            xsub.send(b"\x01more/%d/" % i)
        #  Room for one again, taken again: every frame before is read.
        xsub.send(b"\x00junk/0/")
        xsub.send(b"\x01junk/0/")
        self.wait_change(agent, "unsubscribed from", b"junk/0/")
        self.assertEqual(self.wait_change(agent, "subscribed to", b"junk/0/"),
                         PREFIXES_MAX)
        self.assertEqual(self.logged(agent, FULL), 1, agent.logs_tail())
        self.assertEqual(self.logged(agent, b"subscribed to 'more/"), 0)
        #  The set is full: this subscriber's prefixes (and the probe's,
        #  which sync needs) are refused, and it still gets everything.
        sub = agent.subscribe("log/t/talker/", "state/t/talker/")
        self.assert_every_line(agent, sub)
        self.finish(agent)
        self.assertEqual(self.logged(agent, b"subscribed to 'log/t/talker/'"),
                         0)
        self.assertEqual(self.logged(agent, FULL), 1, agent.logs_tail())

    def test_frames_that_are_not_subscriptions(self):
        agent = self.start()
        xsub = self.xsub(agent)
        xsub.send(b"\x01mark/before/")
        before = self.wait_change(agent, "subscribed to", b"mark/before/")
        xsub.send(b"")
        xsub.send(b"\x02not a subscription")
        xsub.send_multipart([b"\x05two", b"frames"])
        xsub.send(b"\x01" + b"a" * 5000)
        xsub.send(b"\x00" + b"a" * 5000)
        xsub.send(b"\x00never/subscribed/")
        xsub.send(b"\x01mark/after/")
        self.assertEqual(self.wait_change(agent, "subscribed to",
                                          b"mark/after/"), before + 1)
        self.assertEqual(self.logged(agent, b"subscribed to 'aaaa"), 0)
        self.assertTrue(agent.alive())
        sub = agent.subscribe("log/t/talker/", "state/t/talker/")
        self.assert_every_line(agent, sub)
        self.finish(agent)


if __name__ == "__main__":
    pmtest.main()
