"""pmtest.py - the shared harness of the black-box tests

Runs the real pmd ($PMD) and pmctl ($PMCTL) in a private temporary
directory, with their own XDG_RUNTIME_DIR, and talks to the agent the way
proto/PROTOCOL.md says a client does: msgpack maps on a DEALER (or REQ)
socket at ipc://<XDG_RUNTIME_DIR>/pmbus/<agent>/control.sock, events on a
SUB socket at .../events.sock.  Only the standard library, pyzmq and
msgpack are used.

The rules every test keeps, and that this module makes easy:
- every wait has a deadline (Deadline, wait_until, wait_state, subprocess
  timeouts); nothing synchronises with a bare sleep;
- every process is cleaned up by pid, never by name: at import this
  process becomes a child subreaper, so an orphan of a service (a
  grandchild whose agent died) is reparented to us, found by walking
  /proc/*/stat parent links from our pid, killed and reaped;
- a process left over after the agent shut down is a test failure.

Config files get an explicit `agent: { name = "t"; };` (see AgentTest.
config) so the runtime directory, and with it every endpoint, is known
without asking anyone.
"""

import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
import zmq

# ---------------------------------------------------------------------------
#  Where the binaries are
# ---------------------------------------------------------------------------

SOURCE_DIR = os.environ.get("PM_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#  Absolute: tests run processes from their temp dir.
PMD = os.path.abspath(os.environ.get("PMD")
                      or os.path.join(SOURCE_DIR, "build/agent/pmd"))
PMCTL = os.path.abspath(os.environ.get("PMCTL")
                        or os.path.join(SOURCE_DIR, "build/ctl/pmctl"))
PMBROKER = os.path.abspath(os.environ.get("PMBROKER")
                           or os.path.join(SOURCE_DIR,
                                           "build/broker/pmbroker"))

AGENT_NAME = "t"

#  pmctl's exit codes (pmctl --help).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4

#  The service every config built by AgentTest.config carries, so that a
#  subscriber can prove its subscription is live (see Subscriber.sync).
PROBE = "probe"
PROBE_CONFIG = '  %s: { command = "true"; autostart = false; stop_timeout = 1.0; };\n' % PROBE

# ---------------------------------------------------------------------------
#  Subreaper: orphans of services come to us, so we can find and reap them
# ---------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "prctl(PR_SET_CHILD_SUBREAPER): %s"
                      % os.strerror(error))


_become_subreaper()

# ---------------------------------------------------------------------------
#  Time
# ---------------------------------------------------------------------------


class Deadline:
    """A point in time on the monotonic clock."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def passed(self):
        return time.monotonic() >= self.end


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Polls predicate() until it returns a true value (which is returned)
    or timeout seconds pass (AssertionError).  The short pause between two
    polls bounds the cost of polling; it never stands in for the event."""
    deadline = Deadline(timeout)
    while True:
        value = predicate()
        if value:
            return value
        if deadline.passed():
            raise AssertionError("timed out after %gs waiting for %s"
                                 % (timeout, what))
        time.sleep(min(interval, deadline.left()))

def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_bytes(path):
    """The content of path, or b"" if it cannot be read (yet)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""

# ---------------------------------------------------------------------------
#  Processes: our descendants, by /proc parent links
# ---------------------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid, pgrp, comm) of pid from /proc/<pid>/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    #  comm is in parentheses and may itself hold ") ": cut at the last one.
    left = data.find("(")
    right = data.rfind(")")
    if left < 0 or right < 0:
        return None
    comm = data[left + 1:right]
    fields = data[right + 2:].split()
    try:
        return fields[0], int(fields[1]), int(fields[2]), comm
    except (IndexError, ValueError):
        return None


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(root=None):
    """{pid: (state, ppid, pgrp, comm)} of every process below root (default:
    this process), found by walking parent links in /proc."""
    root = os.getpid() if root is None else root
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    children = {}
    for pid, stat in table.items():
        children.setdefault(stat[1], []).append(pid)
    found = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child != root:
                found[child] = table[child]
                todo.append(child)
    return found


def describe(procs):
    return ", ".join("%d (%s, state %s, parent %d)" % (pid, s[3], s[0], s[1])
                     for pid, s in sorted(procs.items())) or "none"


def reap_zombie_children(skip=()):
    """Reaps every direct child of ours that is a zombie, by pid (never
    waitpid(-1), which could steal a status subprocess is waiting for),
    except the pids in skip (Popen objects reap their own)."""
    me = os.getpid()
    for pid, stat in descendants().items():
        if stat[1] == me and stat[0] == "Z" and pid not in skip:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def kill_and_reap(pids, timeout=5.0, skip=()):
    """SIGKILLs pids (and anything below them appearing meanwhile), then
    reaps those that are our children, until none is left or timeout."""
    deadline = Deadline(timeout)
    me = os.getpid()
    targets = set(pids)
    while True:
        live = {p: s for p, s in descendants().items()
                if p in targets or s[1] in targets}
        targets |= set(live)
        for pid, stat in live.items():
            if stat[0] != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid, stat in descendants().items():
            if stat[1] == me and pid in targets and pid not in skip:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        left = {p: s for p, s in descendants().items() if p in targets
                and not (p in skip and s[0] == "Z")}
        if not left or deadline.passed():
            return left
        time.sleep(0.01)

def curve_client(context, kind, server_cert, own_secret_cert):
    """A socket of kind with CURVE client keys from czmq certificate
    files (the server's public one, our secret one)."""
    import zmq.auth
    sock = context.socket(kind)
    sock.linger = 0
    sock.curve_serverkey, _ = zmq.auth.load_certificate(server_cert)
    sock.curve_publickey, sock.curve_secretkey = zmq.auth.load_certificate(
        own_secret_cert)
    return sock


def check_subscription_cut(test, kept, cut, monitor, timeout=10.0):
    """After a key was removed and the server told: cut's connection was
    dropped and its reconnection refused (monitor: a monitor socket of
    cut for EVENT_DISCONNECTED | EVENT_HANDSHAKE_FAILED_AUTH); from then
    on cut receives nothing while kept receives on (20 messages)."""
    seen = set()
    deadline = Deadline(timeout)
    while zmq.EVENT_HANDSHAKE_FAILED_AUTH not in seen:
        test.assertFalse(deadline.passed(), "monitor saw %r" % seen)
        if monitor.poll(100):
            frames = monitor.recv_multipart()
            seen.add(int.from_bytes(frames[0][:2], "little"))
    test.assertIn(zmq.EVENT_DISCONNECTED, seen)
    while cut.poll(0):
        cut.recv_multipart()
    got = 0
    deadline = Deadline(timeout)
    while got < 20:
        test.assertFalse(deadline.passed(), "the kept subscriber got %d"
                         % got)
        if kept.poll(100):
            kept.recv_multipart()
            got += 1
    test.assertFalse(cut.poll(0), "the cut subscriber still receives")

# ---------------------------------------------------------------------------
#  Protocol clients
# ---------------------------------------------------------------------------


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def expand(event):
    """A published message as the events it stands for: a log message
    (PROTOCOL.md 8.2) holds consecutive lines, `seq` being the first's;
    each comes back as its own dict with its seq, its line and, for a
    piece of a cut line, partial = True.  Any other message is itself."""
    if event.get("kind") != "log" or "lines" not in event:
        return [event]
    partial = set(event.get("partial", ()))
    out = []
    for i, line in enumerate(event["lines"]):
        one = {k: v for k, v in event.items() if k not in ("lines", "partial")}
        one["seq"] = event["seq"] + i
        one["line"] = line
        if i in partial:
            one["partial"] = True
        out.append(one)
    return out


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class Client:
    """A DEALER (or REQ) socket on the agent's control endpoint that sends
    msgpack requests and matches replies by id."""

    _ids = itertools.count(1)

    def __init__(self, context, endpoint, kind=zmq.DEALER):
        self.kind = kind
        self.sock = context.socket(kind)
        self.sock.linger = 0
        if kind == zmq.REQ:
            #  A REQ that lost its answer could never send again.
            self.sock.setsockopt(zmq.REQ_RELAXED, 1)
            self.sock.setsockopt(zmq.REQ_CORRELATE, 1)
        self.sock.connect(endpoint)

    def close(self):
        self.sock.close(0)

    def send_frames(self, frames):
        """Sends raw frames as they are (a DEALER adds no envelope; a REQ
        adds its empty delimiter)."""
        self.sock.send_multipart(frames)

    def recv(self, timeout):
        """The next reply, decoded, or AssertionError after timeout s."""
        if not self.sock.poll(int(timeout * 1000)):
            raise AssertionError("no reply within %gs" % timeout)
        frames = self.sock.recv_multipart()
        if self.kind == zmq.DEALER and len(frames) != 1:
            raise AssertionError("a reply to a DEALER is one frame, got %d: %r"
                                 % (len(frames), frames))
        return unpack(frames[-1])

    def send(self, cmd, args=None, v=1, id=None, **extra):
        """Sends one request; returns its id."""
        rid = next(self._ids) if id is None else id
        message = {"v": v, "id": rid, "cmd": cmd}
        if args is not None:
            message["args"] = args
        message.update(extra)
        self.sock.send(pack(message))
        return rid

    def wait_reply(self, rid, timeout):
        """Receives until the reply to rid arrives (other replies on this
        socket are dropped: nobody else asked on it)."""
        deadline = Deadline(timeout)
        while True:
            reply = self.recv(deadline.left())
            if reply.get("id") == rid:
                return reply

    def request(self, cmd, args=None, timeout=10.0, **extra):
        return self.wait_reply(self.send(cmd, args, **extra), timeout)

    def raw(self, data, timeout=10.0):
        """Sends one frame of arbitrary bytes; returns the next reply."""
        self.sock.send(data)
        return self.recv(timeout)


class Subscriber:
    """A SUB socket on the agent's events endpoint.

    Every message received is kept in .events, in arrival order, as a dict:
    the decoded body plus "topic" (str).  wait_for looks at what was kept
    and at what arrives, up to its deadline.

    The slow-joiner problem: a SUB's subscription reaches the PUB side some
    time after connect(), and whatever the agent publishes before that is
    lost for this subscriber, silently.  sync() closes that gap: it
    subscribes to the probe service's topic too (last, so that the other
    subscriptions, sent earlier on the same pipe, are in place before it),
    then starts the probe (command "true", autostart false) with wait
    "none" until one of its events arrives.  From then on every event
    matching our prefixes is delivered.  The probe's events are never kept
    in .events.  Tests therefore subscribe and sync *before* triggering
    what they watch (services that must be observed from their first event
    are autostart = false and started by the test)."""

    def __init__(self, context, endpoint, prefixes, agent=AGENT_NAME):
        self.agent = agent
        self.sock = context.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.rcvhwm = 0
        self.prefixes = [p.encode() if isinstance(p, str) else p
                         for p in prefixes]
        for prefix in self.prefixes:
            self.sock.setsockopt(zmq.SUBSCRIBE, prefix)
        self.sock.connect(endpoint)
        self.events = []
        self.probe_topic = ("state/%s/%s/" % (agent, PROBE)).encode()
        self._saw_probe = False

    def close(self):
        self.sock.close(0)

    def _keep(self, frames):
        if len(frames) != 2:
            raise AssertionError("an event is two frames, got %d: %r"
                                 % (len(frames), frames))
        topic, body = frames
        if topic.startswith(self.probe_topic):
            return None
        events = expand(unpack(body))
        for event in events:
            event["topic"] = topic.decode("utf-8", "replace")
        self.events.extend(events)
        return events

    def _pump(self, timeout):
        """Receives for up to timeout s (at least one poll); returns the
        events kept."""
        got = []
        if self.sock.poll(int(timeout * 1000)):
            while True:
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if frames[0].startswith(self.probe_topic):
                    self._saw_probe = True
                events = self._keep(frames)
                if events is not None:
                    got.extend(events)
        return got

    def sync(self, client, timeout=10.0):
        """Returns once the subscription is proven live (see the class
        comment).  client is a Client on the same agent."""
        self.sock.setsockopt(zmq.SUBSCRIBE, self.probe_topic)
        self._saw_probe = False
        deadline = Deadline(timeout)
        while not self._saw_probe:
            if deadline.passed():
                raise AssertionError("events subscription not live after %gs"
                                     % timeout)
            reply = client.request("start", {"names": [PROBE], "wait": "none"},
                                   timeout=deadline.left() or 0.1)
            if not reply.get("ok"):
                raise AssertionError("cannot start the probe: %r" % (reply,))
            self._pump(min(0.2, deadline.left()))
        self.sock.setsockopt(zmq.UNSUBSCRIBE, self.probe_topic)
        #  Anything still queued for the probe is dropped by _keep.

    def drain(self, timeout=0.0):
        return self._pump(timeout)

    def wait_for(self, predicate, timeout=10.0, start=0, what=None):
        """The first kept event (from index start) for which predicate is
        true, receiving until it arrives or timeout passes."""
        deadline = Deadline(timeout)
        index = start
        while True:
            while index < len(self.events):
                if predicate(self.events[index]):
                    return self.events[index]
                index += 1
            if deadline.passed():
                raise AssertionError(
                    "timed out after %gs waiting for %s; got: %s"
                    % (timeout, what or "an event", self.summary()))
            self._pump(min(0.1, deadline.left()))

    def state_events(self, service=None):
        return [e for e in self.events if e.get("kind") == "state"
                and (service is None or e.get("service") == service)]

    def transitions(self, service=None):
        """[(service, old, new)] of the state events kept, in order."""
        return [(e["service"], e["old"], e["new"])
                for e in self.state_events(service)]

    def summary(self):
        out = []
        for e in self.events:
            if e.get("kind") == "state":
                out.append("%s:%s->%s#%s" % (e.get("service"), e.get("old"),
                                             e.get("new"), e.get("seq")))
            elif e.get("kind") == "log":
                out.append("log %s/%s#%s" % (e.get("service"), e.get("stream"),
                                             e.get("seq")))
            else:
                out.append("%s:%s" % (e.get("kind"), e.get("event")))
        return "[" + ", ".join(out) + "]"

# ---------------------------------------------------------------------------
#  One pmd
# ---------------------------------------------------------------------------


class Agent:
    """A pmd process started by AgentTest.start_agent."""

    def __init__(self, test, config, proc, stdout, stderr, name=AGENT_NAME):
        self.test = test
        self.config = config
        self.proc = proc
        self.pid = proc.pid
        self.name = name
        self.stdout_path = stdout
        self.stderr_path = stderr
        self.rundir = os.path.join(test.xdg, "pmbus", name)
        self.control = "ipc://%s/control.sock" % self.rundir
        self.events = "ipc://%s/events.sock" % self.rundir
        self.pidfile = os.path.join(self.rundir, "pmd.pid")
        self.lockfile = os.path.join(self.rundir, "pmd.lock")
        self._client = None

    # -- talking ----------------------------------------------------------

    def client(self, kind=zmq.DEALER):
        return self.test.track(Client(self.test.context, self.control, kind))

    def subscribe(self, *prefixes, sync=True):
        """A Subscriber on prefixes (default: every state event of this
        agent), synced unless sync is False."""
        prefixes = prefixes or ("state/%s/" % self.name,)
        sub = self.test.track(Subscriber(self.test.context, self.events,
                                         prefixes, self.name))
        if sync:
            sub.sync(self.default_client())
        return sub

    def default_client(self):
        if self._client is None:
            self._client = self.client()
        return self._client

    def request(self, cmd, args=None, timeout=10.0, **extra):
        return self.default_client().request(cmd, args, timeout, **extra)

    def status(self, names=None):
        """{name: record} from a status request (all services if names is
        None)."""
        args = {"names": list(names)} if names else None
        reply = self.request("status", args)
        if not reply.get("ok"):
            raise AssertionError("status failed: %r" % (reply,))
        return {r["name"]: r for r in reply.get("services", [])}

    def record(self, name):
        return self.status([name])[name]

    def wait_state(self, name, states, timeout=10.0):
        """Polls status until name is in one of states (a string or a
        collection); returns its record."""
        if isinstance(states, str):
            states = (states,)
        last = {}

        def check():
            last["r"] = self.record(name)
            return last["r"] if last["r"]["state"] in states else None
        try:
            return wait_until(check, timeout, what="%s in %s" % (name, states))
        except AssertionError as e:
            raise AssertionError("%s; last record: %r\n%s"
                                 % (e, last.get("r"), self.logs_tail()))

    # -- the process ------------------------------------------------------

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        """pmd's exit code; AssertionError if still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("pmd (pid %d) still running after %gs\n%s"
                                 % (self.pid, timeout, self.logs_tail()))

    def logs_tail(self, lines=30):
        out = []
        for path in (self.stderr_path, self.stdout_path):
            try:
                with open(path, errors="replace") as f:
                    text = f.read().splitlines()[-lines:]
            except OSError:
                continue
            out.append("--- %s ---\n%s" % (path, "\n".join(text)))
        return "\n".join(out)

    def service_log(self, name):
        path = os.path.join(os.path.dirname(self.config), "logs",
                            "%s.log" % name)
        with open(path, "rb") as f:
            return f.read()

# ---------------------------------------------------------------------------
#  The base test case
# ---------------------------------------------------------------------------


class AgentTest(unittest.TestCase):
    """Per test: a temporary directory (self.tmp) holding the config, the
    scripts, the logs and the runtime base (self.xdg, mode 0700, passed as
    XDG_RUNTIME_DIR in self.env to every pmd and pmctl), a ZeroMQ context,
    and a cleanup that stops every agent, kills and reaps by pid whatever
    is left, and fails the test if anything was left."""

    #  Bound on a graceful shutdown in cleanup.
    SHUTDOWN_TIMEOUT = 15.0

    def setUp(self):
        if not os.access(PMD, os.X_OK):
            self.fail("pmd not found at %s (set PMD)" % PMD)
        #  Short and real: ipc paths must fit in 107 bytes, and pmctl
        #  names a config by its real path.
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="pmbb-",
                                                     dir="/tmp"))
        self.xdg = os.path.join(self.tmp, "run")
        os.mkdir(self.xdg, 0o700)
        self.env = dict(os.environ)
        for key in ("PMBUS_CONFIG", "PMBUS_SERVICE", "PMBUS_AGENT"):
            self.env.pop(key, None)
        self.env["XDG_RUNTIME_DIR"] = self.xdg
        self.context = zmq.Context()
        self.agents = []
        self._sockets = []
        self.addCleanup(self._cleanup)

    # -- files ------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write_file(self, name, text, mode=0o644):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def script(self, name, body, shell="/bin/sh"):
        """An executable script in the temp dir; body without the #! line."""
        return self.write_file(name, "#!%s\n%s" % (shell, body), 0o755)

    def config(self, services, agent_extra="", name="pmbus.cfg", probe=True,
               agent_name=AGENT_NAME):
        """Writes a config: agent agent_name (default t), the given services
        block (libconfig text of the members of `services`), plus the probe
        service.  Returns its path."""
        text = 'agent: { name = "%s"; %s};\nservices: {\n%s%s};\n' % (
            agent_name, agent_extra, services,
            PROBE_CONFIG if probe else "")
        return self.write_file(name, text)

    # -- processes --------------------------------------------------------

    def track(self, sock):
        self._sockets.append(sock)
        return sock

    def spawn_pmd(self, config, *args, name=AGENT_NAME):
        """Starts pmd -c config (for the agent called name) without
        waiting; returns its Agent."""
        n = len(self.agents)
        out = self.path("pmd%d.out" % n)
        err = self.path("pmd%d.err" % n)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen([PMD, "-c", config] + list(args),
                                    stdin=subprocess.DEVNULL, stdout=fo,
                                    stderr=fe, env=self.env, cwd=self.tmp)
        agent = Agent(self, config, proc, out, err, name)
        self.agents.append(agent)
        return agent

    def start_agent(self, services=None, config=None, args=(), timeout=10.0,
                    name=AGENT_NAME):
        """Writes a config from services (unless config, a path, is given),
        starts pmd and returns the Agent once it answers hello."""
        if config is None:
            config = self.config(services or "")
        agent = self.spawn_pmd(config, *args, name=name)
        self.wait_hello(agent, timeout)
        return agent

    def wait_hello(self, agent, timeout=10.0):
        """Sends hello until the agent answers (or exits, or timeout).  A
        DEALER may connect before the socket file exists: libzmq keeps
        retrying, and the request waits in its queue."""
        client = agent.default_client()
        deadline = Deadline(timeout)
        while True:
            if not agent.alive():
                self.fail("pmd exited with %s before answering hello\n%s"
                          % (agent.proc.returncode, agent.logs_tail()))
            if deadline.passed():
                self.fail("pmd did not answer hello within %gs\n%s"
                          % (timeout, agent.logs_tail()))
            rid = client.send("hello")
            try:
                reply = client.wait_reply(rid, min(0.5, deadline.left()))
            except AssertionError:
                continue
            if reply.get("ok"):
                return reply
            self.fail("hello refused: %r" % (reply,))

    def run_pmctl(self, *args, timeout=30.0, config=None, env=None):
        """Runs pmctl -c CONFIG ARGS with the test's environment; returns
        (exit code, stdout, stderr).  config defaults to the first agent's
        (or the temp dir's pmbus.cfg)."""
        if config is None:
            config = self.agents[0].config if self.agents else \
                self.path("pmbus.cfg")
        environ = dict(self.env)
        environ.update(env or {})
        try:
            done = subprocess.run([PMCTL, "-c", config] + list(args),
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  env=environ, timeout=timeout, cwd=self.tmp)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("pmctl %s did not finish within %gs "
                                 "(stdout %r, stderr %r)"
                                 % (" ".join(args), timeout, e.stdout,
                                    e.stderr))
        return done.returncode, done.stdout, done.stderr

    # -- cleanup ----------------------------------------------------------

    def _stop_agent(self, agent):
        if not agent.alive():
            return None
        problem = None
        try:
            client = Client(self.context, agent.control)
            try:
                reply = client.request("shutdown", timeout=self.SHUTDOWN_TIMEOUT)
                if not reply.get("ok"):
                    problem = "shutdown refused: %r" % (reply,)
            finally:
                client.close()
        except AssertionError as e:
            problem = "shutdown not answered (%s)" % e
            try:
                agent.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            agent.proc.wait(self.SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            problem = (problem or "") + " pmd %d did not exit after shutdown" \
                % agent.pid
        return problem

    def _cleanup(self):
        problems = []
        for agent in self.agents:
            problem = self._stop_agent(agent)
            if problem:
                problems.append(problem + "\n" + agent.logs_tail())
        popen_pids = {a.pid for a in self.agents}
        #  pmd is gone (or stuck): whatever is below us now is a leak.
        reap_zombie_children(skip=popen_pids)
        stuck = [a for a in self.agents if a.alive()]
        leaked = {p: s for p, s in descendants().items()
                  if s[0] != "Z" and p not in popen_pids}
        left = kill_and_reap(list(leaked) + [a.pid for a in stuck],
                             skip=popen_pids)
        for agent in self.agents:
            try:
                agent.proc.wait(5)
            except subprocess.TimeoutExpired:
                problems.append("pmd %d cannot be killed" % agent.pid)
        for sock in self._sockets:
            sock.close()
        self.context.destroy(linger=0)
        if leaked:
            problems.append("processes left behind: %s" % describe(leaked))
        if left:
            problems.append("processes that survived SIGKILL: %s"
                            % describe(left))
        if problems and os.environ.get("PMTEST_KEEP"):
            sys.stderr.write("keeping %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("cleanup: " + "\n".join(problems))


def main():
    unittest.main(verbosity=2)
