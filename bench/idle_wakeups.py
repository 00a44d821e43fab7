#!/usr/bin/python3
"""How often an idle pmd wakes up, with and without probes.

DESIGN.md: "Nothing polls: with no probe configured, an idle agent sleeps
until something happens", and probe.c: "an idle agent with probes wakes
only on them".  This measures it, for an agent whose services are up and
whose only activity is its probes:

  idle         one service (sleep), no probe
  ready-tcp    one service whose tcp readiness probe never passes
               (connection refused), interval 1 s, no deadline
  ready-exec   one service whose exec readiness probe never passes
               (`false`), interval 1 s, no deadline
  alive-tcp    one running service with a tcp liveness probe that passes
               (a listener in this script), interval 0.5 s

Two figures per case, each over its own window of SECONDS (default 5)
after a warm-up, so that one measurement does not disturb the other:

  ctxsw   voluntary context switches of every pmd thread, from
          /proc/PID/task/*/status, before and after: each is one wakeup
          of a thread that had gone to sleep
  polls   calls of poll/ppoll/epoll_wait/epoll_pwait, counted by
          `strace -f -e trace=... -p PID` (skipped if strace is missing),
          split into the main thread (the event loop) and the others
          (libzmq's I/O and reaper threads); with -tt timestamps, the main
          thread's wakeups are matched to the probe schedule

Usage: bench/idle_wakeups.py [BUILD_DIR] [SECONDS]
(BUILD_DIR defaults to $PMD's build or ./build)
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else None
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
if BUILD:
    PMD = os.path.join(BUILD, "agent", "pmd")
else:
    PMD = os.environ.get("PMD") or os.path.join("build", "agent", "pmd")
PMD = os.path.abspath(PMD)
WARMUP = 1.5
SYSCALLS = "poll,ppoll,epoll_wait,epoll_pwait"


def free_port():
    """A closed loopback port below the ephemeral range: a probe that
    connects to a closed port inside it could connect to itself."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in range(min(low, 65536) - 1, 1024, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    sys.exit("bench: no free loopback port")


class Listener:
    """A loopback listener that accepts and closes, in a thread."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def cases(listener):
    refused = free_port()
    return [
        ("idle", 'command = "sleep 3600";', 0.0),
        ("ready-tcp", 'command = "sleep 3600"; ready = { tcp = '
         '"127.0.0.1:%d"; interval = 1.0; deadline = 0; };' % refused, 1.0),
        ("ready-exec", 'command = "sleep 3600"; ready = { exec = "false"; '
         'interval = 1.0; deadline = 0; };', 1.0),
        ("alive-tcp", 'command = "sleep 3600"; alive = { tcp = '
         '"127.0.0.1:%d"; interval = 0.5; };' % listener.port, 2.0),
    ]


def thread_switches(pid):
    """{tid: (comm, voluntary, nonvoluntary)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s" % (pid, tid)
        try:
            with open(base + "/comm") as f:
                comm = f.read().strip()
            with open(base + "/status") as f:
                status = f.read()
        except OSError:
            continue
        vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status,
                            re.M).group(1))
        nonvol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)",
                               status, re.M).group(1))
        out[int(tid)] = (comm, vol, nonvol)
    return out


def measure_switches(pid, seconds):
    before = thread_switches(pid)
    time.sleep(seconds)
    after = thread_switches(pid)
    rows = []
    for tid, (comm, vol, nonvol) in sorted(after.items()):
        b = before.get(tid, (comm, 0, 0))
        rows.append((tid, comm, (vol - b[1]) / seconds,
                     (nonvol - b[2]) / seconds))
    return rows


def measure_polls(pid, seconds, tmp):
    """(main thread calls/s, other threads calls/s, main thread call
    times) from strace, or None without strace."""
    strace = shutil.which("strace")
    if not strace:
        return None
    out = os.path.join(tmp, "strace.out")
    proc = subprocess.Popen([strace, "-f", "-tt", "-e", "trace=" + SYSCALLS,
                             "-o", out, "-p", str(pid)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    #  strace needs a moment to attach to every thread; count from then.
    time.sleep(0.3)
    began = time.time()
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    lt = time.localtime(began)
    start = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + began % 1
    main, other, times = 0, 0, []
    with open(out) as f:
        for line in f:
            m = re.match(r"(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(\w+)\(", line)
            if not m:
                #  "<... epoll_wait resumed>" lines finish a call already
                #  counted.
                continue
            tid = int(m.group(1))
            h, mi, s = int(m.group(2)), int(m.group(3)), float(m.group(4))
            t = h * 3600 + mi * 60 + s
            if t < start:
                continue        # attaching restarts every blocked call
            if tid == pid:
                main += 1
                times.append(t)
            else:
                other += 1
    return main / seconds, other / seconds, times


def run_case(name, service, tmp, expected):
    case_dir = os.path.join(tmp, name)
    os.makedirs(os.path.join(case_dir, "run"), mode=0o700)
    config = os.path.join(case_dir, "pmbus.cfg")
    with open(config, "w") as f:
        f.write('agent: { name = "idle-%s"; };\nservices: {\n  s: { %s };\n};\n'
                % (name, service))
    env = dict(os.environ)
    env["XDG_RUNTIME_DIR"] = os.path.join(case_dir, "run")
    log = open(os.path.join(case_dir, "pmd.err"), "wb")
    proc = subprocess.Popen([PMD, "-c", config], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        sock = os.path.join(case_dir, "run", "pmbus", "idle-%s" % name,
                            "control.sock")
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("bench: pmd did not come up for %s" % name)
            time.sleep(0.02)
        time.sleep(WARMUP)
        switches = measure_switches(proc.pid, SECONDS)
        polls = measure_polls(proc.pid, SECONDS, case_dir)
        return switches, polls
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main():
    if not os.access(PMD, os.X_OK):
        sys.exit("bench: no pmd at %s (give BUILD_DIR or set PMD)" % PMD)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: reap what we start
    tmp = tempfile.mkdtemp(prefix="pmbus-idle-")
    listener = Listener()
    print("pmd: %s; window %.1f s per figure, after %.1f s warm-up"
          % (PMD, SECONDS, WARMUP))
    print("ctxsw = voluntary context switches/s (/proc/PID/task/*/status); "
          "polls = %s calls/s (strace -f)" % SYSCALLS.replace(",", "/"))
    print()
    print("%-11s %-22s %-34s %s" % ("case", "ctxsw/s main (others)",
                                     "polls/s main (others)",
                                     "main thread wakes only on probes?"))
    try:
        for name, service, expected in cases(listener):
            switches, polls = run_case(name, service, tmp, expected)
            main = [r for r in switches if r[0] == min(x[0] for x in switches)]
            others = [r for r in switches if r not in main]
            main_sw = main[0][2]
            other_sw = sum(r[2] for r in others)
            detail = ", ".join("%s %.1f" % (r[1], r[2]) for r in others)
            if polls is None:
                poll_text = "strace not installed"
                verdict = "n/a"
            else:
                poll_main, poll_other, times = polls
                poll_text = "%.2f (%.2f)" % (poll_main, poll_other)
                #  Each probe attempt costs the loop a few wakeups (the
                #  timer, the socket or the child's exit): what matters is
                #  that they come in bursts at the probe's period and
                #  nothing happens in between.
                bursts = 0
                last = None
                for t in times:
                    if last is None or t - last > 0.2:
                        bursts += 1
                    last = t
                burst_rate = bursts / SECONDS
                per = poll_main / burst_rate if bursts else 0
                verdict = ("yes: %.2f bursts/s of %.1f calls, probe period "
                           "gives %.1f/s" % (burst_rate, per, expected))
                if expected == 0:
                    verdict = ("yes: no wakeup" if poll_main < 0.05
                               else "NO: %.2f/s with no probe" % poll_main)
                elif burst_rate > expected * 1.5 + 0.2:
                    verdict = "NO: " + verdict
            print("%-11s %-22s %-34s %s" % (name, "%.2f (%.2f)"
                                             % (main_sw, other_sw),
                                             poll_text, verdict))
            print("%-11s threads: %s" % ("", "%s %.1f; " % (main[0][1], main_sw)
                                          + detail))
    finally:
        listener.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
