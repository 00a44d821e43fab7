"""test_semantics.py - the real pmctl against the real pmd

Goes through DESIGN.md "Semantics every command keeps" and CHECKLIST.md's
Starting, Stopping and Restarting questions with `pmctl` ($PMCTL), checking
its exit codes (0 ok, notes included; 1 a target failed; 2 usage or
unknown service; 3 agent not reachable; 4 timeout), what it prints, and
the states and events that follow, as seen through the protocol.

The dependency graph used by most tests:

    db <-(started)- migrate (one-shot)
    db <-(ready)--- api -(completed)-> migrate
    api <-(started)- web -(started)-> cache

and `gate`, a one-shot that completes only when the test creates the file
gate.open, with `slow` depending on its completion: a start of `slow` is
parked for exactly as long as the test wants, without timing guesses.
"""

import concurrent.futures
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import (EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT,  # noqa: E402
                    EXIT_UNREACHABLE, EXIT_USAGE, wait_until)

SERVICES = """\
  db:      { command = "sleep 1000"; autostart = false; stop_timeout = 1.0; };
  cache:   { command = "sleep 1000"; autostart = false; stop_timeout = 1.0; };
  migrate: { command = "./migrate.sh"; autostart = false;
             depends_on = { db = "started"; }; };
  api:     { command = "sleep 1000"; autostart = false; stop_timeout = 1.0;
             depends_on = { db = "ready"; migrate = "completed"; }; };
  web:     { command = "./web.sh"; autostart = false; stop_timeout = 1.0;
             depends_on = { api = "started"; cache = "started"; }; };
  broken:  { command = "./does-not-exist"; autostart = false; };
  gate:    { command = "./gate.sh"; autostart = false; stop_timeout = 1.0; };
  slow:    { command = "sleep 1000"; autostart = false; stop_timeout = 1.0;
             depends_on = { gate = "completed"; }; };
  stubborn: { command = "./stubborn.sh"; autostart = false;
              stop_timeout = 1.0; };
  probed:  { command = "./probed.sh"; autostart = false; stop_timeout = 1.0;
             ready = { log = "^listening$"; deadline = 60.0; }; };
  after_probed: { command = "sleep 1000"; autostart = false;
                  stop_timeout = 1.0; depends_on = { probed = "ready"; }; };
  never_ready: { command = "sleep 1000"; autostart = false;
                 stop_timeout = 1.0;
                 ready = { exec = "false"; interval = 0.05; deadline = 0.5; }; };
"""
CHAIN = ("db", "cache", "migrate", "api", "web")
RECORD_FIELDS = {"name", "state", "pid", "started_at", "state_since",
                 "uptime", "restarts", "exit_code", "signal", "ready",
                 "error", "depends_on", "command", "seq", "next_start"}


def results_of(out):
    """{name: (state, note or None)} from pmctl's result lines
    ("NAME  STATE  [note]")."""
    found = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 2:
            found[words[0]] = (words[1], words[2] if len(words) > 2 else None)
    return found


class SemanticsTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        if not os.access(pmtest.PMCTL, os.X_OK):
            self.fail("pmctl not found at %s (set PMCTL)" % pmtest.PMCTL)
        self.script("migrate.sh", "echo migrating\necho migrated\n")
        self.script("web.sh", "trap 'echo \"got USR1\"' USR1\necho ready\n"
                    "while :; do sleep 0.05; done\n")
        self.script("gate.sh", "while [ ! -e gate.open ]; do sleep 0.02; "
                    "done\necho opened\n")
        self.script("stubborn.sh", "trap '' TERM\necho ready\n"
                    "while :; do sleep 0.05; done\n")
        #  Ready (says "listening") once the test creates ready.flag.
        self.script("probed.sh", "echo booting\n"
                    "while [ ! -e ready.flag ]; do sleep 0.02; done\n"
                    "echo listening\nexec sleep 1000\n")
        self.agent = self.start_agent(SERVICES)

    # -- helpers ----------------------------------------------------------

    def pmctl(self, *args, expect=EXIT_OK, timeout=30.0):
        """Runs pmctl; asserts its exit code; returns (stdout, stderr)."""
        rc, out, err = self.run_pmctl(*args, timeout=timeout)
        if rc != expect:
            self.fail("pmctl %s: exit %d, expected %d\nstdout: %s\n"
                      "stderr: %s\n%s" % (" ".join(args), rc, expect, out,
                                          err, self.agent.logs_tail()))
        return out, err

    def states(self):
        return {n: r["state"] for n, r in self.agent.status().items()}

    def snapshot(self):
        """What must not move when a command is refused."""
        return {n: (r["state"], r["pid"], r["seq"], r["restarts"])
                for n, r in self.agent.status().items()}

    def start_chain(self):
        self.pmctl("start", "web")
        for name in ("db", "cache", "api", "web"):
            self.assertEqual(self.agent.record(name)["state"], "running")
        return {n: self.agent.record(n)["pid"] for n in
                ("db", "cache", "api", "web")}

    def start_agent_with(self, services):
        """Replaces the agent by one whose config also has services."""
        self.pmctl("shutdown")
        self.assertEqual(self.agent.wait_exit(10), 0)
        self.config(SERVICES + services)
        self.agent = self.start_agent(config=self.agent.config)

    def open_gate(self):
        self.write_file("gate.open", "")

    def index(self, order, service, old, new, nth=1):
        """Position of the nth (service, old, new) transition in order."""
        seen = 0
        for i, item in enumerate(order):
            if item == (service, old, new):
                seen += 1
                if seen == nth:
                    return i
        self.fail("%s %s->%s (#%d) not in %s" % (service, old, new, nth,
                                                 order))

    def assertBefore(self, order, first, second):
        """first and second are (service, old, new[, nth])."""
        self.assertLess(self.index(order, *first), self.index(order, *second),
                        "%s should come before %s in %s"
                        % (first, second, order))

    # -- names are checked first -----------------------------------------

    def test_unknown_names_fail_the_whole_command(self):
        self.pmctl("start", "cache")
        before = self.snapshot()
        for command in (("start", "db", "nope1", "api", "nope2"),
                        ("stop", "cache", "nope1", "nope2"),
                        ("restart", "nope1", "cache", "nope2"),
                        ("signal", "KILL", "cache", "nope1", "nope2"),
                        ("status", "cache", "nope1", "nope2")):
            with self.subTest(command[0]):
                out, err = self.pmctl(*command, expect=EXIT_USAGE)
                self.assertIn("nope1", err)
                self.assertIn("nope2", err)
                self.assertNotIn("cannot", out)
                self.assertEqual(self.snapshot(), before)

    def test_not_running_vs_does_not_exist(self):
        out, err = self.pmctl("stop", "db")
        self.assertEqual(results_of(out)["db"], ("inactive", "not-running"))
        out, err = self.pmctl("stop", "ghost", expect=EXIT_USAGE)
        self.assertIn("ghost", err)
        self.assertNotIn("not-running", out + err)
        self.assertEqual(self.agent.record("db")["state"], "inactive")

    # -- starting ---------------------------------------------------------

    def test_start_blocks_until_running(self):
        out, err = self.pmctl("start", "db")
        self.assertEqual(results_of(out)["db"], ("running", None))
        #  True when pmctl returns, with no polling.
        record = self.agent.record("db")
        self.assertEqual(record["state"], "running")
        self.assertTrue(pmtest.pid_alive(record["pid"]))

    def test_start_already_running(self):
        self.pmctl("start", "db")
        pid = self.agent.record("db")["pid"]
        out, err = self.pmctl("start", "db")
        self.assertEqual(results_of(out)["db"], ("running", "already-running"))
        self.assertEqual(self.agent.record("db")["pid"], pid)

    def test_start_several_some_running(self):
        self.pmctl("start", "db")
        pid = self.agent.record("db")["pid"]
        out, err = self.pmctl("start", "cache", "db")
        results = results_of(out)
        self.assertEqual(results["db"], ("running", "already-running"))
        self.assertEqual(results["cache"], ("running", None))
        self.assertEqual(self.agent.record("db")["pid"], pid)

    def test_start_brings_dependencies_up_first(self):
        sub = self.agent.subscribe()
        out, err = self.pmctl("start", "web")
        self.assertEqual(results_of(out)["web"], ("running", None))
        states = self.states()
        for name in ("db", "cache", "api", "web"):
            self.assertEqual(states[name], "running", name)
        self.assertEqual(states["migrate"], "completed")
        sub.wait_for(lambda e: e["service"] == "web"
                     and e["new"] == "running", what="web running")
        order = sub.transitions()
        #  started: migrate spawned only once db was spawned.
        self.assertBefore(order, ("db", "waiting", "starting"),
                          ("migrate", "waiting", "starting"))
        #  ready and completed: api only after db ran and migrate ended.
        self.assertBefore(order, ("db", "starting", "running"),
                          ("api", "waiting", "starting"))
        self.assertBefore(order, ("migrate", "running", "completed"),
                          ("api", "waiting", "starting"))
        self.assertBefore(order, ("api", "waiting", "starting"),
                          ("web", "waiting", "starting"))
        self.assertBefore(order, ("cache", "waiting", "starting"),
                          ("web", "waiting", "starting"))
        #  The timestamps agree with the order.
        records = self.agent.status()
        self.assertGreaterEqual(records["api"]["started_at"],
                                records["migrate"]["state_since"])
        self.assertGreaterEqual(records["web"]["started_at"],
                                records["api"]["started_at"])
        #  The migration's output was kept.
        self.assertIn(b"migrated", self.agent.service_log("migrate"))

    def test_start_all(self):
        self.open_gate()
        self.write_file("ready.flag", "")
        out, err = self.pmctl("start", "--all", expect=EXIT_FAILED)
        self.assertIn("broken", err)
        self.assertIn("No such file or directory", err)
        self.assertIn("never_ready", err)
        states = self.states()
        for name in ("db", "cache", "api", "web", "slow", "stubborn",
                     "probed", "after_probed"):
            self.assertEqual(states[name], "running", name)
        for name in ("migrate", "gate", pmtest.PROBE):
            self.assertEqual(states[name], "completed", name)
        self.assertEqual(states["broken"], "failed")
        self.assertEqual(states["never_ready"], "failed")

    def test_start_wait_started(self):
        out, err = self.pmctl("start", "--wait", "started", "db")
        self.assertIn(results_of(out)["db"][0], ("starting", "running"))
        self.assertIn(self.agent.record("db")["state"],
                      ("starting", "running"))

    # -- what "started" means: exec'd, or ready by a probe ----------------

    def test_start_blocks_until_ready(self):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            parked = pool.submit(self.run_pmctl, "start", "probed")
            record = self.agent.wait_state("probed", "starting")
            self.assertFalse(record["ready"])
            self.assertTrue(pmtest.pid_alive(record["pid"]))
            wait_until(lambda: b"booting" in self.agent.service_log("probed"),
                       10, what="probed booting")
            self.assertFalse(parked.done(), "start returned before ready")
            self.write_file("ready.flag", "")
            rc, out, err = parked.result(timeout=20)
        self.assertEqual(rc, EXIT_OK, (out, err))
        self.assertEqual(results_of(out)["probed"], ("running", None))
        record = self.agent.record("probed")
        self.assertEqual(record["state"], "running")
        self.assertTrue(record["ready"])

    def test_start_wait_started_does_not_wait_for_ready(self):
        out, err = self.pmctl("start", "--wait", "started", "probed")
        self.assertEqual(results_of(out)["probed"][0], "starting")
        record = self.agent.record("probed")
        self.assertEqual(record["state"], "starting")
        self.assertFalse(record["ready"])

    def test_start_timeout_not_ready(self):
        out, err = self.pmctl("start", "--timeout", "0.5", "probed",
                              expect=EXIT_TIMEOUT)
        self.assertIn("timed out", err)
        self.assertEqual(results_of(out)["probed"][0], "starting")
        self.write_file("ready.flag", "")
        self.agent.wait_state("probed", "running")

    def test_ready_dependency_waits_for_the_probe(self):
        sub = self.agent.subscribe()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            parked = pool.submit(self.run_pmctl, "start", "after_probed")
            self.agent.wait_state("probed", "starting")
            self.assertEqual(self.agent.record("after_probed")["state"],
                             "waiting")
            self.write_file("ready.flag", "")
            rc, out, err = parked.result(timeout=20)
        self.assertEqual(rc, EXIT_OK, (out, err))
        sub.wait_for(lambda e: e["service"] == "after_probed"
                     and e["new"] == "running", what="after_probed running")
        self.assertBefore(sub.transitions(),
                          ("probed", "starting", "running"),
                          ("after_probed", "waiting", "starting"))

    def test_readiness_deadline_fails_the_start(self):
        t0 = time.monotonic()
        out, err = self.pmctl("start", "never_ready", expect=EXIT_FAILED)
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.assertIn("never_ready", err)
        record = self.agent.record("never_ready")
        self.assertEqual(record["state"], "failed")
        self.assertIn("ready", record["error"])
        self.assertIsNone(record["pid"])

    def test_start_wait_none_returns_at_once(self):
        t0 = time.monotonic()
        out, err = self.pmctl("start", "--wait", "none", "slow")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(results_of(out)["slow"][0], "waiting")
        self.assertEqual(self.agent.record("slow")["state"], "waiting")
        self.open_gate()
        self.agent.wait_state("slow", "running")

    def test_start_timeout(self):
        t0 = time.monotonic()
        out, err = self.pmctl("start", "--timeout", "0.5", "slow",
                              expect=EXIT_TIMEOUT)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 5)
        self.assertIn("timed out", err)
        self.assertIn("slow", err)
        #  The start itself goes on: it was only the wait that ended.
        self.assertEqual(self.agent.record("slow")["state"], "waiting")
        self.open_gate()
        self.agent.wait_state("slow", "running")

    def test_start_failure_exit_1(self):
        out, err = self.pmctl("start", "broken", expect=EXIT_FAILED)
        self.assertIn("broken", err)
        self.assertIn("No such file or directory", err)
        self.assertEqual(self.agent.record("broken")["state"], "failed")

    def test_start_with_failing_dependency(self):
        self.script("migrate.sh", "echo cannot migrate >&2\nexit 1\n")
        out, err = self.pmctl("start", "api", expect=EXIT_FAILED)
        self.assertIn("api", err)
        self.assertIn("migrate", err)
        states = self.states()
        self.assertEqual(states["migrate"], "failed")
        self.assertEqual(states["api"], "failed")
        self.assertIn("migrate", self.agent.record("api")["error"])

    def test_parked_start_fails_when_dependency_stops(self):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            parked = pool.submit(self.run_pmctl, "start", "slow")
            self.agent.wait_state("slow", "waiting")
            self.agent.wait_state("gate", "running")
            self.pmctl("stop", "gate")
            rc, out, err = parked.result(timeout=20)
        self.assertEqual(rc, EXIT_FAILED, (out, err))
        self.assertIn("gate", err)
        self.assertEqual(self.agent.record("slow")["state"], "failed")

    def test_start_while_stopping(self):
        """A start asked while the service is stopping starts it again once
        it is down, and waits for that."""
        self.pmctl("start", "stubborn")
        old = self.agent.record("stubborn")["pid"]
        wait_until(lambda: b"ready" in self.agent.service_log("stubborn"),
                   10, what="stubborn ready")
        out, err = self.pmctl("stop", "--wait", "none", "stubborn")
        self.assertEqual(results_of(out)["stubborn"][0], "stopping")
        t0 = time.monotonic()
        out, err = self.pmctl("start", "stubborn")
        self.assertGreater(time.monotonic() - t0, 0.5)
        record = self.agent.record("stubborn")
        self.assertEqual(record["state"], "running")
        self.assertNotEqual(record["pid"], old)
        self.assertFalse(pmtest.pid_alive(old))

    def test_completed_dependency_not_rerun(self):
        """A one-shot dependency that completed stays completed: starting
        its dependent again does not run it again."""
        self.start_chain()
        self.pmctl("stop", "api")
        self.pmctl("start", "api")
        record = self.agent.record("migrate")
        self.assertEqual(record["state"], "completed")
        self.assertEqual(record["restarts"], 0)
        self.assertEqual(self.agent.service_log("migrate").count(b"migrated"),
                         1)

    def test_start_completed_runs_again(self):
        self.pmctl("start", "migrate")
        self.agent.wait_state("migrate", "completed")
        out, err = self.pmctl("start", "migrate")
        #  Exec'd is running (no readiness probe); it may be done already.
        self.assertIn(results_of(out)["migrate"],
                      (("running", None), ("completed", None)))
        record = self.agent.wait_state("migrate", "completed")
        self.assertEqual(record["restarts"], 1)
        self.assertEqual(self.agent.service_log("migrate").count(b"migrated"),
                         2)

    # -- stopping ---------------------------------------------------------

    def test_stop_answers_a_parked_start(self):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            parked = pool.submit(self.run_pmctl, "start", "slow")
            self.agent.wait_state("slow", "waiting")
            out, err = self.pmctl("stop", "slow")
            self.assertEqual(results_of(out)["slow"], ("stopped", None))
            rc, out, err = parked.result(timeout=20)
        self.assertEqual(rc, EXIT_FAILED, (out, err))
        self.assertIn("slow", err)
        self.assertEqual(self.agent.record("slow")["state"], "stopped")

    def test_stop_timeout(self):
        self.pmctl("start", "stubborn")
        wait_until(lambda: b"ready" in self.agent.service_log("stubborn"),
                   10, what="stubborn ready")
        out, err = self.pmctl("stop", "--timeout", "0.3", "stubborn",
                              expect=EXIT_TIMEOUT)
        self.assertIn("timed out", err)
        #  Answered before stop_timeout (1 s) ran out: still stopping.
        self.assertEqual(results_of(out)["stubborn"][0], "stopping")
        #  The stop goes on: SIGKILL at stop_timeout.
        record = self.agent.wait_state("stubborn", "stopped")
        self.assertEqual(record["signal"], "SIGKILL")

    def test_stop_blocks_until_reaped(self):
        pids = self.start_chain()
        out, err = self.pmctl("stop", "web")
        self.assertEqual(results_of(out)["web"], ("stopped", None))
        self.assertEqual(self.agent.record("web")["state"], "stopped")
        #  Reaped, not a zombie: the pid is gone the moment pmctl returns.
        self.assertFalse(os.path.exists("/proc/%d" % pids["web"]))
        self.assertEqual(self.agent.record("api")["state"], "running")

    def test_stop_several_some_not_running(self):
        self.pmctl("start", "db")
        out, err = self.pmctl("stop", "cache", "db")
        results = results_of(out)
        self.assertEqual(results["cache"], ("inactive", "not-running"))
        self.assertEqual(results["db"], ("stopped", None))

    def test_stop_wait_none(self):
        self.pmctl("start", "db")
        out, err = self.pmctl("stop", "--wait", "none", "db")
        self.assertIn(results_of(out)["db"][0], ("stopping", "stopped"))
        self.agent.wait_state("db", "stopped")

    def test_stop_with_dependents(self):
        pids = self.start_chain()
        sub = self.agent.subscribe()
        out, err = self.pmctl("stop", "--with-dependents", "db")
        results = results_of(out)
        self.assertEqual(results["db"], ("stopped", None))
        self.assertEqual(results["api"], ("stopped", "dependent"))
        self.assertEqual(results["web"], ("stopped", "dependent"))
        self.assertEqual(results["migrate"][1], "not-running")
        self.assertNotIn("cache", results)
        states = self.states()
        for name in ("db", "api", "web"):
            self.assertEqual(states[name], "stopped", name)
            self.assertFalse(pmtest.pid_alive(pids[name]))
        self.assertEqual(states["cache"], "running")
        sub.wait_for(lambda e: e["service"] == "db" and e["new"] == "stopped")
        order = sub.transitions()
        self.assertBefore(order, ("web", "stopping", "stopped"),
                          ("api", "running", "stopping"))
        self.assertBefore(order, ("api", "stopping", "stopped"),
                          ("db", "running", "stopping"))

    def test_stop_without_dependents_leaves_them(self):
        self.start_chain()
        self.pmctl("stop", "db")
        states = self.states()
        self.assertEqual(states["db"], "stopped")
        self.assertEqual(states["api"], "running")

    def test_stop_all_in_reverse_start_order(self):
        self.start_chain()
        sub = self.agent.subscribe()
        #  The sync's probe ("true") may still be running: let it end, so
        #  that it is not-running like the other services that are down.
        self.agent.wait_state(pmtest.PROBE, ("completed", "failed"))
        out, err = self.pmctl("stop", "--all")
        results = results_of(out)
        for name in ("db", "cache", "api", "web"):
            self.assertEqual(results[name], ("stopped", None), name)
        for name in ("migrate", "broken", "gate", "slow", "stubborn",
                     "probed", "after_probed", "never_ready", pmtest.PROBE):
            self.assertEqual(results[name][1], "not-running", name)
        sub.wait_for(lambda e: e["service"] == "db" and e["new"] == "stopped")
        order = sub.transitions()
        for dependent, dependency in (("web", "api"), ("web", "cache"),
                                      ("api", "db")):
            self.assertBefore(order, (dependent, "stopping", "stopped"),
                              (dependency, "running", "stopping"))
        self.assertEqual(set(self.states().values()) & {"running"}, set())

    # -- restarting -------------------------------------------------------

    def test_restart_one(self):
        pids = self.start_chain()
        out, err = self.pmctl("restart", "api")
        self.assertEqual(results_of(out)["api"], ("running", None))
        record = self.agent.record("api")
        self.assertEqual(record["state"], "running")
        self.assertNotEqual(record["pid"], pids["api"])
        self.assertFalse(pmtest.pid_alive(pids["api"]))
        self.assertEqual(record["restarts"], 1)
        #  Its dependents are left alone without --with-dependents.
        self.assertEqual(self.agent.record("web")["pid"], pids["web"])

    def test_restart_not_running_starts_it(self):
        out, err = self.pmctl("restart", "db")
        self.assertEqual(results_of(out)["db"], ("running", "not-running"))
        self.assertEqual(self.agent.record("db")["state"], "running")

    def test_restart_several_some_not_running(self):
        self.pmctl("start", "db")
        pid = self.agent.record("db")["pid"]
        out, err = self.pmctl("restart", "db", "cache")
        results = results_of(out)
        self.assertEqual(results["db"], ("running", None))
        self.assertEqual(results["cache"], ("running", "not-running"))
        self.assertNotEqual(self.agent.record("db")["pid"], pid)
        before = self.snapshot()
        out, err = self.pmctl("restart", "db", "cache", "nope",
                              expect=EXIT_USAGE)
        self.assertIn("nope", err)
        self.assertEqual(self.snapshot(), before)

    def test_restart_with_dependents(self):
        pids = self.start_chain()
        sub = self.agent.subscribe()
        out, err = self.pmctl("restart", "--with-dependents", "db")
        results = results_of(out)
        self.assertEqual(results["db"], ("running", None))
        self.assertEqual(results["api"], ("running", "dependent"))
        self.assertEqual(results["web"], ("running", "dependent"))
        records = self.agent.status()
        for name in ("db", "api", "web"):
            self.assertEqual(records[name]["state"], "running", name)
            self.assertNotEqual(records[name]["pid"], pids[name], name)
        self.assertEqual(records["cache"]["pid"], pids["cache"])
        sub.wait_for(lambda e: e["service"] == "web"
                     and e["new"] == "running", what="web running again")
        order = sub.transitions()
        #  Dependents stop first ...
        self.assertBefore(order, ("web", "stopping", "stopped"),
                          ("api", "running", "stopping"))
        self.assertBefore(order, ("api", "stopping", "stopped"),
                          ("db", "running", "stopping"))
        #  ... and start after, once what they depend on is back.
        self.assertBefore(order, ("db", "waiting", "starting"),
                          ("api", "waiting", "starting"))
        self.assertBefore(order, ("api", "waiting", "starting"),
                          ("web", "waiting", "starting"))
        self.assertBefore(order, ("db", "stopping", "stopped"),
                          ("db", "waiting", "starting"))
        #  Nothing of the new generation starts before the old is down.
        self.assertBefore(order, ("db", "stopping", "stopped"),
                          ("api", "waiting", "starting"))
        self.assertBefore(order, ("api", "stopping", "stopped"),
                          ("api", "waiting", "starting"))

    def test_restart_all(self):
        self.open_gate()
        self.write_file("ready.flag", "")
        self.pmctl("start", "web", "slow")
        pids = {n: r["pid"] for n, r in self.agent.status().items()}
        out, err = self.pmctl("restart", "--all", expect=EXIT_FAILED)
        self.assertIn("broken", err)
        records = self.agent.status()
        for name in ("db", "cache", "api", "web", "slow"):
            self.assertEqual(records[name]["state"], "running", name)
            self.assertNotEqual(records[name]["pid"], pids[name], name)

    def test_start_and_restart_in_backoff(self):
        """A service waiting out its backoff starts at once when asked."""
        self.script("flaky.sh", '[ -e flaky.ok ] || { echo "not yet"; '
                    'exit 3; }\necho "up"\nexec sleep 1000\n')
        self.start_agent_with("""\
  flaky: { command = "./flaky.sh"; autostart = false; stop_timeout = 1.0;
           restart = "on-failure"; backoff_initial = 60.0;
           backoff_max = 60.0; };
""")
        self.pmctl("start", "--wait", "none", "flaky")
        record = self.agent.wait_state("flaky", "backoff")
        self.assertIsNotNone(record["next_start"])
        self.write_file("flaky.ok", "")
        t0 = time.monotonic()
        out, err = self.pmctl("start", "flaky")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(results_of(out)["flaky"][0], "running")
        record = self.agent.record("flaky")
        self.assertEqual(record["state"], "running")
        self.assertIsNone(record["next_start"])
        #  And restart, from backoff: a start, with the note.
        os.unlink(self.path("flaky.ok"))
        self.pmctl("stop", "flaky")
        self.pmctl("start", "--wait", "none", "flaky")
        self.agent.wait_state("flaky", "backoff")
        self.write_file("flaky.ok", "")
        out, err = self.pmctl("restart", "flaky")
        self.assertEqual(results_of(out)["flaky"], ("running", "not-running"))

    # -- signals ----------------------------------------------------------

    def test_signal(self):
        self.start_chain()
        wait_until(lambda: b"ready" in self.agent.service_log("web"), 10,
                   what="web ready")
        out, err = self.pmctl("signal", "USR1", "web")
        wait_until(lambda: b"got USR1" in self.agent.service_log("web"), 10,
                   what="got USR1 in web's log")
        self.assertEqual(self.agent.record("web")["state"], "running")
        out, err = self.pmctl("signal", "SIGUSR1", "web")
        wait_until(lambda: self.agent.service_log("web").count(b"got USR1")
                   == 2, 10, what="a second USR1")
        #  A stopped service has no process to signal.
        out, err = self.pmctl("signal", "USR1", "migrate", "broken",
                              expect=EXIT_FAILED)
        self.assertIn("not running", err)
        self.assertIn("migrate", err)
        #  Some running, some not: exit 1, and the running ones got it
        #  (PROTOCOL.md, signal: "the others were signalled").
        out, err = self.pmctl("signal", "USR1", "web", "broken",
                              expect=EXIT_FAILED)
        self.assertIn("broken", err)
        wait_until(lambda: self.agent.service_log("web").count(b"got USR1")
                   == 3, 10, what="a third USR1")
        self.pmctl("signal", "NOSUCHSIG", "web", expect=EXIT_USAGE)
        #  A signal the service does not handle ends it; asked for, it is
        #  a stop (DESIGN: failed is a signal the agent did not send).
        pid = self.agent.record("db")["pid"]
        self.pmctl("signal", "9", "db")
        record = self.agent.wait_state("db", ("stopped", "failed"))
        self.assertEqual(record["state"], "stopped")
        self.assertEqual(record["signal"], "SIGKILL")
        self.assertIsNone(record["error"])
        self.assertFalse(pmtest.pid_alive(pid))

    # -- the agent --------------------------------------------------------

    def test_no_agent(self):
        #  An agent that never ran: no runtime directory at all.
        os.mkdir(self.path("elsewhere"))
        other = self.config('  x: { command = "true"; };\n',
                            name="elsewhere/pmbus.cfg", agent_name="nobody")
        rc, out, err = self.run_pmctl("status", config=other)
        self.assertEqual(rc, EXIT_UNREACHABLE, (out, err))
        self.assertTrue(err.strip())
        rc, out, err = self.run_pmctl("start", "x", config=other)
        self.assertEqual(rc, EXIT_UNREACHABLE, (out, err))
        #  An agent that has gone.
        self.pmctl("shutdown")
        self.assertEqual(self.agent.wait_exit(10), 0)
        for command in (("status",), ("start", "db"), ("stop", "db"),
                        ("ping",)):
            t0 = time.monotonic()
            out, err = self.pmctl(*command, expect=EXIT_UNREACHABLE)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertTrue(err.strip(), command)

    def test_shutdown(self):
        self.start_chain()
        out, err = self.pmctl("shutdown")
        self.assertEqual(self.agent.wait_exit(10), 0)
        self.assertFalse(os.path.exists(self.agent.pidfile))

    def test_many_clients_at_once(self):
        """While a start is parked, ten more pmctl all get their answers."""
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            parked = pool.submit(self.run_pmctl, "start", "slow")
            self.agent.wait_state("slow", "waiting")
            commands = [("status",), ("start", "db"), ("start", "cache"),
                        ("status", "db"), ("ping",), ("start", "db"),
                        ("stop", "cache"), ("status", "slow"),
                        ("--json", "status"), ("start", "--wait", "none",
                                               "slow")]
            t0 = time.monotonic()
            futures = [pool.submit(self.run_pmctl, *c) for c in commands]
            answers = [f.result(timeout=30) for f in futures]
            took = time.monotonic() - t0
            self.assertFalse(parked.done(), "the parked start returned "
                             "before its gate opened: %r" % (parked.done()
                                                             and parked.result(),))
            self.open_gate()
            rc, out, err = parked.result(timeout=20)
        for command, (rc2, out2, err2) in zip(commands, answers):
            self.assertEqual(rc2, EXIT_OK, (command, out2, err2))
        self.assertLess(took, 10)
        self.assertEqual(rc, EXIT_OK, (out, err))
        self.assertEqual(results_of(out)["slow"][0], "running")

    def test_json_output(self):
        self.pmctl("start", "db")
        out, err = self.pmctl("--json", "status")
        reply = json.loads(out)
        self.assertEqual(reply["v"], 1)
        self.assertTrue(reply["ok"])
        self.assertIsInstance(reply["id"], int)
        records = {r["name"]: r for r in reply["services"]}
        self.assertEqual(set(records), set(SERVICES_NAMES))
        for record in records.values():
            self.assertEqual(set(record), RECORD_FIELDS)
        self.assertEqual(records["db"]["state"], "running")
        self.assertIsInstance(records["db"]["pid"], int)
        self.assertIsNone(records["cache"]["pid"])
        self.assertEqual(records["api"]["depends_on"],
                         {"db": "ready", "migrate": "completed"})
        out, err = self.pmctl("--json", "start", "db", "cache")
        reply = json.loads(out)
        self.assertTrue(reply["ok"])
        self.assertEqual([(r["name"], r["ok"], r["state"], r["note"])
                          for r in reply["results"]],
                         [("db", True, "running", "already-running"),
                          ("cache", True, "running", None)])
        out, err = self.pmctl("--json", "start", "broken", expect=EXIT_FAILED)
        reply = json.loads(out)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        self.assertIn("No such file", reply["results"][0]["error"])
        out, err = self.pmctl("--json", "stop", "nope", expect=EXIT_USAGE)
        reply = json.loads(out)
        self.assertEqual(reply["error"]["code"], "unknown-service")
        self.assertEqual(reply["error"]["names"], ["nope"])
        out, err = self.pmctl("--json", "ping")
        reply = json.loads(out)
        self.assertEqual(reply["agent"], "t")
        self.assertEqual(reply["pid"], self.agent.pid)


SERVICES_NAMES = ("db", "cache", "migrate", "api", "web", "broken", "gate",
                  "slow", "stubborn", "probed", "after_probed", "never_ready",
                  pmtest.PROBE)


if __name__ == "__main__":
    pmtest.main()
