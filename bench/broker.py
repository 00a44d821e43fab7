#!/usr/bin/python3
"""What the broker costs: status, event latency and log lines, each
against the direct path in the same run.

One pmbroker (ipc endpoints, heartbeat 1 s) and AGENTS agents (default
10) of SERVICES `sleep` services each (default 100), all registered.
Measured, in this order:

  status       one `status` request over an open socket (median of RUNS):
               of one agent's SERVICES directly; of the same SERVICES
               through the broker (named service@agent); of all
               AGENTS x SERVICES through the broker.  Printed with the
               ratios broker/direct and all/(AGENTS x direct).
  latency      agent `lat`, service x exiting at once and restarted by
               policy EXITS times (default 300): for each exit's state
               event, record.state_since -> received, by a subscriber on
               the agent and one on the broker, same events: p50 and p99
               of each, and what the broker adds.
  log lines    each of LOG_AGENTS agents (default 10) runs a service
               writing LINES lines (default 50,000); SUBS raw subscribers
               (default 5) on the broker's `log/` count each agent's
               lines by seq: lines received, lines missing (gaps), and the
               time until the last subscriber had the last line, against
               one subscriber on one agent directly.

Not a test: it prints figures; it exits non-zero only if a step failed.

Usage: bench/broker.py [BUILD_DIR] [--agents 10] [--services 100]
                       [--runs 20] [--exits 300] [--lines 50000] [--subs 5]
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

import pmbench


class Broker:
    def __init__(self, binary, heartbeat=1.0):
        self.dir = tempfile.mkdtemp(prefix="pmbus-bench-broker-")
        at = [os.path.join(self.dir, n) for n in ("c", "e", "a")]
        self.control, self.events, self.agents = ["ipc://" + p for p in at]
        config = os.path.join(self.dir, "broker.cfg")
        with open(config, "w") as f:
            f.write('broker: { name = "lab"; control = "%s"; events = "%s"; '
                    'agents = "%s"; heartbeat = %g; };\n'
                    % (self.control, self.events, self.agents, heartbeat))
        self.log = open(os.path.join(self.dir, "broker.log"), "wb")
        self.proc = subprocess.Popen([binary, "-c", config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.context = zmq.Context()

    def client(self):
        return pmbench.Client(self.context, self.control)

    def subscriber(self, *prefixes):
        return pmbench.subscribe(self.context, self.events, *prefixes)

    def wait_agents(self, names, timeout=60):
        client = self.client()
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                reply = client.request("agents")
                up = {a["name"] for a in reply.get("agents", [])
                      if a["state"] == "connected"}
                if set(names) <= up:
                    return
                time.sleep(0.05)
        finally:
            client.close()
        sys.exit("bench: agents %s did not register" % sorted(names))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        self.context.destroy(linger=0)
        shutil.rmtree(self.dir, ignore_errors=True)


def agent_config(services):
    out = ['services: {\n']
    for i in range(services):
        out.append('  s%d = { argv = ["/bin/sleep", "3600"]; };\n' % i)
    out.append('};\n')
    return ''.join(out)


def timed(client, cmd, args, runs):
    times, _, size = pmbench.timed_requests(client, cmd, args, runs)
    return pmbench.median_ms(times), size


def wait_running(agent, count, timeout=120):
    client = agent.client()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            reply = client.request("status")
            running = sum(1 for r in reply.get("services", [])
                          if r["state"] == "running")
            if running >= count:
                return
            time.sleep(0.05)
    finally:
        client.close()
    sys.exit("bench: %s: not all running" % agent.name)


def latency(pmd, broker, exits):
    text = ('services: {\n  x: { argv = ["/bin/sh", "-c", "exit 3"]; '
            'restart = "always"; backoff_initial = 0; backoff_max = 0; '
            'max_restarts = 0; autostart = false; };\n};\n')
    agent = pmbench.Agent(pmd, text, name="lat",
                          agent_extra='broker = { endpoint = "%s"; };'
                          % broker.agents)
    try:
        broker.wait_agents(["lat"])
        direct = agent.subscriber("state/lat/x/")
        through = broker.subscriber("state/lat/x/")
        time.sleep(0.5)
        client = agent.client()
        client.request("start", {"names": ["x"], "wait": "none"})
        samples = {"direct": [], "broker": []}
        seen = {"direct": 0, "broker": 0}
        end = time.monotonic() + 120
        poller = zmq.Poller()
        poller.register(direct, zmq.POLLIN)
        poller.register(through, zmq.POLLIN)
        while (seen["direct"] < exits or seen["broker"] < exits) \
                and time.monotonic() < end:
            for sock, _ in poller.poll(100):
                topic, body = sock.recv_multipart()
                now = time.time()
                event = pmbench.unpack(body)
                if event.get("state") != "failed" and \
                        event.get("record", {}).get("state") != "failed":
                    continue
                which = "direct" if sock is direct else "broker"
                if seen[which] >= exits:
                    continue
                seen[which] += 1
                since = event["record"]["state_since"]
                samples[which].append((now - since) * 1000.0)
        client.request("stop", {"names": ["x"]})
        client.close()
        direct.close(0)
        through.close(0)
        return samples
    finally:
        agent.shutdown()


def log_lines(pmd, broker, agents, lines, subs_count):
    writer = ('seq -f %%079g 1 %d' % lines)
    text = ('services: {\n  w: { argv = ["/bin/sh", "-c", "%s"]; '
            'autostart = false; log_max_size = 0; };\n};\n' % writer)
    names = ["log%d" % i for i in range(agents)]
    started = [pmbench.Agent(pmd, text, name=n,
                             agent_extra='broker = { endpoint = "%s"; };'
                             % broker.agents) for n in names]
    try:
        broker.wait_agents(names)
        subs = [broker.subscriber("log/") for _ in range(subs_count)]
        direct = started[0].subscriber("log/%s/" % names[0])
        time.sleep(1.0)
        counts = [{n: 0 for n in names} for _ in subs]
        last_seq = [{n: 0 for n in names} for _ in subs]
        gaps = [0] * len(subs)
        direct_count = 0
        begin = time.monotonic()
        for agent in started:
            client = agent.client()
            client.request("start", {"names": ["w"], "wait": "none"})
            client.close()
        poller = zmq.Poller()
        for sub in subs + [direct]:
            poller.register(sub, zmq.POLLIN)
        want = lines * agents
        done_at = None
        direct_done = None
        end = time.monotonic() + 120
        quiet_since = time.monotonic()
        while time.monotonic() < end:
            events = poller.poll(200)
            if not events and time.monotonic() - quiet_since > 3:
                break
            for sock, _ in events:
                quiet_since = time.monotonic()
                topic, body = sock.recv_multipart()
                event = pmbench.unpack(body)
                got = len(event.get("lines") or [event.get("line")])
                if sock is direct:
                    direct_count += got
                    if direct_count >= lines and direct_done is None:
                        direct_done = time.monotonic() - begin
                    continue
                k = subs.index(sock)
                agent = topic.decode().split("/")[1]
                seq = event["seq"]
                if seq > last_seq[k][agent] + 1:
                    gaps[k] += seq - last_seq[k][agent] - 1
                last_seq[k][agent] = seq + got - 1
                counts[k][agent] += got
            if all(sum(c.values()) >= want for c in counts):
                done_at = time.monotonic() - begin
                break
        for sock in subs + [direct]:
            sock.close(0)
        return {"received": [sum(c.values()) for c in counts],
                "missing": gaps, "want": want, "all_s": done_at,
                "direct_s": direct_done, "direct_lines": direct_count}
    finally:
        for agent in started:
            agent.shutdown()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--exits", type=int, default=300)
    parser.add_argument("--lines", type=int, default=50000)
    parser.add_argument("--subs", type=int, default=5)
    args = parser.parse_args()
    pmd, pmctl = pmbench.binaries(args.build)
    binary = os.path.abspath(os.environ.get("PMBROKER") or os.path.join(
        args.build, "broker", "pmbroker"))
    pmbench.become_subreaper()
    broker = Broker(binary)
    agents = []
    try:
        names = ["a%d" % i for i in range(args.agents)]
        for name in names:
            agents.append(pmbench.Agent(
                pmd, agent_config(args.services), name=name,
                agent_extra='broker = { endpoint = "%s"; };' % broker.agents))
        for agent in agents:
            wait_running(agent, args.services)
        broker.wait_agents(names)
        direct = agents[0].client()
        through = broker.client()
        d_ms, d_size = timed(direct, "status", None, args.runs)
        named = ["s%d@%s" % (i, names[0]) for i in range(args.services)]
        b_ms, b_size = timed(through, "status", {"names": named}, args.runs)
        all_ms, all_size = timed(through, "status", None, args.runs)
        direct.close()
        through.close()
        print("status, %d services of one agent, direct    %8.2f ms  (%d B)"
              % (args.services, d_ms, d_size))
        print("status, the same through the broker        %8.2f ms  (%d B)"
              "  ratio %.2f" % (b_ms, b_size, b_ms / d_ms))
        print("status, all %d x %d through the broker   %8.2f ms  (%d B)"
              "  ratio to %d direct: %.2f"
              % (args.agents, args.services, all_ms, all_size, args.agents,
                 all_ms / (args.agents * d_ms)))
    finally:
        for agent in agents:
            agent.shutdown()
    try:
        samples = latency(pmd, broker, args.exits)
        for which in ("direct", "broker"):
            values = sorted(samples[which])
            if not values:
                print("latency %s: no samples" % which)
                continue
            print("event latency %-6s state_since -> received  p50 %6.3f ms"
                  "  p99 %6.3f ms  (%d)" % (which,
                                           pmbench.percentile(values, 0.5),
                                           pmbench.percentile(values, 0.99),
                                           len(values)))
        if samples["direct"] and samples["broker"]:
            d = sorted(samples["direct"])
            b = sorted(samples["broker"])
            print("the broker adds: p50 %+.3f ms, p99 %+.3f ms (goal: p99 "
                  "at most +1 ms)" % (pmbench.percentile(b, 0.5)
                                      - pmbench.percentile(d, 0.5),
                                      pmbench.percentile(b, 0.99)
                                      - pmbench.percentile(d, 0.99)))
        result = log_lines(pmd, broker, args.agents, args.lines, args.subs)
        print("log lines: %d agents x %d lines to %d broker subscribers: "
              "received %s of %d each, missing (gaps) %s"
              % (args.agents, args.lines, args.subs, result["received"],
                 result["want"], result["missing"]))
        print("log lines: all subscribers had every line after %s s; one "
              "direct subscriber of one agent had its %d after %s s"
              % ("%.2f" % result["all_s"] if result["all_s"] else "never",
                 args.lines,
                 "%.2f" % result["direct_s"] if result["direct_s"]
                 else "never"))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
