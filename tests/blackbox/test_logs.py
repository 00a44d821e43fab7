"""test_logs.py - service output, end to end: capture, files, publishing, replay

What DESIGN.md ("Publishing (PUB), with no loss", "Logs") and
proto/PROTOCOL.md (section 5 `logs`, section 8 log events and seq) promise
about a service's output, checked against the real pmd:

- a burst of 500,000 lines reaches the log file whole and in order, and
  reaches every follower exactly once, in order: ten attached before the
  burst, three joining in the middle of it.  A follower is written here
  from PROTOCOL.md alone (Follower): subscribe first, fetch with `logs`
  and `since` (paginating on `more`), drop duplicates by seq, fill every
  gap the same way, and account for what the agent says is `gone`;
- a slow subscriber does not slow the service down, and recovers
  afterwards: everything from a large ring, or exactly what is gone from
  a small one;
- an unfinished last line, lines longer than log_line_max (pieces marked
  partial, whole in the file), bytes that are not UTF-8 (bin frames, raw
  in the file), stdout and stderr sharing one seq, JSON log files, text
  timestamps, per-service overrides of the agent's log settings;
- size-based rotation keeps whole lines and a contiguous run;
- shutting the agent down in the middle of a burst loses nothing, on
  disk or on the bus, and the agent's last event comes after the last line;
- the `logs` command: tail and since for one, some and every service,
  what is gone from a small ring, unknown names, and the reply's limits.

Every wait is bounded; the only sleeps are the deliberate slowness of the
slow subscriber and a writer's bounded wait for its own log file.
"""

import calendar
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgpack  # noqa: E402
import zmq  # noqa: E402

import pmtest  # noqa: E402
from pmtest import Deadline, wait_until  # noqa: E402

PYTHON = "/usr/bin/python3"

#  PROTOCOL.md 1.4: limits every reply keeps.
FRAME_MAX = 1024 * 1024
LIST_MAX = 4096

#  A service that has left these states is not coming back by itself.
EXIT_STATES = ("completed", "failed", "stopped", "backoff")


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def as_bytes(line):
    """A log line as bytes: str lines are UTF-8, bin lines are bytes."""
    return line.encode("utf-8") if isinstance(line, str) else bytes(line)


def numbered(first, last):
    """The bytes `seq FIRST LAST` writes."""
    return b"".join(b"%d\n" % i for i in range(first, last + 1))


def first_difference(got, want):
    """None when got == want, else where the two sequences first differ,
    shortly (unittest's own diff takes minutes on inputs this big)."""
    if got == want:
        return None
    n = min(len(got), len(want))
    i = next((k for k in range(n) if got[k] != want[k]), n)

    def around(seq):
        return repr(seq[max(0, i - 2):i + 3])[:300]
    return ("differ at index %d (lengths %d and %d): got %s, expected %s"
            % (i, len(got), len(want), around(got), around(want)))


# ---------------------------------------------------------------------------
#  A follower, as PROTOCOL.md describes one
# ---------------------------------------------------------------------------


class Follower:
    """Follows one service's log lines the way PROTOCOL.md (5 `logs`, 8.3)
    tells a client to: subscribe to `log/<agent>/<service>/` first, then
    fetch what it missed with `logs` and `since` (asking again from the
    block's last line while `more` is true), then take live lines,
    dropping those whose seq it has already printed and filling any gap
    with `logs` and `since` again.  What the agent reports as `gone` is
    recorded and skipped, never silently.

    "Printing" a line checks it: its seq must be exactly one past the last
    one printed (so the printed lines and the gone ranges are 1..last, each
    once, in order), and, when expect is given, its content must be
    expect(seq).  Problems are collected in .errors rather than raised, so
    a follower running in a thread reports them at the end.

    The end of a stream is the service's exit event (every line comes
    before it): seeing it, a follower fetches what it has not seen yet.
    See Pump for when that event is lost too."""

    def __init__(self, test, agent, service, rcvhwm=1000, expect=None,
                 label=None):
        self.test = test
        self.agent_name = agent.name
        self.service = service
        self.label = label or service
        self.expect = expect
        self.log_topic = ("log/%s/%s/" % (agent.name, service)).encode()
        self.state_topic = ("state/%s/%s/" % (agent.name, service)).encode()
        self.sock = test.track(test.context.socket(zmq.SUB))
        self.sock.linger = 0
        self.sock.rcvhwm = rcvhwm
        self.sock.setsockopt(zmq.SUBSCRIBE, self.log_topic)
        self.sock.setsockopt(zmq.SUBSCRIBE, self.state_topic)
        self.sock.connect(agent.events)
        self.client = agent.client()
        self.last = 0               # seq of the last line printed (or gone)
        self.printed = 0
        self.gone = []              # [(from, to)] as the agent reported
        self.errors = []
        self.error_count = 0
        self.live = 0               # live events received
        self.fetched = 0            # lines received in `logs` replies
        self.dups = 0               # live events dropped as already printed
        self.gaps = 0               # live events that showed a gap
        self.requests = 0           # `logs` requests
        self.over_limit = []        # `logs` blocks over PROTOCOL 1.4's limit
        self.first_live = None      # seq of the first live line
        self.exits = 0              # exit events of the service seen
        self.last_activity = time.monotonic()

    # -- the subscription ----------------------------------------------------

    def sync(self, timeout=10.0):
        """Returns once the subscription is live, proven by receiving an
        event of the probe service we start (the harness's method; see
        pmtest.Subscriber.sync).  Lines received meanwhile are handled."""
        probe = ("state/%s/%s/" % (self.agent_name, pmtest.PROBE)).encode()
        self.sock.setsockopt(zmq.SUBSCRIBE, probe)
        deadline = Deadline(timeout)
        seen = False
        while not seen:
            if deadline.passed():
                raise AssertionError("%s: subscription not live after %gs"
                                     % (self.label, timeout))
            reply = self.client.request(
                "start", {"names": [pmtest.PROBE], "wait": "none"},
                timeout=max(0.1, deadline.left()))
            if not reply.get("ok"):
                raise AssertionError("cannot start the probe: %r" % (reply,))
            if self.sock.poll(int(min(0.2, deadline.left()) * 1000)):
                while True:
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if frames[0].startswith(probe):
                        seen = True
                    else:
                        self.on_frames(frames)
        self.sock.setsockopt(zmq.UNSUBSCRIBE, probe)

    # -- checking --------------------------------------------------------------

    def error(self, text):
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(text)

    def _print(self, seq, stream, line, partial, how):
        if seq != self.last + 1:
            self.error("%s line seq %d printed after %d" % (how, seq,
                                                            self.last))
        self.last = seq
        self.printed += 1
        if self.expect is not None:
            want = self.expect(seq)
            if line != want:
                self.error("seq %d (%s) is %r, expected %r"
                           % (seq, how, line[:80], want[:80]))

    # -- live events -----------------------------------------------------------

    def on_frames(self, frames):
        self.last_activity = time.monotonic()
        if len(frames) != 2:
            self.error("an event of %d frames" % len(frames))
            return
        topic, body = frames
        if topic.startswith(self.log_topic):
            for line in pmtest.expand(unpack(body)):
                self.on_line(line)
        elif topic.startswith(self.state_topic):
            if unpack(body).get("new") in EXIT_STATES:
                self.exits += 1
                #  Every line comes before the exit event: whatever we
                #  have not seen by now, we lost.
                self.catch_up()

    def on_line(self, event):
        seq = event["seq"]
        self.live += 1
        if self.first_live is None:
            self.first_live = seq
        if seq <= self.last:
            self.dups += 1
            return
        if seq > self.last + 1:
            self.gaps += 1
            self.catch_up(upto=seq - 1)
            if seq <= self.last:
                self.dups += 1
                return
        self._print(seq, event["stream"], event["line"],
                    event.get("partial", False), "live")

    def pump(self, limit=1000):
        """Handles what is queued on the socket, up to limit events;
        returns how many."""
        count = 0
        while count < limit:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.on_frames(frames)
            count += 1
        return count

    # -- asking the agent ----------------------------------------------------

    def catch_up(self, upto=None):
        """`logs` with since = the last seq printed, again while `more`
        (until upto, if given, is reached)."""
        while True:
            before = self.last
            reply = self.client.request(
                "logs", {"names": [self.service], "since": self.last},
                timeout=10.0)
            self.requests += 1
            if not reply.get("ok") or len(reply.get("logs") or []) != 1:
                raise AssertionError("%s: logs since %d: %r"
                                     % (self.label, self.last, reply))
            block = reply["logs"][0]
            if block["service"] != self.service:
                self.error("block for %r" % block["service"])
            lines = block["lines"]
            if len(lines) > LIST_MAX:
                self.over_limit.append(len(lines))
            gone = block.get("gone")
            if gone is not None:
                low, high = gone
                #  Exactly what was asked for and is no longer held: from
                #  the first seq asked for up to the oldest one held.
                if low != self.last + 1 or high < low:
                    self.error("gone %r after %d" % (gone, self.last))
                if block["first"] and high != block["first"] - 1:
                    self.error("gone %r but first held is %d"
                               % (gone, block["first"]))
                if lines and lines[0]["seq"] != high + 1:
                    self.error("gone %r then seq %d" % (gone,
                                                        lines[0]["seq"]))
                self.gone.append((low, high))
                self.last = high
            for line in lines:
                self.fetched += 1
                self._print(line["seq"], line["stream"], line["line"],
                            line.get("partial", False), "fetched")
            if lines and block["last"] < lines[-1]["seq"]:
                self.error("block last %d < its last line %d"
                           % (block["last"], lines[-1]["seq"]))
            if not block["more"]:
                return
            if upto is not None and self.last >= upto:
                return
            if self.last == before:
                self.error("`more` without progress at %d" % self.last)
                return

    # -- the outcome -----------------------------------------------------------

    def gone_count(self):
        return sum(high - low + 1 for low, high in self.gone)

    def stats(self):
        return ("%s: printed %d (live %d, fetched %d), dups %d, gaps %d, "
                "gone %r, exit event %s, %d logs requests%s"
                % (self.label, self.printed, self.live, self.fetched,
                   self.dups, self.gaps, self.gone,
                   "seen" if self.exits else "lost", self.requests,
                   " (%d replies over %d lines: test_logs_reply_within_"
                   "protocol_limits)" % (len(self.over_limit), LIST_MAX)
                   if self.over_limit else ""))

    def check(self, total, gone=None):
        """Everything 1..total printed once, in order, or reported gone;
        gone, if given, is the exact list of ranges expected."""
        problems = []
        if self.errors:
            problems.append("%d errors, first: %s"
                            % (self.error_count, "; ".join(self.errors)))
        if self.last != total:
            problems.append("reached seq %d, not %d" % (self.last, total))
        if self.printed + self.gone_count() != total:
            problems.append("printed %d + gone %d != %d"
                            % (self.printed, self.gone_count(), total))
        if gone is not None and self.gone != gone:
            problems.append("gone %r, expected %r" % (self.gone, gone))
        if problems:
            raise AssertionError("%s: %s" % (self.stats(),
                                             "; ".join(problems)))


class Pump(threading.Thread):
    """Reads a set of followers in one thread, as fast as it can, until
    each has reached seq total (or stop is set, or timeout passes).  With
    catch_up_first, each follower first fetches what was written before
    it subscribed (a late joiner).  With delay, it sleeps that long
    between two reads (a deliberately slow subscriber) until slow is
    cleared.

    A follower cannot see that it lost the *end* of a stream: no later seq
    arrives to show the gap.  It learns that the service ended from the
    service's exit event, and fetches the rest then; but that event can be
    lost too, so once the test has seen the exit itself (by status) it
    sets ended, and a follower that has had nothing for `idle` seconds
    since then fetches the rest all the same."""

    def __init__(self, followers, total, timeout=90.0, catch_up_first=False,
                 idle=0.2, delay=0.0):
        super().__init__(daemon=True)
        self.followers = list(followers)
        self.total = total
        self.timeout = timeout
        self.catch_up_first = catch_up_first
        self.idle = idle
        self.delay = delay
        self.slow = threading.Event()
        if delay:
            self.slow.set()
        self.ended = threading.Event()
        self.stop = threading.Event()
        self.failure = None

    def done(self):
        return all(f.last >= self.total for f in self.followers)

    def run(self):
        try:
            self._run()
        except BaseException as e:  # reported by finish()
            self.failure = e

    def _run(self):
        deadline = Deadline(self.timeout)
        poller = zmq.Poller()
        for f in self.followers:
            poller.register(f.sock, zmq.POLLIN)
        if self.catch_up_first:
            for f in self.followers:
                f.catch_up()
        while not self.done() and not self.stop.is_set():
            if deadline.passed():
                raise AssertionError("followers not done after %gs: %s"
                                     % (self.timeout, "; ".join(
                                         f.stats() for f in self.followers)))
            ready = dict(poller.poll(int(self.idle * 500)))
            for f in self.followers:
                #  Asked again: a long catch_up of the one before may have
                #  let something arrive since the poll.
                if f.sock in ready or f.sock.get(zmq.EVENTS) & zmq.POLLIN:
                    if self.slow.is_set():
                        f.pump(1)
                        time.sleep(self.delay)   # deliberately slow
                    else:
                        f.pump()
                elif (self.ended.is_set() and not self.slow.is_set()
                      and f.last < self.total
                      and time.monotonic() - f.last_activity > self.idle):
                    f.last_activity = time.monotonic()
                    f.catch_up()

    def finish(self, timeout):
        self.join(timeout)
        if self.is_alive():
            self.stop.set()
            self.join(5)
            raise AssertionError("pump still running after %gs" % timeout)
        if self.failure is not None:
            raise self.failure


# ---------------------------------------------------------------------------
#  The tests
# ---------------------------------------------------------------------------


class LogsTest(pmtest.AgentTest):

    def assertSame(self, got, want, what=""):
        difference = first_difference(got, want)
        if difference:
            self.fail("%s%s" % (what + ": " if what else "", difference))

    def log_path(self, name, suffix=""):
        return self.path("logs", "%s.log%s" % (name, suffix))

    def logs(self, agent, args, client=None):
        reply = (client or agent.default_client()).request("logs", args)
        self.assertTrue(reply.get("ok"), reply)
        return reply["logs"]

    def logs_last(self, agent, name):
        return self.logs(agent, {"names": [name], "tail": 0})[0]["last"]

    def run_to_exit(self, agent, name, timeout=30.0):
        """Subscribes to name's lines and states, starts it, waits for
        its exit event; returns (log events, exit event).  Checks that no
        line came after the exit event."""
        sub = agent.subscribe("log/%s/%s/" % (agent.name, name),
                              "state/%s/%s/" % (agent.name, name))
        reply = agent.request("start", {"names": [name], "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        done = sub.wait_for(lambda e: e["kind"] == "state"
                            and e["new"] in EXIT_STATES, timeout,
                            what="%s to exit" % name)
        index = sub.events.index(done)
        lines = [e for e in sub.events[:index] if e["kind"] == "log"]
        sub.drain(0.05)
        late = [e for e in sub.events[index:] if e["kind"] == "log"]
        self.assertEqual(late, [], "lines after the exit event")
        return lines, done

    # -- bursts, followers, slow subscribers --------------------------------

    def test_burst_reaches_thirteen_followers(self):
        """500,000 lines written as fast as `seq` can: the file holds them
        all, in order; ten followers attached before the burst and three
        joining in its middle each print 1..500000 exactly once, in order
        (by seq and content), filling what they missed from the ring."""
        total, half = 500000, 250000
        fifo = self.path("go.fifo")
        os.mkfifo(fifo)
        #  The writer stops once, half way, so that the late followers
        #  provably join in the middle; each half is one `seq`.
        #  Queues of two messages (the agent's and each follower's): a
        #  message holds up to 4096 lines, and these followers must fall
        #  behind and lose some.
        agent = self.start_agent(config=self.config(
            '  burst: { command = "seq 1 %d; read go < ./go.fifo; '
            'seq %d %d"; autostart = false; log_ring = 600000; '
            'log_ring_bytes = "64M"; };\n' % (half, half + 1, total),
            agent_extra="subscriber_queue = 2; "))
        early = [Follower(self, agent, "burst", rcvhwm=2, expect=str,
                          label="early%d" % i) for i in range(10)]
        for f in early:
            f.sync()
        pump_early = Pump(early, total)
        pump_early.start()
        started = time.monotonic()
        reply = agent.request("start", {"names": ["burst"], "wait": "none"})
        self.assertTrue(reply["ok"], reply)
        #  First half published, writer waiting: the middle of the burst.
        wait_until(lambda: self.logs_last(agent, "burst") >= half, 60,
                   what="the first half of the burst")
        self.assertEqual(self.logs_last(agent, "burst"), half)
        self.assertEqual(agent.record("burst")["state"], "running")
        #  The agent publishes far faster than a Python subscriber reads:
        #  each early follower has what its high-water mark let through
        #  queued, the rest was dropped.  Once they have read what was
        #  queued, the second half's first lines show them the gap.
        wait_until(lambda: all(
            f.last > 0 and time.monotonic() - f.last_activity > 1.0
            for f in early), 60, what="the early followers to read what "
            "was queued for them")
        at_pause = [f.last for f in early]
        late = [Follower(self, agent, "burst", expect=str,
                         label="late%d" % i) for i in range(3)]
        for f in late:
            f.sync()
        #  Let the writer go on; the late followers fetch what they missed
        #  while the second half streams.
        fd = wait_until(lambda: self._open_fifo(fifo), 10,
                        what="the writer to wait on its fifo")
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)
        pump_late = Pump(late, total, catch_up_first=True)
        pump_late.start()
        agent.wait_state("burst", "completed", 60)
        burst_took = time.monotonic() - started
        pump_early.ended.set()
        pump_late.ended.set()
        pump_early.finish(90)
        pump_late.finish(60)
        for f in early + late:
            sys.stderr.write("\n  " + f.stats())
        sys.stderr.write("\n  start to exit %.1fs (with the pause); early "
                         "followers at seq %d..%d in the pause\n"
                         % (burst_took, min(at_pause), max(at_pause)))
        self.assertSame(self.read_file_bytes(self.log_path("burst")),
                        numbered(1, total), "burst.log")
        for f in early + late:
            #  The ring holds all 500,000: nothing may be gone.
            f.check(total, gone=[])
        for f in late:
            #  They subscribed after the first half was out: they had it
            #  from `logs`, never live.
            self.assertGreaterEqual(f.fetched, half, f.stats())
            self.assertTrue(f.first_live is None or f.first_live > half,
                            f.stats())
        self.assertTrue(any(f.gaps for f in early),
                        "no early follower saw a gap: the gap filling was "
                        "not exercised")

    @staticmethod
    def _open_fifo(path):
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None    # no reader yet (ENXIO)

    @staticmethod
    def read_file_bytes(path):
        with open(path, "rb") as f:
            return f.read()

    def test_slow_subscriber(self):
        """A subscriber that sleeps between reads does not slow the writer
        (its exit comes while the subscriber is far behind, and about as
        soon as without it); afterwards it recovers every line from a
        large ring, or from a small one exactly what is still held, told
        exactly which range is gone."""
        total, small_ring = 200000, 1000
        #  Queues of two messages (up to 4096 lines each): the slow
        #  subscriber loses some.
        agent = self.start_agent(config=self.config("""\
  ref:   { command = "seq 1 %(n)d"; autostart = false; };
  big:   { command = "seq 1 %(n)d"; autostart = false; log_ring = 600000; };
  small: { command = "seq 1 %(n)d"; autostart = false; log_ring = %(r)d; };
""" % {"n": total, "r": small_ring}, agent_extra="subscriber_queue = 2; "))
        states = agent.subscribe("state/t/")

        def burst(name):
            """Starts name; the agent's time from its spawn to its exit."""
            reply = agent.request("start", {"names": [name], "wait": "none"})
            self.assertTrue(reply["ok"], reply)
            begin = states.wait_for(lambda e: e["service"] == name
                                    and e["new"] == "starting", 30,
                                    what="%s starting" % name)
            end = states.wait_for(lambda e: e["service"] == name
                                  and e["new"] in EXIT_STATES, 60,
                                  what="%s exiting" % name)
            self.assertEqual(end["new"], "completed")
            return end["ts"] - begin["ts"]

        alone = burst("ref")
        for name in ("big", "small"):
            slow = Follower(self, agent, name, rcvhwm=2, expect=str,
                            label="slow-" + name)
            slow.sync()
            pump = Pump([slow], total, timeout=60, delay=0.2)
            pump.start()
            took = burst(name)
            behind = slow.last
            pump.slow.clear()       # the burst is over: read at full speed
            pump.ended.set()
            pump.finish(60)
            sys.stderr.write("\n  %s: writer done in %.2fs (%.2fs without a "
                             "subscriber) with the slow subscriber at seq "
                             "%d; %s" % (name, took, alone, behind,
                                         slow.stats()))
            self.assertLess(behind, total // 10,
                            "the slow subscriber kept up?")
            self.assertLess(took, 3 * alone + 1.0,
                            "the slow subscriber slowed the writer")
            self.assertSame(self.read_file_bytes(self.log_path(name)),
                            numbered(1, total), name + ".log")
            if name == "big":
                slow.check(total, gone=[])
            else:
                #  It lost lines at the high-water mark (it was far behind),
                #  and the ring now holds only the last 1000: what it had
                #  not printed up to there is gone, exactly.
                slow.check(total)
                self.assertEqual(len(slow.gone), 1, slow.stats())
                low, high = slow.gone[0]
                self.assertEqual(high, total - small_ring, slow.stats())
                self.assertGreater(low, behind, slow.stats())
                self.assertEqual(slow.printed, total - (high - low + 1))
        sys.stderr.write("\n")

    def test_tail_of_many_services_fits_whole(self):
        """logs tail 10 of 300 services, 10 lines of 200 bytes each: all of
        it fits in one reply (790 KB of the 1 MiB frame), so no block comes
        back cut; before the fair share gave each service 1/300 of half
        the frame and cut every one.  Then, with more than fits, the small
        blocks come whole and only the large ones are cut (more)."""
        line = "x" * 199
        services = "".join(
            '  s%d: { command = "for i in 0 1 2 3 4 5 6 7 8 9; do echo %s$i; '
            'done; exec sleep 1000"; stop_timeout = 1.0; };\n' % (n, line)
            for n in range(300))
        services += ('  big: { command = "seq -f %0999g 1 4000; exec sleep '
                     '1000"; stop_timeout = 1.0; log_line_max = 2048; };\n')
        agent = self.start_agent(config=self.config(services, probe=False))
        names = ["s%d" % n for n in range(300)]
        wait_until(lambda: all(b["last"] >= 10 for b in self.logs(
            agent, {"names": names, "tail": 0})), 60,
            what="every service's ten lines")
        blocks = self.logs(agent, {"names": names, "tail": 10})
        self.assertEqual([b for b in blocks if b["more"]], [])
        for b in blocks:
            self.assertEqual([x["line"] for x in b["lines"]],
                             [line + str(i) for i in range(10)], b["service"])
        wait_until(lambda: self.logs(agent, {"names": ["big"], "tail": 0})
                   [0]["last"] >= 4000, 60, what="big's lines")
        blocks = self.logs(agent, {"names": names + ["big"], "tail": 4000})
        cut = [b["service"] for b in blocks if b["more"]]
        self.assertEqual(cut, ["big"])
        self.assertEqual(len(blocks[-1]["lines"]) < 4000, True)
        for b in blocks[:-1]:
            self.assertEqual(len(b["lines"]), 10, b["service"])

    # -- what a line can be ----------------------------------------------------

    def test_unfinished_last_line_kept(self):
        self.script("nonl.sh", "printf 'first\\nsecond\\nno newline'\n")
        agent = self.start_agent('  nonl: { command = "./nonl.sh"; '
                                 'autostart = false; };\n')
        lines, done = self.run_to_exit(agent, "nonl")
        self.assertEqual(done["new"], "completed")
        self.assertEqual([(e["seq"], e["line"], e.get("partial"))
                          for e in lines],
                         [(1, "first", None), (2, "second", None),
                          (3, "no newline", None)])
        self.assertEqual(self.read_file_bytes(self.log_path("nonl"))
                         .splitlines(), [b"first", b"second", b"no newline"])
        block = self.logs(agent, {"names": ["nonl"]})[0]
        self.assertEqual([line["line"] for line in block["lines"]],
                         ["first", "second", "no newline"])

    def test_long_lines_cut_into_partial_pieces(self):
        """A 200 KB line with log_line_max 64K (the agent's setting) comes
        as pieces of 64 KiB marked partial, the last one unmarked; the
        file holds the line whole.  A service's own log_line_max wins, and
        stderr is cut the same way.  (Each service writes one stream: see
        test_long_line_whole_while_other_stream_writes for both.)"""
        self.script("long.py", """\
import os, sys
line = b"".join(b"%07d," % i for i in range(25000))     # 200,000 bytes
if sys.argv[1:] == ["err"]:
    os.write(2, line[:2500] + b"\\n")
else:
    os.write(1, b"before\\n" + line + b"\\nafter\\n")
""", shell=PYTHON)
        agent = self.start_agent(config=self.config("""\
  long:  { command = "./long.py"; autostart = false; };
  short: { command = "./long.py"; autostart = false; log_line_max = 1000; };
  err:   { command = "./long.py err"; autostart = false;
           log_line_max = 1000; };
""", agent_extra='log_line_max = "64K"; '))
        line = b"".join(b"%07d," % i for i in range(25000))
        for name, limit in (("long", 65536), ("short", 1000)):
            events, _ = self.run_to_exit(agent, name)
            self.assertEqual([e["seq"] for e in events],
                             list(range(1, len(events) + 1)))
            self.assertEqual({e["stream"] for e in events}, {"out"})
            pieces = events[1:-1]
            self.assertEqual(events[0]["line"], "before")
            self.assertEqual(events[-1]["line"], "after")
            self.assertNotIn("partial", events[0])
            self.assertNotIn("partial", events[-1])
            sizes = [len(as_bytes(e["line"])) for e in pieces]
            expected = [limit] * (len(line) // limit)
            if len(line) % limit:
                expected.append(len(line) % limit)
            self.assertEqual(sizes, expected, name)
            self.assertTrue(b"".join(as_bytes(e["line"]) for e in pieces)
                            == line, "%s: the pieces do not make the line"
                            % name)
            self.assertEqual([e.get("partial") for e in pieces],
                             [True] * (len(pieces) - 1) + [None])
            #  The file: every line whole.
            data = self.read_file_bytes(self.log_path(name))
            self.assertSame(data.split(b"\n"),
                            [b"before", line, b"after", b""], name + ".log")
            #  `logs` replays the same pieces, with the same flags.
            block = self.logs(agent, {"names": [name], "since": 0})[0]
            self.assertSame([(x["seq"], x["stream"], as_bytes(x["line"]),
                              x.get("partial")) for x in block["lines"]],
                            [(e["seq"], e["stream"], as_bytes(e["line"]),
                              e.get("partial")) for e in events], "replay")
        events, _ = self.run_to_exit(agent, "err")
        self.assertEqual([(e["stream"], as_bytes(e["line"]), e.get("partial"))
                          for e in events],
                         [("err", line[:1000], True),
                          ("err", line[1000:2000], True),
                          ("err", line[2000:2500], None)])
        self.assertEqual(self.read_file_bytes(self.log_path("err")),
                         line[:2500] + b"\n")

    def test_unfinished_last_line_of_exactly_line_max(self):
        """An unfinished last line exactly log_line_max long (or a multiple
        of it) still ends as a line: its last piece is not marked partial
        (PROTOCOL.md 8.2: "more pieces follow ... the last one without
        partial"), and the file's next line, from the next run, starts on
        a line of its own."""
        self.script("exact.py", """\
import os, sys
if os.path.exists("ran"):
    os.write(1, b"next run\\n")
else:
    open("ran", "w").close()
    os.write(1, b"x" * int(sys.argv[1]))
""", shell=PYTHON)
        agent = self.start_agent("""\
  one: { argv = ["./exact.py", "1000"]; autostart = false;
         log_line_max = 1000; };
  two: { argv = ["./exact.py", "2000"]; autostart = false;
         log_line_max = 1000; };
""")
        problems = []
        for name, size in (("one", 1000), ("two", 2000)):
            if os.path.exists(self.path("ran")):
                os.unlink(self.path("ran"))
            events, _ = self.run_to_exit(agent, name)
            self.assertEqual(b"".join(as_bytes(e["line"]) for e in events),
                             b"x" * size)
            if events[-1].get("partial"):
                problems.append("%s: the last piece is marked partial, and "
                                "nothing follows: (seq, size, partial) %r"
                                % (name, [(e["seq"], len(e["line"]),
                                           e.get("partial")) for e in events]))
            again, _ = self.run_to_exit(agent, name)
            self.assertEqual([e["line"] for e in again], ["next run"])
            lines = self.read_file_bytes(self.log_path(name)).split(b"\n")
            if lines != [b"x" * size, b"next run", b""]:
                problems.append("%s.log: lines of %r bytes, ending %r"
                                % (name, [len(x) for x in lines],
                                   [x[-12:] for x in lines]))
        if problems:
            self.fail("; ".join(problems))

    def test_long_line_whole_while_other_stream_writes(self):
        """The file keeps a long line whole even when the other stream
        writes a line while it is being cut into pieces (DESIGN "Logs":
        "both streams, each line kept whole")."""
        self.script("mixed.py", """\
import os, sys, time
line = b"".join(b"%07d," % i for i in range(25000))     # 200,000 bytes
os.write(2, line[:150000])      # > 64K taken by the agent: a piece is out
os.write(1, b"out line\\n")
#  Give the agent the stdout line before the stderr line ends (bounded:
#  an agent that holds it back is not waited for long).
end = time.monotonic() + 2.0
while time.monotonic() < end:
    try:
        if b"out line" in open(sys.argv[1], "rb").read():
            break
    except OSError:
        pass
    time.sleep(0.01)
os.write(2, line[150000:] + b"\\n")
""", shell=PYTHON)
        agent = self.start_agent(
            '  mixed: { argv = ["./mixed.py", "%s"]; autostart = false; '
            'log_line_max = "64K"; };\n' % self.log_path("mixed"))
        line = b"".join(b"%07d," % i for i in range(25000))
        events, _ = self.run_to_exit(agent, "mixed")
        err = [e for e in events if e["stream"] == "err"]
        self.assertEqual(b"".join(as_bytes(e["line"]) for e in err), line)
        data = self.read_file_bytes(self.log_path("mixed"))
        self.assertSame(sorted(data.split(b"\n")),
                        sorted([b"out line", line, b""]),
                        "mixed.log's lines, sorted (the file's lines: %s)"
                        % ", ".join("%d bytes %r...%r" % (len(x), x[:16],
                                                         x[-16:])
                                    for x in data.split(b"\n")))

    def test_binary_bytes_intact(self):
        """Bytes that are not UTF-8 arrive as bin, NUL bytes in a str; the
        file holds the raw bytes."""
        raw = [b"plain", b"nul\x00inside", b"\xff\xfe\x00\x80 raw",
               "caf\u00e9 \u2713".encode("utf-8"), b"cut \xe2\x82", b""]
        self.script("bin.py", """\
import os
for line in %r:
    os.write(1, line + b"\\n")
""" % (raw,), shell=PYTHON)
        agent = self.start_agent('  bin: { command = "./bin.py"; '
                                 'autostart = false; };\n')
        events, _ = self.run_to_exit(agent, "bin")
        self.assertEqual([as_bytes(e["line"]) for e in events], raw)
        kinds = [type(e["line"]) for e in events]
        self.assertEqual(kinds, [str, str, bytes, str, bytes, str])
        self.assertEqual(events[1]["line"], "nul\x00inside")
        self.assertEqual(self.read_file_bytes(self.log_path("bin")),
                         b"".join(x + b"\n" for x in raw))
        block = self.logs(agent, {"names": ["bin"]})[0]
        self.assertEqual([x["line"] for x in block["lines"]],
                         [e["line"] for e in events])

    def test_stdout_and_stderr_share_one_seq(self):
        self.script("both.sh", 'i=1\nwhile [ $i -le 500 ]; do\n'
                    '  echo "out $i"\n  echo "err $i" >&2\n'
                    '  i=$((i+1))\ndone\n')
        agent = self.start_agent('  both: { command = "./both.sh"; '
                                 'autostart = false; };\n')
        events, _ = self.run_to_exit(agent, "both")
        self.assertEqual([e["seq"] for e in events], list(range(1, 1001)))
        for e in events:
            self.assertEqual(e["topic"], "log/t/both/%s/" % e["stream"])
            self.assertEqual(e["line"].split()[0], e["stream"])
        for stream in ("out", "err"):
            self.assertEqual([e["line"] for e in events
                              if e["stream"] == stream],
                             ["%s %d" % (stream, i) for i in range(1, 501)])
        block = self.logs(agent, {"names": ["both"], "tail": 1000})[0]
        self.assertEqual([(x["seq"], x["stream"], x["line"])
                          for x in block["lines"]],
                         [(e["seq"], e["stream"], e["line"]) for e in events])
        #  The file: the order the agent read them in.
        self.assertEqual(
            self.read_file_bytes(self.log_path("both")).decode().splitlines(),
            [e["line"] for e in events])

    def test_json_files_and_timestamps(self):
        """log_format json (the agent's setting): one JSON object per line
        with ts, service, stream, seq, line; a service may override it with
        text and log_timestamps, which prefixes each line with the time."""
        self.script("talk.sh", r"""printf '%s\n' 'hello "quoted" \ back'
echo "to err" >&2
printf 'tab\there\n'
printf 'unfinished'
""")
        agent = self.start_agent(config=self.config("""\
  j:  { command = "./talk.sh"; autostart = false; };
  ts: { command = "./talk.sh"; autostart = false; log_format = "text";
        log_timestamps = true; };
""", agent_extra='log_format = "json"; '))
        before = time.time()
        events, _ = self.run_to_exit(agent, "j")
        entries = [json.loads(x) for x in self.read_file_bytes(
            self.log_path("j")).decode("utf-8").splitlines()]
        self.assertEqual(len(entries), 4)
        for entry, event in zip(entries, events):
            self.assertEqual(set(entry), {"ts", "service", "stream", "seq",
                                          "line"}, entry)
            self.assertEqual(entry["service"], "j")
            self.assertEqual((entry["seq"], entry["stream"], entry["line"]),
                             (event["seq"], event["stream"], event["line"]))
            self.assertIsInstance(entry["ts"], float)
            self.assertAlmostEqual(entry["ts"], event["ts"], delta=0.001)
        self.assertEqual(sorted(e["line"] for e in entries),
                         sorted(['hello "quoted" \\ back', "to err",
                                 "tab\there", "unfinished"]))
        events, _ = self.run_to_exit(agent, "ts")
        after = time.time()
        text = self.read_file_bytes(self.log_path("ts")).decode("utf-8")
        pattern = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z "
                             r"(.*)$")
        got = []
        for line in text.splitlines():
            match = pattern.match(line)
            self.assertIsNotNone(match, line)
            stamp = calendar.timegm(time.strptime(
                match.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) \
                + float("0." + match.group(1)[20:])
            self.assertGreaterEqual(stamp, before - 1)
            self.assertLessEqual(stamp, after + 1)
            got.append(match.group(2))
        self.assertEqual(sorted(got), sorted(e["line"] for e in events))

    def test_json_file_line_not_utf8(self):
        """A JSON log file is UTF-8 JSON even when a line is not: bytes
        outside valid UTF-8 become U+FFFD (PROTOCOL.md 9, "JSON log
        files")."""
        self.script("raw.py", 'import os\nos.write(1, b"ok\\n'
                    'a\\xffb\\xfe\\x00c\\n")\n', shell=PYTHON)
        agent = self.start_agent('  raw: { command = "./raw.py"; '
                                 'autostart = false; log_format = "json"; };\n')
        events, _ = self.run_to_exit(agent, "raw")
        self.assertEqual(events[1]["line"], b"a\xffb\xfe\x00c")
        data = self.read_file_bytes(self.log_path("raw"))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail("the JSON log file is not UTF-8 (%s): %r" % (e, data))
        entries = [json.loads(x) for x in text.splitlines()]
        self.assertEqual([e["line"] for e in entries],
                         ["ok", "a\ufffdb\ufffd\x00c"])

    # -- rotation --------------------------------------------------------------

    def test_rotation_keeps_whole_lines(self):
        """log_max_size 64K, log_backups 2, ~1 MB written: name.log, .1 and
        .2 and nothing else; each within the limit; every line whole; the
        three hold a contiguous run ending at the last line.  The same in
        JSON, where each line is one object."""
        count = 10000
        self.script("fill.py", """\
import sys
w = sys.stdout.write
for i in range(1, %d + 1):
    w("line %%07d %%s\\n" %% (i, "x" * (i %% 150)))
""" % count, shell=PYTHON)
        agent = self.start_agent("""\
  rot:  { command = "./fill.py"; autostart = false; log_max_size = "64K";
          log_backups = 2; };
  rotj: { command = "./fill.py"; autostart = false; log_max_size = "64K";
          log_backups = 2; log_format = "json"; };
""")
        pattern = re.compile(rb"^line (\d{7}) (x*)$")
        for name in ("rot", "rotj"):
            self.run_to_exit(agent, name)
            files = sorted(x for x in os.listdir(self.path("logs"))
                           if x.startswith(name + ".log"))
            self.assertEqual(files, [name + ".log", name + ".log.1",
                                     name + ".log.2"])
            numbers = []
            for suffix in (".2", ".1", ""):
                data = self.read_file_bytes(self.log_path(name, suffix))
                self.assertTrue(data.endswith(b"\n"), (suffix, data[-100:]))
                lines = data[:-1].split(b"\n")
                longest = max(len(x) for x in lines) + 1
                self.assertLessEqual(len(data), 65536 + longest,
                                     name + ".log" + suffix)
                for line in lines:
                    if name == "rotj":
                        entry = json.loads(line)
                        self.assertEqual(entry["seq"], int(entry["line"][5:12]))
                        line = entry["line"].encode()
                    match = pattern.match(line)
                    self.assertIsNotNone(match, "%s%s: %r" % (name, suffix,
                                                              line[:100]))
                    number = int(match.group(1))
                    self.assertEqual(len(match.group(2)), number % 150)
                    numbers.append(number)
            self.assertEqual(numbers[-1], count, name)
            self.assertSame(numbers, list(range(numbers[0], count + 1)),
                            name + " line numbers, .2 .1 current")
            #  Older lines were dropped with the oldest backup.
            self.assertGreater(numbers[0], 1, name)

    # -- shutdown --------------------------------------------------------------

    def test_shutdown_mid_burst_loses_nothing(self):
        """SIGTERM to pmd while a service writes as fast as it can: the
        service (which stops on TERM and says "bye N") loses nothing: the
        file holds 1..N and the bye line; a subscriber attached before got
        the same lines, and the agent's last event after the last line."""
        self.script("chatty.py", """\
import os, signal
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
n = 0
while not stop:
    n += 1
    os.write(1, b"%d\\n" % n)
os.write(1, b"bye %d\\n" % n)
""", shell=PYTHON)
        agent = self.start_agent('  chatty: { command = "./chatty.py"; '
                                 'autostart = false; stop_timeout = 10.0; '
                                 'log_max_size = 0; };\n')
        sub = agent.subscribe("log/t/chatty/", "agent/t/")
        events = []

        def read(until, timeout, what):
            """Reads (a thousand at most between two checks: the service
            never stops writing) until an event satisfies until."""
            deadline = Deadline(timeout)
            while True:
                if sub.sock.poll(int(min(0.1, deadline.left()) * 1000)):
                    for _ in range(1000):
                        try:
                            topic, body = sub.sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if topic.startswith(b"state/"):
                            continue        # the probe's, from the sync
                        found = None
                        for event in pmtest.expand(unpack(body)):
                            event["topic"] = topic.decode()
                            events.append(event)
                            if found is None and until(event):
                                found = event
                        if found is not None:
                            return found
                if deadline.passed():
                    raise AssertionError("timed out after %gs waiting for %s"
                                         % (timeout, what))

        reply = agent.request("start", {"names": ["chatty"]})
        self.assertTrue(reply["ok"], reply)
        read(lambda e: e["kind"] == "log" and e["seq"] >= 1000, 30,
             "a thousand lines")
        os.kill(agent.pid, signal.SIGTERM)
        last = read(lambda e: e["kind"] == "agent" and e["event"] == "shutdown",
                    60, "the shutdown event")
        self.assertEqual(agent.wait_exit(30), 0)
        #  The agent is gone: anything it sent after its last event would
        #  be here by now.
        self.assertFalse(sub.sock.poll(200), "an event after shutdown")
        data = self.read_file_bytes(self.log_path("chatty"))
        lines = data.decode().splitlines()
        self.assertTrue(lines[-1].startswith("bye "), lines[-3:])
        count = int(lines[-1].split()[1])
        self.assertGreaterEqual(count, 1000)
        self.assertSame(lines[:-1], [str(i) for i in range(1, count + 1)],
                        "chatty.log")
        logs = [e for e in events if e["kind"] == "log"]
        self.assertSame([e["seq"] for e in logs], list(range(1, count + 2)),
                        "seq of the lines received")
        self.assertSame([e["line"] for e in logs], lines,
                        "lines received, against the file")
        self.assertEqual([e["event"] for e in events if e["kind"] == "agent"],
                         ["stopping", "shutdown"])
        self.assertIs(events[-1], last)
        sys.stderr.write("(%d lines before the stop) " % count)

    # -- the `logs` command ----------------------------------------------------

    def test_logs_command_edges(self):
        self.script("b.sh", "printf 'b1\\nb2\\nb3\\n'\n")
        agent = self.start_agent("""\
  a: { command = "seq 1 300"; autostart = false; };
  b: { command = "./b.sh"; autostart = false; };
  c: { command = "seq 1 50"; autostart = false; log_ring = 10; };
  d: { command = "true"; autostart = false; };
""")
        for name in ("a", "b", "c"):
            self.assertTrue(agent.request("start", {"names": [name],
                                                    "wait": "none"})["ok"])
            agent.wait_state(name, "completed")

        def seqs(block):
            return [x["seq"] for x in block["lines"]]

        def check(block, service, first, last, gone, lines):
            self.assertEqual((block["service"], block["first"],
                              block["last"], block["gone"], block["more"],
                              seqs(block)),
                             (service, first, last, gone, False, lines))

        #  One service: 100 by default, or tail N, or since.
        (a,) = self.logs(agent, {"names": ["a"]})
        check(a, "a", 1, 300, None, list(range(201, 301)))
        self.assertEqual([x["line"] for x in a["lines"]],
                         [str(i) for i in range(201, 301)])
        for x in a["lines"]:
            self.assertEqual(set(x), {"seq", "ts", "stream", "line"})
            self.assertEqual(x["stream"], "out")
            self.assertIsInstance(x["ts"], float)
        check(self.logs(agent, {"names": ["a"], "tail": 5})[0],
              "a", 1, 300, None, list(range(296, 301)))
        check(self.logs(agent, {"names": ["a"], "tail": 1000})[0],
              "a", 1, 300, None, list(range(1, 301)))
        check(self.logs(agent, {"names": ["a"], "tail": 0})[0],
              "a", 1, 300, None, [])
        check(self.logs(agent, {"names": ["a"], "since": 0})[0],
              "a", 1, 300, None, list(range(1, 301)))
        check(self.logs(agent, {"names": ["a"], "since": 297})[0],
              "a", 1, 300, None, [298, 299, 300])
        #  since wins over tail.
        check(self.logs(agent, {"names": ["a"], "since": 290, "tail": 2})[0],
              "a", 1, 300, None, list(range(291, 301)))
        #  since at or beyond the last line: nothing, and nothing gone.
        for since in (300, 301, 10 ** 9):
            check(self.logs(agent, {"names": ["a"], "since": since})[0],
                  "a", 1, 300, None, [])
        #  Some services, in the order named.
        blocks = self.logs(agent, {"names": ["b", "a"], "tail": 2})
        self.assertEqual([b["service"] for b in blocks], ["b", "a"])
        self.assertEqual([x["line"] for x in blocks[0]["lines"]],
                         ["b2", "b3"])
        check(blocks[1], "a", 1, 300, None, [299, 300])
        #  Every service, in start order; one never run has nothing.
        blocks = self.logs(agent, {"tail": 2})
        self.assertEqual([b["service"] for b in blocks],
                         ["a", "b", "c", "d", pmtest.PROBE])
        check(blocks[0], "a", 1, 300, None, [299, 300])
        check(blocks[2], "c", 41, 50, None, [49, 50])
        check(blocks[3], "d", 0, 0, None, [])
        self.assertEqual(len(self.logs(agent, {})), 5)
        #  A ring of 10: what is asked for and no longer held is gone,
        #  exactly.
        check(self.logs(agent, {"names": ["c"], "tail": 25})[0],
              "c", 41, 50, [26, 40], list(range(41, 51)))
        check(self.logs(agent, {"names": ["c"], "since": 0})[0],
              "c", 41, 50, [1, 40], list(range(41, 51)))
        check(self.logs(agent, {"names": ["c"], "since": 39})[0],
              "c", 41, 50, [40, 40], list(range(41, 51)))
        check(self.logs(agent, {"names": ["c"], "since": 40})[0],
              "c", 41, 50, None, list(range(41, 51)))
        check(self.logs(agent, {"names": ["c"], "since": 45})[0],
              "c", 41, 50, None, list(range(46, 51)))
        #  Unknown names: unknown-service, every unknown name, nothing else.
        for names, unknown in ((["nope"], ["nope"]),
                               (["a", "nope", "zz"], ["nope", "zz"])):
            reply = agent.request("logs", {"names": names})
            self.assertFalse(reply["ok"], reply)
            self.assertEqual(reply["error"]["code"], "unknown-service")
            self.assertEqual(sorted(reply["error"]["names"]), unknown)
            self.assertEqual(set(reply) - {"error"}, {"v", "id", "ok"},
                             reply)

    def test_logs_reply_within_protocol_limits(self):
        """A `logs` reply keeps PROTOCOL.md 1.4's limits (a frame of at most
        1 MiB, at most 4096 elements in any list), cutting a block with
        `more` instead; paging through gives every line once."""
        total = 20000
        agent = self.start_agent('  many: { command = "seq 1 %d"; '
                                 'autostart = false; log_ring = %d; };\n'
                                 % (total, total))
        self.assertTrue(agent.request("start", {"names": ["many"],
                                                "wait": "none"})["ok"])
        agent.wait_state("many", "completed")
        client = agent.client()
        since, got, sizes = 0, [], []
        for _ in range(100):
            client.sock.send(pmtest.pack({"v": 1, "id": 1, "cmd": "logs",
                                          "args": {"names": ["many"],
                                                   "since": since}}))
            self.assertTrue(client.sock.poll(10000), "no reply")
            frame = client.sock.recv()
            reply = unpack(frame)
            self.assertTrue(reply["ok"], reply)
            block = reply["logs"][0]
            sizes.append((len(frame), len(block["lines"])))
            got.extend(x["seq"] for x in block["lines"])
            if not block["more"]:
                break
            since = block["lines"][-1]["seq"]
        self.assertSame(got, list(range(1, total + 1)), "seq paged through")
        for size, lines in sizes:
            self.assertLessEqual(size, FRAME_MAX, sizes)
            self.assertLessEqual(lines, LIST_MAX,
                                 "lines per reply (frame bytes, lines): %r"
                                 % sizes)


if __name__ == "__main__":
    pmtest.main()
