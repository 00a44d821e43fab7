#!/usr/bin/python3
"""From a service's exit to a subscriber holding its `state` event.

Service x is `bash -c 'echo $EPOCHREALTIME; exit CODE'`: its one line is
the wall-clock time (microseconds, no fork) just before it exits.  A SUB
subscriber on `log/<agent>/x/` and `state/<agent>/x/` takes each line's
time, and when the exit's state event (`failed` or `completed`) arrives,
notes time.time() (the same CLOCK_REALTIME): exit -> received.  It also
notes the event's record.state_since (when the agent recorded the exit)
-> received, the agent-to-subscriber part alone.

Two ways x is run again, EXITS times each (default 1000):

  policy    restart = "always" with backoff_initial = backoff_max = 0
            and max_restarts = 0: x exits 3 (`failed`) and the agent
            restarts it by itself
  request   x exits 0 (`completed`) and the subscriber sends `start`
            (wait none) after each exit event

Printed: p50, p99 and max in ms for each, with the number of samples.
Not a test: nothing is asserted (the goal in issue 10 is p99 <= 1 ms).

Usage: bench/event_latency.py [BUILD_DIR] [--exits 1000]
"""
import argparse
import sys
import time

import zmq

import pmbench

SCRIPT = "echo $EPOCHREALTIME; exit %d"


def config_text(mode):
    if mode == "policy":
        extra = ('restart = "always"; backoff_initial = 0; backoff_max = 0; '
                 'max_restarts = 0; autostart = false;')
        code = 3
    else:
        extra = 'autostart = false;'
        code = 0
    return ('services: {\n'
            '  x: { argv = [ "/bin/bash", "-c", "%s" ]; %s };\n'
            '  probe: { command = "true"; autostart = false; };\n'
            '};\n' % (SCRIPT % code, extra))


def run(pmd, mode, exits, timeout):
    """Returns (exit -> received, state_since -> received), seconds."""
    agent = pmbench.Agent(pmd, config_text(mode))
    total, tail = [], []
    try:
        client = agent.client()
        sub = agent.subscriber("log/%s/x/" % agent.name,
                               "state/%s/x/" % agent.name)
        pmbench.sync([sub], client, agent.name)
        client.request("start", {"names": ["x"], "wait": "none"})
        exited_at = None
        end = time.monotonic() + timeout
        while len(total) < exits:
            left = end - time.monotonic()
            if left <= 0 or not sub.poll(int(left * 1000) + 1):
                raise TimeoutError("%d of %d exits after %gs"
                                   % (len(total), exits, timeout))
            topic, body = sub.recv_multipart()
            now = time.time()
            event = pmbench.unpack(body)
            if event["kind"] == "log":
                exited_at = float(event["lines"][-1])
                continue
            if event["new"] not in ("failed", "completed"):
                continue
            if exited_at is None:
                raise RuntimeError("an exit event with no line before it "
                                   "(a lost message?)")
            total.append(now - exited_at)
            tail.append(now - event["record"]["state_since"])
            exited_at = None
            if mode == "request" and len(total) < exits:
                client.request("start", {"names": ["x"], "wait": "none"})
        client.request("stop", {"names": ["x"], "wait": "stopped"})
        sub.close(0)
        client.close()
    finally:
        agent.shutdown()
    return total, tail


def describe(label, values):
    values = sorted(v * 1000.0 for v in values)
    print("%-44s p50 %7.3f ms   p99 %7.3f ms   max %8.3f ms   (%d)"
          % (label, pmbench.percentile(values, 0.5),
             pmbench.percentile(values, 0.99), values[-1], len(values)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--exits", type=int, default=1000)
    args = parser.parse_args()
    pmd, _ = pmbench.binaries(args.build)
    pmbench.become_subreaper()
    for mode in ("policy", "request"):
        total, tail = run(pmd, mode, args.exits, timeout=300)
        describe("%s: exit -> state event received" % mode, total)
        describe("%s: record.state_since -> received" % mode, tail)
    print("goal (issue 10): p99 of exit -> received <= 1 ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, RuntimeError, zmq.ZMQError) as e:
        sys.exit("bench: %s" % e)
