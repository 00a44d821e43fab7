"""test_status_snapshot.py - `pmctl status` from the status snapshot

Drives the real pmd and pmctl.  While the agent's lock is held, `pmctl
status` reads <runtime dir>/status.snapshot instead of asking the agent
(PROTOCOL.md 12); `--live` asks.  Checked here:

- the output is the same either way (human and --json; names, order,
  duplicates, unknown names, leases, every state shown);
- it really is the file: a stopped (SIGSTOP) agent still gets a status;
- a `pmctl start` or `stop` that has returned is in the next `pmctl
  status`, round after round;
- a file the agent holding the lock did not write (left by an agent
  killed with SIGKILL) is never used;
- when a generation cannot be written the file goes, and status asks the
  agent, until writing works again;
- concurrent rewrites never give a reader a torn file.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402

SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


def without_volatile(text):
    """JSON output minus what differs between two answers of one state:
    the request id and the uptimes (each as of its own moment)."""
    text = re.sub(r'"id":[0-9]+', '"id":0', text)
    return re.sub(r'"uptime":[0-9.e+-]+', '"uptime":0', text)


class StatusSnapshotTest(pmtest.AgentTest):

    def start(self, services):
        return self.start_agent(config=self.config(services, probe=False))

    def snapshot_path(self, agent):
        return os.path.join(agent.rundir, "status.snapshot")

    def status(self, *args):
        return self.run_pmctl("status", *args, timeout=15.0)

    def assert_same(self, *args, json_out=False):
        """status ARGS from the file equals status --live ARGS.  The human
        table shows whole seconds of uptime, so a second boundary may fall
        between the two: the live answer must equal the file's answer read
        just before or just after it."""
        norm = without_volatile if json_out else (lambda t: t)
        for _ in range(20):
            before = self.status(*args)
            live = self.status("--live", *args)
            after = self.status(*args)
            if norm(before[1]) == norm(after[1]) and before[0] == after[0]:
                self.assertEqual((live[0], norm(live[1]), live[2]),
                                 (before[0], norm(before[1]), before[2]),
                                 "status %s: file and agent differ" % (args,))
                return before
        self.fail("status %s never read the same twice" % (args,))

    def test_same_output_from_file_and_agent(self):
        agent = self.start(
            "  db: { %s };\n"
            "  api: { %s depends_on = [\"db\"]; };\n"
            "  bad: { command = \"sh -c 'exit 3'\"; restart = \"no\"; };\n"
            "  crashy: { command = \"false\"; restart = \"always\";"
            " backoff_initial = 30.0; };\n"
            "  idle: { %s autostart = false; };\n" % (SLEEP, SLEEP, SLEEP))
        agent.wait_state("api", "running")
        agent.wait_state("bad", "failed")
        agent.wait_state("crashy", "backoff")
        self.assertTrue(os.path.exists(self.snapshot_path(agent)))
        lessee = subprocess.Popen(["sleep", "1000"])
        self.addCleanup(pmtest.kill_and_reap, [lessee.pid])
        code, out, err = self.run_pmctl("lease", str(lessee.pid))
        self.assertEqual(code, 0, err)
        for json_out in (False, True):
            extra = ("--json",) if json_out else ()
            code, out, _ = self.assert_same(*extra, json_out=json_out)
            self.assertEqual(code, 0)
            self.assert_same(*extra, "api", "db", "api", json_out=json_out)
            code, _, err = self.assert_same(*extra, "api", "nope", "nope2",
                                            json_out=json_out)
            self.assertEqual(code, 2)
        code, out, _ = self.status("--json")
        reply = json.loads(out)
        self.assertEqual(reply["leases"], [lessee.pid])
        self.assertEqual([r["name"] for r in reply["services"]],
                         ["db", "api", "bad", "crashy", "idle"])
        states = {r["name"]: r["state"] for r in reply["services"]}
        self.assertEqual(states, {"db": "running", "api": "running",
                                  "bad": "failed", "crashy": "backoff",
                                  "idle": "inactive"})
        code, out, _ = self.status()
        self.assertRegex(out, r"(?m)^bad +failed +- +- +0 +3 +exited with "
                              r"code 3$")
        # Down before the lessee goes (its end would shut the agent down
        # under the harness's own shutdown).
        code, _, err = self.run_pmctl("shutdown")
        self.assertEqual(code, 0, err)

    def test_file_answers_while_the_agent_is_stopped(self):
        agent = self.start("  a: { %s };\n" % SLEEP)
        pid = agent.wait_state("a", "running")["pid"]
        os.kill(agent.pid, signal.SIGSTOP)
        try:
            code, out, err = self.status()
        finally:
            os.kill(agent.pid, signal.SIGCONT)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^a +running +%d " % pid)

    def test_returned_command_is_in_the_next_status(self):
        agent = self.start("  w: { %s autostart = false; };\n" % SLEEP)
        for _ in range(40):
            code, _, err = self.run_pmctl("start", "w")
            self.assertEqual(code, 0, err)
            code, out, err = self.status("--json", "w")
            rec = json.loads(out)["services"][0]
            self.assertEqual((rec["state"], rec["pid"] is None),
                             ("running", False))
            code, _, err = self.run_pmctl("stop", "w")
            self.assertEqual(code, 0, err)
            code, out, err = self.status("--json", "w")
            rec = json.loads(out)["services"][0]
            self.assertEqual((rec["state"], rec["pid"]), ("stopped", None))

    def test_file_of_another_agent_is_not_used(self):
        config = self.config("  a: { %s };\n" % SLEEP, probe=False)
        first = self.start_agent(config=config)
        old_pid = first.wait_state("a", "running")["pid"]
        path = self.snapshot_path(first)
        saved = self.path("old.snapshot")
        shutil.copyfile(path, saved)
        os.kill(first.pid, signal.SIGKILL)
        first.wait_exit(10.0)
        pmtest.kill_and_reap([old_pid])
        # No agent: the file left behind is not an answer.
        code, out, err = self.status()
        self.assertEqual(code, 3, (out, err))
        second = self.start_agent(config=config)
        new_pid = second.wait_state("a", "running")["pid"]
        # The killed agent's file back in place, as if the new agent had
        # not written its first generation yet.
        shutil.copyfile(saved, path + ".old")
        os.rename(path + ".old", path)
        code, out, err = self.status()
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^a +running +%d " % new_pid)
        self.assertNotIn(str(old_pid), out)

    def test_unwritable_generation_removes_the_file(self):
        agent = self.start("  a: { %s };\n  b: { %s };\n"
                                 % (SLEEP, SLEEP))
        agent.wait_state("b", "running")
        path = self.snapshot_path(agent)
        wait_until(lambda: os.path.exists(path), 10.0, what="the snapshot")
        # The temp file's name taken by a directory: the next write fails.
        os.mkdir(path + ".tmp")
        try:
            code, _, err = self.run_pmctl("stop", "a")
            self.assertEqual(code, 0, err)
            self.assertFalse(os.path.exists(path))
            code, out, err = self.status()
            self.assertEqual(code, 0, err)
            self.assertRegex(out, r"(?m)^a +stopped ")
        finally:
            os.rmdir(path + ".tmp")
        code, _, err = self.run_pmctl("start", "a")
        self.assertEqual(code, 0, err)
        self.assertTrue(os.path.exists(path))
        self.assertRegex(self.status()[1], r"(?m)^a +running ")
        self.assertIn("status snapshot: cannot write", agent.logs_tail(200))

    def test_no_torn_read_under_rewrites(self):
        names = ["s%d" % i for i in range(20)]
        agent = self.start("".join(
            "  %s: { %s autostart = false; };\n" % (n, SLEEP) for n in names))
        wait_until(lambda: os.path.exists(self.snapshot_path(agent)), 10.0,
                   what="the snapshot")
        stop = threading.Event()
        seen = {"n": 0, "bad": []}

        def reader():
            while not stop.is_set():
                code, out, err = self.status("--json")
                try:
                    reply = json.loads(out)
                    assert code == 0 and reply["ok"], (code, err)
                    assert [r["name"] for r in reply["services"]] == names
                except Exception as e:  # noqa: BLE001
                    seen["bad"].append(repr(e))
                seen["n"] += 1
        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for _ in range(10):
                self.assertTrue(agent.request("start", {"names": names})["ok"])
                self.assertTrue(agent.request("stop", {"names": names})["ok"])
        finally:
            stop.set()
            thread.join(30)
        self.assertEqual(seen["bad"], [])
        self.assertGreater(seen["n"], 5)


if __name__ == "__main__":
    pmtest.main()
