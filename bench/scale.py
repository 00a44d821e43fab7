#!/usr/bin/python3
"""How pmd's costs grow from 100 to 1000 services.

For each N (default 100 and 1000), a fresh agent with N generated services,
each `/bin/sh -c` printing LINES lines (default 12) and then exec'ing
`sleep 3600`.  Measured, in this order:

  launch (cold)  from running `pmd --daemon` (autostart) until a `status`
                 shows every service running: polled with one `status`
                 request every 10 ms, so the figure is up to 10 ms + one
                 status late
  memory         the agent's Rss and Pss (/proc/PID/smaps_rollup), all
                 running
  status         one `status` request of all N over an open socket (median
                 of RUNS), its reply size against the 1 MiB frame limit;
                 and `pmctl status` as a whole process (median of 5)
  logs -n 10     one `logs` request with tail 10 of all N (median of RUNS),
                 its size, how many blocks came back cut (`more`); and
                 `pmctl logs -n 10` as a whole process (median of 5)
  stop all       `stop --all` (wait none) until a subscriber has received
                 N `stopped` events (each one sent once the service's
                 process group is reaped): from the agent's own events
  launch (warm)  `start --all` (wait none) on the same agent until N
                 `running` events have arrived: from the agent's own events

Each figure is printed for every N, with the ratio largest/smallest next
to the ratio of the sizes (10 for 1000/100, linear); a ratio above 1.5
times linear (15 for 1000/100) is flagged SUPERLINEAR.  Not a test: it
prints figures, and exits non-zero only if a step failed.

Usage: bench/scale.py [BUILD_DIR] [--sizes 100,1000] [--runs 10]
                      [--lines 12]
"""
import argparse
import sys
import time

import zmq

import pmbench

FRAME_LIMIT = 1048576
#  PROTOCOL.md 1.4: "elements of any list or map in a reply: 4096".
LIST_LIMIT = 4096


def config_text(n, lines):
    script = ("i=0; while [ $i -lt %d ]; do echo line $i of $$; "
              "i=$((i+1)); done; exec sleep 3600" % lines)
    out = ['services: {\n',
           '  probe: { command = "true"; autostart = false; };\n']
    for i in range(n):
        out.append('  s%04d: { argv = [ "/bin/sh", "-c", "%s" ]; };\n'
                   % (i, script))
    out.append('};\n')
    return "".join(out)


def all_in(records, state, n):
    return sum(1 for r in records if r["state"] == state) == n


def wait_status(client, state, n, timeout):
    """Polls `status` every 10 ms until n services are in state."""
    end = time.monotonic() + timeout
    while True:
        reply = client.request("status", timeout=timeout)
        services = [r for r in reply["services"] if r["name"] != "probe"]
        if all_in(services, state, n):
            return
        if time.monotonic() > end:
            counts = {}
            for r in services:
                counts[r["state"]] = counts.get(r["state"], 0) + 1
            raise TimeoutError("not all %s after %gs: %r"
                               % (state, timeout, counts))
        time.sleep(0.01)


def count_events(sub, state, n, timeout):
    """Receives state events until n distinct services reached state;
    returns the monotonic time of the last one."""
    seen = set()
    end = time.monotonic() + timeout
    while len(seen) < n:
        left = end - time.monotonic()
        if left <= 0 or not sub.poll(int(left * 1000) + 1):
            raise TimeoutError("%d of %d services %s after %gs"
                               % (len(seen), n, state, timeout))
        topic, body = sub.recv_multipart()
        event = pmbench.unpack(body)
        if event.get("new") == state and event["service"] != "probe":
            seen.add(event["service"])
    return time.monotonic()


def measure(pmd, pmctl, n, runs, lines):
    fig = {}
    agent = pmbench.Agent(pmd, config_text(n, lines))
    try:
        client = agent.client()
        wait_status(client, "running", n, timeout=120)
        fig["launch cold, ms (polled status)"] = \
            (time.monotonic() - agent.started) * 1000
        fig["  of which pmd --daemon, ms"] = \
            (agent.daemon_returned - agent.started) * 1000

        mem = pmbench.memory_kib(agent.pid)
        fig["agent Rss, MiB"] = mem["Rss"] / 1024.0
        fig["agent Pss, MiB"] = mem["Pss"] / 1024.0

        times, reply, size = pmbench.timed_requests(client, "status", None, runs)
        fig["status all, request, ms"] = pmbench.median_ms(times)
        fig["status all, reply bytes"] = size
        fig["status all, bytes/service"] = size / float(n + 1)
        fig["status all, pmctl, ms"] = pmbench.median_ms(
            [agent.pmctl(pmctl, "status")[0] for _ in range(5)])

        times, reply, size = pmbench.timed_requests(client, "logs", {"tail": 10},
                                            runs)
        blocks = [b for b in reply["logs"] if b["service"] != "probe"]
        fig["logs -n 10 all, request, ms"] = pmbench.median_ms(times)
        fig["logs -n 10 all, reply bytes"] = size
        fig["logs -n 10 all, blocks cut (more)"] = \
            sum(1 for b in blocks if b["more"])
        fig["logs -n 10 all, lines"] = sum(len(b["lines"]) for b in blocks)
        fig["logs -n 10 all, pmctl, ms"] = pmbench.median_ms(
            [agent.pmctl(pmctl, "logs", "-n", "10")[0] for _ in range(5)])

        sub = agent.subscriber("state/%s/" % agent.name)
        pmbench.sync([sub], client, agent.name)
        begin = time.monotonic()
        client.request("stop", {"all": True, "wait": "none"})
        done = count_events(sub, "stopped", n, timeout=120)
        fig["stop all -> all reaped, ms (events)"] = (done - begin) * 1000

        begin = time.monotonic()
        client.request("start", {"all": True, "wait": "none"})
        done = count_events(sub, "running", n, timeout=120)
        fig["launch warm, start --all, ms (events)"] = (done - begin) * 1000
        sub.close(0)
        client.close()
    finally:
        agent.shutdown()
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--sizes", default="100,1000",
                        help="service counts, comma-separated (default "
                             "100,1000)")
    parser.add_argument("--runs", type=int, default=10,
                        help="requests per median (default 10)")
    parser.add_argument("--lines", type=int, default=12,
                        help="lines each service prints first (default 12)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    pmd, pmctl = pmbench.binaries(args.build)
    pmbench.become_subreaper()

    results = {}
    for n in sizes:
        print("scale: %d services ..." % n, flush=True)
        results[n] = measure(pmd, pmctl, n, args.runs, args.lines)

    small, large = sizes[0], sizes[-1]
    linear = large / float(small)
    width = max(len(k) for k in results[small])
    print()
    print("%-*s %s   ratio %d/%d (linear: %g)"
          % (width, "figure", "".join("%12d" % n for n in sizes),
             large, small, linear))
    flagged = []
    for key in results[small]:
        values = [results[n][key] for n in sizes]
        base = values[0]
        ratio = values[-1] / base if base else float("inf") if values[-1] \
            else 1.0
        flag = ""
        if ratio > 1.5 * linear:
            flag = "  SUPERLINEAR"
            flagged.append(key)
        print("%-*s %s   %8.2f%s"
              % (width, key, "".join("%12.2f" % v for v in values),
                 ratio, flag))

    per = results[large]["status all, bytes/service"]
    size = results[large]["status all, reply bytes"]
    print()
    print("status of %d: %d bytes, %.1f%% of the 1 MiB frame limit "
          "(%.0f bytes a record): the frame would take about %d records "
          "of this size, and a reply list takes at most %d elements "
          "(PROTOCOL.md 1.4), so one status request answers at most %d "
          "services"
          % (large, size, 100.0 * size / FRAME_LIMIT, per,
             FRAME_LIMIT / per, LIST_LIMIT, min(FRAME_LIMIT / per,
                                                LIST_LIMIT)))
    if flagged:
        print("superlinear from %d to %d: %s" % (small, large,
                                                 ", ".join(flagged)))
    else:
        print("nothing grew faster than 1.5x linear from %d to %d"
              % (small, large))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, RuntimeError, zmq.ZMQError) as e:
        sys.exit("bench: %s" % e)
