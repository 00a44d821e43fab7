"""test_readiness.py - readiness and liveness probes, restart policies, wait

Drives the real pmd ($PMD) and pmctl ($PMCTL) through pmtest.  What is
checked, with PROTOCOL.md 5 (start, wait) and 7 (states, record) and
schema/config.h (probe and policy settings) as the reference:

- a tcp probe's host name that does not resolve is a config error at
  load (pmd and `pmctl check`), not a failure of every attempt;
- every readiness probe kind (exec, tcp, http, log, notify_fd): it
  passes (starting -> running, and the running event comes after the
  moment the service made the condition true), it keeps failing until
  its deadline, an attempt that hangs ends at its timeout, and the
  deadline fails the service ("not ready after N s: <last reason>")
  with its process stopped and gone;
- dependency conditions "ready" and "started" against a probed service;
- `pmctl start` blocks until the probe passed; `--wait started` does not;
- liveness: failures in a row stop the service and its policy decides;
- restart policies: no / on-failure / always, the backoff doubling and
  its cap, next_start, giving up after max_restarts within
  restart_window, min_uptime, stop during backoff, start on a service in
  backoff or given up;
- the `wait` command (raw protocol) and `pmctl wait` (when pmctl has it).

The moment a condition becomes true is written by the service itself
("cond <epoch seconds>", taken *before* the condition is made true) into
its output; event timestamps (`ts`) come from the same clock.  Services
are autostart = false and started by the test once its subscriber is
synced, so every event is seen.
"""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import (EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT,  # noqa: E402
                    EXIT_USAGE, Deadline, wait_until)

PYTHON = sys.executable or "/usr/bin/python3"

#  Slack for "soon after" on a loaded machine; lower bounds are exact.
SLACK = 0.35
#  Sanitizer builds run several times slower, and share the 2 cores with
#  the rest of the suite: upper bounds get more room there.
if os.environ.get("PM_SANITIZE", "").upper() in ("ON", "1", "TRUE"):
    SLACK = 1.0

# ---------------------------------------------------------------------------
#  Services
# ---------------------------------------------------------------------------

#  tcpserve.py PORT DELAY: listens on 127.0.0.1:PORT after DELAY s;
#  SIGUSR1 closes the listening socket for good (the process lives on).
TCPSERVE = r"""
import signal, socket, sys, time
port, delay = int(sys.argv[1]), float(sys.argv[2])
time.sleep(delay)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
closed = []
def unlisten(signum, frame):
    closed.append(time.time())
    s.close()
signal.signal(signal.SIGUSR1, unlisten)
t = time.time()
s.listen(64)
print("cond %.6f" % t, flush=True)
while not closed:
    try:
        c, _ = s.accept()
        c.close()
    except OSError:
        pass
print("closed %.6f" % closed[0], flush=True)
while True:
    signal.pause()
"""

#  httpserve.py PORT DELAY MODE: listens after DELAY s.  MODE "hang":
#  accepts and never answers.  Otherwise MODE is a number of seconds
#  (or "inf"): GET /health answers 500 until that long after listening,
#  then 200; other paths 404.  One output line per request.
HTTPSERVE = r"""
import http.server, socket, socketserver, sys, time
port, delay, mode = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(delay)
if mode == "hang":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    t = time.time()
    s.listen(64)
    print("cond %.6f" % t, flush=True)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)
        print("held", flush=True)
ok_after = float(mode)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health":
            code = 404
        else:
            code = 200 if time.time() >= ok_at else 500
        print("GET %s %d" % (self.path, code), flush=True)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

class Server(socketserver.TCPServer):
    allow_reuse_address = True

server = Server(("127.0.0.1", port), Handler, bind_and_activate=False)
server.server_bind()
ok_at = time.time() + ok_after
print("cond %.6f" % ok_at, flush=True)
server.server_activate()
server.serve_forever()
"""

#  crash.sh: run n (counted in runs.<service>) writes "run n", then, while
#  n <= $CRASHES, lives $RUNTIME s and exits $CODE; later runs live on.
CRASH = r"""
f="runs.$PMBUS_SERVICE"
n=$(cat "$f" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$f"
echo "run $n"
if [ "$n" -le "${CRASHES:-0}" ]; then
    sleep "${RUNTIME:-0}"
    exit "${CODE:-3}"
fi
exec sleep 1000
"""

#  flag.sh: creates ready.flag after 0.4 s.
FLAG = r"""
sleep 0.4
echo "cond $(date +%s.%N)"
: > ready.flag
exec sleep 1000
"""

#  logready.sh: says "server ready" after 0.4 s.
LOGREADY = r"""
echo booting
sleep 0.4
echo "cond $(date +%s.%N)"
echo "server ready"
exec sleep 1000
"""

#  notify.sh: writes a newline to descriptor 3 after 0.4 s.
NOTIFY = r"""
echo booting
sleep 0.4
echo "cond $(date +%s.%N)"
printf '\n' >&3
exec sleep 1000 3>&-
"""

#  notify_close.sh: closes descriptor 3 without writing to it.
NOTIFY_CLOSE = r"""
exec 3>&-
exec sleep 1000
"""

#  notify_bad.sh: once ./go exists, writes to descriptor 3 without a
#  newline and closes it, then says so (./done).
NOTIFY_BAD = r"""
while [ ! -e go ]; do sleep 0.01; done
printf 'x' >&3
exec 3>&-
: > done
exec sleep 1000
"""

#  notify_long.py: once ./go exists, writes a 300-byte line and its
#  newline to descriptor 3 in one write, closes it, then says so (./done).
NOTIFY_LONG = r"""
import os, time
while not os.path.exists("go"):
    time.sleep(0.01)
os.write(3, b"STATUS=" + b"a" * 300 + b"\n")
os.close(3)
open("done", "w").close()
time.sleep(1000)
"""

#  attempt.sh: an exec probe that counts its attempts, then fails.
ATTEMPT = r"""
echo x >> attempts
exit 1
"""


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A loopback port nobody listens on, checked by binding it.

    Chosen below the ephemeral range, not with bind(0): a port from that
    range can be handed to an outgoing connection (the agents' probes
    make many) as its source port before the service binds it, and a
    probe connecting to a closed port in that range can connect to
    itself (TCP simultaneous open) and pass."""
    low, high = _ephemeral_range()
    top = min(low, 65536) - 1
    bottom = 10000 if top > 12000 else 1024
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(bottom, top)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free loopback port in %d..%d" % (bottom, top))


_PMCTL_HAS_WAIT = None


def pmctl_has_wait():
    """True once pmctl knows the `wait` command (its help lists it)."""
    global _PMCTL_HAS_WAIT
    if _PMCTL_HAS_WAIT is None:
        try:
            done = subprocess.run([pmtest.PMCTL, "--help"], capture_output=True,
                                  text=True, timeout=10,
                                  stdin=subprocess.DEVNULL)
            _PMCTL_HAS_WAIT = bool(re.search(r"^\s+wait\b", done.stdout,
                                             re.M))
        except (OSError, subprocess.TimeoutExpired):
            _PMCTL_HAS_WAIT = False
    return _PMCTL_HAS_WAIT


# ---------------------------------------------------------------------------
#  The base
# ---------------------------------------------------------------------------


class ReadinessTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        self.script("tcpserve.py", TCPSERVE, shell=PYTHON)
        self.script("httpserve.py", HTTPSERVE, shell=PYTHON)
        self.script("crash.sh", CRASH)
        self.script("flag.sh", FLAG)
        self.script("logready.sh", LOGREADY)
        self.script("notify.sh", NOTIFY)
        self.script("notify_bad.sh", NOTIFY_BAD)
        self.script("notify_close.sh", NOTIFY_CLOSE)
        self.script("notify_long.py", NOTIFY_LONG, shell=PYTHON)
        self.script("attempt.sh", ATTEMPT)
        self.agent = None
        self.sub = None

    # -- the agent --------------------------------------------------------

    def run_agent(self, services):
        """Starts pmd with services (all autostart = false, please) and a
        synced subscriber on every state event."""
        self.agent = self.start_agent(services)
        self.sub = self.agent.subscribe()
        return self.agent

    def request(self, cmd, args=None, timeout=15.0):
        return self.agent.request(cmd, args, timeout=timeout)

    def start(self, *names, wait="none", timeout=15.0, expect_ok=True):
        reply = self.request("start", {"names": list(names), "wait": wait},
                             timeout=timeout)
        if expect_ok:
            self.assertTrue(reply.get("ok"), "start %s: %r\n%s"
                            % (names, reply, self.agent.logs_tail()))
        return reply

    def pmctl(self, *args, expect=EXIT_OK, timeout=30.0):
        rc, out, err = self.run_pmctl(*args, timeout=timeout)
        if rc != expect:
            self.fail("pmctl %s: exit %d, expected %d\nstdout: %s\n"
                      "stderr: %s\n%s" % (" ".join(args), rc, expect, out,
                                          err, self.agent.logs_tail()))
        return out, err

    # -- events -----------------------------------------------------------

    def event(self, service, new, nth=1, old=None, timeout=10.0):
        """The nth state event of service into new (from old), waiting
        for it up to timeout."""
        seen = [0]

        def match(e):
            if (e.get("kind") != "state" or e.get("service") != service
                    or e.get("new") != new
                    or (old is not None and e.get("old") != old)):
                return False
            seen[0] += 1
            return seen[0] == nth
        return self.sub.wait_for(match, timeout=timeout,
                                 what="%s -> %s #%d" % (service, new, nth))

    def events(self, service, new=None):
        return [e for e in self.sub.state_events(service)
                if new is None or e["new"] == new]

    def assert_no_event(self, service, new, within, after=0):
        """No state event of service into new arrives (beyond the first
        `after` ones) for `within` seconds: a bounded negative check."""
        deadline = Deadline(within)
        while not deadline.passed():
            self.sub.drain(min(0.05, deadline.left()))
        got = self.events(service, new)
        self.assertEqual(len(got), after, "unexpected %s -> %s: %s"
                         % (service, new, self.sub.summary()))

    # -- what services say ------------------------------------------------

    def log_text(self, name):
        path = os.path.join(self.tmp, "logs", "%s.log" % name)
        return pmtest.read_bytes(path).decode("utf-8", "replace")

    def cond_time(self, name, timeout=10.0):
        """The moment service name made its condition true (its "cond"
        line)."""
        def find():
            m = re.search(r"cond (\d+\.\d+)", self.log_text(name))
            return m and float(m.group(1))
        return wait_until(find, timeout, what="%s cond line" % name)

    def assert_gone(self, pid):
        """pid, a service's main process (and its group), no longer
        exists."""
        self.assertFalse(pmtest.pid_alive(pid), "pid %d still alive" % pid)
        group = {p: s for p, s in pmtest.descendants(self.agent.pid).items()
                 if s[2] == pid and s[0] != "Z"}
        self.assertEqual(group, {}, "group %d left: %s"
                         % (pid, pmtest.describe(group)))

    def assert_ready_after_cond(self, name, interval):
        """name went starting -> running, after its cond line's moment and
        no later than about one interval after it."""
        running = self.event(name, "running", old="starting")
        cond = self.cond_time(name)
        starting = self.event(name, "starting")
        self.assertGreaterEqual(running["ts"], cond,
                                "running before the condition held")
        self.assertLess(running["ts"] - cond, interval + SLACK)
        self.assertLess(starting["ts"], cond)
        self.assertFalse(starting["record"]["ready"])
        self.assertTrue(running["record"]["ready"])
        record = self.agent.record(name)
        self.assertEqual(record["state"], "running")
        self.assertTrue(record["ready"])
        self.assertIsNone(record["error"])
        return running

    def assert_deadline_failure(self, name, deadline, reason):
        """name failed at its readiness deadline with `reason` as the last
        attempt's error (None: no reason given); its process is gone."""
        starting = self.event(name, "starting")
        pid = starting["record"]["pid"]
        self.assertTrue(pid)
        failed = self.event(name, "failed", timeout=deadline + 10)
        expected = "not ready after %g s" % deadline
        if reason is not None:
            expected += ": " + reason
        self.assertEqual(failed["record"]["error"], expected)
        self.assertEqual([(o, n) for _, o, n in self.sub.transitions(name)],
                         [("inactive", "waiting"), ("waiting", "starting"),
                          ("starting", "stopping"), ("stopping", "failed")])
        stopping = self.event(name, "stopping")
        elapsed = stopping["ts"] - starting["ts"]
        self.assertGreaterEqual(elapsed, deadline - 0.01)
        self.assertLess(elapsed, deadline + SLACK)
        self.assertIsNone(failed["record"]["pid"])
        self.assertFalse(failed["record"]["ready"])
        self.assertEqual(failed["record"]["signal"], "SIGTERM")
        self.assert_gone(pid)
        record = self.agent.record(name)
        self.assertEqual(record["state"], "failed")
        self.assertEqual(record["error"], expected)
        self.assertEqual(record["restarts"], 0)
        return failed


def svc(name, command, extra=""):
    return ('  %s: { command = "%s"; autostart = false; stop_timeout = 1.0;'
            ' %s };\n' % (name, command, extra))


# ---------------------------------------------------------------------------
#  Probe kinds
# ---------------------------------------------------------------------------


class ProbeKindsTest(ReadinessTest):

    # -- exec -------------------------------------------------------------

    def test_exec_passes_after_condition(self):
        self.run_agent(svc("s", "./flag.sh", 'ready = { exec = "test -e '
                           'ready.flag"; interval = 0.05; deadline = 10.0; };'))
        self.start("s")
        self.assert_ready_after_cond("s", 0.05)

    def test_exec_keeps_failing_until_deadline(self):
        self.run_agent(svc("s", "sleep 1000", 'ready = { exec = '
                           '"./attempt.sh"; interval = 0.05; deadline = 0.5; };'))
        self.start("s")
        self.assert_deadline_failure("s", 0.5,
                                     "'./attempt.sh' exited with code 1")
        attempts = pmtest.read_bytes(self.path("attempts")).count(b"x")
        #  0.5 s of attempts every 0.05 s (plus the attempt's own time).
        self.assertGreaterEqual(attempts, 4)
        self.assertLessEqual(attempts, 11)

    def test_exec_attempt_timeout(self):
        self.run_agent(svc("s", "sleep 1000", 'ready = { exec = "sleep 30"; '
                           'interval = 0.05; timeout = 0.1; deadline = 0.6; };'))
        self.start("s")
        self.assert_deadline_failure("s", 0.6, "no answer within 0.1s")

        #  Each attempt that timed out was killed (and reaped).
        def probes():
            return {p: s for p, s in pmtest.descendants(self.agent.pid).items()
                    if s[0] != "Z" and s[3] == "sleep"}
        wait_until(lambda: not probes(), 5, what="probe processes gone")

    def test_deadline_and_attempt_due_together(self):
        """A deadline that fires in the same loop pass as an attempt's
        timer: the probe is gone after the deadline, and the other timer
        must not fire on it (it did once: a use after free)."""
        self.run_agent(svc("s", "sleep 1000", 'ready = { exec = "false"; '
                           'initial_delay = 0.5; deadline = 0.5; };')
                       + svc("t", "sleep 1000", 'ready = { exec = "false"; '
                             'interval = 0.1; timeout = 0.1; deadline = 0.3; };'))
        self.start("s", "t")
        #  What matters here is that the agent survives both; the deadline
        #  timing itself is checked by the tests above.
        for name, seconds in (("s", 0.5), ("t", 0.3)):
            record = self.agent.wait_state(name, "failed", timeout=20)
            self.assertIn("not ready after %g s" % seconds, record["error"])
        self.assertIsNone(self.agent.proc.poll(), "pmd died")
        reply = self.agent.request("status")
        self.assertTrue(reply["ok"], reply)

    def test_exec_initial_delay(self):
        self.run_agent(svc("s", "sleep 1000", 'ready = { exec = "true"; '
                           'initial_delay = 0.3; interval = 0.05; };'))
        self.start("s")
        starting = self.event("s", "starting")
        running = self.event("s", "running")
        self.assertGreaterEqual(running["ts"] - starting["ts"], 0.29)
        self.assertLess(running["ts"] - starting["ts"], 0.3 + SLACK)

    # -- tcp --------------------------------------------------------------

    def test_tcp_passes_after_listen(self):
        port = free_port()
        self.run_agent(svc("s", "./tcpserve.py %d 0.4" % port,
                           'ready = { tcp = "127.0.0.1:%d"; interval = 0.05; '
                           'deadline = 10.0; };' % port))
        self.start("s")
        self.assert_ready_after_cond("s", 0.05)

    def test_tcp_refused_until_deadline(self):
        port = free_port()
        self.run_agent(svc("s", "sleep 1000", 'ready = { tcp = '
                           '"127.0.0.1:%d"; interval = 0.05; deadline = 0.5; };'
                           % port))
        self.start("s")
        self.assert_deadline_failure(
            "s", 0.5, "connect 127.0.0.1:%d: Connection refused" % port)

    def test_unresolvable_host_is_a_config_error(self):
        #  Resolved at load, not at each attempt: pmd refuses to start, and
        #  `pmctl check` says the same, with the file, line and key (the
        #  probe is on line 3: the agent line, "services: {", then s).
        config = self.config(svc("s", "sleep 1000",
                                 'ready = { tcp = "nosuch.invalid:80"; };'),
                             probe=False)
        want = ("%s:3: services.s.ready.tcp: cannot resolve host "
                "'nosuch.invalid': " % config)
        agent = self.spawn_pmd(config)
        self.assertEqual(agent.wait_exit(10.0), EXIT_USAGE, agent.logs_tail())
        with open(agent.stderr_path) as f:
            self.assertIn("pmd: " + want, f.read())
        rc, out, err = self.run_pmctl("check", config=config)
        self.assertEqual(rc, EXIT_USAGE, err)
        self.assertIn("pmctl: " + want, err)

    # -- http -------------------------------------------------------------

    def test_http_passes_on_2xx_only(self):
        port = free_port()
        #  Listening at once, answering 500 for 0.4 s, then 200.
        self.run_agent(svc("s", "./httpserve.py %d 0 0.4" % port,
                           'ready = { http = "http://127.0.0.1:%d/health"; '
                           'interval = 0.05; deadline = 10.0; };' % port))
        self.start("s")
        self.assert_ready_after_cond("s", 0.05)
        log = self.log_text("s")
        self.assertIn("GET /health 500", log)
        self.assertIn("GET /health 200", log)
        self.assertNotIn("404", log)

    def test_http_500_until_deadline(self):
        port = free_port()
        self.run_agent(svc("s", "./httpserve.py %d 0 inf" % port,
                           'ready = { http = "http://127.0.0.1:%d/health"; '
                           'interval = 0.05; deadline = 0.6; };' % port))
        self.start("s")
        self.assert_deadline_failure("s", 0.6, "HTTP status 500")
        self.assertGreaterEqual(self.log_text("s").count("GET /health 500"), 3)

    def test_http_attempt_timeout_when_never_answered(self):
        port = free_port()
        self.run_agent(svc("s", "./httpserve.py %d 0 hang" % port,
                           'ready = { http = "http://127.0.0.1:%d/health"; '
                           'interval = 0.05; timeout = 0.2; deadline = 0.7; };'
                           % port))
        self.start("s")
        self.assert_deadline_failure("s", 0.7, "no answer within 0.2s")
        #  Several attempts, each connected and then given up on.
        self.assertGreaterEqual(self.log_text("s").count("held"), 2)

    # -- log --------------------------------------------------------------

    def test_log_passes_on_matching_line(self):
        self.run_agent(svc("s", "./logready.sh", 'ready = { log = '
                           '"^server (ready|up)$"; deadline = 10.0; };'))
        self.start("s")
        self.assert_ready_after_cond("s", 0.0)

    def test_log_matches_stderr_too(self):
        self.run_agent(svc("s", "./logready.sh 1>&2", 'ready = { log = '
                           '"^server ready$"; deadline = 10.0; };'))
        self.start("s")
        self.assert_ready_after_cond("s", 0.0)

    def test_log_no_match_until_deadline(self):
        self.run_agent(svc("s", "./logready.sh", 'ready = { log = '
                           '"^never$"; deadline = 0.5; };'))
        self.start("s")
        #  No attempt, no reason: the message is just the deadline.
        self.assert_deadline_failure("s", 0.5, None)

    # -- notify_fd --------------------------------------------------------

    def test_notify_fd_passes_on_newline(self):
        self.run_agent(svc("s", "./notify.sh", 'ready = { notify_fd = 3; '
                           'deadline = 10.0; };'))
        self.start("s")
        self.assert_ready_after_cond("s", 0.0)

    def test_notify_fd_closed_without_newline(self):
        self.run_agent(svc("s", "./notify_close.sh", 'ready = { notify_fd = 3; '
                           'deadline = 0.5; };'))
        self.start("s")
        self.assert_deadline_failure("s", 0.5,
                                     "descriptor 3 closed without a newline")

    def test_notify_fd_bytes_then_close_seen_together(self):
        #  The service writes "x" (no newline) and closes the descriptor
        #  while the agent is not looking (SIGSTOPped), so that the data
        #  and the end of file arrive in one wakeup.  The end of file must
        #  still be noticed: the deadline error names it, as it does when
        #  they come apart (test above).
        self.run_agent(svc("s", "./notify_bad.sh", 'ready = { notify_fd = 3; '
                           'deadline = 1.0; };'))
        self.start("s", wait="started")
        self.agent.proc.send_signal(signal.SIGSTOP)
        try:
            self.write_file("go", "")
            wait_until(lambda: os.path.exists(self.path("done")), 5,
                       what="notify_bad.sh wrote and closed")
        finally:
            self.agent.proc.send_signal(signal.SIGCONT)
        self.assert_deadline_failure("s", 1.0,
                                     "descriptor 3 closed without a newline")

    def test_notify_fd_long_line_then_close_seen_together(self):
        #  The same, with a newline after 300 bytes: the service did say
        #  it is ready, and must become running.
        self.run_agent(svc("s", "./notify_long.py", 'ready = { notify_fd = 3; '
                           'deadline = 1.0; };'))
        self.start("s", wait="started")
        self.agent.proc.send_signal(signal.SIGSTOP)
        try:
            self.write_file("go", "")
            wait_until(lambda: os.path.exists(self.path("done")), 5,
                       what="notify_long.py wrote and closed")
        finally:
            self.agent.proc.send_signal(signal.SIGCONT)
        end = self.sub.wait_for(
            lambda e: e.get("service") == "s"
            and e.get("new") in ("running", "stopping"), timeout=5,
            what="s running (or failing)")
        self.assertEqual(end["new"], "running",
                         "a newline written to the notify descriptor was "
                         "never read: %r" % (end["record"]["error"],))

    def test_notify_fd_never_written(self):
        self.run_agent(svc("s", "sleep 1000", 'ready = { notify_fd = 7; '
                           'deadline = 0.4; };'))
        self.start("s")
        self.assert_deadline_failure("s", 0.4, None)


# ---------------------------------------------------------------------------
#  Dependencies and start --wait
# ---------------------------------------------------------------------------


class ReadyDependencyTest(ReadinessTest):

    def db(self, port, delay, deadline=10.0):
        return svc("db", "./tcpserve.py %d %g" % (port, delay),
                   'ready = { tcp = "127.0.0.1:%d"; interval = 0.05; '
                   'deadline = %g; };' % (port, deadline))

    def test_ready_vs_started_dependency(self):
        port = free_port()
        self.run_agent(self.db(port, 0.5)
                       + svc("on_ready", "sleep 1000",
                             'depends_on = { db = "ready"; };')
                       + svc("on_started", "sleep 1000",
                             'depends_on = { db = "started"; };'))
        self.start("on_ready", "on_started", wait="running")
        db_starting = self.event("db", "starting")
        db_running = self.event("db", "running")
        cond = self.cond_time("db")
        self.assertGreaterEqual(db_running["ts"], cond)
        ready_starting = self.event("on_ready", "starting")
        started_starting = self.event("on_started", "starting")
        #  "ready": only once db's probe passed.
        self.assertGreaterEqual(ready_starting["ts"], db_running["ts"])
        self.assertGreaterEqual(ready_starting["ts"], cond)
        #  "started": right after db was spawned, long before it is ready.
        self.assertGreaterEqual(started_starting["ts"], db_starting["ts"])
        self.assertLess(started_starting["ts"] - db_starting["ts"], SLACK)
        self.assertLess(started_starting["ts"], cond)
        for name in ("db", "on_ready", "on_started"):
            self.assertEqual(self.agent.record(name)["state"], "running")

    def test_ready_dependency_fails_with_its_dependency(self):
        port = free_port()
        self.run_agent(svc("db", "sleep 1000",
                           'ready = { tcp = "127.0.0.1:%d"; interval = 0.05; '
                           'deadline = 0.3; };' % port)
                       + svc("app", "sleep 1000",
                             'depends_on = { db = "ready"; };'))
        reply = self.start("app", wait="running", expect_ok=False)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        app = self.event("app", "failed", old="waiting")
        self.assertIn("dependency 'db' failed: not ready after 0.3 s",
                      app["record"]["error"])
        self.assertEqual(self.events("app", "starting"), [])

    def test_ready_dependency_waits_through_backoff(self):
        #  PROTOCOL.md 7.1: a dependency in backoff is waited for.  db's
        #  first run dies before it is ready; its policy restarts it and
        #  the second run is ready ("run 2").
        self.run_agent(svc("db", "./crash.sh", 'restart = "on-failure"; '
                           'backoff_initial = 0.2; environment = { CRASHES = '
                           '"1"; }; ready = { log = "^run 2$"; '
                           'deadline = 10.0; };')
                       + svc("app", "sleep 1000",
                             'depends_on = { db = "ready"; };'))
        reply = self.start("app", wait="running")
        self.assertEqual(reply["results"][0]["state"], "running")
        self.event("db", "backoff")
        db_running = self.event("db", "running")
        app_starting = self.event("app", "starting")
        self.assertGreaterEqual(app_starting["ts"], db_running["ts"])
        self.assertEqual(self.events("app", "failed"), [])
        self.assertEqual(self.agent.record("db")["restarts"], 1)

    def test_pmctl_start_blocks_until_probe_passes(self):
        port = free_port()
        self.run_agent(self.db(port, 0.6))
        out, err = self.pmctl("start", "db")
        returned = time.time()
        cond = self.cond_time("db")
        self.assertGreaterEqual(returned, cond,
                                "pmctl start returned before db listened")
        running = self.event("db", "running")
        self.assertGreaterEqual(running["ts"], cond)
        self.assertGreaterEqual(returned, running["ts"])
        self.assertRegex(out, r"(?m)^db\s+running\b")

    def test_pmctl_start_wait_started_returns_before_ready(self):
        port = free_port()
        self.run_agent(self.db(port, 0.8))
        out, err = self.pmctl("start", "--wait", "started", "db")
        returned = time.time()
        self.assertRegex(out, r"(?m)^db\s+starting\b")
        cond = self.cond_time("db")
        self.assertLess(returned, cond,
                        "pmctl start --wait started waited for readiness")
        self.event("db", "running")
        self.assertGreaterEqual(self.event("db", "running")["ts"], cond)

    def test_pmctl_start_fails_at_deadline(self):
        port = free_port()
        self.run_agent(svc("db", "sleep 1000",
                           'ready = { tcp = "127.0.0.1:%d"; interval = 0.05; '
                           'deadline = 0.4; };' % port))
        out, err = self.pmctl("start", "db", expect=EXIT_FAILED)
        self.assertIn("not ready after 0.4 s", out + err)
        self.assert_deadline_failure(
            "db", 0.4, "connect 127.0.0.1:%d: Connection refused" % port)


# ---------------------------------------------------------------------------
#  Liveness
# ---------------------------------------------------------------------------


class LivenessTest(ReadinessTest):

    def live(self, port, restart):
        return svc("live", "./tcpserve.py %d 0" % port,
                   'restart = "%s"; backoff_initial = 0.1; '
                   'ready = { tcp = "127.0.0.1:%d"; interval = 0.05; '
                   'deadline = 10.0; }; '
                   'alive = { tcp = "127.0.0.1:%d"; interval = 0.1; '
                   'timeout = 0.5; failures = 2; };' % (restart, port, port))

    def unlisten(self):
        """Makes the running service stop listening; returns (pid, when)."""
        self.start("live", wait="running")
        pid = self.agent.record("live")["pid"]
        os.kill(pid, signal.SIGUSR1)
        when = wait_until(lambda: re.search(r"closed (\d+\.\d+)",
                                            self.log_text("live")),
                          10, what="live closed its socket")
        return pid, float(when.group(1))

    def test_liveness_failure_restarts_on_failure(self):
        port = free_port()
        self.run_agent(self.live(port, "on-failure"))
        pid, closed = self.unlisten()
        stopping = self.event("live", "stopping", old="running")
        failed = self.event("live", "failed", old="stopping")
        self.assertEqual(failed["record"]["error"],
                         "liveness probe failed 2 times in a row: connect "
                         "127.0.0.1:%d: Connection refused" % port)
        #  Two attempts 0.1 s apart, the first at most 0.1 s after closing.
        self.assertGreaterEqual(stopping["ts"] - closed, 0.1 - 0.01)
        self.assertLess(stopping["ts"] - closed, 0.2 + SLACK)
        self.assert_gone(pid)
        #  The policy brings it back: a new process, ready again.
        self.event("live", "backoff", old="failed")
        running = self.event("live", "running", nth=2)
        self.assertNotEqual(running["record"]["pid"], pid)
        self.assertEqual(running["record"]["restarts"], 1)
        self.assertIsNone(running["record"]["error"])
        self.assertEqual(
            [(o, n) for _, o, n in self.sub.transitions("live")],
            [("inactive", "waiting"), ("waiting", "starting"),
             ("starting", "running"), ("running", "stopping"),
             ("stopping", "failed"), ("failed", "backoff"),
             ("backoff", "waiting"), ("waiting", "starting"),
             ("starting", "running")])

    def test_liveness_failure_restart_no_stays_failed(self):
        port = free_port()
        self.run_agent(self.live(port, "no"))
        pid, closed = self.unlisten()
        failed = self.event("live", "failed", old="stopping")
        self.assertTrue(failed["record"]["error"].startswith(
            "liveness probe failed 2 times in a row: "))
        self.assert_gone(pid)
        #  Stays failed: the agent itself says it cannot come back...
        reply = self.request("wait", {"names": ["live"], "for": "running",
                                      "timeout": 5.0})
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        #  ...and no new process comes within several backoff periods.
        self.assert_no_event("live", "starting", 0.5, after=1)
        record = self.agent.record("live")
        self.assertEqual(record["state"], "failed")
        self.assertEqual(record["restarts"], 0)

    def test_liveness_passing_keeps_running(self):
        port = free_port()
        self.run_agent(self.live(port, "no"))
        self.start("live", wait="running")
        pid = self.agent.record("live")["pid"]
        #  Ten liveness periods: nothing happens.
        self.assert_no_event("live", "stopping", 1.0)
        record = self.agent.record("live")
        self.assertEqual((record["state"], record["pid"]), ("running", pid),
                         "%r\n%s\n%s" % (record, self.log_text("live"),
                                         self.agent.logs_tail()))


# ---------------------------------------------------------------------------
#  Restart policies
# ---------------------------------------------------------------------------


def crasher(name, restart, crashes, code=3, runtime=0, extra=""):
    return svc(name, "./crash.sh",
               'restart = "%s"; environment = { CRASHES = "%d"; CODE = "%d"; '
               'RUNTIME = "%g"; }; %s' % (restart, crashes, code, runtime,
                                          extra))


class RestartPolicyTest(ReadinessTest):

    def runs(self, name):
        text = pmtest.read_bytes(self.path("runs.%s" % name)).strip()
        return int(text) if text else 0

    def assert_runs(self, name, count):
        """The service ran count times: its last run (just spawned: it may
        not have counted itself yet) is counted within a bound, and no
        more come."""
        wait_until(lambda: self.runs(name) >= count, 5,
                   what="%s run %d" % (name, count))
        self.assertEqual(self.runs(name), count)

    def test_restart_no(self):
        self.run_agent(crasher("c", "no", 5, extra="backoff_initial = 0.05;"))
        self.start("c")
        failed = self.event("c", "failed")
        self.assertEqual(failed["record"]["error"], "exited with code 3")
        self.assertEqual(failed["record"]["exit_code"], 3)
        self.assert_no_event("c", "starting", 0.4, after=1)
        self.assertEqual(self.events("c", "backoff"), [])
        record = self.agent.record("c")
        self.assertEqual((record["state"], record["restarts"]), ("failed", 0))
        self.assertIsNone(record["next_start"])
        self.assert_runs("c", 1)

    def test_on_failure_backoff_doubles_up_to_cap(self):
        self.run_agent(crasher("c", "on-failure", 4, extra=(
            "backoff_initial = 0.2; backoff_max = 0.5; max_restarts = 0;")))
        self.start("c")
        running = self.event("c", "running", nth=5, timeout=15)
        self.assertEqual(running["record"]["restarts"], 4)
        expected = [0.2, 0.4, 0.5, 0.5]
        for i, delay in enumerate(expected):
            failed = self.event("c", "failed", nth=i + 1)
            backoff = self.event("c", "backoff", nth=i + 1)
            starting = self.event("c", "starting", nth=i + 2)
            self.assertEqual(failed["record"]["error"], "exited with code 3")
            self.assertEqual(backoff["record"]["restarts"], i)
            #  next_start in the record, delay after the failure.
            next_start = backoff["record"]["next_start"]
            self.assertIsNotNone(next_start)
            self.assertAlmostEqual(next_start - failed["ts"], delay,
                                   delta=0.05)
            gap = starting["ts"] - failed["ts"]
            self.assertGreaterEqual(gap, delay - 0.01, "restart %d" % (i + 1))
            self.assertLess(gap, delay + 0.15, "restart %d" % (i + 1))
            self.assertGreaterEqual(starting["ts"], next_start - 0.01)
            self.assertIsNone(starting["record"]["next_start"])
        record = self.agent.record("c")
        self.assertEqual((record["state"], record["restarts"]), ("running", 4))
        self.assertIsNone(record["next_start"])
        self.assert_runs("c", 5)

    def test_failed_event_record_has_no_next_start(self):
        #  PROTOCOL.md 8.2: an event's record is the record right after
        #  its transition; 7.2: next_start is nil outside backoff.  The
        #  failure that leads to a backoff is published first, as its own
        #  transition, and must not already carry the next start.
        self.run_agent(crasher("c", "on-failure", 1, extra=(
            "backoff_initial = 0.2;")))
        self.start("c")
        failed = self.event("c", "failed")
        backoff = self.event("c", "backoff")
        self.assertIsNotNone(backoff["record"]["next_start"])
        self.assertEqual(failed["record"]["state"], "failed")
        self.assertIsNone(failed["record"]["next_start"],
                          "the failed event's record carries the next_start "
                          "of the backoff that follows it")

    def test_on_failure_exit_0_does_not_restart(self):
        self.run_agent(svc("c", "true", 'restart = "on-failure"; '
                           'backoff_initial = 0.05;'))
        self.start("c")
        completed = self.event("c", "completed")
        self.assertEqual(completed["record"]["exit_code"], 0)
        self.assert_no_event("c", "starting", 0.4, after=1)
        self.assertEqual(self.events("c", "backoff"), [])
        self.assertEqual(self.agent.record("c")["state"], "completed")

    def test_on_failure_restarts_after_signal_kill(self):
        self.run_agent(svc("c", "sleep 1000", 'restart = "on-failure"; '
                           'backoff_initial = 0.05;'))
        self.start("c", wait="running")
        pid = self.agent.record("c")["pid"]
        os.kill(pid, signal.SIGKILL)
        failed = self.event("c", "failed")
        self.assertEqual(failed["record"]["error"], "killed by SIGKILL")
        running = self.event("c", "running", nth=2)
        self.assertNotEqual(running["record"]["pid"], pid)
        self.assertEqual(running["record"]["restarts"], 1)

    def test_always_restarts_after_exit_0(self):
        self.run_agent(crasher("c", "always", 2, code=0,
                               extra="backoff_initial = 0.05;"))
        self.start("c")
        running = self.event("c", "running", nth=3)
        self.assertEqual(running["record"]["restarts"], 2)
        self.assertEqual(len(self.events("c", "completed")), 2)
        self.assertEqual(
            [(o, n) for _, o, n in self.sub.transitions("c")][3:6],
            [("running", "completed"), ("completed", "backoff"),
             ("backoff", "waiting")])
        self.assertEqual(self.events("c", "failed"), [])
        self.assert_runs("c", 3)

    def test_gives_up_after_max_restarts(self):
        self.run_agent(crasher("c", "on-failure", 100, extra=(
            "backoff_initial = 0.05; max_restarts = 2; "
            "restart_window = 10.0;")))
        self.start("c")
        gave_up = self.sub.wait_for(
            lambda e: e.get("service") == "c" and e.get("new") == "failed"
            and "gave up" in (e["record"].get("error") or ""),
            timeout=10, what="c gave up")
        self.assertEqual(gave_up["record"]["error"],
                         "gave up after 2 restarts within 10 s; last: exited "
                         "with code 3")
        self.assertEqual(gave_up["record"]["restarts"], 2)
        self.assertEqual(len(self.events("c", "backoff")), 2)
        self.assert_no_event("c", "starting", 0.4, after=3)
        record = self.agent.record("c")
        self.assertEqual((record["state"], record["restarts"]), ("failed", 2))
        self.assertIn("gave up", record["error"])
        self.assertIsNone(record["next_start"])
        self.assert_runs("c", 3)

    def test_min_uptime_resets_the_count(self):
        #  Each run lives 0.35 s > min_uptime: never "too many restarts",
        #  and each is healthy, so restarted at once, with no backoff
        #  (issue 10: a crash after a healthy run is not a crash loop).
        self.run_agent(crasher("c", "on-failure", 4, runtime=0.35, extra=(
            "backoff_initial = 0.1; max_restarts = 2; restart_window = 60.0; "
            "min_uptime = 0.2;")))
        self.start("c")
        running = self.event("c", "running", nth=5, timeout=15)
        self.assertEqual(running["record"]["restarts"], 4)
        for i in range(4):
            failed = self.event("c", "failed", nth=i + 1)
            waiting = self.event("c", "waiting", old="failed", nth=i + 1)
            self.assertEqual(failed["record"]["error"], "exited with code 3")
            self.assertLess(waiting["ts"] - failed["ts"], 0.05)
        self.assert_no_event("c", "backoff", 0.0)
        record = self.agent.record("c")
        self.assertEqual((record["state"], record["restarts"]), ("running", 4))
        self.assertIsNone(record["error"])

    def test_stop_during_backoff_cancels_restart(self):
        self.run_agent(crasher("c", "on-failure", 100, extra=(
            "backoff_initial = 0.5; max_restarts = 0;")))
        self.start("c")
        failed = self.event("c", "failed")
        self.event("c", "backoff")
        record = self.agent.record("c")
        self.assertEqual(record["state"], "backoff")
        self.assertIsNone(record["pid"])
        self.assertAlmostEqual(record["next_start"] - failed["ts"], 0.5,
                               delta=0.05)
        self.assertGreater(record["next_start"], time.time())
        out, err = self.pmctl("stop", "c")
        self.assertRegex(out, r"(?m)^c\s+stopped\b")
        self.event("c", "stopped", old="backoff")
        #  Three backoff periods: no new spawn.
        self.assert_no_event("c", "starting", 1.5, after=1)
        record = self.agent.record("c")
        self.assertEqual((record["state"], record["restarts"]), ("stopped", 0))
        self.assertIsNone(record["next_start"])
        self.assert_runs("c", 1)

    def test_start_during_backoff_starts_now_and_resets(self):
        #  Runs live 0.3 s, then fail; the delay is 3 s (6 s if doubled).
        self.run_agent(crasher("c", "on-failure", 100, runtime=0.3, extra=(
            "backoff_initial = 3.0; backoff_max = 60.0; max_restarts = 0;")))
        self.start("c")
        self.event("c", "failed")
        backoff = self.event("c", "backoff")
        next_start = backoff["record"]["next_start"]
        out, err = self.pmctl("start", "c")
        self.assertRegex(out, r"(?m)^c\s+running\b")
        starting = self.event("c", "starting", nth=2)
        self.assertLess(starting["ts"], next_start - 2.0,
                        "start did not start a service in backoff now")
        self.assertEqual(starting["record"]["restarts"], 1)
        #  The count was reset: the next delay is backoff_initial again.
        failed = self.event("c", "failed", nth=2)
        backoff = self.event("c", "backoff", nth=2)
        self.assertAlmostEqual(backoff["record"]["next_start"] - failed["ts"],
                               3.0, delta=0.1)
        self.pmctl("stop", "c")
        self.assertEqual(self.agent.record("c")["state"], "stopped")

    def test_start_after_giving_up_resets(self):
        self.run_agent(crasher("c", "on-failure", 100, extra=(
            "backoff_initial = 0.05; max_restarts = 1; "
            "restart_window = 10.0;")))
        self.start("c")

        def gave_up(nth):
            seen = [0]

            def match(e):
                if (e.get("service") == "c" and e.get("new") == "failed"
                        and "gave up" in (e["record"].get("error") or "")):
                    seen[0] += 1
                    return seen[0] == nth
                return False
            return self.sub.wait_for(match, timeout=10,
                                     what="c gave up #%d" % nth)
        first = gave_up(1)
        self.assertEqual(first["record"]["restarts"], 1)
        self.assertEqual(len(self.events("c", "backoff")), 1)
        rc, out, err = self.run_pmctl("start", "c")
        #  Exec'd is running (no probe); the crash follows at once.
        self.assertIn(rc, (EXIT_OK, EXIT_FAILED), out + err)
        second = gave_up(2)
        #  Started again (1 spawn) and restarted once more by the policy.
        self.assertEqual(second["record"]["restarts"], 3)
        self.assertEqual(len(self.events("c", "backoff")), 2)
        self.assert_runs("c", 4)

    def test_readiness_deadline_is_a_failure_for_the_policy(self):
        self.run_agent(svc("c", "sleep 1000", 'restart = "on-failure"; '
                           'backoff_initial = 0.05; max_restarts = 1; '
                           'restart_window = 10.0; '
                           'ready = { exec = "false"; interval = 0.05; '
                           'deadline = 0.3; };'))
        self.start("c")
        backoff = self.event("c", "backoff")
        self.assertEqual(backoff["record"]["error"],
                         "not ready after 0.3 s: 'false' exited with code 1")
        final = self.sub.wait_for(
            lambda e: e.get("service") == "c" and e.get("new") == "failed"
            and "gave up" in (e["record"].get("error") or ""),
            timeout=10, what="c gave up")
        self.assertEqual(final["record"]["error"],
                         "gave up after 1 restarts within 10 s; last: not "
                         "ready after 0.3 s: 'false' exited with code 1")


# ---------------------------------------------------------------------------
#  wait
# ---------------------------------------------------------------------------

WAIT_SERVICES = (
    svc("oneshot", "sleep 0.3")
    + svc("probed", "./logready.sh",
          'ready = { log = "^server ready$"; deadline = 10.0; };')
    + svc("never", "sleep 1000",
          'ready = { exec = "false"; interval = 0.1; deadline = 60.0; };')
    + svc("crashy", "./crash.sh", 'restart = "on-failure"; '
          'backoff_initial = 0.3; environment = { CRASHES = "100"; };')
    + svc("crash_no", "./crash.sh", 'environment = { CRASHES = "100"; };')
    + svc("crash_once", "./crash.sh", 'restart = "on-failure"; '
          'backoff_initial = 0.5; environment = { CRASHES = "1"; };')
    + svc("daemon", "sleep 1000")
    #  Exits (status 0) after 0.4 s without ever becoming ready.
    + svc("unready", "sleep 0.4",
          'ready = { exec = "false"; interval = 0.1; deadline = 60.0; };'))


class WaitTest(ReadinessTest):

    def setUp(self):
        super().setUp()
        self.run_agent(WAIT_SERVICES)

    def wait(self, names, want, timeout=None, reply_timeout=15.0):
        args = {"names": list(names), "for": want}
        if timeout is not None:
            args["timeout"] = timeout
        began = time.time()
        reply = self.request("wait", args, timeout=reply_timeout)
        return reply, began, time.time()

    def test_wait_completed_oneshot(self):
        self.start("oneshot")
        reply, began, ended = self.wait(["oneshot"], "completed", 5.0)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["state"], "completed")
        completed = self.event("oneshot", "completed")
        self.assertGreaterEqual(ended, completed["ts"])

    def test_wait_ready_is_running(self):
        self.start("probed")
        for want in ("ready", "running"):
            reply, began, ended = self.wait(["probed"], want, 5.0)
            self.assertTrue(reply["ok"], reply)
            self.assertEqual(reply["results"][0]["state"], "running")
            self.assertGreaterEqual(ended, self.cond_time("probed"))

    def test_wait_several(self):
        self.start("probed", "oneshot", "daemon")
        reply = self.request("wait", {"names": ["probed", "daemon"],
                                      "for": "running", "timeout": 5.0})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual([r["name"] for r in reply["results"]],
                         ["probed", "daemon"])

    def test_wait_timeout(self):
        self.start("never")
        reply, began, ended = self.wait(["never"], "running", 0.3)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "timeout")
        self.assertEqual(reply["results"][0]["state"], "starting")
        self.assertIn("still starting", reply["results"][0]["error"])
        self.assertGreaterEqual(ended - began, 0.29)
        self.assertLess(ended - began, 0.3 + SLACK)

    def test_wait_running_on_completing_service_fails(self):
        self.start("oneshot")
        reply, began, ended = self.wait(["oneshot"], "running", 5.0)
        #  It is running (exec'd, no probe) for 0.3 s: met at once.
        self.assertTrue(reply["ok"], reply)
        self.event("oneshot", "completed")
        reply, began, ended = self.wait(["oneshot"], "running", 5.0)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        self.assertIn("is completed, and cannot become running without a "
                      "command", reply["results"][0]["error"])
        self.assertLess(ended - began, 1.0)

    def test_parked_wait_ends_when_target_completes(self):
        self.start("unready")
        reply, began, ended = self.wait(["unready"], "running", 5.0)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        self.assertEqual(reply["results"][0]["state"], "completed")
        self.assertIn("is completed, and cannot become running without a "
                      "command", reply["results"][0]["error"])
        completed = self.event("unready", "completed", old="starting")
        self.assertGreaterEqual(ended, completed["ts"])
        self.assertLess(ended - completed["ts"], SLACK)

    def test_wait_ends_when_target_fails(self):
        #  A parked wait ends when the target fails instead.
        self.start("crash_no")
        reply, began, ended = self.wait(["crash_no"], "completed", 5.0)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        self.assertIn("is failed", reply["results"][0]["error"])

    def test_wait_inactive_fails_at_once(self):
        reply, began, ended = self.wait(["daemon"], "running", 5.0)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "failed")
        self.assertIn("is inactive", reply["results"][0]["error"])
        self.assertLess(ended - began, 1.0)

    def test_wait_failed_met_by_backoff(self):
        self.start("crashy")
        reply, began, ended = self.wait(["crashy"], "failed", 5.0)
        self.assertTrue(reply["ok"], reply)
        self.assertIn(reply["results"][0]["state"], ("failed", "backoff"))
        self.pmctl("stop", "crashy")

    def test_wait_running_through_backoff(self):
        #  A target in backoff is on its way: the wait goes on.
        self.start("crash_once")
        self.event("crash_once", "backoff")
        reply, began, ended = self.wait(["crash_once"], "running", 5.0)
        self.assertTrue(reply["ok"], reply)
        running = self.event("crash_once", "running", nth=2)
        self.assertGreaterEqual(ended, running["ts"])
        self.assertEqual(self.agent.record("crash_once")["restarts"], 1)

    def test_wait_stopped(self):
        self.start("daemon", wait="running")
        rid = self.agent.default_client().send(
            "wait", {"names": ["daemon"], "for": "stopped", "timeout": 10.0})
        #  Parked: the wait is not answered while daemon runs.
        with self.assertRaises(AssertionError):
            self.agent.default_client().wait_reply(rid, 0.2)
        other = self.agent.client()
        stop = other.request("stop", {"names": ["daemon"]})
        self.assertTrue(stop["ok"], stop)
        reply = self.agent.default_client().wait_reply(rid, 10.0)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["results"][0]["state"], "stopped")

    def test_wait_unknown_names(self):
        reply, began, ended = self.wait(["daemon", "nope1", "nope2"],
                                        "running", 1.0)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "unknown-service")
        self.assertEqual(sorted(reply["error"]["names"]), ["nope1", "nope2"])
        self.assertEqual(self.agent.record("daemon")["state"], "inactive")

    def test_wait_bad_for(self):
        for want in ("starting", "backoff", "bogus"):
            reply, began, ended = self.wait(["daemon"], want, 1.0)
            self.assertFalse(reply["ok"])
            self.assertEqual(reply["error"]["code"], "bad-request")

    # -- pmctl wait -------------------------------------------------------

    def need_pmctl_wait(self):
        if not pmctl_has_wait():
            self.skipTest("pmctl has no wait command yet")

    def test_pmctl_wait_completed(self):
        self.need_pmctl_wait()
        self.start("oneshot")
        self.pmctl("wait", "oneshot", "--for", "completed", "--timeout", "5")
        self.assertEqual(self.agent.record("oneshot")["state"], "completed")

    def test_pmctl_wait_ready(self):
        self.need_pmctl_wait()
        self.start("probed")
        self.pmctl("wait", "probed", "--for", "ready", "--timeout", "5")
        returned = time.time()
        self.assertGreaterEqual(returned, self.cond_time("probed"))
        self.assertEqual(self.agent.record("probed")["state"], "running")

    def test_pmctl_wait_timeout_exit_4(self):
        self.need_pmctl_wait()
        self.start("never")
        began = time.time()
        out, err = self.pmctl("wait", "never", "--for", "running",
                              "--timeout", "0.3", expect=EXIT_TIMEOUT)
        self.assertGreaterEqual(time.time() - began, 0.29)
        self.assertLess(time.time() - began, 0.3 + 2.0)
        self.assertIn("never", out + err)
        self.assertEqual(self.agent.record("never")["state"], "starting")

    def test_pmctl_wait_unreachable_exit_1(self):
        self.need_pmctl_wait()
        self.start("oneshot")
        self.event("oneshot", "completed")
        out, err = self.pmctl("wait", "oneshot", "--for", "running",
                              "--timeout", "5", expect=EXIT_FAILED)
        self.assertIn("completed", out + err)

    def test_pmctl_wait_parked_then_unreachable_exit_1(self):
        self.need_pmctl_wait()
        self.start("unready")
        out, err = self.pmctl("wait", "unready", "--for", "running",
                              "--timeout", "5", expect=EXIT_FAILED)
        returned = time.time()
        completed = self.event("unready", "completed")
        self.assertGreaterEqual(returned, completed["ts"])
        self.assertIn("completed", out + err)

    def test_pmctl_wait_stopped_and_failed(self):
        self.need_pmctl_wait()
        self.start("crash_no")
        self.pmctl("wait", "crash_no", "--for", "failed", "--timeout", "5")
        self.pmctl("wait", "daemon", "--for", "stopped", "--timeout", "5",
                   expect=EXIT_FAILED)

    def test_pmctl_wait_unknown_exit_2(self):
        self.need_pmctl_wait()
        out, err = self.pmctl("wait", "nope", "--for", "running",
                              "--timeout", "1", expect=EXIT_USAGE)
        self.assertIn("nope", err)


if __name__ == "__main__":
    pmtest.main()
