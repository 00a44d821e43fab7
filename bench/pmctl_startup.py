#!/usr/bin/python3
"""What a pmctl command costs as a whole process, against /bin/true.

An agent runs N services (default 100, `sleep`); each command below runs
RUNS times (default 300), interleaved with /bin/true so that the noise of
the machine falls on all alike.  Printed per command: median and 90th
percentile, and the median's difference to /bin/true's, in ms.

  --version, is-running (agent up; and for a config with no agent),
  check (parses the N-service file: the one command that must),
  status s1 and status (from the agent's status snapshot file),
  status --live (a ZeroMQ round trip: loads libzmq).

Nothing is asserted.  Usage: bench/pmctl_startup.py [BUILD] [RUNS] [N]
"""
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 300
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 100
PMD = os.path.abspath(os.path.join(BUILD, "agent", "pmd"))
PMCTL = os.path.abspath(os.path.join(BUILD, "ctl", "pmctl"))


def config(name, count):
    lines = ['agent: { name = "%s"; };' % name, "services: {"]
    lines += ['  s%d: { argv = ["sleep", "100000"]; };' % i
              for i in range(1, count + 1)]
    return "\n".join(lines + ["};", ""])


def run_once(argv, env):
    """Wall time of argv as a whole process (posix_spawn, output to
    /dev/null); exits the benchmark if it fails."""
    actions = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    took = (time.perf_counter_ns() - start) / 1e6
    code = os.waitstatus_to_exitcode(status)
    return took, code


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: reap what we start
    tmp = tempfile.mkdtemp(prefix="pmbus-bench-")
    run_dir = os.path.join(tmp, "run")
    os.mkdir(run_dir, 0o700)
    cfg = os.path.join(tmp, "bench.cfg")
    idle = os.path.join(tmp, "idle.cfg")
    with open(cfg, "w") as f:
        f.write(config("bench", COUNT))
    with open(idle, "w") as f:
        f.write(config("idle", 1))
    # As when a user edits the file and starts the agent later: the agent
    # records the identity only of a file older than the clock tick of its
    # read (PROTOCOL.md 1.1), and this one was written just now.
    time.sleep(0.05)
    env = dict(os.environ, XDG_RUNTIME_DIR=run_dir)
    # --daemon returns once the agent accepts commands: no waiting loop.
    subprocess.run([PMD, "--daemon", "-c", cfg], env=env, check=True,
                   timeout=30)
    pid = int(open(os.path.join(run_dir, "pmbus", "bench", "pmd.pid")).read())
    commands = [
        ("/bin/true", ["/bin/true"], 0),
        ("pmctl --version", [PMCTL, "--version"], 0),
        ("pmctl is-running", [PMCTL, "-c", cfg, "is-running"], 0),
        ("pmctl is-running (no agent)", [PMCTL, "-c", idle, "is-running"], 1),
        ("pmctl check (%d services)" % COUNT, [PMCTL, "check", cfg], 0),
        ("pmctl status s1", [PMCTL, "-c", cfg, "status", "s1"], 0),
        ("pmctl status (%d)" % COUNT, [PMCTL, "-c", cfg, "status"], 0),
        ("pmctl status --live (%d)" % COUNT,
         [PMCTL, "-c", cfg, "status", "--live"], 0),
    ]
    try:
        subprocess.run([PMCTL, "-c", cfg, "wait", "--all", "--for",
                        "running", "--timeout", "30"], env=env, check=True,
                       timeout=60, stdout=subprocess.DEVNULL)
        times = {name: [] for name, _, _ in commands}
        for i in range(RUNS + 10):
            for name, argv, want in commands:
                took, code = run_once(argv, env)
                if code != want:
                    sys.exit("bench: %s exited %d, not %d"
                             % (" ".join(argv), code, want))
                if i >= 10:             # the first ten warm the caches
                    times[name].append(took)
        base = statistics.median(times["/bin/true"])
        print("pmctl start-up, %d runs each, interleaved; an agent with %d "
              "services" % (RUNS, COUNT))
        for name, _, _ in commands:
            ts = sorted(times[name])
            median = statistics.median(ts)
            p90 = ts[int(len(ts) * 0.9) - 1]
            print("%-30s median %6.3f ms  p90 %6.3f ms  %+6.3f ms vs "
                  "/bin/true" % (name, median, p90, median - base))
    finally:
        subprocess.run([PMCTL, "-c", cfg, "shutdown"], env=env, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    break
            except ChildProcessError:
                break
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
