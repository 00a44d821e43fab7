#!/usr/bin/python3
"""What it costs to run a chatty service under pmd: a burst of output.

One writer program produces LINES lines of 80 bytes (79 digits and a
newline: `seq -f %079g`, or the same from a small Python program with
--writer python).  Timed three ways:

  (a) baseline: the writer with its output redirected straight to a file;
  (b) the writer as a pmd service: from the start request to its exit
      event (the agent records the exit only after every line is in the
      log file and published), the log file checked byte for byte
      against (a)'s;
  (c) the same with SUBSCRIBERS subscribers attached, one thread each
      with its own SUB and DEALER sockets, each following the service as
      PROTOCOL.md says (subscribe, then drop duplicates by seq and fill
      gaps with `logs` and `since`, paging on `more`; after the exit
      event, fetch the rest).  Each must end with every seq 1..LINES
      exactly once, in order, with the right content.

Printed: each time, (b)/(a) and (c)/(a), the time until every subscriber
had everything, how each got its lines (live or fetched), the agent's
peak RSS (VmHWM, a fresh agent for (b) and for (c)), and the ring's
memory bound per service.

Each run uses a temporary directory and XDG_RUNTIME_DIR, starts pmd with
--daemon, and ends by shutting it down and reaping it by pid.  Not a
test: it prints figures; it exits non-zero only if something was lost.

Usage: bench/logs_throughput.py [--build DIR] [--lines N]
                                [--subscribers K] [--writer seq|python]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import zmq

#  The helpers every bench script shares (bench/pmbench.py).
from pmbench import become_subreaper, pack, reap, unpack  # noqa: E402

AGENT = "bench"
RING_LINES = 600000
RING_BYTES = "64M"
RING_BYTES_VALUE = 64 * 1024 * 1024
#  sizeof (pm_logline_t) on x86-64 (agent/logring.h): seq, ts, stream,
#  partial, size, data pointer.
SLOT_BYTES = 40

#  Its own 64 KiB buffer, whatever PYTHONUNBUFFERED says.
PYTHON_WRITER = """\
import sys
out = open(1, "w", buffering=65536, closefd=False)
w = out.write
for i in range(1, int(sys.argv[1]) + 1):
    w("%079d\\n" % i)
out.flush()
"""


# ---------------------------------------------------------------------------
#  Processes
# ---------------------------------------------------------------------------


def zombie_children():
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2:].split()
        if int(fields[1]) == me and fields[0] == "Z":
            found.append(int(entry))
    return found


def vm_status(pid):
    """{"VmHWM": kB, "VmRSS": kB} of pid."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    return out


# ---------------------------------------------------------------------------
#  One agent
# ---------------------------------------------------------------------------


class Agent:
    def __init__(self, pmd, tmp, name, command):
        self.dir = os.path.join(tmp, name)
        os.mkdir(self.dir)
        self.xdg = os.path.join(self.dir, "run")
        os.mkdir(self.xdg, 0o700)
        self.config = os.path.join(self.dir, "pmbus.cfg")
        with open(self.config, "w") as f:
            f.write('agent: { name = "%s"; };\n'
                    'services: {\n'
                    '  w: { command = "%s"; autostart = false; '
                    'log_max_size = 0; log_ring = %d; log_ring_bytes = "%s"; };\n'
                    '  probe: { command = "true"; autostart = false; };\n'
                    '};\n' % (AGENT, command, RING_LINES, RING_BYTES))
        self.log = os.path.join(self.dir, "logs", "w.log")
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.xdg)
        rundir = os.path.join(self.xdg, "pmbus", AGENT)
        self.control = "ipc://%s/control.sock" % rundir
        self.events = "ipc://%s/events.sock" % rundir
        #  --daemon returns once the agent accepts commands.
        done = subprocess.run([pmd, "--daemon", "-c", self.config],
                              env=self.env, timeout=30,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if done.returncode != 0:
            sys.exit("bench: pmd --daemon failed: %s" % done.stderr.decode())
        with open(os.path.join(rundir, "pmd.pid")) as f:
            self.pid = int(f.read())

    def shutdown(self, context):
        client = Client(context, self.control)
        try:
            client.request("shutdown", timeout=30)
        except AssertionError:
            pass
        finally:
            client.close()
        if not reap(self.pid, 30):
            print("bench: pmd %d did not exit; killing it" % self.pid)
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            reap(self.pid, 10)
        for pid in zombie_children():
            os.waitpid(pid, 0)


class Client:
    def __init__(self, context, endpoint):
        self.sock = context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.next_id = 0

    def close(self):
        self.sock.close(0)

    def request(self, cmd, args=None, timeout=10.0):
        self.next_id += 1
        message = {"v": 1, "id": self.next_id, "cmd": cmd}
        if args is not None:
            message["args"] = args
        self.sock.send(pack(message))
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise AssertionError("no reply to %s within %gs"
                                     % (cmd, timeout))
            reply = unpack(self.sock.recv())
            if reply.get("id") == self.next_id:
                return reply


def sync(sub, client, timeout=10.0):
    """Proves sub's subscription live: starts the probe service until one
    of its state events arrives (the slow-joiner problem).  Other events
    received meanwhile are returned."""
    probe = ("state/%s/probe/" % AGENT).encode()
    sub.setsockopt(zmq.SUBSCRIBE, probe)
    end = time.monotonic() + timeout
    kept = []
    seen = False
    while not seen:
        if time.monotonic() > end:
            raise AssertionError("subscription not live after %gs" % timeout)
        client.request("start", {"names": ["probe"], "wait": "none"})
        if sub.poll(200):
            while True:
                try:
                    frames = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if frames[0].startswith(probe):
                    seen = True
                else:
                    kept.append(frames)
    sub.setsockopt(zmq.UNSUBSCRIBE, probe)
    return kept


# ---------------------------------------------------------------------------
#  A follower in a thread
# ---------------------------------------------------------------------------


class Follower(threading.Thread):
    """Follows service w: live lines, duplicates dropped by seq, gaps and
    the end filled with `logs` since.  Checks each line as it prints it."""

    def __init__(self, context, agent, total, synced, go, timeout):
        super().__init__(daemon=True)
        self.context = context
        self.agent = agent
        self.total = total
        self.synced = synced
        self.go = go
        self.timeout = timeout
        self.last = 0
        self.live = self.fetched = self.dups = self.gaps = 0
        self.requests = 0
        self.gone = []
        self.errors = []
        self.done_at = None
        self.failure = None

    def _print(self, seq, line):
        if seq != self.last + 1:
            self.errors.append("seq %d after %d" % (seq, self.last))
        elif line != "%079d" % seq:
            self.errors.append("seq %d is %r" % (seq, line[:90]))
        self.last = seq

    def catch_up(self, upto=None):
        while True:
            reply = self.client.request("logs", {"names": ["w"],
                                                 "since": self.last})
            self.requests += 1
            block = reply["logs"][0]
            if block.get("gone"):
                self.gone.append(tuple(block["gone"]))
                self.last = block["gone"][1]
            for line in block["lines"]:
                self.fetched += 1
                self._print(line["seq"], line["line"])
            if not block["more"] or (upto is not None and self.last >= upto):
                return

    def on_frames(self, frames):
        topic, body = frames
        event = unpack(body)
        if event["kind"] == "state":
            if event["new"] in ("completed", "failed", "stopped"):
                self.catch_up()
            return
        # One message: consecutive lines from seq (PROTOCOL.md 8.2).
        first = event["seq"]
        for i, line in enumerate(event["lines"]):
            seq = first + i
            self.live += 1
            if seq <= self.last:
                self.dups += 1
                continue
            if seq > self.last + 1:
                self.gaps += 1
                self.catch_up(seq - 1)
                if seq <= self.last:
                    self.dups += 1
                    continue
            self._print(seq, line)

    def run(self):
        try:
            self._run()
        except BaseException as e:
            self.failure = e
            self.synced.set()

    def _run(self):
        self.client = Client(self.context, self.agent.control)
        sub = self.context.socket(zmq.SUB)
        sub.linger = 0
        for topic in ("log/%s/w/" % AGENT, "state/%s/w/" % AGENT):
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sub.connect(self.agent.events)
        try:
            for frames in sync(sub, self.client):
                self.on_frames(frames)
            self.synced.set()
            self.go.wait(30)
            end = time.monotonic() + self.timeout
            idle_since = time.monotonic()
            while self.last < self.total:
                if time.monotonic() > end:
                    raise AssertionError("at seq %d after %gs"
                                         % (self.last, self.timeout))
                if sub.poll(100):
                    idle_since = time.monotonic()
                    for _ in range(1000):
                        try:
                            frames = sub.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self.on_frames(frames)
                elif time.monotonic() - idle_since > 0.5:
                    #  Nothing for a while: the end (and its exit event)
                    #  may have been lost at the high-water mark.
                    idle_since = time.monotonic()
                    self.catch_up()
            self.done_at = time.monotonic()
        finally:
            sub.close(0)
            self.client.close()

    def problems(self):
        out = list(self.errors[:3])
        if self.failure is not None:
            out.append("failed: %s" % self.failure)
        if self.gone:
            out.append("gone: %r" % self.gone)
        if self.last != self.total:
            out.append("ended at seq %d" % self.last)
        return out


# ---------------------------------------------------------------------------
#  The scenarios
# ---------------------------------------------------------------------------


def run_service(pmd, tmp, name, command, expected, subscribers, lines):
    """Starts an agent, runs the writer as its service w with subscribers
    attached; returns a dict of figures."""
    context = zmq.Context()
    agent = Agent(pmd, tmp, name, command)
    figures = {"lost": []}
    followers = []
    try:
        client = Client(context, agent.control)
        states = context.socket(zmq.SUB)
        states.linger = 0
        states.setsockopt(zmq.SUBSCRIBE, ("state/%s/w/" % AGENT).encode())
        states.connect(agent.events)
        sync(states, client)
        go = threading.Event()
        for _ in range(subscribers):
            synced = threading.Event()
            follower = Follower(context, agent, lines, synced, go,
                                timeout=300)
            follower.start()
            if not synced.wait(30):
                raise AssertionError("a subscriber did not sync")
            followers.append(follower)
        go.set()
        figures["mem_before"] = vm_status(agent.pid)
        begin = time.monotonic()
        reply = client.request("start", {"names": ["w"], "wait": "none"})
        if not reply.get("ok"):
            raise AssertionError("start: %r" % (reply,))
        spawned = None
        while True:
            if not states.poll(120000):
                raise AssertionError("no exit event within 120 s")
            event = unpack(states.recv_multipart()[1])
            if event["new"] == "starting":
                spawned = event["ts"]
            if event["new"] in ("completed", "failed"):
                break
        figures["time"] = time.monotonic() - begin
        figures["agent_time"] = event["ts"] - spawned if spawned else None
        figures["state"] = event["new"]
        figures["mem"] = vm_status(agent.pid)
        with open(agent.log, "rb") as f:
            data = f.read()
        if data != expected:
            figures["lost"].append("log file differs from the baseline "
                                   "(%d bytes, expected %d)"
                                   % (len(data), len(expected)))
        for follower in followers:
            follower.join(300)
        if followers:
            figures["all_time"] = max(f.done_at or float("inf")
                                      for f in followers) - begin
        for i, follower in enumerate(followers):
            for problem in follower.problems():
                figures["lost"].append("subscriber %d: %s" % (i, problem))
        figures["followers"] = followers
        states.close(0)
        client.close()
    finally:
        agent.shutdown(context)
        context.destroy(linger=0)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.environ.get("PM_BUILD",
                                                          "build"))
    parser.add_argument("--lines", type=int, default=500000)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--writer", choices=("seq", "python"), default="seq")
    args = parser.parse_args()
    pmd = os.path.abspath(os.environ.get("PMD")
                          or os.path.join(args.build, "agent", "pmd"))
    if not os.access(pmd, os.X_OK):
        sys.exit("bench: no pmd at %s (--build DIR or PMD=...)" % pmd)
    if args.writer == "seq" and args.lines > 999999:
        sys.exit("bench: seq -f %079g counts exactly only below 1e6")
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix="pmbus-logs-bench-")
    try:
        if args.writer == "seq":
            argv = ["seq", "-f", "%079g", "1", str(args.lines)]
            command = "seq -f %%079g 1 %d" % args.lines
        else:
            script = os.path.join(tmp, "writer.py")
            with open(script, "w") as f:
                f.write(PYTHON_WRITER)
            argv = ["/usr/bin/python3", script, str(args.lines)]
            command = "/usr/bin/python3 %s %d" % (script, args.lines)

        #  (a) the writer straight into a file; median of five.
        baseline = os.path.join(tmp, "baseline.log")
        times = []
        for _ in range(5):
            with open(baseline, "wb") as out:
                start = time.monotonic()
                subprocess.run(argv, stdout=out, check=True, timeout=120)
                times.append(time.monotonic() - start)
        base = statistics.median(times)
        with open(baseline, "rb") as f:
            expected = f.read()
        if len(expected) != 80 * args.lines:
            sys.exit("bench: the writer wrote %d bytes, not %d"
                     % (len(expected), 80 * args.lines))

        service = run_service(pmd, tmp, "b", command, expected, 0,
                              args.lines)
        followed = run_service(pmd, tmp, "c", command, expected,
                               args.subscribers, args.lines)

        mib = 1024.0
        print("writer: %s, %d lines of 80 bytes (%.1f MB)"
              % (command if args.writer == "seq" else "python writer",
                 args.lines, len(expected) / 1e6))
        print("(a) straight to a file         %8.3f s   (median of 5: %s)"
              % (base, ", ".join("%.3f" % t for t in times)))
        for label, fig in (("(b) as a pmd service         ", service),
                           ("(c) + %2d subscribers         "
                            % args.subscribers, followed)):
            print("%s %8.3f s   %5.1fx (a)   spawn to exit in the agent "
                  "%.3f s, %s" % (label, fig["time"], fig["time"] / base,
                                  fig["agent_time"], fig["state"]))
        print("(c) every subscriber complete %8.3f s   %5.1fx (a)"
              % (followed["all_time"], followed["all_time"] / base))
        for i, f in enumerate(followed["followers"]):
            print("    subscriber %2d: %6d live (%d duplicates), %6d from "
                  "`logs` in %d requests, %d gaps seen, gone %s"
                  % (i, f.live, f.dups, f.fetched, f.requests, f.gaps,
                     f.gone or "none"))
        for label, fig in (("(b)", service), ("(c)", followed)):
            print("agent memory %s: RSS before the burst %.1f MiB, peak "
                  "RSS (VmHWM) %.1f MiB, RSS after it %.1f MiB"
                  % (label, fig["mem_before"]["VmRSS"] / mib,
                     fig["mem"]["VmHWM"] / mib, fig["mem"]["VmRSS"] / mib))
        print("ring bound per service: log_ring %d lines and log_ring_bytes "
              "%s of line data (here %d lines hold %.1f MiB of data), plus "
              "%d-byte slots (%.1f MiB) and allocator overhead per line"
              % (RING_LINES, RING_BYTES, args.lines,
                 79 * args.lines / 1048576.0, SLOT_BYTES,
                 SLOT_BYTES * RING_LINES / 1048576.0))
        print("PUB queues: up to %d messages per subscriber (agent.subscriber_queue) "
              "while it lags" % 4096)
        lost = service["lost"] + followed["lost"]
        if lost:
            print("LOST:\n  " + "\n  ".join(lost))
            return 1
        print("no loss: both log files match the baseline byte for byte; "
              "every subscriber printed 1..%d once, in order" % args.lines)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
