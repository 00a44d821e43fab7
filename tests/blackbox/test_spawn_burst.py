"""test_spawn_burst.py - a burst of 100 starts where half cannot exec

Drives the real pmd.  100 services start at once: 50 whose program does
not exist and 50 `sleep`s, interleaved.  Every bad one ends `failed` with
the exec error and its errno, every good one runs (its pid a live
process running sleep), and the agent answers all along.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402


class SpawnBurstTest(pmtest.AgentTest):

    def test_half_of_a_burst_fails_to_exec(self):
        services = []
        for i in range(100):
            if i % 2:
                services.append('  bad%d: { argv = ["./no-such-program-%d"]; '
                                'restart = "no"; };\n' % (i, i))
            else:
                services.append('  good%d: { argv = ["sleep", "1000"]; '
                                'stop_timeout = 1.0; };\n' % i)
        agent = self.start_agent(config=self.config("".join(services),
                                                    probe=False))

        def settled():
            states = agent.status()
            return all(r["state"] in ("running", "failed")
                       for r in states.values()) and states
        records = wait_until(settled, 30, what="every start to settle")
        self.assertEqual(len(records), 100)
        for name, rec in records.items():
            if name.startswith("bad"):
                i = int(name[3:])
                self.assertEqual(rec["state"], "failed", rec)
                self.assertEqual(rec["error"],
                                 "exec ./no-such-program-%d: No such file "
                                 "or directory" % i, rec)
                self.assertIsNone(rec["pid"], rec)
            else:
                self.assertEqual(rec["state"], "running", rec)
                with open("/proc/%d/cmdline" % rec["pid"], "rb") as f:
                    self.assertEqual(f.read().split(b"\0")[0], b"sleep")
        self.assertTrue(agent.request("hello")["ok"])


if __name__ == "__main__":
    pmtest.main()
