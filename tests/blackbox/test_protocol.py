"""test_protocol.py - a client written in Python from proto/PROTOCOL.md

Talks to the real pmd over its control socket (DEALER and REQ) and its
events socket (SUB), with nothing but pyzmq and msgpack: requests and
replies, status records and their field types, state events (order, seq,
record), log events, agent events, parked requests, and the agent's answer
to every kind of malformed frame.
"""

import math
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgpack  # noqa: E402
import zmq  # noqa: E402

import pmtest  # noqa: E402
from pmtest import pack  # noqa: E402

STATES = {"inactive", "waiting", "starting", "running", "stopping",
          "stopped", "completed", "failed", "backoff"}
CONDITIONS = {"started", "ready", "completed"}
ERROR_CODES = {"bad-request", "too-large", "bad-version", "unknown-command",
               "unknown-service", "not-running", "failed", "timeout",
               "shutting-down", "bad-signal", "bad-config", "busy",
               "internal"}
RECORD_FIELDS = {"name", "state", "pid", "started_at", "state_since",
                 "uptime", "restarts", "exit_code", "signal", "ready",
                 "error", "depends_on", "command", "seq", "next_start"}
HAS_PROCESS = {"starting", "running", "stopping"}

SERVICES = """\
  a:    { command = "sleep 1000"; autostart = false; stop_timeout = 2.0; };
  ab:   { command = "sleep 1000"; autostart = false; stop_timeout = 2.0; };
  b:    { command = "sleep 1000"; autostart = false; stop_timeout = 2.0;
          depends_on = { a = "started"; }; };
  gate: { command = "sleep 1000"; autostart = false; stop_timeout = 2.0; };
  after_gate: { command = "sleep 1000"; autostart = false;
                depends_on = { gate = "completed"; }; };
"""


def nested(depth):
    """["x"] inside depth - 1 more lists."""
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


class ProtocolTest(pmtest.AgentTest):

    # -- checks -----------------------------------------------------------

    def check_record(self, record, where="record"):
        """Every field of a status record, with its type, and the rules
        that tie fields together."""
        self.assertIsInstance(record, dict, where)
        self.assertEqual(set(record), RECORD_FIELDS,
                         "%s: fields differ from PROTOCOL.md" % where)
        msg = "%s: %r" % (where, record)
        self.assertIsInstance(record["name"], str, msg)
        self.assertIn(record["state"], STATES, msg)
        state = record["state"]
        if state in HAS_PROCESS:
            self.assertIsInstance(record["pid"], int, msg)
            self.assertGreater(record["pid"], 0, msg)
            self.assertTrue(is_number(record["uptime"]), msg)
            self.assertGreaterEqual(record["uptime"], 0, msg)
            self.assertTrue(is_number(record["started_at"]), msg)
        else:
            self.assertIsNone(record["pid"], msg)
            self.assertIsNone(record["uptime"], msg)
        if record["started_at"] is not None:
            self.assertTrue(is_number(record["started_at"]), msg)
            self.assertGreater(record["started_at"], 1e9, msg)
        if state == "inactive":
            self.assertIsNone(record["started_at"], msg)
        self.assertTrue(is_number(record["state_since"]), msg)
        self.assertIsInstance(record["restarts"], int, msg)
        self.assertNotIsInstance(record["restarts"], bool, msg)
        self.assertGreaterEqual(record["restarts"], 0, msg)
        if record["exit_code"] is not None:
            self.assertIsInstance(record["exit_code"], int, msg)
            self.assertNotIsInstance(record["exit_code"], bool, msg)
        if record["signal"] is not None:
            self.assertIsInstance(record["signal"], str, msg)
            self.assertTrue(record["signal"].startswith("SIG"), msg)
        self.assertFalse(record["exit_code"] is not None
                         and record["signal"] is not None,
                         "%s: both exit_code and signal" % msg)
        self.assertIsInstance(record["ready"], bool, msg)
        #  Readiness of the current run: only a run that has a process can
        #  have it; running means it was confirmed.
        if record["ready"]:
            self.assertIn(state, {"running", "stopping"}, msg)
        if state == "running":
            self.assertTrue(record["ready"], msg)
        if record["error"] is not None:
            self.assertIsInstance(record["error"], str, msg)
        self.assertIsInstance(record["depends_on"], dict, msg)
        for key, value in record["depends_on"].items():
            self.assertIsInstance(key, str, msg)
            self.assertIn(value, CONDITIONS, msg)
        self.assertIsInstance(record["command"], str, msg)
        self.assertIsInstance(record["seq"], int, msg)
        self.assertGreaterEqual(record["seq"], 0, msg)
        #  next_start: when the restart policy starts it again (backoff).
        if state == "backoff":
            self.assertTrue(is_number(record["next_start"]), msg)
            self.assertGreater(record["next_start"], record["state_since"],
                               msg)
        else:
            self.assertIsNone(record["next_start"], msg)
        if state == "failed":
            self.assertIsInstance(record["error"], str, msg)

    def check_reply(self, reply, rid):
        self.assertIsInstance(reply, dict)
        self.assertEqual(reply.get("v"), 1, reply)
        self.assertEqual(reply.get("id"), rid, reply)
        self.assertIsInstance(reply.get("ok"), bool, reply)
        if reply["ok"]:
            self.assertNotIn("error", reply)
        else:
            error = reply.get("error")
            self.assertIsInstance(error, dict, reply)
            self.assertIn(error.get("code"), ERROR_CODES, reply)
            self.assertIsInstance(error.get("message"), str, reply)
        for result in reply.get("results", []):
            self.assertEqual(set(result), {"name", "ok", "state", "note",
                                           "error"}, reply)
            self.assertIsInstance(result["name"], str)
            self.assertIsInstance(result["ok"], bool)
            self.assertIn(result["state"], STATES)
            self.assertTrue(result["note"] is None
                            or isinstance(result["note"], str))
            self.assertTrue(result["error"] is None
                            or isinstance(result["error"], str))
        return reply

    def call(self, client, cmd, args=None, timeout=10.0, **extra):
        rid = client.send(cmd, args, **extra)
        return self.check_reply(client.wait_reply(rid, timeout), rid)

    def assertError(self, reply, code, rid=None):
        self.assertFalse(reply.get("ok"), reply)
        self.assertEqual(reply.get("v"), 1, reply)
        self.assertIsInstance(reply.get("error"), dict, reply)
        self.assertEqual(reply["error"].get("code"), code, reply)
        self.assertIsInstance(reply["error"].get("message"), str, reply)
        if code != "unknown-service":
            self.assertNotIn("names", reply["error"], reply)
        if rid is not None:
            self.assertEqual(reply.get("id"), rid, reply)
        return reply

    # -- hello and status -------------------------------------------------

    def test_hello(self):
        before = time.time()
        agent = self.start_agent(SERVICES)
        client = agent.client()
        reply = self.call(client, "hello")
        self.assertTrue(reply["ok"])
        self.assertEqual(reply["agent"], "t")
        self.assertIsInstance(reply["version"], str)
        self.assertTrue(reply["version"])
        self.assertEqual(reply["pid"], agent.pid)
        self.assertEqual(reply["config"], agent.config)
        self.assertEqual(reply["control"], agent.control)
        self.assertEqual(reply["events"], agent.events)
        self.assertTrue(is_number(reply["started_at"]))
        self.assertLessEqual(before - 1, reply["started_at"])
        self.assertLessEqual(reply["started_at"], time.time() + 1)
        self.assertEqual(reply["leases"], [])
        #  The runtime directory: private, with its pid file and lock.
        self.assertEqual(os.stat(agent.rundir).st_mode & 0o777, 0o700)
        with open(agent.pidfile) as f:
            self.assertEqual(int(f.read().strip()), agent.pid)
        self.assertTrue(os.path.exists(agent.lockfile))
        #  An empty args map is the same as none.
        self.assertTrue(self.call(client, "hello", {})["ok"])

    def test_status_records(self):
        self.script("exit3.sh", "echo bye\nexit 3\n")
        agent = self.start_agent(SERVICES + """\
  done:   { command = "true"; };
  crash:  { command = "./exit3.sh"; };
  nofile: { command = "./does-not-exist"; };
  up:     { argv = ["sleep", "1000"]; depends_on = { done = "completed"; };
            stop_timeout = 2.0; };
  policy: { command = "./exit3.sh"; restart = "on-failure";
            backoff_initial = 60.0; backoff_max = 60.0; };
""")
        agent.wait_state("done", "completed")
        agent.wait_state("crash", "failed")
        agent.wait_state("nofile", "failed")
        agent.wait_state("up", "running")
        agent.wait_state("policy", "backoff")
        client = agent.client()
        reply = self.call(client, "status")
        self.assertTrue(reply["ok"])
        records = {r["name"]: r for r in reply["services"]}
        self.assertEqual(set(records), {"a", "ab", "b", "gate", "after_gate",
                                        "done", "crash", "nofile", "up",
                                        "policy", pmtest.PROBE})
        for name, record in records.items():
            self.check_record(record, "status of %s" % name)
        self.assertEqual(records["a"]["state"], "inactive")
        self.assertEqual(records["a"]["seq"], 0)
        self.assertEqual(records["a"]["command"], "sleep 1000")
        self.assertEqual(records["b"]["depends_on"], {"a": "started"})
        self.assertEqual(records["done"]["state"], "completed")
        self.assertEqual(records["done"]["exit_code"], 0)
        self.assertIsNone(records["done"]["signal"])
        self.assertEqual(records["crash"]["state"], "failed")
        self.assertEqual(records["crash"]["exit_code"], 3)
        self.assertEqual(records["crash"]["error"], "exited with code 3")
        self.assertEqual(records["nofile"]["state"], "failed")
        self.assertIn("No such file or directory", records["nofile"]["error"])
        self.assertIsNone(records["nofile"]["pid"])
        self.assertIsNone(records["nofile"]["exit_code"])
        policy = records["policy"]
        self.assertEqual(policy["state"], "backoff")
        self.assertEqual(policy["exit_code"], 3)
        self.assertAlmostEqual(policy["next_start"],
                               policy["state_since"] + 60.0, delta=1.0)
        up = records["up"]
        self.assertEqual(up["state"], "running")
        self.assertTrue(up["ready"])
        self.assertEqual(up["command"], "sleep 1000")
        self.assertEqual(up["depends_on"], {"done": "completed"})
        self.assertEqual(up["restarts"], 0)
        self.assertTrue(pmtest.pid_alive(up["pid"]))
        self.assertAlmostEqual(up["uptime"], time.time() - up["started_at"],
                               delta=2.0)
        #  Every service, in start order (dependencies first), and the
        #  leases (PROTOCOL.md 4.1: hello, status and lease carry them).
        order = [r["name"] for r in reply["services"]]
        self.assertLess(order.index("a"), order.index("b"))
        self.assertLess(order.index("done"), order.index("up"))
        self.assertLess(order.index("gate"), order.index("after_gate"))
        self.assertEqual(reply.get("leases"), [], reply.keys())
        #  Status of some: exactly those, in the order named.
        reply = self.call(client, "status", {"names": ["up", "a"]})
        self.assertEqual([r["name"] for r in reply["services"]], ["up", "a"])
        #  Status of an unknown one: unknown-service naming it.
        rid = client.send("status", {"names": ["up", "nope", "nada"]})
        reply = self.assertError(client.wait_reply(rid, 10),
                                 "unknown-service", rid)
        self.assertEqual(sorted(reply["error"]["names"]), ["nada", "nope"])
        self.assertNotIn("services", reply)

    def test_inactive_state_since(self):
        """state_since of a service that never moved: the time the agent
        loaded it, not the epoch."""
        before = time.time()
        agent = self.start_agent(SERVICES)
        record = agent.record("a")
        self.assertEqual(record["state"], "inactive")
        self.assertGreaterEqual(record["state_since"], before - 1,
                                "state_since of a never-started service is "
                                "%r" % record["state_since"])

    # -- start, stop and their events ------------------------------------

    def test_start_stop_events(self):
        agent = self.start_agent(SERVICES)
        sub = agent.subscribe("state/t/a/", "state/t/b/")
        client = agent.client()
        t0 = time.time()
        reply = self.call(client, "start", {"names": ["b"], "wait": "running"})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"], [
            {"name": "b", "ok": True, "state": "running", "note": None,
             "error": None}])
        sub.wait_for(lambda e: e["service"] == "b" and e["new"] == "running",
                     what="b running")
        chain = [("inactive", "waiting"), ("waiting", "starting"),
                 ("starting", "running")]
        for name in ("a", "b"):
            events = sub.state_events(name)
            self.assertEqual([(e["old"], e["new"]) for e in events], chain,
                             sub.summary())
            self.assertEqual([e["seq"] for e in events], [1, 2, 3])
            for e in events:
                self.check_event(e, name)
                self.assertGreaterEqual(e["ts"], t0 - 1)
            self.assertEqual(sorted(e["ts"] for e in events),
                             [e["ts"] for e in events])
            self.assertIsNone(events[0]["record"]["pid"])
            self.assertEqual(events[1]["record"]["pid"],
                             events[2]["record"]["pid"])
            self.assertFalse(events[1]["record"]["ready"])
            self.assertTrue(events[2]["record"]["ready"])
        #  a started before b: b was spawned only once a was started.
        order = sub.transitions()
        self.assertLess(order.index(("a", "waiting", "starting")),
                        order.index(("b", "waiting", "starting")), order)
        pid_a = sub.state_events("a")[2]["record"]["pid"]

        #  A subscription to state/t/a/ never sees state/t/ab/.
        self.call(client, "start", {"names": ["ab"]})
        #  Results: the targets in the order named, then the dependents.
        reply = self.call(client, "restart", {"names": ["ab", "a"],
                                              "with_dependents": True,
                                              "wait": "none"})
        self.assertEqual([(r["name"], r["note"]) for r in reply["results"]],
                         [("ab", None), ("a", None), ("b", "dependent")])
        for name in ("a", "b", "ab"):
            agent.wait_state(name, "running")
        restarted = len(sub.events)

        reply = self.call(client, "stop", {"names": ["a", "b"]})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual([(r["name"], r["state"]) for r in reply["results"]],
                         [("a", "stopped"), ("b", "stopped")])
        sub.wait_for(lambda e: e["service"] == "a" and e["new"] == "stopped"
                     and e["seq"] > 5, what="a stopped")
        self.assertEqual({e["service"] for e in sub.events}, {"a", "b"},
                         sub.summary())
        for name in ("a", "b"):
            events = sub.state_events(name)
            self.assertEqual([(e["old"], e["new"]) for e in events[3:]],
                             [("running", "stopping"),
                              ("stopping", "stopped"),
                              ("stopped", "waiting"),
                              ("waiting", "starting"),
                              ("starting", "running"),
                              ("running", "stopping"),
                              ("stopping", "stopped")], sub.summary())
            self.assertEqual([e["seq"] for e in events], list(range(1, 11)))
            stopped = events[-1]["record"]
            self.assertIsNone(stopped["pid"])
            self.assertEqual(stopped["signal"], "SIGTERM")
            self.assertIsNone(stopped["exit_code"])
            for e in events:
                self.check_event(e, name)
        #  Dependents stop first: b was stopped before a stopped.
        order = sub.transitions()[restarted:]
        self.assertLess(order.index(("b", "stopping", "stopped")),
                        order.index(("a", "running", "stopping")), order)
        self.assertFalse(pmtest.pid_alive(pid_a))
        #  The record in status agrees with the last event.
        record = agent.record("a")
        self.assertEqual(record["seq"], 10)
        self.assertEqual(record["state"], "stopped")

    def check_event(self, event, service):
        self.assertEqual(event["v"], 1)
        self.assertEqual(event["kind"], "state")
        self.assertEqual(event["agent"], "t")
        self.assertEqual(event["service"], service)
        self.assertEqual(event["topic"], "state/t/%s/" % service)
        self.assertIn(event["old"], STATES)
        self.assertIn(event["new"], STATES)
        self.assertIsInstance(event["seq"], int)
        self.assertTrue(is_number(event["ts"]))
        self.check_record(event["record"], "event %s#%d" % (service,
                                                           event["seq"]))
        self.assertEqual(event["record"]["name"], service)
        self.assertEqual(event["record"]["state"], event["new"])
        self.assertEqual(event["record"]["seq"], event["seq"])
        #  The transition's time, taken a moment before it was published.
        self.assertLessEqual(event["record"]["state_since"], event["ts"])
        self.assertLess(event["ts"] - event["record"]["state_since"], 1.0)

    def test_start_wait_none_and_started(self):
        agent = self.start_agent(SERVICES)
        client = agent.client()
        reply = self.call(client, "start", {"names": ["a"], "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        self.assertIn(reply["results"][0]["state"],
                      {"waiting", "starting", "running"})
        agent.wait_state("a", "running")
        reply = self.call(client, "start", {"names": ["a"],
                                            "wait": "started"})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["note"], "already-running")
        reply = self.call(client, "stop", {"names": ["a"], "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        agent.wait_state("a", "stopped")
        reply = self.call(client, "stop", {"names": ["a"],
                                           "wait": "stopped"})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["note"], "not-running")
        self.assertEqual(reply["results"][0]["state"], "stopped")

    def test_start_timeout(self):
        """A start whose condition cannot hold in time is answered at its
        timeout with code timeout, and the target's state then."""
        agent = self.start_agent(SERVICES)
        client = agent.client()
        self.call(client, "start", {"names": ["gate"]})
        t0 = time.monotonic()
        rid = client.send("start", {"names": ["after_gate"],
                                    "timeout": 0.3})
        reply = self.check_reply(client.wait_reply(rid, 10), rid)
        took = time.monotonic() - t0
        self.assertError(reply, "timeout", rid)
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 5)
        self.assertEqual(len(reply["results"]), 1)
        result = reply["results"][0]
        self.assertEqual(result["name"], "after_gate")
        self.assertFalse(result["ok"])
        self.assertEqual(result["state"], "waiting")
        self.assertIsInstance(result["error"], str)
        #  The service is left as it is: still waiting for its gate.
        self.assertEqual(agent.record("after_gate")["state"], "waiting")

    def test_parked_requests_answered_at_shutdown(self):
        """Outstanding replies are sent before the agent exits."""
        agent = self.start_agent(SERVICES)
        client = agent.client()
        self.call(client, "start", {"names": ["gate"]})
        parked = agent.client()
        rid = parked.send("start", {"names": ["after_gate"]})
        agent.wait_state("after_gate", "waiting")
        with self.assertRaises(AssertionError):
            parked.wait_reply(rid, 0.2)         # parked: no answer yet
        other = agent.client()
        reply = self.call(other, "shutdown")
        self.assertTrue(reply["ok"], reply)
        reply = self.check_reply(parked.wait_reply(rid, 10), rid)
        self.assertError(reply, "shutting-down", rid)
        self.assertEqual(agent.wait_exit(10), 0)

    def _parked_start_answered_by(self, trigger, args=()):
        """Parks a start, shuts the agent down with trigger(agent), and
        checks the parked client gets its answer and the agent exits 0."""
        agent = self.start_agent(SERVICES, args=args)
        client = agent.client()
        self.call(client, "start", {"names": ["gate"]})
        parked = agent.client()
        rid = parked.send("start", {"names": ["after_gate"]})
        agent.wait_state("after_gate", "waiting")
        trigger(agent)
        reply = self.check_reply(parked.wait_reply(rid, 10), rid)
        self.assertError(reply, "shutting-down", rid)
        self.assertEqual(agent.wait_exit(10), 0)

    def test_parked_request_answered_on_sigterm(self):
        self._parked_start_answered_by(
            lambda agent: agent.proc.send_signal(signal.SIGTERM))

    def test_parked_request_answered_on_sigint(self):
        self._parked_start_answered_by(
            lambda agent: agent.proc.send_signal(signal.SIGINT))

    def test_parked_request_answered_when_the_last_lease_ends(self):
        leased = subprocess.Popen(["sleep", "1000"])
        self.addCleanup(lambda: leased.poll() is None and leased.kill())

        def end_lease(agent):
            leased.kill()
            leased.wait(5)
        self._parked_start_answered_by(end_lease,
                                       args=("--lease", str(leased.pid)))

    def test_requests_during_shutdown(self):
        """While services stop, the agent still answers: status works,
        start and restart are refused with shutting-down."""
        self.script("stubborn.sh", "trap '' TERM\necho ready\n"
                    "while :; do sleep 0.05; done\n")
        agent = self.start_agent('  stubborn: { command = "./stubborn.sh"; '
                                 'stop_timeout = 2.0; };\n')
        agent.wait_state("stubborn", "running")
        log = os.path.join(self.tmp, "logs", "stubborn.log")
        pmtest.wait_until(lambda: b"ready" in pmtest.read_bytes(log), 10,
                          what="stubborn ready")
        closer = agent.client()
        rid = closer.send("shutdown")
        agent.wait_state("stubborn", "stopping")
        client = agent.client()
        for cmd in ("start", "restart"):
            rid2 = client.send(cmd, {"names": ["stubborn"]})
            self.assertError(client.wait_reply(rid2, 10), "shutting-down",
                             rid2)
        reply = self.call(client, "status")
        self.assertTrue(reply["ok"])
        self.assertTrue(self.call(client, "hello")["ok"])
        reply = self.call(client, "signal", {"names": ["stubborn"],
                                             "signal": "CONT"})
        self.assertTrue(reply["ok"], reply)
        reply = self.call(client, "stop", {"names": ["stubborn"],
                                           "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["note"], "already-stopping")
        #  A second shutdown is answered too, when the first is.
        rid3 = client.send("shutdown")
        reply = self.check_reply(closer.wait_reply(rid, 15), rid)
        self.assertTrue(reply["ok"], reply)
        reply = self.check_reply(client.wait_reply(rid3, 15), rid3)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(agent.wait_exit(10), 0)

    def test_ids(self):
        agent = self.start_agent(SERVICES)
        client = agent.client()
        for rid in (0, 1, 2 ** 32, 2 ** 64 - 1):
            reply = client.wait_reply(client.send("hello", id=rid), 10)
            self.assertEqual(reply["id"], rid)
            self.assertTrue(reply["ok"])
        #  Duplicated names: one record each.
        reply = self.call(client, "status", {"names": ["a", "a", "b"]})
        self.assertEqual([r["name"] for r in reply["services"]], ["a", "b"])
        #  Over the limit of names in one request.
        rid = client.send("status", {"names": ["a"] * 5000})
        reply = client.wait_reply(rid, 10)
        self.assertError(reply, "too-large", rid)
        #  Unknown names are echoed as given, whatever they hold.
        rid = client.send("stop", {"names": ["caf\u00e9", "a b"]})
        reply = self.assertError(client.wait_reply(rid, 10),
                                 "unknown-service", rid)
        self.assertEqual(sorted(reply["error"]["names"]),
                         ["a b", "caf\u00e9"])

    def test_unknown_service_changes_nothing(self):
        agent = self.start_agent(SERVICES)
        client = agent.client()
        self.call(client, "start", {"names": ["gate"]})
        before = agent.status()
        for cmd, args in (("start", {"names": ["a", "x1", "b", "x2"]}),
                          ("stop", {"names": ["gate", "x1", "x2"]}),
                          ("restart", {"names": ["x1", "gate", "x2"]}),
                          ("signal", {"names": ["gate", "x1", "x2"],
                                      "signal": "KILL"})):
            rid = client.send(cmd, args)
            reply = self.assertError(client.wait_reply(rid, 10),
                                     "unknown-service", rid)
            self.assertEqual(sorted(reply["error"]["names"]), ["x1", "x2"],
                             reply)
            self.assertIn("x1", reply["error"]["message"])
            self.assertIn("x2", reply["error"]["message"])
        after = agent.status()
        for name in before:
            self.assertEqual((before[name]["state"], before[name]["pid"],
                              before[name]["seq"]),
                             (after[name]["state"], after[name]["pid"],
                              after[name]["seq"]), name)

    def test_names_or_all(self):
        agent = self.start_agent(SERVICES)
        client = agent.client()
        rid = client.send("start", {"names": ["a"], "all": True})
        self.assertError(client.wait_reply(rid, 10), "bad-request", rid)
        rid = client.send("start", {})
        self.assertError(client.wait_reply(rid, 10), "bad-request", rid)
        rid = client.send("stop")
        self.assertError(client.wait_reply(rid, 10), "bad-request", rid)
        self.assertEqual(agent.record("a")["state"], "inactive")
        #  all: results in the agent's start order, like status.
        order = [r["name"] for r in self.call(client, "status")["services"]]
        reply = self.call(client, "stop", {"all": True, "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual([r["name"] for r in reply["results"]], order)
        self.assertEqual({r["note"] for r in reply["results"]},
                         {"not-running"})

    def test_signal(self):
        agent = self.start_agent(SERVICES)
        client = agent.client()
        rid = client.send("signal", {"names": ["a"], "signal": "TERM"})
        reply = self.assertError(client.wait_reply(rid, 10), "not-running",
                                 rid)
        self.assertEqual(reply["results"][0]["name"], "a")
        self.assertFalse(reply["results"][0]["ok"])
        self.assertIn("not running", reply["results"][0]["error"])
        self.call(client, "start", {"names": ["a"]})
        pid = agent.record("a")["pid"]
        rid = client.send("signal", {"names": ["a"], "signal": "FOO"})
        self.assertError(client.wait_reply(rid, 10), "bad-signal", rid)
        rid = client.send("signal", {"names": ["a"], "signal": 99999})
        self.assertError(client.wait_reply(rid, 10), "bad-signal", rid)
        rid = client.send("signal", {"names": ["a"]})
        self.assertError(client.wait_reply(rid, 10), "bad-request", rid)
        self.assertTrue(pmtest.pid_alive(pid))
        reply = self.call(client, "signal", {"names": ["a"], "signal": 9})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"], [
            {"name": "a", "ok": True, "state": "running", "note": None,
             "error": None}])
        #  Ended by a signal asked for: stopped, not failed.
        record = agent.wait_state("a", ("stopped", "failed"))
        self.assertEqual(record["state"], "stopped")
        self.assertEqual(record["signal"], "SIGKILL")

    # -- logs and agent events -------------------------------------------

    def test_log_events_before_exit_event(self):
        """Every line a service wrote is published, in order, seq from 1,
        before the event of its exit."""
        self.script("lines.sh", 'i=1\nwhile [ $i -le 200 ]; do\n'
                    '  echo "out $i"\n  echo "err $i" >&2\n'
                    '  i=$((i+1))\ndone\nprintf "no newline"\n')
        agent = self.start_agent('  lines: { command = "./lines.sh"; '
                                 'autostart = false; };\n')
        sub = agent.subscribe("log/t/lines/", "state/t/lines/")
        reply = agent.request("start", {"names": ["lines"], "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        done = sub.wait_for(lambda e: e.get("new") == "completed",
                            what="lines completed")
        index = sub.events.index(done)
        logs = [e for e in sub.events[:index] if e["kind"] == "log"]
        late = [e for e in sub.events[index:] if e["kind"] == "log"]
        self.assertEqual(late, [], "log lines after the exit event")
        self.assertEqual([e["seq"] for e in logs], list(range(1, 402)))
        out = [e["line"] for e in logs if e["stream"] == "out"]
        err = [e["line"] for e in logs if e["stream"] == "err"]
        self.assertEqual(out, ["out %d" % i for i in range(1, 201)]
                         + ["no newline"])
        self.assertEqual(err, ["err %d" % i for i in range(1, 201)])
        for e in logs:
            self.assertEqual(e["v"], 1)
            self.assertEqual(e["agent"], "t")
            self.assertEqual(e["service"], "lines")
            self.assertEqual(e["topic"], "log/t/lines/%s/" % e["stream"])
            self.assertTrue(is_number(e["ts"]))
        #  And the file has them all.
        text = agent.service_log("lines").decode()
        self.assertEqual(sorted(text.splitlines()),
                         sorted(out + err))

    def test_restart_events_and_log_seq_across_runs(self):
        """A restart is one event per transition, seq going on from the
        first run; log lines keep counting across runs too."""
        self.script("three.sh", 'echo "one $$"\necho "two $$"\n'
                    'echo "three $$"\nexec sleep 1000\n')
        agent = self.start_agent('  three: { command = "./three.sh"; '
                                 'autostart = false; stop_timeout = 1.0; };\n')
        sub = agent.subscribe("state/t/three/", "log/t/three/")
        client = agent.client()
        self.assertTrue(self.call(client, "start", {"names": ["three"]})["ok"])
        sub.wait_for(lambda e: e.get("line", "").startswith("three"),
                     what="first run's output")
        reply = self.call(client, "restart", {"names": ["three"]})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["state"], "running")
        sub.wait_for(lambda e: e.get("line", "").startswith("three")
                     and e["seq"] > 3, what="second run's output")
        states = sub.state_events("three")
        self.assertEqual([(e["old"], e["new"]) for e in states], [
            ("inactive", "waiting"), ("waiting", "starting"),
            ("starting", "running"), ("running", "stopping"),
            ("stopping", "stopped"), ("stopped", "waiting"),
            ("waiting", "starting"), ("starting", "running")],
            sub.summary())
        self.assertEqual([e["seq"] for e in states], list(range(1, 9)))
        self.assertEqual(states[-1]["record"]["restarts"], 1)
        self.assertNotEqual(states[2]["record"]["pid"],
                            states[-1]["record"]["pid"])
        logs = [e for e in sub.events if e["kind"] == "log"]
        self.assertEqual([e["seq"] for e in logs], list(range(1, 7)))
        self.assertEqual([e["line"].split()[0] for e in logs],
                         ["one", "two", "three"] * 2)

    def test_two_subscribers_get_every_line(self):
        self.script("many.sh", 'i=0\nwhile [ $i -lt 3000 ]; do '
                    'echo "line $i"; i=$((i+1)); done\n')
        agent = self.start_agent('  many: { command = "./many.sh"; '
                                 'autostart = false; };\n')
        subs = [agent.subscribe("log/t/many/", "state/t/many/")
                for _ in range(2)]
        self.assertTrue(agent.request("start", {"names": ["many"],
                                                "wait": "none"})["ok"])
        for sub in subs:
            sub.wait_for(lambda e: e.get("new") == "completed", 30,
                         what="many completed")
            lines = [e for e in sub.events if e["kind"] == "log"]
            self.assertEqual([e["seq"] for e in lines],
                             list(range(1, 3001)))
            self.assertEqual([e["line"] for e in lines],
                             ["line %d" % i for i in range(3000)])

    def test_agent_events_on_shutdown(self):
        agent = self.start_agent(SERVICES)
        sub = agent.subscribe("agent/t/", "state/t/")
        client = agent.client()
        self.call(client, "start", {"names": ["a"]})
        reply = self.call(client, "shutdown")
        self.assertTrue(reply["ok"], reply)
        last = sub.wait_for(lambda e: e["kind"] == "agent"
                            and e["event"] == "shutdown",
                            what="agent shutdown event")
        agent_events = [e for e in sub.events if e["kind"] == "agent"]
        self.assertEqual([e["event"] for e in agent_events],
                         ["stopping", "shutdown"], sub.summary())
        #  The agent stream began with "started" (seq 1), before anyone
        #  could subscribe.
        self.assertEqual([e["seq"] for e in agent_events], [2, 3])
        for e in agent_events:
            self.assertEqual(e["topic"], "agent/t/")
            self.assertEqual(e["agent"], "t")
        #  The shutdown event is the last word: a stopped before it.
        self.assertLess(sub.events.index(sub.wait_for(
            lambda e: e.get("service") == "a" and e["new"] == "stopped")),
            sub.events.index(last))
        self.assertEqual(agent.wait_exit(10), 0)

    # -- malformed frames -------------------------------------------------

    def test_out_of_range_numbers(self):
        """A timeout past a year is refused (no float overflow turning it
        into an instant timeout); since at the top of the range returns no
        line (no wrap to the start)."""
        agent = self.start_agent(SERVICES)
        client = agent.client()
        reply = self.call(client, "wait", {"names": ["a"], "for": "running",
                                           "timeout": 1e300})
        self.assertEqual(reply["error"]["code"], "bad-request", reply)
        self.assertIn("args.timeout", reply["error"]["message"])
        self.call(client, "start", {"names": ["a"]})
        reply = self.call(client, "logs", {"names": ["a"],
                                           "since": 2 ** 64 - 1})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["logs"][0]["lines"], [])

    def test_malformed_frames(self):
        agent = self.start_agent(SERVICES)
        client = agent.client()
        self.call(client, "start", {"names": ["a"]})
        before = agent.status()
        cases = [
            #  (what, frame, expected code, id the reply must echo)
            ("empty frame", b"", "bad-request", 0),
            ("not msgpack", b"\xc1\xc1\xc1", "bad-request", 0),
            ("text", b"status please", "bad-request", 0),
            ("truncated map", pack({"v": 1, "id": 5, "cmd": "status"})[:-3],
             "bad-request", 0),
            ("trailing bytes", pack({"v": 1, "id": 6, "cmd": "hello"})
             + b"\x00", "bad-request", 0),
            ("array", pack([1, "id", 7]), "bad-request", 0),
            ("string", pack("hello"), "bad-request", 0),
            ("integer", pack(42), "bad-request", 0),
            ("nil", pack(None), "bad-request", 0),
            ("missing id", pack({"v": 1, "cmd": "hello"}), "bad-request", 0),
            ("id a string", pack({"v": 1, "id": "8", "cmd": "hello"}),
             "bad-request", 0),
            ("id negative", pack({"v": 1, "id": -8, "cmd": "hello"}),
             "bad-request", 0),
            ("id a float", pack({"v": 1, "id": 8.5, "cmd": "hello"}),
             "bad-request", 0),
            ("missing v", pack({"id": 9, "cmd": "hello"}), "bad-request", 9),
            ("v a string", pack({"v": "1", "id": 10, "cmd": "hello"}),
             "bad-request", 10),
            ("v=2", pack({"v": 2, "id": 11, "cmd": "hello"}),
             "bad-version", 11),
            ("v=0", pack({"v": 0, "id": 12, "cmd": "hello"}),
             "bad-version", 12),
            ("v=2 with keys of its own",
             pack({"id": 45, "v": 2, "cmd": "frob", "newkey": [1]}),
             "bad-version", 45),
            ("missing cmd", pack({"v": 1, "id": 13}), "bad-request", 13),
            ("cmd an integer", pack({"v": 1, "id": 14, "cmd": 3}),
             "bad-request", 14),
            ("unknown command", pack({"v": 1, "id": 15, "cmd": "frobnicate"}),
             "unknown-command", 15),
            ("unknown field", pack({"v": 1, "id": 16, "cmd": "hello",
                                    "extra": True}), "bad-request", 16),
            ("args an array", pack({"v": 1, "id": 17, "cmd": "status",
                                    "args": ["a"]}), "bad-request", 17),
            ("unknown arg", pack({"v": 1, "id": 18, "cmd": "status",
                                  "args": {"bogus": 1}}), "bad-request", 18),
            ("arg of another command",
             pack({"v": 1, "id": 19, "cmd": "hello",
                   "args": {"names": ["a"]}}), "bad-request", 19),
            ("names a string", pack({"v": 1, "id": 20, "cmd": "start",
                                     "args": {"names": "a"}}),
             "bad-request", 20),
            ("names of integers", pack({"v": 1, "id": 21, "cmd": "stop",
                                        "args": {"names": [1, 2]}}),
             "bad-request", 21),
            ("empty name", pack({"v": 1, "id": 22, "cmd": "stop",
                                 "args": {"names": [""]}}),
             "bad-request", 22),
            ("all a string", pack({"v": 1, "id": 23, "cmd": "stop",
                                   "args": {"all": "yes"}}),
             "bad-request", 23),
            ("wait unknown", pack({"v": 1, "id": 24, "cmd": "start",
                                   "args": {"names": ["a"],
                                            "wait": "forever"}}),
             "bad-request", 24),
            ("wait stopped for start",
             pack({"v": 1, "id": 25, "cmd": "start",
                   "args": {"names": ["a"], "wait": "stopped"}}),
             "bad-request", 25),
            ("timeout negative", pack({"v": 1, "id": 26, "cmd": "start",
                                       "args": {"names": ["a"],
                                                "timeout": -1.0}}),
             "bad-request", 26),
            ("timeout a string", pack({"v": 1, "id": 27, "cmd": "start",
                                       "args": {"names": ["a"],
                                                "timeout": "1"}}),
             "bad-request", 27),
            ("signal unknown", pack({"v": 1, "id": 28, "cmd": "signal",
                                     "args": {"names": ["a"],
                                              "signal": "SIGNOPE"}}),
             "bad-signal", 28),
            ("key not a string", pack({"v": 1, "id": 29, "cmd": "hello",
                                       1: 2}), "bad-request", 29),
            ("args nil", pack({"v": 1, "id": 32, "cmd": "status",
                               "args": None}), "bad-request", 32),
            ("nil for an optional argument",
             pack({"v": 1, "id": 33, "cmd": "start",
                   "args": {"names": ["a"], "timeout": None}}),
             "bad-request", 33),
            ("all as 1", pack({"v": 1, "id": 34, "cmd": "stop",
                               "args": {"all": 1}}), "bad-request", 34),
            ("timeout NaN", pack({"v": 1, "id": 35, "cmd": "start",
                                  "args": {"names": ["a"],
                                           "timeout": float("nan")}}),
             "bad-request", 35),
            ("timeout infinite", pack({"v": 1, "id": 36, "cmd": "start",
                                       "args": {"names": ["a"],
                                                "timeout": float("inf")}}),
             "bad-request", 36),
            ("wait of another command",
             pack({"v": 1, "id": 37, "cmd": "stop",
                   "args": {"names": ["a"], "wait": "running"}}),
             "bad-request", 37),
            ("argument twice",
             b"\x84\xa1v\x01\xa2id\x26\xa3cmd\xa6status\xa4args"
             b"\x82\xa5names\x91\xa1a\xa5names\x91\xa1a",
             "bad-request", 38),
            ("signal lower case", pack({"v": 1, "id": 39, "cmd": "signal",
                                        "args": {"names": ["a"],
                                                 "signal": "term"}}),
             "bad-signal", 39),
            ("signal 65", pack({"v": 1, "id": 41, "cmd": "signal",
                                "args": {"names": ["a"], "signal": 65}}),
             "bad-signal", 41),
            ("signal 0", pack({"v": 1, "id": 42, "cmd": "signal",
                               "args": {"names": ["a"], "signal": 0}}),
             "bad-signal", 42),
            ("signal a float", pack({"v": 1, "id": 43, "cmd": "signal",
                                     "args": {"names": ["a"],
                                              "signal": 15.0}}),
             "bad-request", 43),
            ("v given twice", b"\x84\xa1v\x01\xa2id\x2c\xa3cmd\xa5hello"
             b"\xa1v\x01", "bad-request", 44),
            ("id twice", b"\x84\xa1v\x01\xa2id\x1e\xa3cmd\xa5hello\xa2id\x1f",
             "bad-request", None),
            ("deep nesting", pack({"v": 1, "id": 31, "cmd": "status",
                                   "args": {"names": nested(200)}}),
             "bad-request", None),
        ]
        for what, frame, code, rid in cases:
            with self.subTest(what):
                reply = client.raw(frame, timeout=10)
                self.assertError(reply, code)
                if rid is not None:
                    self.assertEqual(reply["id"], rid, reply)
                #  A decoder error must not sneak in a successful part.
                self.assertNotIn("services", reply)
                self.assertNotIn("results", reply)
        #  Frames over the 1 MiB limit: too-large.
        big = pack({"v": 1, "id": 40, "cmd": "status",
                    "args": {"names": ["x" * (1536 * 1024)]}})
        self.assertGreater(len(big), 1024 * 1024)
        reply = client.raw(big, timeout=10)
        #  The decoder does not read an oversized frame: id 0.
        self.assertError(reply, "too-large", 0)
        #  A name over the target limit (257 bytes: service@agent), in a
        #  small frame.
        rid = client.send("status", {"names": ["n" * 258]})
        self.assertError(client.wait_reply(rid, 10), "too-large", rid)
        rid = client.send("status", {"names": ["n" * 257]})
        reply = self.assertError(client.wait_reply(rid, 10),
                                 "unknown-service", rid)
        self.assertEqual(reply["error"]["names"], ["n" * 257])
        #  Any msgpack integer width is fine for a uint: id as an int8.
        reply = client.raw(b"\x83\xa1v\x01\xa2id\xd0\x05\xa3cmd\xa5hello")
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["id"], 5)
        #  Signals by name, short name, number in a string, number; an
        #  int timeout: all fine (SIGCONT leaves the service as it is).
        for sig in ("SIGCONT", "CONT", "18", 18):
            reply = self.call(client, "signal", {"names": ["a"],
                                                 "signal": sig})
            self.assertTrue(reply["ok"], (sig, reply))
        rid = client.send("start", {"names": ["a"], "timeout": 5})
        self.assertTrue(client.wait_reply(rid, 10)["ok"])
        #  Still answering, with nothing changed.
        after = agent.status()
        self.assertEqual({n: (r["state"], r["pid"], r["seq"])
                          for n, r in before.items()},
                         {n: (r["state"], r["pid"], r["seq"])
                          for n, r in after.items()})
        self.assertTrue(self.call(client, "hello")["ok"])

    def test_huge_frame_drops_only_its_sender(self):
        """A frame far over the limit is cut off by the socket; the agent
        goes on answering everyone else."""
        agent = self.start_agent(SERVICES)
        rogue = agent.client()
        rogue.sock.send(b"\x00" * (5 * 1024 * 1024))
        client = agent.client()
        self.assertTrue(self.call(client, "hello")["ok"])
        self.assertTrue(agent.alive())

    def test_multiframe_dealer_request(self):
        """What precedes the last frame is envelope: a DEALER that sends an
        empty delimiter first gets it back, like a REQ."""
        agent = self.start_agent(SERVICES)
        client = agent.client()
        client.send_frames([b"", pack({"v": 1, "id": 77, "cmd": "hello"})])
        self.assertTrue(client.sock.poll(10000))
        frames = client.sock.recv_multipart()
        self.assertEqual(len(frames), 2, frames)
        self.assertEqual(frames[0], b"")
        reply = msgpack.unpackb(frames[1], raw=False)
        self.assertEqual(reply["id"], 77)
        self.assertTrue(reply["ok"])

    # -- other kinds of clients ------------------------------------------

    def test_req_client(self):
        agent = self.start_agent(SERVICES)
        req = agent.client(zmq.REQ)
        reply = self.call(req, "hello")
        self.assertTrue(reply["ok"])
        self.assertEqual(reply["agent"], "t")
        reply = self.call(req, "start", {"names": ["a"]})
        self.assertTrue(reply["ok"], reply)
        reply = self.call(req, "status", {"names": ["a"]})
        self.assertEqual(reply["services"][0]["state"], "running")
        #  A malformed frame through a REQ is answered through it too.
        reply = req.raw(b"\xc1")
        self.assertError(reply, "bad-request")
        reply = self.call(req, "stop", {"names": ["a"]})
        self.assertTrue(reply["ok"], reply)

    def test_many_clients(self):
        agent = self.start_agent(SERVICES)
        clients = [agent.client() for _ in range(20)]
        ids = [c.send("status", {"names": ["a"]}) for c in clients]
        ids2 = [c.send("hello") for c in clients]
        for c, rid, rid2 in zip(clients, ids, ids2):
            first = c.recv(10)
            second = c.recv(10)
            self.assertEqual(first["id"], rid)
            self.assertEqual(second["id"], rid2)
            self.assertEqual(first["services"][0]["name"], "a")
            self.assertEqual(second["agent"], "t")


if __name__ == "__main__":
    pmtest.main()
