"""test_broker.py - pmbroker with several real agents

Drives the real pmbroker, pmd and pmctl: three agents (a1, a2, a3)
register with a broker over ipc (and, in one test, over loopback TCP with
CURVE keys); pmctl --connect talks to the broker.  Checked here:

- `agents` lists every agent, connected; `status` through the broker is
  one table with an AGENT column and every record carries its agent;
- names are checked across agents before anything is done: service@agent,
  a bare name only when one agent has it (else `ambiguous` listing the
  candidates), unknown services and unknown agents listed whole (exit 2),
  and the agents then were sent nothing;
- start, stop and restart through the broker act on the right agent and
  name their targets service@agent;
- every message an agent publishes reaches the broker's subscribers with
  topic and body unchanged;
- an agent stopped with SIGSTOP is unreachable within three heartbeats
  (agent/<name>/ event, agent-unreachable, exit 3) and connected again
  after SIGCONT; a request waiting on an agent that is killed is answered
  agent-unreachable at once, not at its timeout;
- a second agent with a live agent's name is refused (both logs say so),
  a new process of a dead one takes the name over;
- a restarted broker has every agent back within three heartbeats;
- TCP with CURVE: three agents with their own keys serve every command
  and logs -f through the broker; a wrong server key, an unknown key
  and an agent key used as a client get exit 3 ("security handshake
  failed"); the roles hold (a client key cannot register an agent); an
  agent killed with SIGKILL while a start through the broker waits on it
  answers that start agent-unreachable at once;
- pmbroker --daemon returns once bound, holds its runtime directory's
  lock (a second broker of the name exits 3), takes over what a killed
  one left, and removes its files on SIGTERM;
- malformed frames on every broker socket change nothing.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zmq  # noqa: E402

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402

HEARTBEAT = 0.2
SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


class BrokerTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        self.broker = None
        self.extra = []          # other processes we started, by Popen
        self.addCleanup(self._stop_ours)

    def _stop_ours(self):
        clean = None
        for proc in [self.broker] + self.extra:
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait(5)
                if proc is self.broker:
                    clean = code
        #  A broker stopped by SIGTERM exits 0 (and, in a sanitizer
        #  build, with nothing to report).
        if clean not in (None, 0):
            self.fail("pmbroker exited %s on SIGTERM:\n%s"
                      % (clean, self.broker_log()[-3000:]))

    # -- helpers ----------------------------------------------------------

    def broker_config(self, tcp=False):
        if tcp:
            self.ports = [pmtest.free_port() for _ in range(3)]
            endpoints = ["tcp://127.0.0.1:%d" % p for p in self.ports]
            curve = ('curve = { secret_key = "keys/broker_secret"; '
                     'clients = "keys/clients"; agents = "keys/agents"; };')
        else:
            endpoints = ["ipc://%s" % self.path(n)
                         for n in ("bc.sock", "be.sock", "ba.sock")]
            curve = ""
        self.control, self.events, self.agents_at = endpoints
        return self.write_file("broker.cfg", (
            'broker: { name = "lab"; control = "%s"; events = "%s"; '
            'agents = "%s"; heartbeat = %g; %s };\n'
            % (self.control, self.events, self.agents_at, HEARTBEAT, curve)))

    def start_broker(self, config):
        log = open(self.path("broker.log"), "ab")
        self.broker = subprocess.Popen([pmtest.PMBROKER, "-c", config],
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=log, env=self.env)
        log.close()
        wait_until(lambda: "started" in self.broker_log(), 10,
                   what="the broker started")
        return self.broker

    def broker_log(self):
        return pmtest.read_bytes(self.path("broker.log")).decode(
            errors="replace")

    def agent_config(self, name, extra_agent=""):
        services = ('  web: { %s };\n  only_%s: { %s };\n'
                    % (SLEEP, name, SLEEP))
        return self.config(services, name="%s.cfg" % name, agent_name=name,
                           agent_extra='broker = { endpoint = "%s"; %s }; '
                           % (self.agents_at, extra_agent))

    def start_agents(self, names=("a1", "a2", "a3")):
        agents = {}
        for name in names:
            agents[name] = self.start_agent(config=self.agent_config(name),
                                            name=name)
        for name in names:
            agents[name].wait_state("web", "running")
        wait_until(lambda: all(self.connected().get(n) for n in names), 10,
                   what="every agent registered")
        return agents

    def via(self, *args, timeout=30.0, key=None):
        argv = [pmtest.PMCTL, "--connect", self.control]
        if key:
            argv += ["--server-key", self.path("keys", "broker"),
                     "--key", self.path("keys", key + "_secret")]
        done = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=self.env,
                              timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def connected(self):
        """{agent: connected?} from the broker's `agents`."""
        code, out, err = self.via("agents", "--json")
        if code != 0:
            return {}
        return {a["name"]: a["state"] == "connected"
                for a in json.loads(out).get("agents", [])}

    def broker_sub(self, *prefixes):
        sub = self.track(self.context.socket(zmq.SUB))
        sub.linger = 0
        for prefix in prefixes:
            sub.subscribe(prefix.encode())
        sub.connect(self.events)
        return sub

    def broker_sync(self, sub, agent, timeout=10.0):
        """Returns once sub's subscriptions are live at the broker: it
        subscribes to agent's probe service too (last, on the same pipe),
        and starts the probe through the broker until one of its state
        messages arrives (see pmtest.Subscriber.sync)."""
        topic = ("state/%s/%s/" % (agent, pmtest.PROBE)).encode()
        sub.subscribe(topic)
        deadline = pmtest.Deadline(timeout)
        while True:
            self.assertFalse(deadline.passed(), "subscription not live")
            self.assertEqual(self.via("start", "--wait", "none", "%s@%s"
                                      % (pmtest.PROBE, agent))[0], 0)
            if sub.poll(200):
                frames = sub.recv_multipart()
                if frames[0].startswith(topic):
                    break
        sub.unsubscribe(topic)

    def collect(self, sub, until, timeout=10.0):
        """(topic, body) pairs from sub until until(pairs) holds."""
        pairs = []
        deadline = pmtest.Deadline(timeout)
        while not until(pairs):
            self.assertFalse(deadline.passed(), "only %r" % pairs)
            if sub.poll(50):
                pairs.append(tuple(sub.recv_multipart()))
        return pairs

    # -- tests ------------------------------------------------------------

    def test_agents_status_and_names_checked_first(self):
        self.start_broker(self.broker_config())
        agents = self.start_agents()
        code, out, err = self.via("agents")
        self.assertEqual(code, 0, err)
        for name in agents:
            self.assertRegex(out, r"(?m)^%s\s+connected" % name)

        code, out, err = self.via("status")
        self.assertEqual(code, 0, err)
        self.assertRegex(out.splitlines()[0], r"^AGENT\s+NAME\s+STATE")
        for name in agents:
            self.assertRegex(out, r"(?m)^%s\s+web\s+running" % name)
            self.assertRegex(out, r"(?m)^%s\s+only_%s\s+running"
                             % (name, name))
        code, out, err = self.via("status", "--json")
        records = json.loads(out)["services"]
        self.assertEqual(sorted((r["agent"], r["name"]) for r in records),
                         sorted((a, s) for a in agents
                                for s in ("web", "only_" + a, "probe")))

        code, out, err = self.via("status", "web@a2", "only_a1")
        self.assertEqual(code, 0, err)
        rows = [l.split()[:2] for l in out.splitlines()[1:]]
        self.assertEqual(rows, [["a1", "only_a1"], ["a2", "web"]])

        #  Ambiguous, unknown: exit 2, every name listed, nothing done.
        pids = {n: agents[n].record("web")["pid"] for n in agents}
        code, out, err = self.via("--json", "stop", "web")
        self.assertEqual(code, 2, out + err)
        reply = json.loads(out)
        self.assertEqual(reply["error"]["code"], "ambiguous")
        self.assertEqual(sorted(reply["error"]["names"]),
                         ["web@a1", "web@a2", "web@a3"])
        code, out, err = self.via("--json", "stop", "web@a1", "nosuch",
                                  "x@zz", "web@nobody")
        self.assertEqual(code, 2, out + err)
        reply = json.loads(out)
        self.assertEqual(reply["error"]["code"], "unknown-agent")
        self.assertEqual(sorted(reply["error"]["names"]), ["nobody", "zz"])
        self.assertIn("nosuch", reply["error"]["message"])
        for name in agents:
            self.assertEqual(agents[name].record("web")["state"], "running")
            self.assertEqual(agents[name].record("web")["pid"], pids[name])

        #  Acting on the right agents, naming targets service@agent.
        code, out, err = self.via("restart", "web@a1", "only_a2")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^web@a1\s+running")
        self.assertRegex(out, r"(?m)^only_a2@a2\s+running")
        self.assertNotEqual(agents["a1"].record("web")["pid"], pids["a1"])
        self.assertEqual(agents["a2"].record("web")["pid"], pids["a2"])
        self.assertEqual(agents["a3"].record("web")["pid"], pids["a3"])
        code, out, err = self.via("stop", "web@a3")
        self.assertEqual(code, 0, err)
        self.assertEqual(agents["a3"].record("web")["state"], "stopped")
        code, out, err = self.via("start", "--wait", "running", "web@a3")
        self.assertEqual(code, 0, err)
        self.assertEqual(agents["a3"].record("web")["state"], "running")

    def test_events_reach_subscribers_unchanged(self):
        self.start_broker(self.broker_config())
        agents = self.start_agents(("a1", "a2"))
        through = self.broker_sub("state/a2/web/")
        direct = self.track(self.context.socket(zmq.SUB))
        direct.linger = 0
        direct.subscribe(b"state/a2/web/")
        direct.connect(agents["a2"].events)
        #  Both subscriptions are live once an event comes through each.
        deadline = pmtest.Deadline(10)
        seen = []
        while not seen:
            self.assertFalse(deadline.passed(), "no event through the broker")
            self.assertEqual(self.via("restart", "web@a2")[0], 0)
            seen = self.collect(through, lambda p: p, timeout=1.0) \
                if through.poll(1000) else []
        while direct.poll(200):
            direct.recv_multipart()
        while through.poll(200):
            through.recv_multipart()
        self.assertEqual(self.via("restart", "web@a2")[0], 0)
        done = lambda p: any(b"running" in body and b"starting" in body
                             for _, body in p)
        got_direct = self.collect(direct, done)
        got_through = self.collect(through,
                                   lambda p: len(p) >= len(got_direct))
        self.assertEqual(got_through[:len(got_direct)], got_direct)
        #  Nothing of a1's: the broker forwarded the prefix, not more.
        self.assertTrue(all(t.startswith(b"state/a2/web/")
                            for t, _ in got_through))

    def test_unreachable_within_three_heartbeats_and_back(self):
        self.start_broker(self.broker_config())
        agents = self.start_agents(("a1", "a2"))
        sub = self.broker_sub("agent/a2/")
        self.broker_sync(sub, "a2")
        stopped = time.monotonic()
        os.kill(agents["a2"].pid, signal.SIGSTOP)
        try:
            wait_until(lambda: self.connected().get("a2") is False, 5,
                       interval=0.02, what="a2 unreachable")
            took = time.monotonic() - stopped
            #  Three heartbeats, and the broker's half-heartbeat check.
            self.assertLess(took, 3.5 * HEARTBEAT + 0.5)
            pairs = self.collect(sub, lambda p: any(b"unreachable" in b
                                                    for _, b in p))
            self.assertTrue(pairs[-1][0].startswith(b"agent/a2/"))
            code, out, err = self.via("status", "web@a2")
            self.assertEqual(code, 3, out + err)
            self.assertIn("agent-unreachable", err)
            code, out, err = self.via("status", "only_a2")
            self.assertEqual(code, 3, out + err)
            #  The others are served meanwhile.
            code, out, err = self.via("status", "web@a1")
            self.assertEqual(code, 0, err)
        finally:
            os.kill(agents["a2"].pid, signal.SIGCONT)
        wait_until(lambda: self.connected().get("a2") is True, 5,
                   what="a2 connected again")
        self.collect(sub, lambda p: any(b"connected" in b for _, b in p))
        self.assertEqual(self.via("status", "web@a2")[0], 0)

    def test_waiting_request_answered_when_its_agent_dies(self):
        self.start_broker(self.broker_config())
        agents = self.start_agents(("a1", "a3"))
        waiter = subprocess.Popen(
            [pmtest.PMCTL, "--connect", self.control, "--json", "wait",
             "web@a3", "--for", "stopped", "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env)
        self.extra.append(waiter)
        wait_until(lambda: "request" in agents["a3"].logs_tail(50)
                   and "wait" in agents["a3"].logs_tail(50), 10,
                   what="the wait reached a3")
        killed = time.monotonic()
        agents["a3"].proc.kill()
        agents["a3"].proc.wait(10)
        out, err = waiter.communicate(timeout=30)
        took = time.monotonic() - killed
        self.assertEqual(waiter.returncode, 3, out + err)
        self.assertLess(took, 3.5 * HEARTBEAT + 2.0)
        reply = json.loads(out)
        self.assertEqual(reply["error"]["code"], "agent-unreachable")
        self.assertIn("outcome unknown", reply["error"]["message"])
        self.assertEqual(reply["error"]["names"], ["a3"])
        #  A new process of a3 takes its name over, with fresh records.
        fresh = self.start_agent(config=agents["a3"].config, name="a3")
        fresh.wait_state("web", "running")
        wait_until(lambda: self.connected().get("a3") is True, 10,
                   what="the new a3 registered")
        code, out, err = self.via("status", "--json", "web@a3")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["services"][0]["pid"],
                         fresh.record("web")["pid"])

    def test_logs_follow_through_a_broker_restart(self):
        """pmctl logs -f and events -f through the broker merge the agents;
        across a broker restart every line arrives exactly once, in
        order, per agent."""
        config = self.broker_config()
        self.start_broker(config)
        tick = ('  tick: { command = "i=0; while true; do i=$((i+1)); '
                'echo n=$i; sleep 0.02; done"; stop_timeout = 1.0; };\n')
        agents = {}
        for name in ("a1", "a2"):
            agents[name] = self.start_agent(config=self.config(
                tick, name="%s.cfg" % name, agent_name=name,
                agent_extra='broker = { endpoint = "%s"; }; '
                % self.agents_at), name=name)
        wait_until(lambda: self.connected() == {"a1": True, "a2": True},
                   10, what="both registered")
        out_path = self.path("follow.out")
        out = open(out_path, "w")
        follower = subprocess.Popen(
            [pmtest.PMCTL, "--connect", self.control, "logs", "-f", "-n",
             "0"], stdout=out, stderr=subprocess.PIPE, text=True,
            env=self.env)
        out.close()
        self.extra.append(follower)

        def numbers():
            got = {"a1": [], "a2": []}
            for line in pmtest.read_bytes(out_path).decode().splitlines():
                name, _, text = line.partition(" | ")
                service, _, agent = name.strip().partition("@")
                if service == "tick" and text.startswith("n="):
                    got[agent].append(int(text[2:]))
            return got

        wait_until(lambda: all(len(v) > 10 for v in numbers().values()), 10,
                   what="lines of both agents")
        self.broker.send_signal(signal.SIGTERM)
        self.assertEqual(self.broker.wait(10), 0)
        #  Lines go on being written while the broker is away (both
        #  agents' configs are in one directory: one logs/tick.log).
        written = agents["a1"].service_log("tick").count(b"\n")
        wait_until(lambda: agents["a1"].service_log("tick").count(b"\n")
                   > written + 40, 10, what="40 lines written meanwhile")
        before = {k: len(v) for k, v in numbers().items()}
        self.start_broker(config)
        wait_until(lambda: all(len(numbers()[k]) > before[k] + 40
                               for k in before), 20,
                   what="lines after the restart")
        follower.send_signal(signal.SIGINT)
        follower.wait(10)
        for agent, values in numbers().items():
            self.assertEqual(values, list(range(values[0],
                                                values[0] + len(values))),
                             "%s: lines lost, doubled or out of order"
                             % agent)

    def test_follow_across_an_agent_restart(self):
        """An agent that restarts behind the broker numbers its lines from
        1 again, under a new instance: logs -f and events -f through the
        broker show the new run from its first line, not drop it as lines
        already printed."""
        self.start_broker(self.broker_config())
        tick = ('  tick: { command = "i=0; while true; do i=$((i+1)); '
                'echo n=$i; sleep 0.01; done"; stop_timeout = 1.0; };\n')
        config = self.config(tick, name="a1.cfg", agent_name="a1",
                             agent_extra='broker = { endpoint = "%s"; }; '
                             % self.agents_at)
        first = self.start_agent(config=config, name="a1")
        wait_until(lambda: self.connected().get("a1") is True, 10,
                   what="a1 registered")
        code, out, err = self.via("ping", "--agent", "a1", "--json")
        self.assertEqual(code, 0, err)
        old_instance = json.loads(out)["instance"]
        out_path = self.path("follow.out")
        err_path = self.path("follow.err")
        events_path = self.path("events.out")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            follower = subprocess.Popen(
                [pmtest.PMCTL, "--connect", self.control, "logs", "-f",
                 "-n", "0", "tick"], stdout=out, stderr=err, env=self.env)
        self.extra.append(follower)
        with open(events_path, "w") as out:
            watcher = subprocess.Popen(
                [pmtest.PMCTL, "--connect", self.control, "events", "-f",
                 "tick"], stdout=out, stderr=subprocess.DEVNULL,
                env=self.env)
        self.extra.append(watcher)

        def runs():
            """The numbers printed, cut where they start again at 1."""
            got = []
            for line in pmtest.read_bytes(out_path).decode().splitlines():
                _, _, text = line.partition(" | ")
                text = text or line
                if text.startswith("n="):
                    n = int(text[2:])
                    if n == 1 or not got:
                        got.append([])
                    got[-1].append(n)
            return got

        #  The first run well past where the second one will be followed
        #  from: without instances, those lines would count as printed.
        wait_until(lambda: runs() and runs()[-1][-1] > 300, 20,
                   what="300 lines of the first run")
        self.assertEqual(first.request("shutdown").get("ok"), True)
        self.assertEqual(first.wait_exit(10), 0)
        second = self.start_agent(config=config, name="a1")
        wait_until(lambda: len(runs()) >= 2 and len(runs()[-1]) > 100, 20,
                   what="100 lines of the second run")
        code, out, err = self.via("ping", "--agent", "a1", "--json")
        self.assertEqual(code, 0, err)
        self.assertNotEqual(json.loads(out)["instance"], old_instance)
        #  Records through the broker carry the instance too.
        code, out, err = self.via("status", "--json")
        self.assertEqual(code, 0, err)
        self.assertEqual({r["instance"] for r in json.loads(out)["services"]},
                         {json.loads(self.via("ping", "--agent", "a1",
                                              "--json")[1])["instance"]})
        follower.send_signal(signal.SIGINT)
        self.assertEqual(follower.wait(10), 0)
        every = runs()
        self.assertEqual(len(every), 2, [r[:3] for r in every])
        for run in every:
            #  The first run was followed from where logs -f started; the
            #  second from its first line; each consecutive.
            self.assertEqual(run, list(range(run[0], run[0] + len(run))))
        self.assertEqual(every[1][0], 1)
        self.assertIn("restarted", pmtest.read_bytes(err_path).decode())
        #  events -f: the second run's transitions are shown (their seq
        #  starts at 1 again), not dropped as seen already.
        def second_run_shown():
            lines = [l for l in pmtest.read_bytes(events_path).decode()
                     .splitlines() if " seq=" in l]
            seqs = [int(l.rsplit("seq=", 1)[1]) for l in lines]
            back = [i for i in range(1, len(seqs)) if seqs[i] < seqs[i - 1]]
            return bool(back) and any(" running " in l
                                      for l in lines[back[0]:])
        wait_until(second_run_shown, 10, what="the second run's events in "
                   + pmtest.read_bytes(events_path).decode())
        self.assertTrue(second.alive())

    def test_agent_option(self):
        """--agent: the one agent of ping, reload, shutdown; the agents
        covered by status, logs and --all."""
        self.start_broker(self.broker_config())
        agents = self.start_agents(("a1", "a2"))
        code, out, err = self.via("status", "--agent", "a2")
        self.assertEqual(code, 0, err)
        self.assertEqual({l.split()[0] for l in out.splitlines()[1:]},
                         {"a2"})
        code, out, err = self.via("status", "--agent", "zz")
        self.assertEqual(code, 2, out + err)
        self.assertIn("unknown-agent", err)
        code, out, err = self.via("ping", "--agent", "a1")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^agent\s+a1$")
        code, out, err = self.via("reload")
        self.assertEqual(code, 2, out + err)
        self.assertIn("--agent", err)
        code, out, err = self.via("reload", "--agent", "a2")
        self.assertEqual(code, 0, err)
        #  --all narrowed to a1: a2 untouched.
        pid = agents["a2"].record("web")["pid"]
        code, out, err = self.via("stop", "--all", "--agent", "a1")
        self.assertEqual(code, 0, err)
        self.assertEqual(agents["a1"].record("web")["state"], "stopped")
        self.assertEqual(agents["a2"].record("web")["pid"], pid)
        #  An agent itself takes only its own name.
        code, out, err = self.run_pmctl("ping", "--agent", "a2",
                                        config=agents["a1"].config)
        self.assertEqual(code, 2, out + err)
        self.assertIn("unknown-agent", err)
        code, out, err = self.via("shutdown", "--agent", "a1", timeout=60)
        self.assertEqual(code, 0, err)
        agents["a1"].wait_exit(30)
        wait_until(lambda: self.connected().get("a1") is False, 10,
                   what="a1 gone")

    def test_duplicate_name_is_refused(self):
        self.start_broker(self.broker_config())
        agents = self.start_agents(("a1",))
        other = self.path("other-run")
        os.mkdir(other, 0o700)
        log = open(self.path("dup.log"), "wb")
        dup = subprocess.Popen([pmtest.PMD, "-c", agents["a1"].config,
                                "--runtime-dir", other],
                               stdin=subprocess.DEVNULL, stdout=log,
                               stderr=log, env=self.env)
        log.close()
        self.extra.append(dup)
        wait_until(lambda: "refused" in self.broker_log(), 10,
                   what="the broker refusing the second a1")
        self.assertIn("held by a live agent (pid %d" % agents["a1"].pid,
                      self.broker_log())
        wait_until(lambda: b"refused this agent"
                   in pmtest.read_bytes(self.path("dup.log")), 10,
                   what="the second a1 saying it was refused")
        code, out, err = self.via("agents", "--json")
        listed = json.loads(out)["agents"]
        self.assertEqual([(a["name"], a["pid"]) for a in listed],
                         [("a1", agents["a1"].pid)])

    def daemon(self, config, *args):
        done = subprocess.run([pmtest.PMBROKER, "-c", config, "--daemon"]
                              + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=self.env,
                              timeout=15)
        return done.returncode, done.stderr

    def reap(self, pid, timeout=10.0):
        """The exit status of pid, a daemon re-parented to us (pmtest
        made this process a subreaper)."""
        status = []

        def gone():
            done, code = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                status.append(code)
            return bool(status)
        wait_until(gone, timeout, what="process %d to exit" % pid)
        return status[0]

    def test_daemon_claims_its_runtime_directory(self):
        config = self.broker_config()
        rundir = os.path.join(self.xdg, "pmbus", "broker@lab")
        pidfile = os.path.join(rundir, "pmbroker.pid")
        sockets = [e[len("ipc://"):] for e in
                   (self.control, self.events, self.agents_at)]
        code, err = self.daemon(config)
        self.assertEqual(code, 0, err)
        with open(pidfile) as f:
            pid = int(f.read())
        self.addCleanup(pmtest.kill_and_reap, [pid])
        #  Bound when --daemon returned: no waiting before the first
        #  command.
        code, out, err = self.via("agents")
        self.assertEqual(code, 0, err)
        self.start_agents(("a1",))
        #  A second broker of this name, in the background or not, is
        #  refused before it binds anything (exit 3, naming the first).
        code, err = self.daemon(config)
        self.assertEqual(code, 3, err)
        self.assertIn("already running (pid %d)" % pid, err)
        done = subprocess.run([pmtest.PMBROKER, "-c", config],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=self.env, timeout=15)
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertEqual(self.via("status", "web@a1")[0], 0)
        #  Killed, it leaves its files; the next one takes them over.
        os.kill(pid, signal.SIGKILL)
        self.reap(pid)
        self.assertTrue(all(os.path.exists(p) for p in sockets + [pidfile]))
        code, err = self.daemon(config)
        self.assertEqual(code, 0, err)
        with open(pidfile) as f:
            pid = int(f.read())
        self.addCleanup(pmtest.kill_and_reap, [pid])
        wait_until(lambda: self.connected() == {"a1": True}, 10,
                   what="a1 registered with the new broker")
        #  SIGTERM: exit 0, and every file of its own is gone.
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(self.reap(pid), 0)
        left = [p for p in sockets + [pidfile, os.path.join(rundir,
                                                            "pmbroker.lock")]
                if os.path.exists(p)]
        self.assertEqual(left, [])
        log = pmtest.read_bytes(os.path.join(rundir, "pmbroker.log"))
        self.assertIn(b"SIGTERM received: shutting down", log)

    def test_daemon_that_cannot_bind_says_why(self):
        config = self.write_file("nobind.cfg", (
            'broker: { name = "nb"; control = "ipc://%s"; events = '
            '"ipc://%s"; agents = "ipc://%s"; };\n'
            % (self.path("no", "such", "c.sock"), self.path("e.sock"),
               self.path("a.sock"))))
        code, err = self.daemon(config)
        self.assertEqual(code, 1, err)
        self.assertIn(self.path("no", "such", "c.sock"), err)
        #  It said so once its lock was free, and it is on its way out
        #  (re-parented to us): reap it by its pid.
        for pid, stat in pmtest.descendants().items():
            if stat[3] == "pmbroker" and stat[1] == os.getpid():
                self.assertEqual(self.reap(pid), 1 << 8)
        self.assertFalse(os.path.exists(
            os.path.join(self.xdg, "pmbus", "broker@nb", "pmbroker.pid")))

    def test_broker_restart_agents_back_within_three_heartbeats(self):
        config = self.broker_config()
        self.start_broker(config)
        self.start_agents(("a1", "a2"))
        self.broker.send_signal(signal.SIGTERM)
        self.assertEqual(self.broker.wait(10), 0)
        self.start_broker(config)
        back = time.monotonic()
        wait_until(lambda: self.connected() == {"a1": True, "a2": True}, 10,
                   interval=0.02, what="both agents back")
        self.assertLess(time.monotonic() - back, 3 * HEARTBEAT + 1.0)
        self.assertEqual(self.via("status", "web@a1")[0], 0)

    def test_curve_roles(self):
        for name in ("broker", "client", "box"):
            done = subprocess.run([pmtest.PMCTL, "keygen",
                                   self.path("keys", name)],
                                  capture_output=True, env=self.env) \
                if os.path.isdir(self.path("keys")) else None
            if done is None:
                os.makedirs(self.path("keys", "clients"))
                os.makedirs(self.path("keys", "agents"))
                done = subprocess.run([pmtest.PMCTL, "keygen",
                                       self.path("keys", name)],
                                      capture_output=True, env=self.env)
            self.assertEqual(done.returncode, 0, done.stderr)
        shutil.copy(self.path("keys", "client"), self.path("keys", "clients"))
        shutil.copy(self.path("keys", "box"), self.path("keys", "agents"))
        self.start_broker(self.broker_config(tcp=True))
        keys = ('server_key = "keys/broker"; key = "keys/%s_secret";')
        good = self.start_agent(config=self.config(
            "  web: { %s };\n" % SLEEP, name="a1.cfg", agent_name="a1",
            agent_extra='broker = { endpoint = "%s"; %s }; '
            % (self.agents_at, keys % "box")), name="a1")
        #  A client's key registering as an agent: refused at the handshake.
        bad = self.start_agent(config=self.config(
            "  web: { %s };\n" % SLEEP, name="a2.cfg", agent_name="a2",
            agent_extra='broker = { endpoint = "%s"; %s }; '
            % (self.agents_at, keys % "client")), name="a2")
        good.wait_state("web", "running")
        bad.wait_state("web", "running")
        code, out, err = self.via("agents", "--json", key="client")
        wait_until(lambda: [a["name"] for a in json.loads(
            self.via("agents", "--json", key="client")[1])["agents"]]
            == ["a1"], 10, what="a1 registered over TCP")
        client_key = pmtest.read_bytes(self.path("keys", "client"))
        self.assertIn("refused key", self.broker_log())
        self.assertIn("not in %s" % self.path("keys", "agents"),
                      self.broker_log())
        self.assertNotIn("agent a2 registered", self.broker_log())
        self.assertTrue(client_key)
        #  An agent's key as a client: refused, exit 3.
        code, out, err = self.via("status", key="box")
        self.assertEqual(code, 3, out + err)
        self.assertIn("security handshake failed", err)
        code, out, err = self.via("status", key="client")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^a1\s+web\s+running")

    def keygen(self, *names):
        os.makedirs(self.path("keys", "clients"), exist_ok=True)
        os.makedirs(self.path("keys", "agents"), exist_ok=True)
        for name in names:
            done = subprocess.run([pmtest.PMCTL, "keygen",
                                   self.path("keys", name)],
                                  capture_output=True, env=self.env)
            self.assertEqual(done.returncode, 0, done.stderr)

    def test_three_agents_over_tcp_with_curve(self):
        """Three agents, each with its key, on a broker served over
        loopback TCP with CURVE; pmctl with a client key: every command
        through it, logs -f merged over TCP, the handshake failures said,
        and an agent killed with SIGKILL while a start through the broker
        waits on it."""
        names = ("a1", "a2", "a3")
        self.keygen("broker", "me", "stranger", *["box_" + n for n in names])
        shutil.copy(self.path("keys", "me"), self.path("keys", "clients"))
        for name in names:
            shutil.copy(self.path("keys", "box_" + name),
                        self.path("keys", "agents"))
        self.start_broker(self.broker_config(tcp=True))
        services = ('  web: { %s };\n'
                    '  talk: { command = "n=0; while true; do n=$((n+1)); '
                    'echo line $n; sleep 0.05; done"; stop_timeout = 1.0; };\n'
                    '  slow: { %s autostart = false; ready = { exec = '
                    '"false"; interval = 0.2; deadline = 60.0; }; };\n'
                    % (SLEEP, SLEEP))
        agents = {}
        for name in names:
            agents[name] = self.start_agent(config=self.config(
                services, name="%s.cfg" % name, agent_name=name,
                agent_extra='broker = { endpoint = "%s"; server_key = '
                '"keys/broker"; key = "keys/box_%s_secret"; }; '
                % (self.agents_at, name)), name=name)
        for name in names:
            agents[name].wait_state("web", "running")

        def listed():
            code, out, err = self.via("agents", "--json", key="me")
            return json.loads(out)["agents"] if code == 0 else []
        wait_until(lambda: [(a["name"], a["state"]) for a in listed()]
                   == [(n, "connected") for n in names], 15,
                   what="three agents registered over TCP")
        for entry in listed():
            self.assertTrue(entry["address"].startswith("127.0.0.1"),
                            entry)
            self.assertEqual(entry["pid"], agents[entry["name"]].pid)
        #  status: one table, every agent's rows.
        code, out, err = self.via("status", key="me")
        self.assertEqual(code, 0, err)
        for name in names:
            self.assertRegex(out, r"(?m)^%s\s+web\s+running" % name)
        #  Acting on one agent's service changes only that one.
        before = {n: agents[n].record("web")["pid"] for n in names}
        code, out, err = self.via("restart", "web@a2", key="me")
        self.assertEqual(code, 0, out + err)
        self.assertIn("web@a2", out)
        after = {n: agents[n].record("web")["pid"] for n in names}
        self.assertNotEqual(after["a2"], before["a2"])
        self.assertEqual([after["a1"], after["a3"]],
                         [before["a1"], before["a3"]])
        #  A bare name three agents have is ambiguous, for logs -f too.
        code, out, err = self.via("logs", "-f", "talk", key="me")
        self.assertEqual(code, 2, out + err)
        self.assertIn("ambiguous", err)
        self.assertIn("talk@a1, talk@a2, talk@a3", err)
        #  logs -f over TCP (the events endpoint from hello): every
        #  agent's talk, each stream consecutive.
        follower = subprocess.Popen(
            [pmtest.PMCTL, "--connect", self.control, "--server-key",
             self.path("keys", "broker"), "--key",
             self.path("keys", "me_secret"), "logs", "-f", "-n", "0"]
            + ["talk@" + n for n in names], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=self.env)
        self.extra.append(follower)
        seen = {}
        deadline = pmtest.Deadline(20)
        os.set_blocking(follower.stdout.fileno(), False)
        buffer = b""
        while not all(len(seen.get(n, [])) >= 5 for n in names):
            if deadline.passed() or follower.poll() is not None:
                follower.kill()
                follower.wait(5)
                self.fail("logs -f (exit %s) printed lines of %r only; "
                          "stderr: %s" % (follower.returncode,
                                          {k: len(v) for k, v in
                                           seen.items()},
                                          follower.stderr.read()))
            chunk = follower.stdout.read()
            if chunk:
                buffer += chunk
            else:
                time.sleep(0.02)
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                for name in names:
                    tag = ("talk@%s" % name).encode()
                    if tag in line and b"line " in line:
                        seen.setdefault(name, []).append(
                            int(line.rsplit(b"line ", 1)[1]))
        for name in names:
            numbers = seen[name]
            self.assertEqual(numbers, list(range(numbers[0],
                                                 numbers[0] + len(numbers))),
                             "talk@%s not consecutive" % name)
        follower.send_signal(signal.SIGINT)
        follower.wait(10)
        #  The handshake failures, each within the client's timeout.
        began = time.monotonic()
        code, out, err = self.via("status", key="stranger")
        self.assertEqual(code, 3, out + err)
        self.assertIn("security handshake failed", err)
        argv = [pmtest.PMCTL, "--connect", self.control, "--server-key",
                self.path("keys", "box_a1"), "--key",
                self.path("keys", "me_secret"), "status"]
        done = subprocess.run(argv, capture_output=True, text=True,
                              env=self.env, timeout=30)
        self.assertEqual(done.returncode, 3, done.stdout + done.stderr)
        self.assertIn("security handshake failed", done.stderr)
        self.assertLess(time.monotonic() - began, 12.0)
        wait_until(lambda: pmtest.read_bytes(self.path(
            "keys", "stranger")).split(b'public-key = "')[1][:40].decode()
            in self.broker_log(), 10, what="the refused key in the log")
        #  SIGKILL during a start through the broker: answered at once.
        starter = subprocess.Popen(
            [pmtest.PMCTL, "--connect", self.control, "--server-key",
             self.path("keys", "broker"), "--key",
             self.path("keys", "me_secret"), "--json", "start", "slow@a3",
             "--timeout", "60"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=self.env)
        self.extra.append(starter)
        agents["a3"].wait_state("slow", "starting")
        killed = time.monotonic()
        agents["a3"].proc.kill()
        agents["a3"].proc.wait(10)
        out, err = starter.communicate(timeout=30)
        self.assertEqual(starter.returncode, 3, out + err)
        self.assertLess(time.monotonic() - killed, 3.5 * HEARTBEAT + 2.0)
        reply = json.loads(out)
        self.assertEqual(reply["error"]["code"], "agent-unreachable")
        self.assertEqual(reply["error"]["names"], ["a3"])
        self.assertIn("outcome unknown", reply["error"]["message"])
        #  The others serve on.
        code, out, err = self.via("status", "web@a1", "web@a2", key="me")
        self.assertEqual(code, 0, err)

    def test_removed_client_key_loses_its_subscription(self):
        """The broker's events over TCP: a client key taken out of its
        clients directory, then SIGHUP, cuts that client's open
        subscription; another client's goes on."""
        self.keygen("broker", "me", "stranger", "box")
        for name in ("me", "stranger"):
            shutil.copy(self.path("keys", name), self.path("keys", "clients"))
        shutil.copy(self.path("keys", "box"), self.path("keys", "agents"))
        self.start_broker(self.broker_config(tcp=True))
        talk = ('  talk: { command = "i=0; while true; do i=$((i+1)); '
                'echo n=$i; sleep 0.01; done"; stop_timeout = 1.0; };\n')
        self.start_agent(config=self.config(
            talk, name="a1.cfg", agent_name="a1",
            agent_extra='broker = { endpoint = "%s"; server_key = '
            '"keys/broker"; key = "keys/box_secret"; }; ' % self.agents_at),
            name="a1")
        subs = {}
        for name in ("me", "stranger"):
            sub = self.track(pmtest.curve_client(
                self.context, zmq.SUB, self.path("keys", "broker"),
                self.path("keys", name + "_secret")))
            sub.rcvhwm = 0
            sub.subscribe(b"log/")
            subs[name] = sub
        monitor = self.track(subs["stranger"].get_monitor_socket(
            zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH))
        for sub in subs.values():
            sub.connect(self.events)
        for name, sub in subs.items():
            self.assertTrue(sub.poll(10000), "%s got no log message" % name)
        os.unlink(self.path("keys", "clients", "stranger"))
        self.broker.send_signal(signal.SIGHUP)
        wait_until(lambda: "subscription (descriptor" in self.broker_log(),
                   10, what="the subscription cut")
        pmtest.check_subscription_cut(self, subs["me"], subs["stranger"],
                                      monitor)
        code, out, err = self.via("status", key="stranger")
        self.assertEqual(code, 3, out + err)

    def test_an_agent_changed_since_the_check_answers_for_itself(self):
        """Checking across agents is atomic, acting is not: an agent
        whose services changed after the broker checked the names (here
        r1, a protocol client of our own that registered `ghost` and then
        answers unknown-service, as an agent reloaded meanwhile would)
        fails its part itself; the reply names it qualified, and the part
        of the agent that acted is in the results (PROTOCOL.md 13.4)."""
        self.start_broker(self.broker_config())
        agents = self.start_agents(("a1",))
        rogue = self.track(self.context.socket(zmq.DEALER))
        rogue.linger = 0
        rogue.connect(self.agents_at)
        hello = pmtest.pack({"v": 1, "id": 0, "ok": True, "agent": "r1",
                             "version": "test", "pid": os.getpid(),
                             "config": "", "control": "", "events": "",
                             "started_at": time.time()})
        rogue.send_multipart([b"REGISTER", b"r1-instance", hello, b"ghost"])
        self.assertTrue(rogue.poll(5000))
        self.assertEqual(rogue.recv_multipart()[0], b"REGISTERED")
        stopper = subprocess.Popen(
            [pmtest.PMCTL, "--connect", self.control, "--json", "stop",
             "web@a1", "ghost@r1"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=self.env)
        self.extra.append(stopper)
        deadline = pmtest.Deadline(10)
        while True:
            self.assertFalse(deadline.passed(), "no REQUEST reached r1")
            rogue.send_multipart([b"HEARTBEAT"])
            if not rogue.poll(50):
                continue
            frames = rogue.recv_multipart()
            if frames[0] == b"REQUEST":
                break
        request = pmtest.unpack(frames[2])
        self.assertEqual((request["cmd"], request["args"]["names"]),
                         ("stop", ["ghost"]))
        rogue.send_multipart([b"REPLY", frames[1], pmtest.pack({
            "v": 1, "id": request["id"], "ok": False, "error": {
                "code": "unknown-service",
                "message": "unknown service: ghost", "names": ["ghost"]}})])
        out, err = stopper.communicate(timeout=30)
        self.assertEqual(stopper.returncode, 2, out + err)
        reply = json.loads(out)
        self.assertEqual(reply["error"]["code"], "unknown-service")
        self.assertEqual(reply["error"]["names"], ["ghost@r1"])
        self.assertTrue(reply["error"]["message"].startswith("agent r1: "),
                        reply)
        self.assertEqual([(r["name"], r["ok"]) for r in reply["results"]],
                         [("web@a1", True)])
        self.assertEqual(agents["a1"].record("web")["state"], "stopped")

    def test_no_broker_changes_nothing_for_the_agent(self):
        """An agent whose broker is not there (or goes) serves its local
        clients and its services as ever: nothing it sends waits."""
        self.broker_config()
        chatty = ('  talk: { command = "while true; do echo tick; '
                  'sleep 0.01; done"; stop_timeout = 1.0; };\n')
        agent = self.start_agent(config=self.config(
            "  web: { %s };\n%s" % (SLEEP, chatty), name="a1.cfg",
            agent_name="a1", agent_extra='broker = { endpoint = "%s"; }; '
            % self.agents_at), name="a1")
        agent.wait_state("web", "running")
        for _ in range(3):
            code, out, err = self.run_pmctl("restart", "web")
            self.assertEqual(code, 0, err)
        #  Now with a broker that then dies without a word.
        self.start_broker(self.broker_config())
        wait_until(lambda: self.connected().get("a1") is True, 10,
                   what="a1 registered")
        sub = self.broker_sub("log/a1/talk/")
        self.collect(sub, lambda p: len(p) >= 3)
        self.broker.kill()
        self.broker.wait(10)
        started = time.monotonic()
        for _ in range(3):
            code, out, err = self.run_pmctl("restart", "web")
            self.assertEqual(code, 0, err)
        self.assertLess(time.monotonic() - started, 10)
        code, out, err = self.run_pmctl("logs", "-n", "1", "talk")
        self.assertEqual(code, 0, err)
        self.assertIn("tick", out)

    def test_malformed_frames_change_nothing(self):
        self.start_broker(self.broker_config())
        self.start_agents(("a1",))
        client = self.track(self.context.socket(zmq.DEALER))
        client.linger = 0
        client.connect(self.control)
        client.send(b"\xc1 not msgpack")
        self.assertTrue(client.poll(5000))
        reply = pmtest.unpack(client.recv())
        self.assertEqual(reply["error"]["code"], "bad-request")
        rogue = self.track(self.context.socket(zmq.DEALER))
        rogue.linger = 0
        rogue.connect(self.agents_at)
        for frames in ([b""], [b"NONSENSE"], [b"REGISTER"],
                       [b"REGISTER", b"x" * 100, b"\xc1"],
                       [b"REGISTER", b"i", pmtest.pack({"v": 1})],
                       [b"REPLY", b"12345678", b"\xc1"], [b"HEARTBEAT"],
                       [b"PUBLISH", b"log/a1/x/out/", b"junk"]):
            rogue.send_multipart(frames)
        sub = self.track(self.context.socket(zmq.XSUB))
        sub.linger = 0
        sub.connect(self.events)
        for junk in (b"", b"\x05junk", b"\x01" + b"x" * 250, b"\x00nothing"):
            sub.send(junk)
        #  Each socket's pipe is in order: an answer to what follows the
        #  junk proves the junk was read.  The rogue is no agent: UNKNOWN.
        rogue.send_multipart([b"HEARTBEAT"])
        self.assertTrue(rogue.poll(5000))
        self.assertEqual(rogue.recv_multipart(), [b"UNKNOWN"])
        probe = "state/a1/%s/" % pmtest.PROBE
        sub.send(b"\x01" + probe.encode())
        wait_until(lambda: self.via("start", "--wait", "none", "%s@a1"
                                    % pmtest.PROBE)[0] == 0
                   and sub.poll(200), 10, what="a message after the junk")
        self.assertTrue(sub.recv_multipart()[0].startswith(probe.encode()))
        self.assertIsNone(self.broker.poll())
        self.assertEqual(self.connected(), {"a1": True})
        code, out, err = self.via("status", "web@a1")
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    pmtest.main()
