#!/usr/bin/python3
"""100 raw subscribers on one chatty service: is every line delivered once,
and what do they cost the service?

One service w writes LINES lines of 80 bytes (`seq -f %079g`, under bash,
which notes $EPOCHREALTIME before and after into a file: the service's own
time from its start to its exit).  Run twice, each time on a fresh agent:

  none       no subscriber (median of 3 runs of w)
  followed   FOLLOWERS raw SUB sockets on `log/<agent>/w/` and
             `state/<agent>/w/`, spread over PROCS processes (one zmq
             context and poller each), every one proven live (sync on a
             probe service's events) before w starts

Every follower checks each line's seq: the next one (counted), one it has
already seen (a duplicate) or one past a hole (a gap, with the number of
lines missing); it is done at w's exit event (PROTOCOL.md 8.2: every line
is published before it).  No follower fetches missed lines with `logs`:
what is counted is what the events socket delivered.

Printed: the service's throughput (lines/s) without and with followers and
their ratio (goal: within 1.5x), the agent's spawn-to-exit time from its
own events, the time until the last follower had its last line, and per
follower how many lines, gaps and duplicates.  The followers and the
service share the machine's cores: on 2 cores part of the ratio is the
followers' own CPU (Python decoding LINES x FOLLOWERS messages), which is
printed too.  Not a test: exits non-zero only if a line was lost or
duplicated, or a step failed.

Usage: bench/followers.py [BUILD_DIR] [--lines 100000] [--followers 100]
                          [--procs 4]
"""
import argparse
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

import pmbench

WRITER = ('s=$EPOCHREALTIME; seq -f %%079g 1 %d; e=$EPOCHREALTIME; '
          'echo "$s $e" > %s')


def config_text(lines, timefile):
    return ('services: {\n'
            '  w: { argv = [ "/bin/bash", "-c", "%s" ]; autostart = false; '
            'log_max_size = 0; };\n'
            '  probe: { command = "true"; autostart = false; };\n'
            '};\n' % (WRITER % (lines, timefile)).replace('"', '\\"'))


# ---------------------------------------------------------------------------
#  A follower process: --follower CONTROL EVENTS AGENT COUNT LINES
# ---------------------------------------------------------------------------


def follower_main(control, events, agent_name, count, lines, timeout):
    context = zmq.Context()
    client = pmbench.Client(context, control)
    subs = []
    for _ in range(count):
        sub = context.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = 0
        for prefix in ("log/%s/w/" % agent_name, "state/%s/w/" % agent_name):
            sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        sub.connect(events)
        subs.append(sub)
    pmbench.sync(subs, client, agent_name)
    print("ready", flush=True)
    state = [{"last": 0, "lines": 0, "gaps": 0, "missing": 0, "dups": 0,
              "done": False, "last_at": None} for _ in subs]
    index = {sub: i for i, sub in enumerate(subs)}
    poller = zmq.Poller()
    for sub in subs:
        poller.register(sub, zmq.POLLIN)
    left = count
    end = time.monotonic() + timeout
    while left and time.monotonic() < end:
        for sub, _ in poller.poll(1000):
            st = state[index[sub]]
            for _ in range(256):
                try:
                    topic, body = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                event = pmbench.unpack(body)
                if event["kind"] == "state":
                    if event["new"] in ("completed", "failed"):
                        st["done"] = True
                        left -= 1
                        poller.unregister(sub)
                        break
                    continue
                # One message: consecutive lines from seq (PROTOCOL 8.2).
                first, count = event["seq"], len(event["lines"])
                last = first + count - 1
                if last <= st["last"]:
                    st["dups"] += count
                    continue
                if first <= st["last"]:
                    st["dups"] += st["last"] - first + 1
                elif first > st["last"] + 1:
                    st["gaps"] += 1
                    st["missing"] += first - st["last"] - 1
                st["lines"] += last - max(first, st["last"] + 1) + 1
                st["last"] = last
                st["last_at"] = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"followers": state,
                      "cpu": usage.ru_utime + usage.ru_stime}), flush=True)
    for sub in subs:
        sub.close(0)
    client.close()
    context.destroy(linger=0)


# ---------------------------------------------------------------------------
#  The parent
# ---------------------------------------------------------------------------


def run_w(agent, client, sub, timefile, timeout):
    """Starts w, waits for its exit event; returns (service seconds,
    agent spawn-to-exit seconds, wall epoch when it started)."""
    if os.path.exists(timefile):
        os.unlink(timefile)
    reply = client.request("start", {"names": ["w"], "wait": "none"})
    if not reply.get("ok"):
        raise RuntimeError("start w: %r" % (reply.get("error"),))
    spawned = None
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not sub.poll(int(left * 1000) + 1):
            raise TimeoutError("w did not exit within %gs" % timeout)
        event = pmbench.unpack(sub.recv_multipart()[1])
        if event.get("service") != "w":
            continue
        if event["new"] == "starting":
            spawned = event["ts"]
        if event["new"] in ("completed", "failed"):
            break
    if event["new"] != "completed":
        raise RuntimeError("w ended %s: %r" % (event["new"],
                                                event["record"].get("error")))
    with open(timefile) as f:
        begin, finish = (float(x) for x in f.read().split())
    return finish - begin, event["ts"] - spawned, begin


def read_line(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("follower %d silent for %gs" % (proc.pid, timeout))
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("follower %d ended early (exit %s)"
                           % (proc.pid, proc.wait(10)))
    return line


def scenario(pmd, tmp, lines, followers, procs, runs, timeout):
    timefile = os.path.join(tmp, "w-%d.time" % followers)
    agent = pmbench.Agent(pmd, config_text(lines, timefile))
    children = []
    try:
        client = agent.client()
        sub = agent.subscriber("state/%s/" % agent.name)
        pmbench.sync([sub], client, agent.name)
        per = [followers // procs + (1 if i < followers % procs else 0)
               for i in range(procs)] if followers else []
        for count in per:
            children.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--follower",
                 agent.control, agent.events, agent.name, str(count),
                 str(lines), str(timeout)],
                stdout=subprocess.PIPE, text=True))
        for child in children:
            if read_line(child, 60).strip() != "ready":
                raise RuntimeError("follower %d: not ready" % child.pid)
        results = [run_w(agent, client, sub, timefile, timeout)
                   for _ in range(runs)]
        reports = [json.loads(read_line(child, timeout)) for child in children]
        sub.close(0)
        client.close()
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
        agent.shutdown()
    return results, reports


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--follower":
        a = sys.argv[2:]
        follower_main(a[0], a[1], a[2], int(a[3]), int(a[4]), float(a[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--procs", type=int, default=4,
                        help="processes the followers are spread over")
    args = parser.parse_args()
    if args.lines > 999999:
        sys.exit("bench: seq -f %079g counts exactly only below 1e6")
    pmd, _ = pmbench.binaries(args.build)
    pmbench.become_subreaper()
    procs = max(1, min(args.procs, args.followers))
    tmp = tempfile.mkdtemp(prefix="pmbus-followers-")
    try:
        alone, _ = scenario(pmd, tmp, args.lines, 0, procs, 3, 300)
        followed, reports = scenario(pmd, tmp, args.lines, args.followers,
                                     procs, 1, 600)
    finally:
        subprocess.run(["rm", "-rf", tmp])

    base = statistics.median(r[0] for r in alone)
    base_agent = statistics.median(r[1] for r in alone)
    took, agent_took, began = followed[0]
    states = [f for rep in reports for f in rep["followers"]]
    cpu = sum(rep["cpu"] for rep in reports)
    print("service w: %d lines of 80 bytes (seq under bash)" % args.lines)
    print("no follower    %8.3f s  %9.0f lines/s  (median of 3: %s); "
          "spawn to exit in the agent %.3f s"
          % (base, args.lines / base,
             ", ".join("%.3f" % r[0] for r in alone), base_agent))
    print("%3d followers  %8.3f s  %9.0f lines/s  spawn to exit in the "
          "agent %.3f s"
          % (args.followers, took, args.lines / took, agent_took))
    print("ratio followed/none: %.2fx (goal: within 1.5x)" % (took / base))
    last = [f["last_at"] for f in states if f["last_at"] is not None]
    if last:
        print("last follower had its last line %.3f s after w started; "
              "the followers used %.1f s of CPU in %d processes"
              % (max(last) - began, cpu, procs))
    bad = [(i, f) for i, f in enumerate(states)
           if f["lines"] != args.lines or f["gaps"] or f["dups"]
           or not f["done"]]
    complete = len(states) - len(bad)
    print("%d of %d followers got every line exactly once, in order"
          % (complete, len(states)))
    for i, f in bad:
        print("  follower %3d: %d lines, %d gaps (%d lines missing), "
              "%d duplicates, last seq %d, exit event %s"
              % (i, f["lines"], f["gaps"], f["missing"], f["dups"],
                 f["last"], "seen" if f["done"] else "NOT seen"))
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, RuntimeError, zmq.ZMQError) as e:
        sys.exit("bench: %s" % e)
