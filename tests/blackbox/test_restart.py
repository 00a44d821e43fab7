"""test_restart.py - the restart policy: at once after a healthy run

Drives the real pmd over the raw protocol.  README "Restart policy": a run
that lasted min_uptime or more was healthy, and when it fails it is
started again at once (no backoff); a run that dies sooner is part of a
crash loop and backs off, backoff_initial doubling to backoff_max.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402


class RestartTest(pmtest.AgentTest):

    def test_healthy_run_restarts_at_once(self):
        agent = self.start_agent(
            '  w: { command = "sleep 1000"; restart = "on-failure"; '
            'autostart = false; min_uptime = 0.3; backoff_initial = 5.0; '
            'backoff_max = 10.0; stop_timeout = 1.0; };\n')
        sub = agent.subscribe("state/t/w/")
        self.assertTrue(agent.request("start", {"names": ["w"]})["ok"])
        for round in range(3):
            record = agent.wait_state("w", "running")
            #  Healthy: it has run for min_uptime.
            wait_until(lambda: agent.record("w")["uptime"] >= 0.35, 10.0,
                       what="w up for min_uptime")
            sub.wait_for(lambda e: e["new"] == "running"
                         and e["record"]["pid"] == record["pid"],
                         what="w's running event")
            count = len(sub.events)
            os.kill(record["pid"], signal.SIGKILL)
            #  Far sooner than backoff_initial (5 s): no backoff at all.
            again = sub.wait_for(lambda e: e["new"] == "running", start=count,
                                 timeout=4.0, what="w running again")
            self.assertNotEqual(again["record"]["pid"], record["pid"])
            end = sub.events.index(again) + 1
            seen = [(e["old"], e["new"]) for e in sub.events[count:end]]
            self.assertEqual(seen, [("running", "failed"),
                                    ("failed", "waiting"),
                                    ("waiting", "starting"),
                                    ("starting", "running")], sub.summary())
            failed = sub.events[count]
            self.assertEqual(failed["record"]["error"], "killed by SIGKILL")
            self.assertEqual(again["record"]["restarts"], round + 1)

    def test_quick_crash_backs_off(self):
        self.script("crash.sh", "echo up\nexit 3\n")
        agent = self.start_agent(
            '  c: { command = "./crash.sh"; restart = "on-failure"; '
            'autostart = false; min_uptime = 5.0; backoff_initial = 0.2; '
            'backoff_max = 0.4; max_restarts = 3; restart_window = 60.0; };\n')
        sub = agent.subscribe("state/t/c/")
        agent.request("start", {"names": ["c"], "wait": "none"})
        delays = []
        for _ in range(3):
            e = sub.wait_for(lambda e: e["new"] == "backoff"
                             and e not in delays, what="c in backoff")
            delays.append(e)
        gaps = [round(e["record"]["next_start"] - e["ts"], 1) for e in delays]
        self.assertEqual(gaps, [0.2, 0.4, 0.4], sub.summary())
        #  The fourth quick failure gives up.
        record = agent.wait_state("c", "failed", timeout=10.0)
        wait_until(lambda: "gave up" in (agent.record("c")["error"] or ""),
                   10.0, what="the policy to give up")
        self.assertIn("gave up after 3 restarts", agent.record("c")["error"])
        self.assertIsNone(record["next_start"])


if __name__ == "__main__":
    pmtest.main()
