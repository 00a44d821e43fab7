"""test_faults.py - the agent under faults (issue 9)

- out of file descriptors: a start that cannot get its pipes fails with
  the call and errno named, and the agent goes on serving its clients and
  its other services; a notify descriptor the child cannot have fails the
  start with the step named;
- the runtime directory's `config` file cannot be written: pmd refuses to
  start, saying so;
- SIGKILL of the agent in the middle of a reload, of a start of 100
  services and of a burst of log output: the next pmd for the same config
  starts clean (lock taken over, sockets replaced, the old run's processes
  killed) and nothing of the old run survives;
- clients that misbehave (garbage, a disconnect in the middle of a
  parked request, 10,000 requests whose replies are never read): the
  others are answered promptly and the agent never blocks.

The old run's processes are found the way the harness finds leftovers:
this test is a child subreaper, so whatever the dead agent left is
reparented to it and shows among its descendants (pmtest.descendants),
apart from the new agent and what it runs.
"""

import os
import re
import resource
import signal
import subprocess
import time

import zmq

import pmtest
from pmtest import AgentTest, Deadline, wait_until, pack

#  Generous under the sanitizers, which slow every spawn and request.
SLOW = 3.0 if os.environ.get("PM_SANITIZE", "").upper() in ("ON", "1", "TRUE") else 1.0


def _open_fds(pid):
    """The descriptor numbers pid has open."""
    return {int(fd) for fd in os.listdir("/proc/%d/fd" % pid)}


def _limit_for_free(pid, free):
    """A soft RLIMIT_NOFILE under which pid has exactly `free` descriptor
    numbers left (the kernel hands out the lowest free number, and none at
    or above the limit)."""
    used = _open_fds(pid)
    limit, left = 0, free
    while True:
        if limit not in used:
            if left == 0:
                return limit
            left -= 1
        limit += 1


#  The descriptors the agent keeps free for its clients (agent/fdlimit.h).
RESERVE = 16


class FdTest(AgentTest):
    """Out of file descriptors."""

    def setUp(self):
        super().setUp()
        self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def set_soft_limit(self, agent, soft):
        resource.prlimit(agent.pid, resource.RLIMIT_NOFILE, (soft, self.hard))

    def sleepers(self, count):
        """count processes (ours, not the agent's) to lease the agent to,
        killed and reaped by pid at the end."""
        procs = [subprocess.Popen(["sleep", "1000"]) for _ in range(count)]

        def end():
            for proc in procs:
                proc.kill()
                proc.wait(10)
        self.addCleanup(end)
        return [proc.pid for proc in procs]

    def test_start_out_of_fds(self):
        services = "".join(
            '  s%02d: { command = "sleep 1000"; autostart = false; '
            'stop_timeout = 1.0; };\n' % i for i in range(20))
        agent = self.start_agent(services)
        client = agent.default_client()
        #  Room for two starts (7 descriptors each while spawning, 2 kept
        #  for the output pipes) and not a third, besides the reserve.
        self.set_soft_limit(agent, _limit_for_free(agent.pid, RESERVE + 12))
        started, failure = [], None
        for i in range(20):
            name = "s%02d" % i
            reply = client.request("start", {"names": [name]},
                                   timeout=10 * SLOW)
            if not reply["ok"]:
                failure = (name, reply)
                break
            started.append(name)
        self.assertIsNotNone(failure, "every start succeeded under the limit")
        self.assertTrue(started, "not even one start fitted: %r" % (failure,))
        name, reply = failure
        result = reply["results"][0]
        self.assertEqual(result["state"], "failed", reply)
        self.assertRegex(result["error"],
                         r"^(pipe|open /dev/null): Too many open files"
                         r"( \(the last %d descriptors are kept for "
                         r"clients\))?$" % RESERVE)
        record = agent.record(name)
        self.assertEqual(record["state"], "failed", record)
        self.assertEqual(record["error"], result["error"])
        #  The agent goes on: clients are served at once, a new one too,
        #  and the services started before are untouched.
        deadline = Deadline(2 * SLOW)
        status = agent.status()
        self.assertFalse(deadline.passed(), "status took too long")
        for other in started:
            self.assertEqual(status[other]["state"], "running", status[other])
            self.assertTrue(pmtest.pid_alive(status[other]["pid"]))
        code, out, err = self.run_pmctl("status", name)
        self.assertEqual(code, 0, (out, err))
        self.assertIn("Too many open files", out)
        self.assertTrue(agent.alive())
        #  Descriptors freed (two services stopped), the same start works.
        for other in started[:2]:
            self.assertTrue(client.request("stop", {"names": [other]},
                                           timeout=10 * SLOW)["ok"])
        reply = client.request("start", {"names": [name]}, timeout=10 * SLOW)
        self.assertTrue(reply["ok"], reply)

    def test_clients_keep_the_last_descriptors(self):
        """libzmq aborts the process when accept fails with EMFILE, so the
        agent must never take the last descriptors itself: here leases
        (a pidfd each) take them one by one until one is refused, and a
        new client is still accepted and answered."""
        agent = self.start_agent("")
        pids = self.sleepers(RESERVE + 16)
        self.set_soft_limit(agent, _limit_for_free(agent.pid, RESERVE + 8))
        refused = None
        for pid in pids:
            reply = agent.request("lease", {"pid": pid})
            if not reply["ok"]:
                refused = reply
                break
        self.assertIsNotNone(refused, "every lease fitted")
        self.assertIn("Too many open files", refused["error"]["message"])
        for _ in range(3):
            code, out, err = self.run_pmctl("status")
            self.assertEqual(code, 0, (out, err, agent.logs_tail()))
        self.assertTrue(agent.alive(), agent.logs_tail())

    def test_services_get_the_limit_the_agent_started_with(self):
        """The agent raises its own soft limit to the hard one (room for
        many services), and services get the limit it started with."""
        if self.hard == resource.RLIM_INFINITY or self.hard < 2048:
            self.skipTest("the hard limit (%s) leaves nothing to raise to"
                          % self.hard)
        saved = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1000, self.hard))
        try:
            agent = self.start_agent('  limit: { command = "ulimit -n"; };\n')
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, saved)
        agent.wait_state("limit", "completed")
        self.assertEqual(agent.service_log("limit"), b"1000\n")
        self.assertEqual(resource.prlimit(agent.pid, resource.RLIMIT_NOFILE),
                         (self.hard, self.hard))

    def test_notify_fd_over_the_limit(self):
        """A child-side setup failure other than exec: the notify
        descriptor cannot be placed.  The start fails with the step
        named, and the agent goes on."""
        agent = self.start_agent("""\
  notified: { command = "sleep 1000"; autostart = false;
              ready: { notify_fd = 200; }; };
  plain:    { command = "sleep 1000"; autostart = false; stop_timeout = 1.0; };
""")
        self.set_soft_limit(agent, 150)
        reply = agent.request("start", {"names": ["notified"]})
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["state"], "failed", reply)
        want = "dup2 onto notify_fd 200: Bad file descriptor"
        self.assertEqual(reply["results"][0]["error"], want)
        record = agent.record("notified")
        self.assertEqual((record["state"], record["error"], record["pid"]),
                         ("failed", want, None))
        self.assertTrue(agent.request("start", {"names": ["plain"]})["ok"])


class RundirTest(AgentTest):

    def test_config_file_cannot_be_written(self):
        """The runtime directory's `config` file (how pmctl finds an agent
        whose config no longer parses) cannot be written: pmd exits with
        an error naming it, instead of running unfindable."""
        rundir = os.path.join(self.xdg, "pmbus", pmtest.AGENT_NAME)
        os.makedirs(rundir, 0o700)
        #  A directory where the file goes: the rename over it fails.
        os.mkdir(os.path.join(rundir, "config"))
        agent = self.spawn_pmd(self.config(""))
        code = agent.wait_exit(10 * SLOW)
        self.assertNotEqual(code, 0)
        with open(agent.stderr_path) as f:
            err = f.read()
        self.assertIn("cannot write %s/config: Is a directory" % rundir, err)
        #  Nothing left behind: the lock and pid file are gone.
        self.assertFalse(os.path.exists(agent.pidfile))
        self.assertFalse(os.path.exists(agent.lockfile))


class AgentKilledTest(AgentTest):
    """SIGKILL of the agent at a bad moment; the next pmd starts clean."""

    def old_run(self, agent):
        """Every live process of the run of agent (dead now) that is still
        around: our descendants, apart from the agents still running and
        what they run."""
        live_agents = {a.pid for a in self.agents if a.alive()}
        procs = pmtest.descendants()
        below_live = set()
        for pid in live_agents:
            below_live |= set(pmtest.descendants(pid))
        return {p: s for p, s in procs.items()
                if s[0] not in ("Z", "X") and p not in live_agents
                and p not in below_live}

    def kill_agent(self, agent):
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait_exit(5 * SLOW)

    def restart_clean(self, old, config):
        """Starts the next pmd for config and checks that it took over
        and that nothing of old's run survives."""
        new = self.start_agent(config=config, timeout=10 * SLOW)
        hello = new.request("hello")
        self.assertEqual(hello["pid"], new.pid)
        with open(new.pidfile) as f:
            self.assertEqual(int(f.read()), new.pid)

        def gone():
            pmtest.reap_zombie_children(skip={a.pid for a in self.agents})
            return not self.old_run(old)
        try:
            wait_until(gone, 5 * SLOW, what="the old run's processes to die")
        except AssertionError:
            self.fail("left by the killed agent: %s"
                      % pmtest.describe(self.old_run(old)))
        return new

    #  A service with a grandchild that outlives the death signal of its
    #  parent, so that only the next agent's sweep can end it.
    FAMILY = 'command = "sleep 1000 & exec sleep 1001"; stop_timeout = 1.0;'

    def test_killed_during_a_reload(self):
        path = self.config("""\
  stubborn: { command = "./stubborn.sh"; stop_timeout = 30.0; };
  family:   { %s };
""" % self.FAMILY)
        self.script("stubborn.sh", 'trap "" TERM\nsleep 1000 &\n'
                    'echo up\nwait\n')
        agent = self.start_agent(config=path)
        for name in ("stubborn", "family"):
            agent.wait_state(name, "running", timeout=10 * SLOW)
        sub = agent.subscribe()
        #  The new config drops stubborn, which ignores SIGTERM: the
        #  reload waits for its stop_timeout, and the agent dies then.
        self.config("""\
  family: { %s };
  fresh:  { command = "sleep 1002"; stop_timeout = 1.0; };
""" % self.FAMILY)
        client = agent.client()
        client.send("reload")
        sub.wait_for(lambda e: e.get("service") == "stubborn"
                     and e.get("new") == "stopping", timeout=10 * SLOW,
                     what="stubborn stopping")
        self.assertTrue(pmtest.descendants(agent.pid))
        self.kill_agent(agent)
        new = self.restart_clean(agent, path)
        new.wait_state("fresh", "running", timeout=10 * SLOW)
        self.assertNotIn("stubborn", new.status())

    def test_killed_during_a_start_of_100(self):
        services = "".join('  s%03d: { %s autostart = false; };\n'
                           % (i, self.FAMILY) for i in range(100))
        path = self.config(services)
        agent = self.start_agent(config=path)
        client = agent.client()
        client.send("start", {"all": True, "wait": "none"})
        #  Killed once some of the hundred run, typically long before all.
        wait_until(lambda: len(pmtest.descendants(agent.pid)) >= 10,
                   10 * SLOW, interval=0.001, what="the first services")
        self.kill_agent(agent)
        new = self.restart_clean(agent, path)
        status = new.status()
        self.assertEqual(len(status), 101)
        self.assertEqual({r["state"] for n, r in status.items()},
                         {"inactive"}, status)
        reply = new.request("start", {"names": ["s000", "s099"]},
                            timeout=10 * SLOW)
        self.assertTrue(reply["ok"], reply)

    def test_killed_during_a_log_burst(self):
        #  The writer ignores SIGPIPE: the end of its pipe does not stop
        #  it, and it is not the agent's child, so no death signal either.
        self.script("burst.sh", 'trap "" PIPE\n'
                    '(while :; do echo "burst line of some length"; done) &\n'
                    'exec sleep 1000\n')
        path = self.config('  burst: { command = "./burst.sh"; '
                           'stop_timeout = 1.0; };\n'
                           '  later: { command = "echo later-run"; '
                           'autostart = false; };\n')
        agent = self.start_agent(config=path)
        log = self.path("logs", "burst.log")
        wait_until(lambda: os.path.exists(log)
                   and os.path.getsize(log) > 256 * 1024, 10 * SLOW,
                   what="a burst of output in %s" % log)
        self.kill_agent(agent)
        new = self.restart_clean(agent, path)
        new.wait_state("burst", "running", timeout=10 * SLOW)
        #  The log goes on under the new agent.
        self.assertTrue(new.request("start", {"names": ["later"]})["ok"])
        wait_until(lambda: b"later-run" in pmtest.read_bytes(
            self.path("logs", "later.log")), 5 * SLOW, what="later's log")


class ClientFaultTest(AgentTest):
    """Clients that misbehave; the others are served promptly."""

    SERVICES = """\
  a:    { command = "sleep 1000"; stop_timeout = 1.0; };
  slow: { command = "./slow.sh"; autostart = false; stop_timeout = 1.0;
          ready: { log = "^up$"; interval = 0.1; }; };
"""

    def setUp(self):
        super().setUp()
        #  Ready a second after it starts.
        self.script("slow.sh", "sleep 1\necho up\nexec sleep 1000\n")

    def assert_prompt(self, agent, bound=2.0):
        """A fresh client's status is answered within bound (x SLOW)."""
        other = agent.client()
        start = time.monotonic()
        reply = other.request("status", timeout=bound * SLOW)
        self.assertTrue(reply["ok"], reply)
        return time.monotonic() - start

    def test_garbage(self):
        agent = self.start_agent(self.SERVICES)
        agent.wait_state("a", "running")
        rogue = agent.client()
        frames = [b"", b"\xc1" * 100, os.urandom(4096), b"\x80",
                  pack({"v": 1, "id": 1, "cmd": 7}),
                  pack({"v": 1, "id": 2, "cmd": "start",
                        "args": {"names": [b"\xff" * 40]}})]
        for i in range(200):
            rogue.send_frames([frames[i % len(frames)],
                               frames[(i + 1) % len(frames)]])
            rogue.send_frames([os.urandom(i + 1)])
        self.assert_prompt(agent)
        #  The rogue itself got answers (errors), and nothing changed.
        self.assertTrue(rogue.sock.poll(int(5000 * SLOW)))
        self.assertEqual(agent.record("a")["state"], "running")
        self.assertTrue(agent.alive())

    def test_disconnect_during_a_parked_start(self):
        agent = self.start_agent(self.SERVICES)
        leaving = agent.client()
        leaving.send("start", {"names": ["slow"], "wait": "running"})
        #  Parked (slow is starting), then the client is gone.
        agent.wait_state("slow", "starting", timeout=5 * SLOW)
        leaving.close()
        self.assert_prompt(agent)
        #  The answer to nobody goes out when slow is ready; the agent
        #  goes on.
        agent.wait_state("slow", "running", timeout=10 * SLOW)
        self.assert_prompt(agent)
        self.assertTrue(agent.alive())

    def test_replies_never_read(self):
        agent = self.start_agent(self.SERVICES)
        agent.wait_state("a", "running")
        deaf = agent.client()
        #  Its own queue holds one reply; the agent's queue to it fills
        #  next, and the agent must drop rather than wait.
        deaf.sock.rcvhwm = 1
        deadline = Deadline(30 * SLOW)
        sent = checked = 0
        while sent < 10000:
            try:
                deaf.sock.send(pack({"v": 1, "id": sent + 1, "cmd": "status"}),
                               zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                self.assertFalse(deadline.passed(), "the agent stopped "
                                 "taking requests after %d" % sent)
                time.sleep(0.001)
            if sent - checked >= 1000:
                checked = sent
                self.assert_prompt(agent)
        #  Every request taken (the last has been answered, or dropped)
        #  while others are served.
        self.assert_prompt(agent)
        self.assertTrue(agent.alive())
        reply = agent.request("start", {"names": ["slow"], "wait": "none"})
        self.assertTrue(reply["ok"], reply)


if __name__ == "__main__":
    pmtest.main()
