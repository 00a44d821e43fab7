"""test_reload.py - `reload` and SIGHUP: a new config file, applied live

Drives the real pmd ($PMD) over the raw protocol only (pmctl is not
needed).  The reference is the header comment of agent/reload.c, DESIGN.md
"Updates" and proto/pm_proto.h (the reply's "reload" map: added, removed,
changed, restarted, updated_in_place, unchanged; error codes bad-config,
shutting-down).  Each test rewrites the config file between
requests, then sends {"v":1,"id":N,"cmd":"reload"} (or SIGHUP) and checks
the reply's lists, the states and pids through `status`, and the order of
state events through a synced subscriber:

- unchanged file: everything unchanged, no pid moves, no state event;
- added services: autostart ones start (dependencies first) and are in
  `results`, autostart = false stays inactive; one that cannot start makes
  the reply `failed` with its result, the lists still present;
- removed services: stopped (dependents first when they go together),
  their processes gone, no longer in status; a request parked on a
  removed service is answered, one parked on a kept service whose index
  moved is answered for the right service;
- changed command: new pid, dependents restarted after it (stop events
  dependents first, start events dependency first), others untouched; a
  changed service that is not up is only marked changed, and one in
  backoff starts with the new command when its delay is over;
- depends_on only: updated in place when the new dependency is up, else
  restarted, and the answer waits for the new dependency;
- settings only (log_format, stop_signal/stop_timeout, alive probe):
  updated in place, same pid, and the new settings take effect;
- invalid files (syntax error, unknown key, dangling dependency, cycle,
  removing a dependency of a kept service, an added service whose log
  file cannot be opened, a new agent.name or endpoint): bad-config with
  file:line where there is one, and nothing changed;
- a burst of requests from 5 other clients while reloads happen;
- SIGHUP, valid and invalid (the error in stderr and pmd.agent.log);
- 30 reloads in a row, toggling a setting and adding/removing a service;
- a reload while a previous reload's restart is not up (a readiness probe
  held by a flag file), for a request and for SIGHUP;
- `shutting-down` during a shutdown held open by a service ignoring TERM;
- a service removed while it is still stopping, added again at once: its
  new run must survive the end of the old one.
"""

import json
import os
import re
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import Deadline, pid_alive, wait_until  # noqa: E402

LISTS = ("added", "removed", "changed", "restarted", "updated_in_place",
         "unchanged")

#  A long-running service that stops at once on SIGTERM.
SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


def svc(name, body, deps=None):
    """One libconfig service line."""
    text = "  %s: { %s" % (name, body)
    if deps:
        text += " depends_on = { %s };" % " ".join(
            '%s = "%s";' % (d, c) for d, c in deps.items())
    return text + " };\n"


class ReloadTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        #  A one-shot that completes when the test creates gate.open.
        self.script("gate.sh", "while [ ! -e gate.open ]; do sleep 0.02; "
                    "done\necho opened\n")
        #  Ignores SIGTERM: only SIGKILL (after stop_timeout) ends it.
        self.script("stubborn.sh", "trap '' TERM\necho up\n"
                    "while :; do sleep 0.05; done\n")

    # -- helpers ----------------------------------------------------------

    def write_config(self, services, **kw):
        """Rewrites the config file in place (same path as the agent's)."""
        return self.config(services, **kw)

    def reload(self, agent, client=None, timeout=20.0):
        client = client or agent.default_client()
        return client.request("reload", timeout=timeout)

    def assertOk(self, reply, agent=None):
        if not reply.get("ok"):
            self.fail("reload refused: %r\n%s"
                      % (reply, agent.logs_tail() if agent else ""))

    def assertLists(self, reply, **expected):
        """The reply's reload map has exactly these lists (missing ones
        expected empty; "probe", the harness's service, is unchanged
        unless said otherwise)."""
        self.assertIn("reload", reply, reply)
        got = reply["reload"]
        self.assertEqual(set(got), set(LISTS), got)
        want = {k: sorted(expected.get(k, [])) for k in LISTS}
        if pmtest.PROBE not in sum((list(v) for v in expected.values()), []):
            want["unchanged"] = sorted(want["unchanged"] + [pmtest.PROBE])
        self.assertEqual({k: sorted(got[k]) for k in LISTS}, want,
                         "reload lists of %r" % (reply,))

    def assertError(self, reply, code):
        self.assertFalse(reply.get("ok"), reply)
        self.assertEqual(reply.get("error", {}).get("code"), code, reply)
        return reply["error"].get("message", "")

    def results(self, reply):
        """{name: (ok, state)} of the reply's results."""
        return {r["name"]: (r["ok"], r["state"])
                for r in reply.get("results") or []}

    def pids(self, agent):
        """{name: pid} of every service but the probe."""
        return {n: r["pid"] for n, r in agent.status().items()
                if n != pmtest.PROBE}

    def snapshot(self, agent):
        """What must not move when a reload is refused (the probe, which a
        subscriber's sync starts, is left out: it may still be finishing)."""
        return {n: (r["state"], r["pid"], r["seq"], r["restarts"],
                    r["command"], r["depends_on"])
                for n, r in agent.status().items() if n != pmtest.PROBE}

    def wait_gone(self, pids, timeout=10.0):
        pids = [p for p in pids if p]
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout,
                   what="processes %s to be gone" % pids)

    def index(self, order, item):
        try:
            return order.index(item)
        except ValueError:
            self.fail("%s not in %s" % (item, order))

    def assertBefore(self, order, first, second):
        self.assertLess(self.index(order, first), self.index(order, second),
                        "%s should come before %s in %s"
                        % (first, second, order))

    def no_reply_yet(self, client):
        return not client.sock.poll(0)

    def agent_log(self, agent):
        """stderr of pmd and <log_dir>/pmd.agent.log, as text."""
        return (pmtest.read_bytes(agent.stderr_path).decode("utf-8", "replace"),
                pmtest.read_bytes(self.path("logs", "pmd.agent.log"))
                .decode("utf-8", "replace"))

    # -- nothing to do ----------------------------------------------------

    def test_unchanged_file_changes_nothing(self):
        services = svc("a", SLEEP) + svc("b", SLEEP, {"a": "started"})
        agent = self.start_agent(services)
        agent.wait_state("b", "running")
        sub = agent.subscribe("state/t/", "agent/t/")
        before = self.snapshot(agent)
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, unchanged=["a", "b"])
        self.assertFalse(reply.get("results"), reply)
        event = sub.wait_for(lambda e: e.get("kind") == "agent"
                             and e.get("event") == "reload",
                             what="the agent's reload event")
        self.assertEqual(event["topic"], "agent/t/")
        self.assertIn("unchanged 3", event.get("message", ""))
        self.assertEqual(self.snapshot(agent), before)
        self.assertEqual(sub.state_events(), [])
        #  reload takes no arguments.
        reply = agent.request("reload", {"all": True})
        self.assertError(reply, "bad-request")
        self.assertEqual(self.snapshot(agent), before)

    # -- env files ----------------------------------------------------------

    def env_of(self, agent, name, key):
        """KEY's value in the environment service name started with."""
        pid = agent.record(name)["pid"]
        with open("/proc/%d/environ" % pid, "rb") as f:
            for entry in f.read().split(b"\0"):
                if entry.startswith(key.encode() + b"="):
                    return entry.split(b"=", 1)[1].decode()
        return None

    def test_env_files_precedence_and_reload(self):
        """agent environment < agent.env_file < the service's env_file <
        environment; a reload reads the files again and restarts only the
        services whose environment changed."""
        self.env["LAYER"] = "agent-environment"
        self.env["ONLY_AGENT_ENV"] = "kept"
        self.write_file("agent.env", "LAYER=agent-file\nSHARED=1\n")
        self.write_file("web.env", "LAYER=web-file\nREF=${SHARED}-x\n")
        services = (svc("web", SLEEP + ' env_file = ["web.env", "-none.env"];'
                         ' environment = { LAST = "environment"; };')
                    + svc("db", SLEEP)
                    + svc("top", SLEEP + ' env_file = "web.env";'
                          ' environment = { LAYER = "environment"; };'))
        agent = self.start_agent(config=self.config(
            services, agent_extra='env_file = "agent.env"; '))
        for name in ("web", "db", "top"):
            agent.wait_state(name, "running")
        self.assertEqual(self.env_of(agent, "web", "LAYER"), "web-file")
        self.assertEqual(self.env_of(agent, "db", "LAYER"), "agent-file")
        self.assertEqual(self.env_of(agent, "top", "LAYER"), "environment")
        self.assertEqual(self.env_of(agent, "web", "REF"), "1-x")
        self.assertEqual(self.env_of(agent, "web", "LAST"), "environment")
        self.assertEqual(self.env_of(agent, "db", "ONLY_AGENT_ENV"), "kept")
        pids = {n: agent.record(n)["pid"] for n in ("web", "db", "top")}
        #  web.env changes REF: web and top restart (top's LAYER stays
        #  "environment", but REF moved); db does not.
        self.write_file("web.env", "LAYER=web-file\nREF=${SHARED}-y\n")
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertEqual(sorted(reply["reload"]["changed"]), ["top", "web"])
        for name in ("web", "top"):
            agent.wait_state(name, "running")
        self.assertEqual(self.env_of(agent, "web", "REF"), "1-y")
        self.assertNotEqual(agent.record("web")["pid"], pids["web"])
        self.assertEqual(agent.record("db")["pid"], pids["db"])
        #  A missing required file is a bad config naming it; nothing
        #  changes.
        os.unlink(self.path("web.env"))
        reply = self.reload(agent)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "bad-config")
        self.assertIn("cannot read %s" % self.path("web.env"),
                      reply["error"]["message"])
        self.assertEqual(self.env_of(agent, "web", "REF"), "1-y")

    # -- added ------------------------------------------------------------

    def test_add_services(self):
        agent = self.start_agent(svc("a", SLEEP)
                                 + svc("dep", SLEEP + " autostart = false;"))
        agent.wait_state("a", "running")
        pid_a = agent.record("a")["pid"]
        sub = agent.subscribe("state/t/", "agent/t/")
        #  New ones first in the file: the kept services' indexes move.
        self.write_config(svc("n1", SLEEP)
                          + svc("n2", SLEEP + " autostart = false;")
                          + svc("n3", SLEEP, {"dep": "started"})
                          + svc("a", SLEEP)
                          + svc("dep", SLEEP + " autostart = false;"))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, added=["n1", "n2", "n3"],
                         unchanged=["a", "dep"])
        results = self.results(reply)
        self.assertEqual(results.get("n1"), (True, "running"), reply)
        self.assertEqual(results.get("n3"), (True, "running"), reply)
        self.assertNotIn("n2", results)
        status = agent.status()
        self.assertEqual(set(status), {"n1", "n2", "n3", "a", "dep",
                                       pmtest.PROBE})
        for name in ("n1", "n3", "dep"):
            self.assertEqual(status[name]["state"], "running", status[name])
            self.assertTrue(pid_alive(status[name]["pid"]), status[name])
        self.assertEqual(status["n2"]["state"], "inactive")
        self.assertIsNone(status["n2"]["pid"])
        self.assertEqual(status["a"]["pid"], pid_a)
        self.assertEqual(status["n3"]["depends_on"], {"dep": "started"})
        #  The dependency came up first.
        sub.wait_for(lambda e: e.get("service") == "n3"
                     and e.get("new") == "running", what="n3 running")
        order = sub.transitions()
        self.assertBefore(order, ("dep", "waiting", "starting"),
                          ("n3", "waiting", "starting"))
        self.assertEqual(sub.transitions("a"), [])
        self.assertEqual(sub.transitions("n2"), [])
        event = sub.wait_for(lambda e: e.get("event") == "reload",
                             what="the reload event")
        self.assertIn("added 3", event.get("message", ""))
        #  Added with autostart = false: starts on request, like any other.
        reply = agent.request("start", {"names": ["n2"]})
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(agent.record("n2")["state"], "running")

    def test_added_service_that_cannot_start(self):
        agent = self.start_agent(svc("a", SLEEP))
        agent.wait_state("a", "running")
        pid_a = agent.record("a")["pid"]
        self.write_config(svc("a", SLEEP)
                          + svc("good", SLEEP)
                          + svc("broken", 'command = "./does-not-exist";'))
        reply = self.reload(agent)
        self.assertError(reply, "failed")
        self.assertLists(reply, added=["good", "broken"], unchanged=["a"])
        results = self.results(reply)
        self.assertEqual(results.get("good"), (True, "running"), reply)
        self.assertEqual(results.get("broken"), (False, "failed"), reply)
        self.assertEqual(agent.record("a")["pid"], pid_a)
        self.assertEqual(agent.record("broken")["state"], "failed")
        #  The reload was applied all the same: a second one is a no-op.
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, unchanged=["a", "good", "broken"])

    # -- removed ----------------------------------------------------------

    def test_remove_services_dependents_stop_first(self):
        services = (svc("base", SLEEP) + svc("mid", SLEEP, {"base": "started"})
                    + svc("top", SLEEP, {"mid": "started"})
                    + svc("other", SLEEP))
        agent = self.start_agent(services)
        agent.wait_state("top", "running")
        agent.wait_state("other", "running")
        before = self.pids(agent)
        sub = agent.subscribe("state/t/")
        self.write_config(svc("other", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, removed=["base", "mid", "top"],
                         unchanged=["other"])
        self.assertFalse(reply.get("results"), reply)
        #  Gone from status at once, and unknown to commands.
        self.assertEqual(set(agent.status()), {"other", pmtest.PROBE})
        reply = agent.request("status", {"names": ["mid"]})
        self.assertEqual(reply.get("error", {}).get("code"),
                         "unknown-service", reply)
        self.wait_gone([before[n] for n in ("base", "mid", "top")])
        sub.wait_for(lambda e: e.get("service") == "base"
                     and e.get("new") == "stopped", what="base stopped")
        order = sub.transitions()
        #  Dependents first: each one is down before its dependency stops.
        self.assertBefore(order, ("top", "stopping", "stopped"),
                          ("mid", "running", "stopping"))
        self.assertBefore(order, ("mid", "stopping", "stopped"),
                          ("base", "running", "stopping"))
        self.assertEqual(sub.transitions("other"), [])
        self.assertEqual(agent.record("other")["pid"], before["other"])
        self.assertTrue(pid_alive(before["other"]))

    def test_removed_service_crashing_while_it_goes(self):
        """A removed service whose stop waits for a removed dependent (that
        ignores TERM) and that crashes meanwhile is not restarted by its
        policy: it is on its way out, and its dependency indexes belong to
        the old config (restarting it once crashed the agent)."""
        services = (svc("x", SLEEP) + svc("db", SLEEP)
                    + svc("a", 'command = "sleep 0.5; exit 1"; '
                          'restart = "on-failure"; backoff_initial = 0.2; '
                          'stop_timeout = 1.0;', {"db": "started"})
                    + svc("b", 'command = "./stubborn.sh"; stop_timeout = 3.0;',
                          {"a": "started"}))
        agent = self.start_agent(services)
        agent.wait_state("b", "running")
        a_first = agent.record("a")["pid"]
        self.write_config(svc("db", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, removed=["x", "a", "b"], unchanged=["db"])
        #  b holds a's stop for 3 s; a crashes within that time.
        self.wait_gone([a_first])
        wait_until(lambda: set(agent.status()) == {"db", pmtest.PROBE}, 10,
                   what="the removed services gone")
        self.assertIsNone(agent.proc.poll(), "pmd died")
        self.assertEqual(agent.record("db")["state"], "running")
        #  Nothing of a was started again.
        leftovers = [p for p, s in pmtest.descendants(agent.pid).items()
                     if s[0] != "Z" and "sleep 0.5" in " ".join(s[3:])]
        self.assertEqual(leftovers, [])

    def test_parked_requests_across_a_reload(self):
        """A start parked on a removed service is answered; one parked on a
        kept service (whose index moves) is answered for that service."""
        services = (svc("gate", 'command = "./gate.sh"; autostart = false;')
                    + svc("slow1", SLEEP + " autostart = false;",
                          {"gate": "completed"})
                    + svc("slow2", SLEEP + " autostart = false;",
                          {"gate": "completed"}))
        agent = self.start_agent(services)
        c1, c2 = agent.client(), agent.client()
        r1 = c1.send("start", {"names": ["slow1"]})
        r2 = c2.send("start", {"names": ["slow2"]})
        agent.wait_state("slow1", "waiting")
        agent.wait_state("slow2", "waiting")
        agent.wait_state("gate", "running")
        self.write_config(svc("aaa", SLEEP)
                          + svc("gate", 'command = "./gate.sh"; '
                                'autostart = false;')
                          + svc("slow1", SLEEP + " autostart = false;",
                                {"gate": "completed"}))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, added=["aaa"], removed=["slow2"],
                         unchanged=["gate", "slow1"])
        lost = c2.wait_reply(r2, 10)
        self.assertError(lost, "failed")
        self.assertTrue(self.no_reply_yet(c1))
        self.write_file("gate.open", "")
        done = c1.wait_reply(r1, 10)
        self.assertTrue(done.get("ok"), done)
        self.assertEqual(self.results(done), {"slow1": (True, "running")})
        self.assertEqual(agent.record("slow1")["state"], "running")
        self.assertEqual(agent.record("gate")["state"], "completed")

    # -- changed ----------------------------------------------------------

    def test_changed_command_restarts_it_and_its_dependents(self):
        def services(cmd_a):
            return (svc("a", 'command = "%s"; stop_timeout = 1.0;' % cmd_a)
                    + svc("b", SLEEP, {"a": "started"})
                    + svc("c", SLEEP, {"b": "started"})
                    + svc("d", SLEEP))
        agent = self.start_agent(services("sleep 1000"))
        for name in "abcd":
            agent.wait_state(name, "running")
        before = self.pids(agent)
        sub = agent.subscribe("state/t/", "agent/t/")
        self.write_config(services("sleep 1001"))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, changed=["a"], restarted=["a", "b", "c"],
                         unchanged=["d"])
        self.assertEqual(self.results(reply),
                         {n: (True, "running") for n in "abc"})
        status = agent.status()
        for name in "abc":
            self.assertEqual(status[name]["state"], "running")
            self.assertNotEqual(status[name]["pid"], before[name])
            self.assertTrue(pid_alive(status[name]["pid"]))
        self.assertEqual(status["a"]["command"], "sleep 1001")
        self.assertEqual(status["d"]["pid"], before["d"])
        self.wait_gone([before[n] for n in "abc"])
        sub.wait_for(lambda e: e.get("service") == "c"
                     and e.get("new") == "running", what="c running again")
        order = sub.transitions()
        #  Stops: dependents first.
        self.assertBefore(order, ("c", "stopping", "stopped"),
                          ("b", "running", "stopping"))
        self.assertBefore(order, ("b", "stopping", "stopped"),
                          ("a", "running", "stopping"))
        #  Starts: dependency first, after every stop.
        self.assertBefore(order, ("c", "stopping", "stopped"),
                          ("a", "waiting", "starting"))
        self.assertBefore(order, ("a", "waiting", "starting"),
                          ("b", "waiting", "starting"))
        self.assertBefore(order, ("b", "waiting", "starting"),
                          ("c", "waiting", "starting"))
        self.assertEqual(sub.transitions("d"), [])
        event = sub.wait_for(lambda e: e.get("event") == "reload",
                             what="the reload event")
        self.assertIn("restarted 3", event.get("message", ""))

    def test_changed_service_that_is_not_up(self):
        agent = self.start_agent(svc("x", SLEEP + " autostart = false;")
                                 + svc("k", SLEEP))
        agent.wait_state("k", "running")
        pid_k = agent.record("k")["pid"]
        self.write_config(svc("x", 'command = "sleep 1001"; '
                              'stop_timeout = 1.0; autostart = false;')
                          + svc("k", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, changed=["x"], unchanged=["k"])
        record = agent.record("x")
        self.assertEqual(record["state"], "inactive")
        self.assertIsNone(record["pid"])
        reply = agent.request("start", {"names": ["x"]})
        self.assertTrue(reply.get("ok"), reply)
        record = agent.record("x")
        self.assertEqual(record["command"], "sleep 1001")
        with open("/proc/%d/cmdline" % record["pid"], "rb") as f:
            self.assertIn(b"1001", f.read())
        self.assertEqual(agent.record("k")["pid"], pid_k)

    def test_changed_service_in_backoff(self):
        """No process to restart: the policy's next start uses the new
        command."""
        def services(cmd):
            return (svc("flaky", 'command = "%s"; stop_timeout = 1.0; '
                        'restart = "on-failure"; backoff_initial = 2.0; '
                        'backoff_max = 2.0; max_restarts = 0;' % cmd)
                    + svc("k", SLEEP))
        agent = self.start_agent(services("exit 3"))
        pid_k = agent.wait_state("k", "running")["pid"]
        agent.wait_state("flaky", "backoff")
        self.write_config(services("sleep 1000"))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, changed=["flaky"], unchanged=["k"])
        self.assertFalse(reply.get("results"), reply)
        self.assertEqual(agent.record("flaky")["state"], "backoff")
        record = agent.wait_state("flaky", "running", timeout=10)
        self.assertEqual(record["command"], "sleep 1000")
        self.assertTrue(pid_alive(record["pid"]))
        self.assertEqual(agent.record("k")["pid"], pid_k)

    def test_depends_on_only(self):
        gate = svc("gate", 'command = "./gate.sh"; autostart = false;')

        def services(deps):
            return (svc("a", SLEEP) + svc("c", SLEEP) + gate
                    + svc("b", SLEEP, deps))
        agent = self.start_agent(services({"a": "started"}))
        for name in "abc":
            agent.wait_state(name, "running")
        before = self.pids(agent)
        #  To a dependency that is up: in place.
        self.write_config(services({"c": "started"}))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, updated_in_place=["b"],
                         unchanged=["a", "c", "gate"])
        self.assertFalse(reply.get("results"), reply)
        self.assertEqual(self.pids(agent), before)
        self.assertEqual(agent.record("b")["depends_on"], {"c": "started"})
        #  To one that is not: restarted, and the answer waits for it.
        self.write_config(services({"gate": "completed"}))
        client = agent.client()
        rid = client.send("reload")
        agent.wait_state("gate", "running")
        record = agent.wait_state("b", "waiting")
        self.assertIsNone(record["pid"])
        self.wait_gone([before["b"]])
        self.assertTrue(self.no_reply_yet(client),
                        "reload answered before its restart was up")
        self.write_file("gate.open", "")
        reply = client.wait_reply(rid, 10)
        self.assertOk(reply, agent)
        self.assertLists(reply, restarted=["b"],
                         unchanged=["a", "c", "gate"])
        self.assertEqual(self.results(reply), {"b": (True, "running")})
        status = agent.status()
        self.assertEqual(status["gate"]["state"], "completed")
        self.assertEqual(status["b"]["state"], "running")
        self.assertNotEqual(status["b"]["pid"], before["b"])
        self.assertEqual(status["b"]["depends_on"], {"gate": "completed"})
        self.assertEqual(status["a"]["pid"], before["a"])
        self.assertEqual(status["c"]["pid"], before["c"])

    # -- settings only ----------------------------------------------------

    def test_log_format_in_place(self):
        self.script("chatty.sh", "i=0\nwhile :; do i=$((i+1)); echo tick $i; "
                    "sleep 0.02; done\n")

        def services(extra):
            return svc("chatty", 'command = "./chatty.sh"; '
                       'stop_timeout = 1.0;' + extra)
        agent = self.start_agent(services(""))
        pid = agent.wait_state("chatty", "running")["pid"]
        wait_until(lambda: agent.service_log("chatty").count(b"\n") >= 3, 10,
                   what="text lines in chatty.log")
        self.write_config(services(' log_format = "json";'))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, updated_in_place=["chatty"])
        self.assertEqual(agent.record("chatty")["pid"], pid)

        def parsed():
            lines = agent.service_log("chatty").split(b"\n")[:-1]
            out = []
            for line in lines:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append(line.decode("utf-8", "replace"))
            return out
        wait_until(lambda: sum(isinstance(x, dict) for x in parsed()) >= 5,
                   10, what="JSON lines in chatty.log")
        lines = parsed()
        first = next(i for i, x in enumerate(lines) if isinstance(x, dict))
        self.assertGreater(first, 0, "the text lines before the reload")
        ticks = []
        for x in lines[:first]:
            self.assertIsInstance(x, str)
            self.assertRegex(x, r"tick \d+$")
            ticks.append(int(x.split()[-1]))
        for x in lines[first:]:
            self.assertIsInstance(x, dict, "a text line after JSON began: %r"
                                  % (x,))
            self.assertEqual(x.get("service"), "chatty", x)
            self.assertRegex(x.get("line", ""), r"^tick \d+$")
            ticks.append(int(x["line"].split()[-1]))
        #  Not a line lost or repeated across the switch.
        self.assertEqual(ticks, list(range(ticks[0], ticks[0] + len(ticks))))
        self.assertEqual(agent.record("chatty")["pid"], pid)

    def test_stop_and_probe_settings_in_place(self):
        self.script("sig.sh", "trap 'echo got-INT; exit 0' INT\necho up\n"
                    "while :; do sleep 0.05; done\n")
        lively = ('command = "sleep 1000"; stop_timeout = 1.0; '
                  'alive = { exec = "%s"; interval = 0.1; failures = 1; };')
        agent = self.start_agent(
            svc("sig", 'command = "./sig.sh"; stop_timeout = 1.0;')
            + svc("lively", lively % "true"))
        before = {n: agent.wait_state(n, "running")["pid"]
                  for n in ("sig", "lively")}
        self.write_config(
            svc("sig", 'command = "./sig.sh"; stop_timeout = 3.0; '
                'stop_signal = "SIGINT"; restart = "on-failure";')
            + svc("lively", lively % "test ! -e dead.flag"))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, updated_in_place=["sig", "lively"])
        self.assertFalse(reply.get("results"), reply)
        self.assertEqual({n: agent.record(n)["pid"] for n in before}, before)
        for name in before:
            self.assertEqual(agent.record(name)["state"], "running")
        #  The new stop signal is used.
        reply = agent.request("stop", {"names": ["sig"]})
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(self.results(reply), {"sig": (True, "stopped")})
        wait_until(lambda: b"got-INT" in agent.service_log("sig"), 10,
                   what="sig.sh to report SIGINT")
        #  The new liveness probe runs.
        self.assertEqual(agent.record("lively")["pid"], before["lively"])
        self.write_file("dead.flag", "")
        record = agent.wait_state("lively", "failed")
        self.assertTrue(record.get("error"), record)
        self.wait_gone([before["lively"]])

    # -- refused ----------------------------------------------------------

    def test_invalid_files_change_nothing(self):
        good = (svc("a", SLEEP) + svc("b", SLEEP, {"a": "started"})
                + svc("x", SLEEP + " autostart = false;"))
        agent = self.start_agent(good)
        agent.wait_state("b", "running")
        sub = agent.subscribe("state/t/")
        before = self.snapshot(agent)
        path = agent.config
        #  Line 1 is agent, line 2 "services: {", services from line 3.
        cases = {
            "syntax error": ('  a: {\n    command = "sleep 1001";\n'
                             '    autostart = = false;\n  };\n', 5),
            "unknown key": ('  a: {\n    command = "sleep 1001";\n'
                            '    bogus = 1;\n  };\n', 5),
            "dangling dependency": ('  a: {\n    command = "sleep 1001";\n'
                                    '    depends_on = { nope = "started"; };'
                                    '\n  };\n', 5),
            "cycle": ('  a: {\n    command = "sleep 1001";\n'
                      '    depends_on = { b = "started"; };\n  };\n'
                      + svc("b", SLEEP, {"a": "started"}), 5),
        }
        for what, (text, line) in cases.items():
            with self.subTest(what):
                self.write_config(text + svc("new", SLEEP))
                message = self.assertError(self.reload(agent), "bad-config")
                self.assertIn("%s:" % path, message)
                self.assertRegex(message, r"%s:%d:" % (re.escape(path), line))
                self.assertEqual(self.snapshot(agent), before)
        sub.drain(0.1)
        self.assertEqual(sub.state_events(), [])
        #  The running config is still the old one.
        self.write_config(good)
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, unchanged=["a", "b", "x"])
        self.assertEqual(self.snapshot(agent), before)

    def test_removing_a_dependency_of_a_kept_service(self):
        agent = self.start_agent(svc("a", SLEEP)
                                 + svc("b", SLEEP, {"a": "started"}))
        agent.wait_state("b", "running")
        before = self.snapshot(agent)
        self.write_config(svc("b", SLEEP, {"a": "started"}))
        message = self.assertError(self.reload(agent), "bad-config")
        self.assertRegex(message, r"%s:3:" % re.escape(agent.config))
        self.assertIn("'a'", message)
        self.assertEqual(self.snapshot(agent), before)

    def test_added_service_whose_log_cannot_be_opened(self):
        agent = self.start_agent(svc("a", SLEEP))
        agent.wait_state("a", "running")
        before = self.snapshot(agent)
        self.write_file("plain", "not a directory\n")
        self.write_config(svc("a", 'command = "sleep 1001"; '
                              'stop_timeout = 1.0;')
                          + svc("ok", SLEEP)
                          + svc("n", SLEEP + ' log_file = "%s";'
                                % self.path("plain", "n.log")))
        message = self.assertError(self.reload(agent), "bad-config")
        self.assertIn(self.path("plain", "n.log"), message)
        self.assertEqual(self.snapshot(agent), before)

    def test_agent_identity_cannot_change(self):
        agent = self.start_agent(svc("a", SLEEP))
        agent.wait_state("a", "running")
        before = self.snapshot(agent)
        self.write_config(svc("a", SLEEP) + svc("n", SLEEP), agent_name="u")
        message = self.assertError(self.reload(agent), "bad-config")
        self.assertIn("agent.name", message)
        self.write_config(svc("a", SLEEP) + svc("n", SLEEP),
                          agent_extra='control = "ipc://%s"; '
                          % self.path("other.sock"))
        message = self.assertError(self.reload(agent), "bad-config")
        self.assertIn("agent.control", message)
        self.assertEqual(self.snapshot(agent), before)
        hello = agent.request("hello")
        self.assertEqual(hello.get("agent"), "t")
        self.assertEqual(hello.get("control"), agent.control)

    # -- under load -------------------------------------------------------

    def test_reload_under_a_burst_of_requests(self):
        users = ["u%d" % i for i in range(5)]

        def services(extra, timeout):
            text = svc("extra", SLEEP) if extra else ""
            text += svc("k1", SLEEP) + svc("k2", SLEEP, {"k1": "started"})
            text += svc("tog", 'command = "sleep 1000"; stop_timeout = %s;'
                        % timeout)
            for u in users:
                text += svc(u, SLEEP + " autostart = false;")
            return text
        agent = self.start_agent(services(False, "1.0"))
        for name in ("k1", "k2", "tog"):
            agent.wait_state(name, "running")
        kept = {n: agent.record(n)["pid"] for n in ("k1", "k2", "tog")}
        stop = threading.Event()
        errors = []
        cycles = [0] * len(users)
        clients = [agent.client() for _ in users]

        def work(i):
            client, me = clients[i], users[i]
            try:
                while not stop.is_set():
                    reply = client.request("start", {"names": [me]})
                    if not reply.get("ok") or self.results(reply) != {
                            me: (True, "running")}:
                        raise AssertionError("start %s: %r" % (me, reply))
                    reply = client.request("status")
                    records = {r["name"]: r for r in reply["services"]}
                    pid = records[me]["pid"]
                    for name, p in kept.items():
                        if records[name]["pid"] != p:
                            raise AssertionError("%s pid %s, was %s" % (
                                name, records[name]["pid"], p))
                    reply = client.request("status", {"names": [me]})
                    if reply["services"][0]["pid"] != pid:
                        raise AssertionError("%s pid moved: %r" % (me, reply))
                    reply = client.request("stop", {"names": [me]})
                    if not reply.get("ok") or self.results(reply) != {
                            me: (True, "stopped")}:
                        raise AssertionError("stop %s: %r" % (me, reply))
                    cycles[i] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("%s: %s" % (me, e))

        threads = [threading.Thread(target=work, args=(i,), daemon=True)
                   for i in range(len(users))]
        for t in threads:
            t.start()
        reloads = 0
        deadline = Deadline(25)
        try:
            while (reloads < 12 or min(cycles) < 3) and not errors:
                self.assertFalse(deadline.passed(),
                                 "burst did not progress: cycles %s, reloads "
                                 "%d" % (cycles, reloads))
                extra = reloads % 2 == 0
                self.write_config(services(extra, "2.0" if extra else "1.0"))
                reply = self.reload(agent)
                self.assertOk(reply, agent)
                self.assertEqual(sorted(reply["reload"]["added" if extra
                                                        else "removed"]),
                                 ["extra"])
                self.assertEqual(reply["reload"]["updated_in_place"], ["tog"])
                for name in users + ["k1", "k2"]:
                    self.assertIn(name, reply["reload"]["unchanged"])
                reloads += 1
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads),
                         "a client thread is stuck")
        self.assertEqual(errors, [])
        self.assertEqual({n: agent.record(n)["pid"] for n in kept}, kept)

    def test_many_reloads(self):
        def services(i):
            text = svc("extra", SLEEP) if i % 2 == 0 else ""
            return (text + svc("a", SLEEP) + svc("b", SLEEP, {"a": "ready"})
                    + svc("tog", 'command = "sleep 1000"; stop_timeout = 1.0;'
                          ' log_timestamps = %s;'
                          % ("true" if i % 2 == 0 else "false")))
        agent = self.start_agent(services(1))
        for name in ("a", "b", "tog"):
            agent.wait_state(name, "running")
        kept = {n: agent.record(n)["pid"] for n in ("a", "b", "tog")}
        sub = agent.subscribe("agent/t/")
        extras = []
        for i in range(30):
            self.write_config(services(i))
            reply = self.reload(agent)
            self.assertOk(reply, agent)
            if i % 2 == 0:
                self.assertLists(reply, added=["extra"],
                                 updated_in_place=["tog"],
                                 unchanged=["a", "b"])
                self.assertEqual(self.results(reply),
                                 {"extra": (True, "running")})
                #  Every re-added run is up with a pid of its own: the run
                #  removed just before must not take it down when it ends.
                pid = agent.record("extra")["pid"]
                self.assertTrue(pid, agent.record("extra"))
                extras.append(pid)
            else:
                self.assertLists(reply, removed=["extra"],
                                 updated_in_place=["tog"],
                                 unchanged=["a", "b"])
                self.assertNotIn("extra", agent.status())
            self.assertEqual({n: p for n, p in self.pids(agent).items()
                              if n in kept}, kept)
        self.assertEqual(len(set(extras)), len(extras))
        self.wait_gone(extras)
        sub.wait_for(lambda e: e.get("event") == "reload"
                     and len([x for x in sub.events
                              if x.get("event") == "reload"]) >= 30,
                     what="30 reload events")
        sub.drain(0.1)
        reloads = [e for e in sub.events if e.get("event") == "reload"]
        self.assertEqual(len(reloads), 30)
        seqs = [e["seq"] for e in reloads]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 30)))

    # -- SIGHUP -----------------------------------------------------------

    def test_sighup(self):
        agent = self.start_agent(svc("a", SLEEP))
        pid_a = agent.wait_state("a", "running")["pid"]
        sub = agent.subscribe("state/t/", "agent/t/")
        self.write_config(svc("a", SLEEP) + svc("hup", SLEEP))
        os.kill(agent.pid, signal.SIGHUP)
        event = sub.wait_for(lambda e: e.get("event") == "reload",
                             what="the reload event after SIGHUP")
        self.assertIn("added 1", event.get("message", ""))
        record = agent.wait_state("hup", "running")
        self.assertTrue(pid_alive(record["pid"]))
        self.assertEqual(agent.record("a")["pid"], pid_a)
        before = self.snapshot(agent)
        #  Invalid: nothing changes, the error is in the agent's log.
        self.write_config(svc("a", SLEEP) + svc("hup", SLEEP)
                          + '  bad: {\n    command = "true";\n'
                          '    bogus = 1;\n  };\n')
        where = "%s:7:" % agent.config
        os.kill(agent.pid, signal.SIGHUP)
        wait_until(lambda: all(where in text for text in
                               self.agent_log(agent)), 10,
                   what="the SIGHUP error in stderr and pmd.agent.log")
        for text in self.agent_log(agent):
            line = next(x for x in text.splitlines() if where in x)
            self.assertIn("bogus", line)
        self.assertTrue(agent.alive())
        self.assertEqual(self.snapshot(agent), before)
        self.assertEqual(len([e for e in sub.events
                              if e.get("event") == "reload"]), 1)
        #  The running config is the one SIGHUP loaded first.
        self.write_config(svc("a", SLEEP) + svc("hup", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, unchanged=["a", "hup"])

    # -- busy, shutting down ------------------------------------------------

    def test_reload_while_a_restart_is_coming_up(self):
        """A reload while an earlier one's restart is not up yet is applied
        too (never half): no reload can lock the next one out.  Both are
        answered once their services are running."""
        def services(cmd):
            return (svc("w", 'command = "%s"; stop_timeout = 1.0; '
                        'ready = { exec = "test -f w.flag"; interval = 0.1; '
                        'deadline = 30.0; };' % cmd)
                    + svc("k", SLEEP))
        self.write_file("w.flag", "")
        agent = self.start_agent(services("sleep 1000"))
        old = agent.wait_state("w", "running")["pid"]
        pid_k = agent.wait_state("k", "running")["pid"]
        os.unlink(self.path("w.flag"))
        self.write_config(services("sleep 1001"))
        first, second = agent.client(), agent.client()
        rid = first.send("reload")
        wait_until(lambda: agent.record("w")["state"] == "starting"
                   and agent.record("w")["pid"] not in (None, old), 10,
                   what="w restarted, not ready")
        self.assertTrue(self.no_reply_yet(first))
        #  A second reload is applied at once: n appears, w changes again.
        self.write_config(services("sleep 1002") + svc("n", SLEEP))
        rid2 = second.send("reload")
        agent.wait_state("n", "running")
        wait_until(lambda: "sleep 1002" in agent.record("w")["command"], 10,
                   what="w's new command")
        self.assertEqual(agent.record("k")["pid"], pid_k)
        self.assertTrue(self.no_reply_yet(first))
        #  Both are answered once w is ready.
        self.write_file("w.flag", "")
        reply = first.wait_reply(rid, 10)
        self.assertOk(reply, agent)
        self.assertLists(reply, changed=["w"], restarted=["w"],
                         unchanged=["k"])
        reply = second.wait_reply(rid2, 10)
        self.assertOk(reply, agent)
        self.assertLists(reply, added=["n"], changed=["w"], restarted=["w"],
                         unchanged=["k"])
        self.assertEqual(self.results(reply)["w"], (True, "running"))
        #  A SIGHUP then is applied the same way.
        self.write_config(services("sleep 1002"))
        os.kill(agent.pid, signal.SIGHUP)
        wait_until(lambda: "n" not in agent.status(), 10,
                   what="n removed by the SIGHUP reload")
        self.assertEqual(agent.record("k")["pid"], pid_k)

    def test_reload_during_shutdown(self):
        agent = self.start_agent(
            svc("stubborn", 'command = "./stubborn.sh"; stop_timeout = 30.0;')
            + svc("k", SLEEP))
        pid = agent.wait_state("stubborn", "running")["pid"]
        agent.wait_state("k", "running")
        sub = agent.subscribe("agent/t/")
        down = agent.client()
        rid = down.send("shutdown")
        sub.wait_for(lambda e: e.get("event") == "stopping",
                     what="the agent's stopping event")
        self.write_config(svc("stubborn", 'command = "./stubborn.sh"; '
                              'stop_timeout = 30.0;') + svc("n", SLEEP))
        try:
            reply = self.reload(agent, timeout=5)
        except AssertionError:
            reply = None
        if reply is not None:
            self.assertError(reply, "shutting-down")
        else:
            self.assertFalse(agent.alive(), "no answer, yet pmd is alive")
        #  Let the shutdown end: SIGKILL the stubborn group by its pgid.
        os.killpg(pid, signal.SIGKILL)
        self.assertTrue(down.wait_reply(rid, 15).get("ok"))
        self.assertEqual(agent.wait_exit(15), 0)
        sub.drain(0.1)
        self.assertFalse([e for e in sub.events
                          if e.get("event") == "reload"], sub.summary())

    # -- removed, then added again at once ----------------------------------

    def test_readded_while_the_removed_one_is_still_stopping(self):
        """The new run of a re-added service must not be killed when the
        old (removed, still stopping) run of the same name ends."""
        st = svc("st", 'command = "./stubborn.sh"; stop_timeout = 1.0;')
        agent = self.start_agent(st + svc("k", SLEEP))
        old = agent.wait_state("st", "running")["pid"]
        sub = agent.subscribe("state/t/st/")
        self.write_config(svc("k", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, removed=["st"], unchanged=["k"])
        self.assertTrue(pid_alive(old), "stubborn.sh ignores TERM")
        self.write_config(st + svc("k", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, added=["st"], unchanged=["k"])
        new = agent.record("st")["pid"]
        self.assertNotEqual(new, old)
        #  The old run ends (SIGKILL after its stop_timeout).
        sub.wait_for(lambda e: e.get("new") == "stopped"
                     and e.get("old") == "stopping", 10,
                     what="the old st run stopped")
        self.wait_gone([old])
        agent.request("hello")          # a round trip: that turn is over
        sub.drain(0.5)
        starts = [i for i, e in enumerate(sub.events)
                  if e.get("new") == "starting"]
        self.assertTrue(starts, sub.summary())
        #  After the new run began, nothing may leave "running".
        ended = [e for e in sub.events[starts[-1]:]
                 if e.get("old") == "running"]
        record = agent.record("st")
        self.assertEqual((record["state"], record["pid"]), ("running", new),
                         "the new st run was ended when the old one "
                         "stopped: %r; events %s\n%s"
                         % (record, sub.summary(), agent.logs_tail()))
        self.assertTrue(pid_alive(new))
        self.assertEqual(ended, [])
        #  One stream per service name: its seq goes up by one across the
        #  removal and the return.
        seqs = [e["seq"] for e in sub.events if "seq" in e]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
                         sub.summary())

    def test_readded_after_removal_continues_its_streams(self):
        """A service removed (and gone) then added again continues its
        state and log sequence numbers instead of starting again at 1."""
        talk = svc("talk", 'command = "echo hello; exec sleep 1000";')
        agent = self.start_agent(talk + svc("k", SLEEP))
        pid = agent.wait_state("talk", "running")["pid"]
        before = agent.record("talk")["seq"]
        logs = agent.request("logs", {"names": ["talk"]})["logs"][0]
        sub = agent.subscribe("state/t/talk/", "log/t/talk/")
        self.write_config(svc("k", SLEEP))
        self.assertOk(self.reload(agent), agent)
        self.wait_gone([pid])
        sub.wait_for(lambda e: e.get("kind") == "state"
                     and e.get("new") == "stopped", 10, what="talk stopped")
        self.write_config(talk + svc("k", SLEEP))
        reply = self.reload(agent)
        self.assertOk(reply, agent)
        self.assertLists(reply, added=["talk"], unchanged=["k"])
        sub.wait_for(lambda e: e.get("kind") == "log", 10,
                     what="talk's first line after its return")
        states = [e["seq"] for e in sub.events if e.get("kind") == "state"]
        lines = [e["seq"] for e in sub.events if e.get("kind") == "log"]
        #  From its last event before the removal on, one stream: stopping,
        #  stopped, then waiting, starting, running of the new run.
        self.assertEqual(states, list(range(before + 1,
                                            before + 1 + len(states))),
                         sub.summary())
        self.assertGreaterEqual(len(states), 5, sub.summary())
        self.assertEqual(lines[0], logs["last"] + 1, sub.summary())

    def test_pmctl_reload(self):
        """pmctl reload prints what happened to each service and exits 0;
        with a file that no longer parses (so agent.name cannot be read),
        pmctl still finds the agent and reports the error (exit 2), and
        nothing changes."""
        agent = self.start_agent(svc("db", SLEEP) + svc("api", SLEEP))
        pid = agent.wait_state("db", "running")["pid"]
        agent.wait_state("api", "running")
        self.write_config(svc("db", SLEEP)
                          + svc("api", SLEEP + ' stop_signal = "SIGINT";'))
        rc, out, err = self.run_pmctl("reload")
        self.assertEqual(rc, 0, err)
        self.assertIn("updated in place api", " ".join(out.split()), out)
        self.assertIn("unchanged", out)
        with open(agent.config, "w") as f:
            f.write('agent: { name = "t"; };\nservices: {\n  db: {\n')
        rc, out, err = self.run_pmctl("reload")
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("syntax error", err)
        self.assertIn(":4:", err)
        self.assertEqual(agent.record("db")["pid"], pid)
        rc, out, err = self.run_pmctl("status")
        self.assertEqual(rc, 0, err)
        self.assertIn("db", out)


if __name__ == "__main__":
    pmtest.main()
