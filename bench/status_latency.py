#!/usr/bin/python3
"""Latency of `pmctl status` as a whole process, against a running agent.

Prints the median and the 90th percentile of N runs (default 100) of
`pmctl -c CFG status`, next to a baseline measured in the same run: the
same number of runs of /bin/true, so the figure can be read as "process
start-up plus the request" on this machine.

Usage: bench/status_latency.py [BUILD_DIR] [RUNS]
"""
import ctypes
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
PMD = os.path.join(BUILD, "agent", "pmd")
PMCTL = os.path.join(BUILD, "ctl", "pmctl")

CONFIG = """
agent: { name = "bench"; };
services: {
  a: { command = "sleep 3600"; };
  b: { command = "sleep 3600"; depends_on = { a = "started"; }; };
  c: { command = "sleep 3600"; };
};
"""


def timed_runs(argv, env, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=10)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit("bench: %s failed: %s" % (argv, done.stderr.decode()))
    return times


def describe(name, times):
    times = sorted(times)
    median = statistics.median(times) * 1000
    p90 = times[int(len(times) * 0.9) - 1] * 1000
    print("%-28s median %7.3f ms   p90 %7.3f ms   (%d runs)"
          % (name, median, p90, len(times)))
    return median


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: reap what we start
    tmp = tempfile.mkdtemp(prefix="pmbus-bench-")
    run_dir = os.path.join(tmp, "run")
    os.mkdir(run_dir, 0o700)
    cfg = os.path.join(tmp, "bench.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    env = dict(os.environ, XDG_RUNTIME_DIR=run_dir)
    # --daemon returns once the agent accepts commands: no waiting loop.
    subprocess.run([PMD, "--daemon", "-c", cfg], env=env, check=True,
                   timeout=10)
    pid_file = os.path.join(run_dir, "pmbus", "bench", "pmd.pid")
    pid = int(open(pid_file).read())
    try:
        subprocess.run([PMCTL, "-c", cfg, "start", "--all"], env=env,
                       check=True, timeout=10, stdout=subprocess.DEVNULL)
        timed_runs([PMCTL, "-c", cfg, "status"], env, 10)  # warm caches
        base = describe("baseline /bin/true", timed_runs(["/bin/true"], env, RUNS))
        status = describe("pmctl status (3 services)",
                          timed_runs([PMCTL, "-c", cfg, "status"], env, RUNS))
        print("ratio pmctl status / true: %.1fx" % (status / base))
    finally:
        subprocess.run([PMCTL, "-c", cfg, "shutdown"], env=env, timeout=30,
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


if __name__ == "__main__":
    main()
