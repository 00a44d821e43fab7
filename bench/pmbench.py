"""What scale.py, followers.py and event_latency.py share: one agent in a
temporary directory, a DEALER client, a live subscription, cleanup by pid.

Owns: the agent's directory and XDG_RUNTIME_DIR, its start (`pmd --daemon`,
which returns once the agent accepts commands), its shutdown and reaping
by pid; the client's request/reply with a deadline.
Leaves to others: what each benchmark measures and prints.
"""
import ctypes
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def become_subreaper():
    """The daemon's parent exits: it is re-parented to us, and we reap it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def binaries(build):
    """(pmd, pmctl): $PMD / $PMCTL, else BUILD/agent/pmd, BUILD/ctl/pmctl."""
    pmd = os.path.abspath(os.environ.get("PMD")
                          or os.path.join(build, "agent", "pmd"))
    pmctl = os.path.abspath(os.environ.get("PMCTL")
                            or os.path.join(build, "ctl", "pmctl"))
    for path in (pmd, pmctl):
        if not os.access(path, os.X_OK):
            sys.exit("bench: no %s (give the build dir, or PMD=, PMCTL=)"
                     % path)
    return pmd, pmctl


def reap(pid, timeout):
    """Waits up to timeout s for pid (our child, once re-parented) to end;
    returns True if it did."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            if not os.path.exists("/proc/%d" % pid):
                return True
        time.sleep(0.01)
    return False


def reap_zombies():
    """Reaps whatever re-parented child of ours has exited."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                return
        except ChildProcessError:
            return


def median_ms(times):
    return statistics.median(times) * 1000.0


def percentile(sorted_values, fraction):
    """The value below which `fraction` of sorted_values lie (nearest rank)."""
    rank = max(1, int(round(fraction * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def memory_kib(pid):
    """{"Rss": kB, "Pss": kB} of pid, from /proc/PID/smaps_rollup."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key] = int(value.split()[0])
    return out


class Agent:
    """One pmd with its own directory, config text and runtime dir."""

    def __init__(self, pmd, config_text, name="bench", timeout=60,
                 agent_extra=""):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="pmbus-bench-")
        self.xdg = os.path.join(self.dir, "run")
        os.mkdir(self.xdg, 0o700)
        self.config = os.path.join(self.dir, "pmbus.cfg")
        with open(self.config, "w") as f:
            f.write('agent: { name = "%s"; %s };\n' % (name, agent_extra))
            f.write(config_text)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.xdg)
        rundir = os.path.join(self.xdg, "pmbus", name)
        self.control = "ipc://%s/control.sock" % rundir
        self.events = "ipc://%s/events.sock" % rundir
        self.context = zmq.Context()
        self.pid = None
        self.started = time.monotonic()
        done = subprocess.run([pmd, "--daemon", "-c", self.config],
                              env=self.env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.daemon_returned = time.monotonic()
        if done.returncode != 0:
            self.context.destroy(linger=0)
            sys.exit("bench: pmd --daemon -c %s failed: %s"
                     % (self.config, done.stderr.decode().strip()))
        with open(os.path.join(rundir, "pmd.pid")) as f:
            self.pid = int(f.read())

    def client(self):
        return Client(self.context, self.control)

    def subscriber(self, *prefixes):
        return subscribe(self.context, self.events, *prefixes)

    def pmctl(self, pmctl, *args, timeout=60):
        """Runs pmctl -c CONFIG ARGS; returns (seconds, stdout bytes)."""
        begin = time.perf_counter()
        done = subprocess.run([pmctl, "-c", self.config] + list(args),
                              env=self.env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        took = time.perf_counter() - begin
        if done.returncode != 0:
            raise RuntimeError("pmctl %s: exit %d: %s"
                               % (" ".join(args), done.returncode,
                                  done.stderr.decode().strip()))
        return took, done.stdout

    def shutdown(self, timeout=120):
        """Asks for a shutdown, reaps the agent by pid (SIGKILL if it does
        not go), removes the directory."""
        try:
            if self.pid is not None:
                client = self.client()
                try:
                    client.request("shutdown", timeout=timeout)
                except TimeoutError as e:
                    print("bench: %s" % e)
                finally:
                    client.close()
                if not reap(self.pid, timeout):
                    print("bench: pmd %d did not exit; killing it" % self.pid)
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    reap(self.pid, 10)
            reap_zombies()
        finally:
            self.context.destroy(linger=0)
            subprocess.run(["rm", "-rf", self.dir])


def subscribe(context, endpoint, *prefixes):
    """A SUB on endpoint with an unbounded queue, subscribed to prefixes."""
    sub = context.socket(zmq.SUB)
    sub.linger = 0
    sub.rcvhwm = 0
    for prefix in prefixes:
        sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    sub.connect(endpoint)
    return sub


def timed_requests(client, cmd, args, runs):
    """runs requests; returns (seconds each, the last reply, its size)."""
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        reply = client.request(cmd, args)
        times.append(time.perf_counter() - begin)
        if not reply.get("ok"):
            raise RuntimeError("%s: %r" % (cmd, reply.get("error")))
    return times, reply, client.last_size


class Client:
    """A DEALER on the control socket; request() returns the decoded reply,
    and last_size the reply's size in bytes."""

    def __init__(self, context, endpoint):
        self.sock = context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.next_id = 0
        self.last_size = 0

    def close(self):
        self.sock.close(0)

    def request(self, cmd, args=None, timeout=30.0):
        self.next_id += 1
        message = {"v": 1, "id": self.next_id, "cmd": cmd}
        if args is not None:
            message["args"] = args
        self.sock.send(pack(message))
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                raise TimeoutError("no reply to %s within %gs"
                                   % (cmd, timeout))
            data = self.sock.recv()
            reply = unpack(data)
            if reply.get("id") in (self.next_id, 0):
                self.last_size = len(data)
                return reply


def sync(subs, client, agent_name, probe="probe", timeout=30.0):
    """Proves every SUB in subs live (the slow-joiner problem): starts the
    probe service until each has received one of its state events.  Each
    sub is subscribed to the probe's topic for the while; messages of other
    topics received meanwhile are dropped (nothing else runs yet)."""
    topic = ("state/%s/%s/" % (agent_name, probe)).encode()
    for sub in subs:
        sub.setsockopt(zmq.SUBSCRIBE, topic)
    pending = set(range(len(subs)))
    poller = zmq.Poller()
    for sub in subs:
        poller.register(sub, zmq.POLLIN)
    end = time.monotonic() + timeout
    while pending:
        if time.monotonic() > end:
            raise TimeoutError("%d subscriptions not live after %gs"
                               % (len(pending), timeout))
        client.request("start", {"names": [probe], "wait": "none"})
        poller.poll(50)  # the probe's events are on their way
        for i in list(pending):
            while True:
                try:
                    frames = subs[i].recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if frames[0] == topic:
                    pending.discard(i)
    for sub in subs:
        sub.setsockopt(zmq.UNSUBSCRIBE, topic)
        while True:  # what the probe still sent
            try:
                sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
