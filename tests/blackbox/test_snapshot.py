"""test_snapshot.py - the status snapshot file (PROTOCOL.md section 12)

Drives the real pmd.  The agent keeps <runtime dir>/status.snapshot: a
status reply for every service plus the agent's name, pid and a
generation, rewritten (temp file + rename) once per loop pass in which a
record changed, before any reply or event of that pass goes out:

- it decodes, and says what `status` says (uptime aside);
- a `start` or `stop` that has returned is always in it (100 rounds);
- a reader racing with rewrites never sees a torn file;
- it goes when the agent shuts down.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402

SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


class SnapshotTest(pmtest.AgentTest):

    def snapshot(self, agent):
        with open(os.path.join(agent.rundir, "status.snapshot"), "rb") as f:
            return pmtest.unpack(f.read())

    def strip(self, records):
        return {r["name"]: {k: v for k, v in r.items() if k != "uptime"}
                for r in records}

    def test_same_as_status(self):
        agent = self.start_agent("".join(
            "  s%d: { %s };\n" % (i, SLEEP) for i in range(5)))
        for i in range(5):
            agent.wait_state("s%d" % i, "running")
        snap = self.snapshot(agent)
        reply = agent.request("status")
        self.assertEqual(self.strip(snap["services"]),
                         self.strip(reply["services"]))
        self.assertEqual(snap["agent"], "t")
        self.assertEqual(snap["pid"], agent.pid)
        self.assertTrue(snap["ok"])
        self.assertGreaterEqual(snap["generation"], 1)
        self.assertEqual([r["name"] for r in snap["services"]],
                         [r["name"] for r in reply["services"]])

    def test_reply_is_in_the_snapshot(self):
        agent = self.start_agent("  w: { %s autostart = false; };\n" % SLEEP)
        client = agent.default_client()
        last = 0
        for _ in range(100):
            reply = client.request("start", {"names": ["w"]})
            self.assertTrue(reply["ok"], reply)
            snap = self.snapshot(agent)
            rec = {r["name"]: r for r in snap["services"]}["w"]
            self.assertEqual(rec["state"], "running")
            self.assertGreater(snap["generation"], last)
            last = snap["generation"]
            reply = client.request("stop", {"names": ["w"]})
            self.assertTrue(reply["ok"], reply)
            rec = {r["name"]: r for r in self.snapshot(agent)["services"]}["w"]
            self.assertEqual(rec["state"], "stopped")
            self.assertIsNone(rec["pid"])

    def test_never_torn(self):
        agent = self.start_agent("".join(
            "  s%d: { %s autostart = false; };\n" % (i, SLEEP)
            for i in range(20)))
        path = os.path.join(agent.rundir, "status.snapshot")
        wait_until(lambda: os.path.exists(path), 10.0, what="the snapshot")
        stop = threading.Event()
        reads = {"n": 0, "bad": []}

        def reader():
            while not stop.is_set():
                with open(path, "rb") as f:
                    data = f.read()
                try:
                    snap = pmtest.unpack(data)
                    assert len(snap["services"]) == 21
                except Exception as e:  # noqa: BLE001
                    reads["bad"].append(repr(e))
                reads["n"] += 1
        t = threading.Thread(target=reader)
        t.start()
        try:
            names = ["s%d" % i for i in range(20)]
            for _ in range(15):
                self.assertTrue(agent.request("start", {"names": names})["ok"])
                self.assertTrue(agent.request("stop", {"names": names})["ok"])
        finally:
            stop.set()
            t.join(10)
        self.assertEqual(reads["bad"], [])
        self.assertGreater(reads["n"], 10)

    def test_removed_at_shutdown(self):
        agent = self.start_agent("  a: { %s };\n" % SLEEP)
        agent.wait_state("a", "running")
        path = os.path.join(agent.rundir, "status.snapshot")
        self.assertTrue(os.path.exists(path))
        self.assertTrue(agent.request("shutdown", timeout=15.0)["ok"])
        self.assertEqual(agent.wait_exit(15.0), 0)
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    pmtest.main()
