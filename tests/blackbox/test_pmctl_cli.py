"""test_pmctl_cli.py - pmctl's command line against a fake agent

Runs the real pmctl ($PMCTL) against an agent written here: a thread that
holds the agent's lock (an exclusive flock), writes the pid file and
answers on a ROUTER bound at the control endpoint, exactly where pmctl
looks for it (runtime dir under a temporary XDG_RUNTIME_DIR).  Each test
checks the request pmctl sent (cmd and args), then pmctl's output and exit
code for a canned reply.  No real pmd is involved.

Every wait is bounded (subprocess timeouts, join timeouts) and every
process and thread started here is stopped in tearDown.
"""

import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import msgpack
import zmq

PMCTL = os.environ.get("PMCTL")

#  The exit codes pmctl documents.
OK, FAILED, USAGE, UNREACHABLE, TIMEOUT = 0, 1, 2, 3, 4

GOOD_CONFIG = """\
agent: { name = "fake"; };
services: {
  web: { command = "sleep 100"; };
  api: { command = "sleep 100"; depends_on = { web = "started"; }; };
};
"""

#  Line 3 names a key no service takes.
BAD_CONFIG = """\
agent: { name = "fake"; };
services: {
  web: { comand = "sleep 100"; };
};
"""


def fnv1a_name(path):
    """pm_agent_name_derive, for a config file called pmbus.cfg."""
    h = 14695981039346656037
    for byte in path.encode():
        h ^= byte
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    stem = os.path.basename(os.path.dirname(path))
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:32]
    return "%s-%08x" % (stem, h >> 32)


def reply(request, ok=True, **fields):
    """A reply to request: v, the echoed id, ok, then fields."""
    out = {"v": 1, "id": request["id"], "ok": ok}
    out.update(fields)
    return out


def error_reply(request, code, message, results=None, names=None):
    error = {"code": code, "message": message}
    if names is not None:
        error["names"] = names
    out = reply(request, ok=False, error=error)
    if results is not None:
        out["results"] = results
    return out


def result(name, state, ok=True, note=None, error=None):
    return {"name": name, "ok": ok, "state": state, "note": note,
            "error": error}


def record(name, state, pid=None, uptime=None, restarts=0, exit_code=None,
           sig=None, error=None):
    now = time.time()
    return {
        "name": name, "state": state, "pid": pid,
        "started_at": now - uptime if uptime is not None else None,
        "state_since": now, "uptime": uptime, "restarts": restarts,
        "exit_code": exit_code, "signal": sig, "ready": state == "running",
        "error": error, "depends_on": {}, "command": "sleep 100",
        "seq": 1, "next_start": None,
    }


class FakeAgent:
    """Holds the lock, writes the pid file, answers on the control socket.

    handler(request) returns a reply dict, or None to stay silent.  Every
    decoded request is kept in .requests.  pid is what goes into the pid
    file (default: this process, which stays alive)."""

    def __init__(self, rundir, handler, pid=None, control=None):
        self.rundir = rundir
        self.handler = handler
        self.pid = pid if pid is not None else os.getpid()
        self.control = control or "ipc://%s/control.sock" % rundir
        self.requests = []
        self.received = threading.Event()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error = None
        os.makedirs(rundir, mode=0o700, exist_ok=True)
        self._lock = open(os.path.join(rundir, "pmd.lock"), "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(os.path.join(rundir, "pmd.pid"), "w") as f:
            f.write("%d\n" % self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fake agent did not bind")
        if self._error:
            raise self._error

    def _run(self):
        context = zmq.Context.instance()
        try:
            router = context.socket(zmq.ROUTER)
            router.linger = 0
            router.bind(self.control)
        except Exception as e:     # reported by __init__
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not router.poll(20):
                    continue
                frames = router.recv_multipart()
                request = msgpack.unpackb(frames[-1], raw=False)
                self.requests.append({"frames": len(frames), **request})
                self.received.set()
                answer = self.handler(request)
                if answer is not None:
                    router.send_multipart(frames[:-1]
                                          + [msgpack.packb(answer)])
        finally:
            router.close(0)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


class PmctlTest(unittest.TestCase):

    def setUp(self):
        if not PMCTL:
            self.skipTest("PMCTL is not set")
        #  Real path: pmctl names the config by its real path.
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="pmctl-"))
        self.xdg = os.path.join(self.tmp, "run")
        os.mkdir(self.xdg, 0o700)
        self.project = os.path.join(self.tmp, "proj")
        os.mkdir(self.project)
        self.config = os.path.join(self.project, "pmbus.cfg")
        with open(self.config, "w") as f:
            f.write(GOOD_CONFIG)
        self.rundir = os.path.join(self.xdg, "pmbus", "fake")
        self.agents = []
        self.children = []

    def tearDown(self):
        for agent in self.agents:
            agent.close()
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------

    def pmctl(self, *args, env=None, cwd=None, timeout=20):
        """Runs pmctl; returns (exit code, stdout, stderr)."""
        environ = dict(os.environ)
        environ.pop("PMBUS_CONFIG", None)
        environ["XDG_RUNTIME_DIR"] = self.xdg
        environ.update(env or {})
        done = subprocess.run([PMCTL] + list(args), capture_output=True,
                              text=True, env=environ, timeout=timeout,
                              cwd=cwd or self.project)
        return done.returncode, done.stdout, done.stderr

    def agent(self, handler, **kwargs):
        agent = FakeAgent(kwargs.pop("rundir", self.rundir), handler,
                          **kwargs)
        self.agents.append(agent)
        return agent

    def sleeper(self):
        """A process to stand for the agent's pid; killed in tearDown."""
        child = subprocess.Popen(["sleep", "60"])
        self.children.append(child)
        return child

    def only_request(self, agent):
        self.assertEqual(len(agent.requests), 1, agent.requests)
        request = agent.requests[0]
        self.assertEqual(request["v"], 1)
        self.assertIsInstance(request["id"], int)
        #  A DEALER sends one frame: the router sees identity + body.
        self.assertEqual(request["frames"], 2)
        return request

    def assertUsage(self, *args):
        code, out, err = self.pmctl(*args)
        self.assertEqual(code, USAGE, (args, out, err))
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("pmctl: "), err)
        self.assertIn("see pmctl --help", err)
        return err

    # -- help and usage ----------------------------------------------------

    def test_help(self):
        for flag in ("--help", "-h"):
            code, out, err = self.pmctl(flag)
            self.assertEqual(code, OK)
            self.assertEqual(err, "")
            for word in ("status", "ps", "start", "stop", "restart",
                         "signal", "check", "ping", "shutdown", "--config",
                         "--runtime-dir", "--json", "--all", "--wait",
                         "--timeout", "--with-dependents", "exit codes"):
                self.assertIn(word, out)
            for code_line in ("  0  success", "  1  ", "  2  usage",
                              "  3  agent not reachable", "  4  timeout"):
                self.assertIn(code_line, out)
        #  Help wins wherever it is, even after a command.
        code, out, _ = self.pmctl("start", "--help")
        self.assertEqual(code, OK)
        self.assertIn("usage: pmctl", out)

    def test_usage_errors(self):
        self.assertIn("no command", self.assertUsage())
        self.assertIn("unknown command 'frobnicate'",
                      self.assertUsage("frobnicate"))
        self.assertIn("--bogus", self.assertUsage("--bogus", "status"))
        self.assertIn("-x", self.assertUsage("-x", "status"))
        self.assertIn("needs a value", self.assertUsage("status", "-c"))
        self.assertIn("--json takes no value",
                      self.assertUsage("--json=yes", "status"))
        self.assertIn("'signal 9'", self.assertUsage("signal", "-9", "web"))
        self.assertIn("service names or --all", self.assertUsage("start"))
        self.assertIn("not both", self.assertUsage("stop", "web", "--all"))
        self.assertIn("--wait 'running'",
                      self.assertUsage("stop", "--wait", "running", "web"))
        self.assertIn("--wait 'stopped'",
                      self.assertUsage("start", "--wait", "stopped", "web"))
        self.assertIn("--timeout", self.assertUsage("start", "--timeout",
                                                    "soon", "web"))
        self.assertUsage("start", "--timeout", "-1", "web")
        self.assertIn("--with-dependents",
                      self.assertUsage("start", "--with-dependents", "web"))
        self.assertIn("--all", self.assertUsage("status", "--all"))
        self.assertIn("needs a signal", self.assertUsage("signal"))
        self.assertIn("unknown signal 'SIGBOGUS'",
                      self.assertUsage("signal", "SIGBOGUS", "web"))
        self.assertIn("service names or --all",
                      self.assertUsage("signal", "TERM"))
        self.assertIn("takes no arguments", self.assertUsage("ping", "web"))
        self.assertIn("--timeout", self.assertUsage("ping", "--timeout", "1"))
        self.assertUsage("check", "a.cfg", "b.cfg")
        #  Over a target's limit (service@agent: 257 bytes).
        self.assertIn("bad service name", self.assertUsage("start", "x" * 258))

    def test_version(self):
        code, out, _ = self.pmctl("--version")
        self.assertEqual(code, OK)
        self.assertTrue(out.startswith("pmctl "))

    # -- finding the agent -------------------------------------------------

    def test_no_agent(self):
        code, out, err = self.pmctl("status")
        self.assertEqual(code, UNREACHABLE)
        self.assertEqual(out, "")
        self.assertEqual(err, "pmctl: no agent running for %s (runtime dir "
                         "%s)\n" % (self.config, self.rundir))

    def test_lock_not_held(self):
        #  A dead agent's leftovers: files, but nobody holds the lock.
        os.makedirs(self.rundir, 0o700)
        open(os.path.join(self.rundir, "pmd.lock"), "w").close()
        with open(os.path.join(self.rundir, "pmd.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        for command in (["status"], ["start", "web"], ["shutdown"]):
            code, out, err = self.pmctl(*command)
            self.assertEqual(code, UNREACHABLE, command)
            self.assertIn("no agent running for %s" % self.config, err)

    def test_no_config(self):
        code, out, err = self.pmctl("status", cwd=self.tmp)
        self.assertEqual(code, USAGE)
        self.assertIn("no config file", err)
        code, out, err = self.pmctl("-c", "missing.cfg", "status")
        self.assertEqual(code, USAGE)
        self.assertIn("missing.cfg", err)

    def test_config_sources(self):
        agent = self.agent(lambda r: reply(r, services=[]))
        #  ./pmbus.cfg, -c before and after the command, $PMBUS_CONFIG.
        runs = [
            self.pmctl("status"),
            self.pmctl("-c", self.config, "status", cwd=self.tmp),
            self.pmctl("status", "--config", self.config, cwd=self.tmp),
            self.pmctl("status", cwd=self.tmp,
                       env={"PMBUS_CONFIG": self.config}),
        ]
        for code, out, err in runs:
            self.assertEqual((code, err), (OK, ""))
            self.assertEqual(out.split(), ["NAME", "STATE", "PID", "UPTIME",
                                           "RESTARTS", "EXIT", "ERROR"])
        self.assertEqual(len(agent.requests), 4)

    def test_derived_name(self):
        #  Without agent.name the agent is named for its config's path.
        with open(self.config, "w") as f:
            f.write('services: { web: { command = "true"; }; };\n')
        rundir = os.path.join(self.xdg, "pmbus", fnv1a_name(self.config))
        agent = self.agent(lambda r: reply(r, services=[]), rundir=rundir)
        code, out, err = self.pmctl("status")
        self.assertEqual((code, err), (OK, ""))
        self.only_request(agent)

    def test_runtime_dir_alone(self):
        #  -s DIR and no config anywhere: DIR alone places the agent.
        rundir = os.path.join(self.tmp, "elsewhere")
        agent = self.agent(lambda r: reply(r, services=[]), rundir=rundir)
        code, out, err = self.pmctl("-s", rundir, "status", cwd=self.tmp)
        self.assertEqual((code, err), (OK, ""))
        self.only_request(agent)
        code, out, err = self.pmctl("-s", os.path.join(self.tmp, "none"),
                                    "status", cwd=self.tmp)
        self.assertEqual(code, UNREACHABLE)
        self.assertIn("no agent running (runtime dir %s/none)" % self.tmp,
                      err)

    def test_runtime_dir_with_config(self):
        rundir = os.path.join(self.tmp, "rd")
        agent = self.agent(lambda r: reply(r, services=[]), rundir=rundir)
        code, out, err = self.pmctl("status", "--runtime-dir", rundir)
        self.assertEqual((code, err), (OK, ""))
        self.only_request(agent)

    def test_endpoint_override(self):
        control = "ipc://%s/ctl.sock" % self.tmp
        with open(self.config, "w") as f:
            f.write('agent: { name = "fake"; control = "%s"; };\n' % control)
        agent = self.agent(lambda r: reply(r, services=[]), control=control)
        code, out, err = self.pmctl("status")
        self.assertEqual((code, err), (OK, ""))
        self.only_request(agent)

    def test_broken_config_still_finds_agent(self):
        #  The agent runs on the config it loaded; a file broken since
        #  must not keep the user from reaching it.
        agent = self.agent(lambda r: reply(r, services=[]))
        with open(self.config, "w") as f:
            f.write(BAD_CONFIG)
        code, out, err = self.pmctl("status")
        self.assertEqual(code, OK, err)
        self.assertIn("warning", err)
        self.assertIn("comand", err)
        self.only_request(agent)

    # -- status ------------------------------------------------------------

    def test_status_table(self):
        services = [
            record("db", "running", pid=4242, uptime=45.7, restarts=0),
            record("api-server", "running", pid=31337, uptime=192,
                   restarts=12),
            record("worker", "starting", pid=7, uptime=2 * 3600 + 5 * 60 + 9),
            record("cron", "running", pid=99, uptime=3 * 86400 + 4 * 3600 + 1),
            record("killed", "failed", sig="SIGKILL", exit_code=None,
                   error="killed by SIGKILL"),
            record("crashed", "backoff", exit_code=3, restarts=2,
                   error="exited with code 3"),
            record("migrate", "completed", exit_code=0),
            record("idle", "inactive"),
        ]
        agent = self.agent(lambda r: reply(r, services=services))
        code, out, err = self.pmctl("status")
        self.assertEqual((code, err), (OK, ""))
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "status")
        self.assertEqual(request["args"], {})

        lines = out.splitlines()
        self.assertEqual(len(lines), 1 + len(services))
        header = lines[0]
        columns = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "EXIT",
                   "ERROR"]
        starts = [header.index(c) for c in columns]
        self.assertEqual(starts[0], 0)
        for line in lines:
            self.assertEqual(line, line.rstrip(), "trailing blanks")
        rows = {}
        for line in lines[1:]:
            cells = []
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else len(line)
                #  Every cell starts at its column, right after a blank
                #  (an empty last cell leaves the line shorter).
                if start < len(line):
                    self.assertTrue(start == 0 or line[start - 1] == " ",
                                    line)
                    self.assertNotEqual(line[start], " ", line)
                cells.append(line[start:end].strip())
            rows[cells[0]] = cells[1:]
        #  Columns are as wide as the widest cell plus two spaces.
        self.assertEqual(starts[1], len("api-server") + 2)
        self.assertEqual(rows["db"], ["running", "4242", "45s", "0", "-", ""])
        self.assertEqual(rows["api-server"],
                         ["running", "31337", "3m12s", "12", "-", ""])
        self.assertEqual(rows["worker"][2], "2h05m")
        self.assertEqual(rows["cron"][2], "3d04h")
        self.assertEqual(rows["killed"],
                         ["failed", "-", "-", "0", "SIGKILL",
                          "killed by SIGKILL"])
        self.assertEqual(rows["crashed"],
                         ["backoff", "-", "-", "2", "3",
                          "exited with code 3"])
        self.assertEqual(rows["migrate"][4], "0")
        self.assertEqual(rows["idle"], ["inactive", "-", "-", "0", "-", ""])

    def test_status_names_and_alias(self):
        agent = self.agent(lambda r: reply(
            r, services=[record("web", "stopped")]))
        code, out, err = self.pmctl("ps", "web", "api")
        self.assertEqual((code, err), (OK, ""))
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "status")
        self.assertEqual(request["args"], {"names": ["web", "api"]})

    def test_status_unknown_service(self):
        agent = self.agent(lambda r: error_reply(
            r, "unknown-service", "unknown service: foo, bar",
            names=["foo", "bar"]))
        code, out, err = self.pmctl("status", "foo", "web", "bar")
        self.assertEqual(code, USAGE)
        self.assertEqual(out, "")
        self.assertEqual(err, "pmctl: unknown service: foo, bar\n")
        self.only_request(agent)

    def test_status_json(self):
        services = [record("web", "running", pid=12, uptime=3.5),
                    record("api", "failed", exit_code=3, error="boom")]
        self.agent(lambda r: reply(r, services=services))
        code, out, err = self.pmctl("--json", "status")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(len(out.splitlines()), 1)
        data = json.loads(out)
        self.assertEqual(data["ok"], True)
        self.assertEqual(data["v"], 1)
        self.assertIn("id", data)
        web, api = data["services"]
        self.assertEqual(web["name"], "web")
        self.assertEqual(web["state"], "running")
        self.assertEqual(web["pid"], 12)
        self.assertEqual(web["uptime"], 3.5)
        self.assertEqual(api["exit_code"], 3)
        self.assertIsNone(api["pid"])
        self.assertEqual(api["error"], "boom")

    # -- start, stop, restart, signal --------------------------------------

    def test_start_defaults_to_running(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "running", note="already-running"),
            result("api", "running")]))
        code, out, err = self.pmctl("start", "web", "api")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "web  running  already-running\n"
                              "api  running\n")
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "start")
        self.assertEqual(request["args"], {"names": ["web", "api"],
                                           "wait": "running"})

    def test_start_all_options(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "starting")]))
        code, out, err = self.pmctl("start", "--all", "--wait", "started",
                                    "--timeout", "5")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "web  starting\n")
        self.assertEqual(self.only_request(agent)["args"],
                         {"all": True, "wait": "started", "timeout": 5.0})

    def test_start_failure(self):
        agent = self.agent(lambda r: error_reply(
            r, "failed", "1 of 2 targets failed", results=[
                result("web", "running"),
                result("api", "failed", ok=False,
                       error="exited with code 3")]))
        code, out, err = self.pmctl("start", "web", "api")
        self.assertEqual(code, FAILED)
        self.assertEqual(out, "web  running\napi  failed\n")
        self.assertEqual(err, "pmctl: cannot start 'api': exited with code 3\n")
        self.only_request(agent)

    def test_start_unknown_service(self):
        self.agent(lambda r: error_reply(
            r, "unknown-service", "unknown service: foo, bar",
            names=["foo", "bar"]))
        code, out, err = self.pmctl("start", "web", "foo", "bar")
        self.assertEqual(code, USAGE)
        self.assertEqual(out, "")
        self.assertEqual(err, "pmctl: unknown service: foo, bar\n")

    def test_start_timeout_reply(self):
        agent = self.agent(lambda r: error_reply(
            r, "timeout", "timed out after 1.5 s", results=[
                result("web", "running"),
                result("api", "starting", ok=False),
                result("worker", "waiting", ok=False)]))
        code, out, err = self.pmctl("start", "web", "api", "worker",
                                    "--timeout", "1.5")
        self.assertEqual(code, TIMEOUT)
        self.assertIn("api     starting", out)
        self.assertEqual(err, "pmctl: timed out after 1.5 s: not running "
                              "yet: api (starting), worker (waiting)\n")
        self.assertEqual(self.only_request(agent)["args"]["timeout"], 1.5)

    def test_start_timeout_with_a_failure(self):
        #  A target that failed on the way is a failure, not a late one.
        self.agent(lambda r: error_reply(
            r, "timeout", "timed out", results=[
                result("api", "backoff", ok=False,
                       error="exited with code 3"),
                result("worker", "waiting", ok=False)]))
        code, out, err = self.pmctl("start", "api", "worker", "--timeout",
                                    "1")
        self.assertEqual(code, TIMEOUT)
        self.assertEqual(err, "pmctl: cannot start 'api': exited with code 3\n"
                              "pmctl: timed out after 1 s: not running yet: "
                              "worker (waiting)\n")

    def test_stop_options(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("api", "stopped"),
            result("web", "stopped", note="not-running")]))
        code, out, err = self.pmctl("stop", "--with-dependents", "web")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "api  stopped\nweb  stopped  not-running\n")
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "stop")
        self.assertEqual(request["args"], {"names": ["web"],
                                           "with_dependents": True,
                                           "wait": "stopped"})

    def test_stop_no_wait(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "stopping")]))
        code, out, err = self.pmctl("stop", "--all", "--wait", "none")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(self.only_request(agent)["args"],
                         {"all": True, "wait": "none"})

    def test_stop_timeout_reply(self):
        self.agent(lambda r: error_reply(
            r, "timeout", "timed out", results=[
                result("web", "stopping", ok=False)]))
        code, out, err = self.pmctl("stop", "web", "--timeout", "2")
        self.assertEqual(code, TIMEOUT)
        self.assertEqual(err, "pmctl: timed out after 2 s: not stopped "
                              "yet: web (stopping)\n")

    def test_restart(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "running", note="was-not-running")]))
        code, out, err = self.pmctl("restart", "--with-dependents", "web")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "web  running  was-not-running\n")
        self.assertEqual(self.only_request(agent)["args"],
                         {"names": ["web"], "with_dependents": True,
                          "wait": "running"})

    def test_signal(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "running")]))
        code, out, err = self.pmctl("signal", "HUP", "web")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "web  running\n")
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "signal")
        self.assertEqual(request["args"], {"names": ["web"],
                                           "signal": "SIGHUP"})

    def test_signal_all_by_number(self):
        agent = self.agent(lambda r: reply(r, results=[]))
        code, out, err = self.pmctl("signal", "--all", "9")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(self.only_request(agent)["args"],
                         {"all": True, "signal": "SIGKILL"})

    def test_signal_not_running(self):
        self.agent(lambda r: error_reply(
            r, "not-running", "web is not running", results=[
                result("web", "stopped", ok=False, error="not running")]))
        code, out, err = self.pmctl("signal", "TERM", "web")
        self.assertEqual(code, FAILED)
        self.assertEqual(out, "web  stopped\n")
        self.assertEqual(err, "pmctl: cannot signal 'web': not running\n")

    def test_refused_requests(self):
        for code_name in ("bad-signal", "bad-request"):
            agent = self.agent(lambda r, c=code_name: error_reply(
                r, c, "refused because"))
            code, out, err = self.pmctl("signal", "TERM", "web")
            self.assertEqual(code, USAGE, code_name)
            self.assertEqual(err, "pmctl: %s: refused because\n" % code_name)
            agent.close()
            self.agents.remove(agent)

    def test_json_same_exit_codes(self):
        cases = [
            (lambda r: error_reply(r, "unknown-service", "unknown: foo",
                                   names=["foo"]), USAGE),
            (lambda r: error_reply(r, "failed", "failed", results=[
                result("foo", "failed", ok=False, error="exec: nope")]),
             FAILED),
            (lambda r: error_reply(r, "timeout", "timed out", results=[
                result("foo", "starting", ok=False)]), TIMEOUT),
            (lambda r: reply(r, results=[result("foo", "running")]), OK),
        ]
        for make, expected in cases:
            agent = self.agent(make)
            code, out, err = self.pmctl("start", "foo", "--json")
            self.assertEqual(code, expected, out)
            data = json.loads(out)
            self.assertEqual(set(data) - {"error", "results"},
                             {"v", "id", "ok"})
            if expected != OK:
                self.assertFalse(data["ok"])
                self.assertIn(data["error"]["code"],
                              ("unknown-service", "failed", "timeout"))
            else:
                self.assertEqual(data["results"][0],
                                 {"name": "foo", "ok": True,
                                  "state": "running", "note": None,
                                  "error": None})
            agent.close()
            self.agents.remove(agent)

    # -- ping ----------------------------------------------------------------

    def test_ping(self):
        def hello(r):
            return reply(r, agent="fake", version="0.1.0", pid=4321,
                         config=self.config,
                         control="ipc://%s/control.sock" % self.rundir,
                         events="ipc://%s/events.sock" % self.rundir,
                         started_at=time.time() - 125, leases=[11, 22])
        agent = self.agent(hello)
        code, out, err = self.pmctl("ping")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(self.only_request(agent)["cmd"], "hello")
        fields = dict(line.split(None, 1) for line in out.splitlines())
        self.assertEqual(fields["agent"], "fake")
        self.assertEqual(fields["version"], "0.1.0")
        self.assertEqual(fields["pid"], "4321")
        self.assertEqual(fields["config"], self.config)
        self.assertEqual(fields["control"],
                         "ipc://%s/control.sock" % self.rundir)
        self.assertEqual(fields["events"],
                         "ipc://%s/events.sock" % self.rundir)
        self.assertIn(fields["uptime"], ("2m05s", "2m06s"))
        self.assertEqual(fields["leases"], "11, 22")

    # -- check -----------------------------------------------------------

    def test_check(self):
        code, out, err = self.pmctl("check")
        self.assertEqual((code, out, err), (OK, "pmbus.cfg: ok, 2 services\n",
                                            ""))
        code, out, err = self.pmctl("-c", self.config, "check")
        self.assertEqual(out, "%s: ok, 2 services\n" % self.config)
        bad = os.path.join(self.project, "bad.cfg")
        with open(bad, "w") as f:
            f.write(BAD_CONFIG)
        code, out, err = self.pmctl("check", bad)
        self.assertEqual(code, USAGE)
        self.assertEqual(out, "")
        self.assertTrue(err.startswith("pmctl: %s:3:" % bad), err)
        self.assertIn("comand", err)
        code, out, err = self.pmctl("--json", "check", bad)
        self.assertEqual(code, USAGE)
        data = json.loads(out)
        self.assertEqual(data["ok"], False)
        self.assertIn("comand", data["error"])
        code, out, err = self.pmctl("check", "--json")
        self.assertEqual(code, OK)
        self.assertEqual(json.loads(out), {"config": self.config, "ok": True,
                                           "services": 2})

    # -- the agent going away, and deadlines ---------------------------------

    def test_agent_exits_before_answering(self):
        stand_in = self.sleeper()

        def die(r):
            stand_in.kill()
            return None
        self.agent(die, pid=stand_in.pid)
        start = time.monotonic()
        code, out, err = self.pmctl("start", "web")
        self.assertEqual(code, UNREACHABLE)
        self.assertEqual(err, "pmctl: agent exited before answering\n")
        self.assertLess(time.monotonic() - start, 5)

    def test_own_deadline_after_agent_timeout(self):
        #  The agent never answers a waiting start: pmctl gives up at
        #  timeout + 2 s with exit code 4.
        self.agent(lambda r: None)
        start = time.monotonic()
        code, out, err = self.pmctl("start", "web", "--timeout", "0.3")
        elapsed = time.monotonic() - start
        self.assertEqual(code, TIMEOUT, err)
        self.assertIn("no answer from the agent", err)
        self.assertGreater(elapsed, 2.2)
        self.assertLess(elapsed, 6)

    def test_not_responding(self):
        #  A command that should be answered at once: 10 s, then exit 3.
        self.agent(lambda r: None)
        start = time.monotonic()
        code, out, err = self.pmctl("status")
        elapsed = time.monotonic() - start
        self.assertEqual(code, UNREACHABLE)
        self.assertEqual(err, "pmctl: agent not responding\n")
        self.assertGreater(elapsed, 9.5)
        self.assertLess(elapsed, 14)

    def test_shutdown_waits_for_exit(self):
        stand_in = self.sleeper()

        def shutdown(r):
            #  Answer, then "exit" a little later, as pmd does.
            threading.Timer(0.3, stand_in.kill).start()
            return reply(r)
        agent = self.agent(shutdown, pid=stand_in.pid)
        start = time.monotonic()
        code, out, err = self.pmctl("shutdown")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "agent fake stopped\n")
        self.assertGreater(time.monotonic() - start, 0.25)
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "shutdown")
        self.assertEqual(request["args"], {})

    def test_shutdown_already_under_way(self):
        #  Another client's shutdown is in progress: this one waits too.
        stand_in = self.sleeper()

        def busy(r):
            threading.Timer(0.2, stand_in.kill).start()
            return error_reply(r, "shutting-down", "the agent is stopping")
        self.agent(busy, pid=stand_in.pid)
        code, out, err = self.pmctl("shutdown")
        self.assertEqual((code, out, err), (OK, "agent fake stopped\n", ""))

    def test_shutting_down_refuses_start(self):
        self.agent(lambda r: error_reply(r, "shutting-down",
                                          "the agent is stopping"))
        code, out, err = self.pmctl("start", "web")
        self.assertEqual(code, UNREACHABLE)
        self.assertIn("shutting down", err)

    def test_shutdown_timeout(self):
        stand_in = self.sleeper()
        self.agent(lambda r: reply(r), pid=stand_in.pid)
        start = time.monotonic()
        code, out, err = self.pmctl("shutdown", "--timeout", "0.5")
        self.assertEqual(code, TIMEOUT)
        self.assertIn("still running", err)
        self.assertLess(time.monotonic() - start, 5)

    def test_shutdown_answer_and_exit_together(self):
        #  The reply and the exit arrive at once: the reply still counts.
        stand_in = self.sleeper()

        def shutdown(r):
            stand_in.kill()
            stand_in.wait(5)
            return reply(r)
        self.agent(shutdown, pid=stand_in.pid)
        code, out, err = self.pmctl("shutdown")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "agent fake stopped\n")


    # -- new commands: argument handling ---------------------------------

    def test_help_lists_new_commands(self):
        code, out, err = self.pmctl("--help")
        self.assertEqual((code, err), (OK, ""))
        for word in ("wait", "logs", "events", "up", "down", "is-running",
                     "lease", "--follow", "--lines", "--for", "--lease",
                     "--no-color", "--quiet", "line_base64",
                     "no longer in memory", "transitions missed"):
            self.assertIn(word, out)

    def test_new_usage_errors(self):
        self.assertIn("wait needs --for", self.assertUsage("wait", "web"))
        self.assertIn("bad --for 'sleeping'",
                      self.assertUsage("wait", "--for", "sleeping", "web"))
        self.assertIn("service names or --all",
                      self.assertUsage("wait", "--for", "running"))
        self.assertIn("not both", self.assertUsage("wait", "--for", "running",
                                                   "--all", "web"))
        self.assertIn("bad -n 'x'", self.assertUsage("logs", "-n", "x"))
        self.assertIn("bad -n '-1'", self.assertUsage("logs", "-n", "-1"))
        self.assertIn("logs does not take --all",
                      self.assertUsage("logs", "--all"))
        self.assertIn("events does not take -n",
                      self.assertUsage("events", "-n", "3"))
        self.assertIn("status does not take -f",
                      self.assertUsage("status", "-f"))
        self.assertIn("logs does not take --for",
                      self.assertUsage("logs", "--for", "running"))
        self.assertIn("start does not take --lease",
                      self.assertUsage("start", "--lease", "1", "web"))
        self.assertIn("needs one process id", self.assertUsage("lease"))
        self.assertIn("needs one process id",
                      self.assertUsage("lease", "1", "2"))
        self.assertIn("bad process id 'abc'",
                      self.assertUsage("lease", "abc"))
        self.assertIn("bad process id '0'", self.assertUsage("lease", "0"))
        self.assertIn("bad --lease 'x'",
                      self.assertUsage("up", "--lease", "x"))
        self.assertIn("takes no arguments",
                      self.assertUsage("is-running", "web"))
        self.assertIn("takes no arguments", self.assertUsage("down", "web"))
        self.assertIn("down does not take --all",
                      self.assertUsage("down", "--all"))
        self.assertIn("bad service name", self.assertUsage("logs", "a/b"))
        self.assertIn("is-running does not take --timeout",
                      self.assertUsage("is-running", "--timeout", "1"))

    def test_new_commands_without_agent(self):
        for command in (["wait", "--for", "running", "web"], ["logs"],
                        ["logs", "-f", "web"], ["events"], ["events", "-f"],
                        ["lease", "1"]):
            code, out, err = self.pmctl(*command)
            self.assertEqual(code, UNREACHABLE, (command, err))
            self.assertEqual(out, "")
            self.assertIn("no agent running", err)
        code, out, err = self.pmctl("down")
        self.assertEqual((code, out, err), (OK, "no agent running\n", ""))
        code, out, err = self.pmctl("is-running")
        self.assertEqual((code, out, err), (FAILED, "not running\n", ""))
        code, out, err = self.pmctl("is-running", "-q")
        self.assertEqual((code, out, err), (FAILED, "", ""))

    # -- wait --------------------------------------------------------------

    def test_wait_request(self):
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "running"), result("api", "running")]))
        code, out, err = self.pmctl("wait", "web", "api", "--for", "ready",
                                    "--timeout", "2")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "web  running\napi  running\n")
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "wait")
        #  "ready" is "running" on the wire.
        self.assertEqual(request["args"], {"names": ["web", "api"],
                                           "for": "running",
                                           "timeout": 2.0})

    def test_wait_all(self):
        agent = self.agent(lambda r: reply(r, results=[]))
        code, out, err = self.pmctl("wait", "--all", "--for", "stopped")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(self.only_request(agent)["args"],
                         {"all": True, "for": "stopped"})

    def test_wait_cannot(self):
        why = "is inactive, and cannot become running without a command"
        self.agent(lambda r: error_reply(
            r, "failed", "cannot wait for once: " + why, results=[
                result("web", "running"),
                result("once", "inactive", ok=False, error=why)]))
        code, out, err = self.pmctl("wait", "web", "once", "--for",
                                    "running")
        self.assertEqual(code, FAILED)
        self.assertEqual(err, "pmctl: cannot wait for 'once': %s\n" % why)

    def test_wait_timeout(self):
        self.agent(lambda r: error_reply(
            r, "timeout", "cannot wait for web: still running after 0.5s",
            results=[result("web", "running", ok=False,
                            error="still running after 0.5s")]))
        code, out, err = self.pmctl("wait", "web", "--for", "stopped",
                                    "--timeout", "0.5")
        self.assertEqual(code, TIMEOUT)
        self.assertEqual(err, "pmctl: timed out after 0.5 s: not stopped "
                              "yet: web (running)\n")

    def test_wait_unknown(self):
        self.agent(lambda r: error_reply(r, "unknown-service",
                                         "unknown service: nope",
                                         names=["nope"]))
        code, out, err = self.pmctl("wait", "nope", "--for", "running")
        self.assertEqual((code, out), (USAGE, ""))
        self.assertEqual(err, "pmctl: unknown service: nope\n")

    # -- lease, is-running, down, up ---------------------------------------

    def test_lease(self):
        agent = self.agent(lambda r: reply(r, leases=[11, 4242]))
        code, out, err = self.pmctl("lease", "4242")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "leases   11, 4242\n")
        request = self.only_request(agent)
        self.assertEqual((request["cmd"], request["args"]),
                         ("lease", {"pid": 4242}))

    def test_lease_refused(self):
        for code_name in ("failed", "shutting-down"):
            agent = self.agent(lambda r, c=code_name: error_reply(
                r, c, "cannot lease: no process 4242"))
            code, out, err = self.pmctl("lease", "4242")
            self.assertEqual(code, FAILED, code_name)
            self.assertEqual(err, "pmctl: cannot lease: no process 4242\n")
            agent.close()
            self.agents.remove(agent)

    def test_is_running_sends_nothing(self):
        stand_in = self.sleeper()
        agent = self.agent(lambda r: reply(r), pid=stand_in.pid)
        code, out, err = self.pmctl("is-running")
        self.assertEqual((code, out, err),
                         (OK, "running (pid %d)\n" % stand_in.pid, ""))
        code, out, err = self.pmctl("is-running", "--quiet")
        self.assertEqual((code, out, err), (OK, "", ""))
        code, out, err = self.pmctl("is-running", "--json")
        self.assertEqual(json.loads(out), {"running": True,
                                           "pid": stand_in.pid})
        self.assertEqual(agent.requests, [])

    def test_down_is_shutdown(self):
        stand_in = self.sleeper()

        def shutdown(r):
            threading.Timer(0.2, stand_in.kill).start()
            return reply(r)
        agent = self.agent(shutdown, pid=stand_in.pid)
        code, out, err = self.pmctl("down")
        self.assertEqual((code, out, err), (OK, "agent fake stopped\n", ""))
        self.assertEqual(self.only_request(agent)["cmd"], "shutdown")

    def test_up_with_agent_running(self):
        #  An agent runs: up starts the autostart services (web and api in
        #  GOOD_CONFIG), waiting until they run; nothing else is started.
        agent = self.agent(lambda r: reply(r, results=[
            result("web", "running", note="already-running"),
            result("api", "running")]))
        code, out, err = self.pmctl("up")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "web  running  already-running\n"
                              "api  running\n")
        request = self.only_request(agent)
        self.assertEqual(request["cmd"], "start")
        self.assertEqual(request["args"], {"names": ["web", "api"],
                                           "wait": "running"})

    def test_up_names_and_lease(self):
        agent = self.agent(lambda r: reply(r, leases=[77]) if
                           r["cmd"] == "lease" else
                           reply(r, results=[result("api", "running")]))
        code, out, err = self.pmctl("up", "--lease", "77", "--timeout", "3",
                                    "api")
        self.assertEqual((code, err), (OK, ""))
        self.assertEqual(out, "api  running\n")
        self.assertEqual([(r["cmd"], r["args"]) for r in agent.requests],
                         [("lease", {"pid": 77}),
                          ("start", {"names": ["api"], "wait": "running",
                                     "timeout": 3.0})])
        #  Each request of one pmctl has its own id.
        self.assertNotEqual(agent.requests[0]["id"], agent.requests[1]["id"])

    def test_up_start_failure(self):
        self.agent(lambda r: error_reply(
            r, "failed", "cannot start api", results=[
                result("api", "failed", ok=False,
                       error="exec ./api: No such file or directory")]))
        code, out, err = self.pmctl("up", "api")
        self.assertEqual(code, FAILED)
        self.assertEqual(err, "pmctl: cannot start 'api': exec ./api: No "
                              "such file or directory\n")

    # -- logs and events (without -f) ---------------------------------------

    @staticmethod
    def block(service, lines, first=None, last=None, gone=None, more=False):
        """A logs reply block; lines are (seq, ts, stream, text)."""
        seqs = [line[0] for line in lines]
        return {"service": service,
                "first": first if first is not None else
                (min(seqs) if seqs else 0),
                "last": last if last is not None else
                (max(seqs) if seqs else 0),
                "gone": gone, "more": more,
                "lines": [{"seq": q, "ts": t, "stream": st, "line": text}
                          for q, t, st, text in lines]}

    def test_logs_tail_merge(self):
        #  Merged by time across services; a service's own lines stay in
        #  seq order even when its clock stepped back (web 2 at ts 5).
        blocks = [
            self.block("web", [(1, 10.0, "out", "w1"), (2, 5.0, "out", "w2"),
                               (3, 30.0, "err", "w3")]),
            self.block("db", [(7, 20.0, "out", "d7"), (8, 40.0, "out", "d8")],
                       gone=[6, 6]),
        ]
        agent = self.agent(lambda r: reply(r, logs=blocks))
        code, out, err = self.pmctl("logs", "-n", "3", "--no-color")
        self.assertEqual(code, OK)
        self.assertEqual(out, "web | w1\nweb | w2\ndb  | d7\nweb ! w3\n"
                              "db  | d8\n")
        self.assertEqual(err, "-- db: 1 line (6) is no longer in memory "
                              "(see the log file) --\n")
        request = self.only_request(agent)
        self.assertEqual((request["cmd"], request["args"]),
                         ("logs", {"tail": 3}))

    def test_logs_one_service_bare(self):
        agent = self.agent(lambda r: reply(r, logs=[self.block(
            "web", [(1, 1.0, "out", "hello"), (2, 2.0, "err", "oops")])]))
        code, out, err = self.pmctl("logs", "web")
        self.assertEqual((code, out, err), (OK, "hello\noops\n", ""))
        self.assertEqual(self.only_request(agent)["args"],
                         {"names": ["web"], "tail": 10})

    def test_logs_pages_and_gone(self):
        #  The tail reply is cut (more): pmctl asks again for that service
        #  alone, since the last line it got, and stops at the first
        #  reply's last line.  What is gone is said on stderr.
        def handler(r):
            args = r.get("args", {})
            if "tail" in args:
                return reply(r, logs=[self.block(
                    "web", [(3, 1.0, "out", "w3")], first=3, last=6,
                    gone=[1, 2], more=True)])
            self.assertEqual(args, {"names": ["web"], "since": 3})
            return reply(r, logs=[self.block(
                "web", [(4, 2.0, "out", "w4"), (5, 3.0, "out", "w5"),
                        (6, 4.0, "out", "w6"), (7, 5.0, "out", "late")],
                first=3)])
        agent = self.agent(handler)
        code, out, err = self.pmctl("logs", "-n", "6", "web")
        self.assertEqual(code, OK, err)
        self.assertEqual(out, "w3\nw4\nw5\nw6\n")
        self.assertEqual(err, "-- web: 2 lines (1..2) are no longer in "
                              "memory (see the log file) --\n")
        self.assertEqual(len(agent.requests), 2)

    def test_logs_line_too_large(self):
        #  A reply cut short without a single line: the next line cannot
        #  be carried; pmctl says so and goes on after it.
        def handler(r):
            args = r.get("args", {})
            if "tail" in args:
                return reply(r, logs=[self.block("web", [], first=1, last=3,
                                                 more=True)])
            if args["since"] == 0:
                return reply(r, logs=[self.block("web", [], first=1, last=3,
                                                 more=True)])
            return reply(r, logs=[self.block(
                "web", [(2, 1.0, "out", "w2"), (3, 2.0, "out", "w3")])])
        self.agent(handler)
        code, out, err = self.pmctl("logs", "web")
        self.assertEqual((code, out), (OK, "w2\nw3\n"))
        self.assertEqual(err, "-- web: 1 line (1) is too large for a reply "
                              "(see the log file) --\n")

    def test_logs_json(self):
        agent = self.agent(lambda r: reply(r, logs=[{
            "service": "web", "first": 1, "last": 3, "gone": None,
            "more": False, "lines": [
                {"seq": 1, "ts": 1.5, "stream": "out", "line": "caf\u00e9"},
                {"seq": 2, "ts": 2.0, "stream": "err",
                 "line": b"\xff\x00a\"", "partial": True},
                {"seq": 3, "ts": 2.5, "stream": "err", "line": "end"}]}]))
        code, out, err = self.pmctl("logs", "--json", "web")
        self.assertEqual((code, err), (OK, ""))
        objects = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(objects[0], {"service": "web", "seq": 1, "ts": 1.5,
                                      "stream": "out", "line": "caf\u00e9"})
        self.assertEqual(objects[1], {"service": "web", "seq": 2, "ts": 2.0,
                                      "stream": "err",
                                      "line": "\ufffd\x00a\"",
                                      "line_base64": "/wBhIg==",
                                      "partial": True})
        self.assertNotIn("partial", objects[2])
        self.only_request(agent)

    def test_logs_partial_pieces_joined(self):
        self.agent(lambda r: reply(r, logs=[{
            "service": "web", "first": 1, "last": 3, "gone": None,
            "more": False, "lines": [
                {"seq": 1, "ts": 1.0, "stream": "out", "line": "abc",
                 "partial": True},
                {"seq": 2, "ts": 1.0, "stream": "out", "line": "def"},
                {"seq": 3, "ts": 1.0, "stream": "out", "line": "x"}]}]))
        code, out, err = self.pmctl("logs", "web")
        self.assertEqual((code, out, err), (OK, "abcdef\nx\n", ""))

    def test_logs_unknown_service(self):
        agent = self.agent(lambda r: error_reply(
            r, "unknown-service", "unknown services: nope, zip",
            names=["nope", "zip"]))
        code, out, err = self.pmctl("logs", "web", "nope", "zip")
        self.assertEqual((code, out), (USAGE, ""))
        self.assertEqual(err, "pmctl: unknown service: nope, zip\n")
        self.assertEqual(self.only_request(agent)["args"],
                         {"names": ["web", "nope", "zip"], "tail": 10})

    def test_events_snapshot(self):
        services = [record("web", "running", pid=42, uptime=3),
                    record("api", "failed", exit_code=3,
                           error="exited with code 3")]
        services[0]["seq"] = 7
        services[1]["seq"] = 4
        agent = self.agent(lambda r: reply(r, services=services))
        code, out, err = self.pmctl("events")
        self.assertEqual((code, err), (OK, ""))
        lines = out.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
                                   r"web running \(pid 42\) seq=7$")
        self.assertTrue(lines[1].endswith(
            " api failed [exited with code 3] seq=4"), lines[1])
        self.assertEqual(self.only_request(agent)["cmd"], "status")
        code, out, err = self.pmctl("events", "--json")
        self.assertEqual(code, OK)
        data = json.loads(out.splitlines()[0])
        self.assertEqual((data["kind"], data["service"], data["seq"],
                          data["state"]), ("status", "web", 7, "running"))
        self.assertEqual(data["record"]["pid"], 42)


    # -- logs -f and events -f against a fake publisher ----------------------

    def hello_reply(self, r, pid=None):
        return reply(r, agent="fake", version="0.1.0",
                     pid=pid or os.getpid(), config=self.config,
                     control="ipc://%s/control.sock" % self.rundir,
                     events="ipc://%s/events.sock" % self.rundir,
                     started_at=time.time(), leases=[])

    def publisher(self):
        """An XPUB at the fake agent's events endpoint: unlike a PUB, it
        says when a subscription arrives, so the test publishes only once
        pmctl's is live."""
        context = zmq.Context.instance()
        sock = context.socket(zmq.XPUB)
        sock.linger = 0
        sock.bind("ipc://%s/events.sock" % self.rundir)
        self.addCleanup(sock.close, 0)
        return sock

    def wait_subscribed(self, xpub, *prefixes):
        wanted = {b"\x01" + p.encode() for p in prefixes}
        deadline = time.monotonic() + 10
        while wanted:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "pmctl did not subscribe to %r"
                               % wanted)
            if xpub.poll(int(left * 1000)):
                wanted.discard(xpub.recv())

    @staticmethod
    def publish(xpub, topic, body):
        xpub.send_multipart([topic.encode(), msgpack.packb(body)])

    def follower(self, *args):
        environ = dict(os.environ)
        environ.pop("PMBUS_CONFIG", None)
        environ["XDG_RUNTIME_DIR"] = self.xdg
        child = subprocess.Popen([PMCTL] + list(args), cwd=self.project,
                                 env=environ, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        self.children.append(child)
        return child

    def read_until(self, child, text, timeout=10):
        """Reads child's stdout until it holds text (bounded)."""
        got = b""
        deadline = time.monotonic() + timeout
        os.set_blocking(child.stdout.fileno(), False)
        while text.encode() not in got:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "no %r in %r" % (text, got))
            ready = select.select([child.stdout], [], [], left)[0]
            if ready:
                data = child.stdout.read()
                if data:
                    got += data
                elif child.poll() is not None:
                    self.fail("pmctl exited (%s) before printing %r; got "
                              "%r" % (child.returncode, text, got))
        return got

    @staticmethod
    def log_event(seq, line, stream="out", service="web"):
        """A log message of one line, or of several (line a list)."""
        lines = line if isinstance(line, list) else [line]
        return {"v": 1, "kind": "log", "seq": seq, "ts": float(seq),
                "agent": "fake", "service": service, "stream": stream,
                "lines": lines}

    def test_logs_follow_duplicates_and_gaps(self):
        requests = []

        def handler(r):
            requests.append(r)
            args = r.get("args", {})
            if r["cmd"] == "hello":
                return self.hello_reply(r)
            if args.get("tail") == 2:
                return reply(r, logs=[self.block(
                    "web", [(1, 1.0, "out", "w1"), (2, 2.0, "out", "w2")])])
            if args.get("since") == 3:
                #  Line 4 left the ring; 5 and 6 are there.
                return reply(r, logs=[self.block(
                    "web", [(5, 5.0, "out", "w5"), (6, 6.0, "out", "w6")],
                    first=5, gone=[4, 4])])
            #  The quiet checks (tail 0): nothing new.
            return reply(r, logs=[self.block("web", [], first=1, last=7)])
        self.agent(handler)
        xpub = self.publisher()
        child = self.follower("logs", "-f", "-n", "2", "web")
        self.wait_subscribed(xpub, "log/fake/web/", "agent/fake/")
        out = self.read_until(child, "w2\n")
        topic = "log/fake/web/out/"
        #  A message holding a line printed already and a new one.
        self.publish(xpub, topic, self.log_event(2, ["w2 again", "w3"]))
        self.publish(xpub, topic, self.log_event(6, "w6 live"))
        self.publish(xpub, topic, self.log_event(5, "w5 late"))
        self.publish(xpub, "log/fake/web/err/",
                     self.log_event(7, "w7", stream="err"))
        out += self.read_until(child, "w7\n")
        self.publish(xpub, "agent/fake/", {
            "v": 1, "kind": "agent", "seq": 3, "ts": 9.0, "agent": "fake",
            "event": "shutdown"})
        child.wait(10)
        out += child.stdout.read() or b""
        self.assertEqual(child.returncode, OK)
        self.assertEqual(out, b"w1\nw2\nw3\nw5\nw6\nw7\n")
        self.assertEqual(child.stderr.read().decode(),
                         "-- web: 1 line (4) is no longer in memory (see "
                         "the log file) --\n"
                         "pmctl: agent fake has shut down\n")
        since = [r["args"] for r in requests if "since" in r.get("args", {})]
        self.assertEqual(since, [{"names": ["web"], "since": 3}])

    def test_events_follow_gaps(self):
        def handler(r):
            if r["cmd"] == "hello":
                return self.hello_reply(r)
            web = record("web", "running", pid=42, uptime=1)
            web["seq"] = 3
            return reply(r, services=[web])
        self.agent(handler)
        xpub = self.publisher()
        child = self.follower("events", "-f")
        self.wait_subscribed(xpub, "state/fake/", "agent/fake/")
        out = self.read_until(child, " web running (pid 42) seq=3\n")

        def state(seq, old, new, pid=None):
            rec = record("web", new, pid=pid)
            rec["seq"] = seq
            return {"v": 1, "kind": "state", "seq": seq, "ts": 100.0 + seq,
                    "agent": "fake", "service": "web", "old": old,
                    "new": new, "record": rec}
        self.publish(xpub, "state/fake/web/", state(3, "starting", "running",
                                                    42))
        self.publish(xpub, "state/fake/web/", state(4, "running", "stopping",
                                                    42))
        self.publish(xpub, "state/fake/web/", state(7, "starting", "failed"))
        out += self.read_until(child, "-> failed")
        child.send_signal(signal.SIGINT)
        child.wait(10)
        out += child.stdout.read() or b""
        self.assertEqual(child.returncode, OK)
        lines = [line.split(" ", 3)[3] for line in
                 out.decode().splitlines()]
        self.assertEqual(lines, ["running (pid 42) seq=3",
                                 "running -> stopping (pid 42) seq=4",
                                 "starting -> failed seq=7"])
        self.assertEqual(child.stderr.read().decode(),
                         "-- web: 2 transitions missed --\n")

    def test_follow_agent_vanishes(self):
        stand_in = self.sleeper()
        self.agent(lambda r: self.hello_reply(r, pid=stand_in.pid)
                   if r["cmd"] == "hello" else
                   reply(r, logs=[self.block("web", [(1, 1.0, "out", "w1")])]),
                   pid=stand_in.pid)
        xpub = self.publisher()
        child = self.follower("logs", "-f", "web")
        self.wait_subscribed(xpub, "log/fake/web/")
        self.read_until(child, "w1\n")
        stand_in.kill()
        child.wait(10)
        self.assertEqual(child.returncode, UNREACHABLE)
        self.assertEqual(child.stderr.read().decode(),
                         "pmctl: agent fake exited without shutting down\n")

    def test_follow_sigterm(self):
        self.agent(lambda r: self.hello_reply(r) if r["cmd"] == "hello"
                   else reply(r, logs=[]))
        xpub = self.publisher()
        child = self.follower("logs", "-f")
        self.wait_subscribed(xpub, "log/fake/")
        child.send_signal(signal.SIGTERM)
        child.wait(10)
        self.assertEqual((child.returncode, child.stdout.read(),
                          child.stderr.read()), (OK, b"", b""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
