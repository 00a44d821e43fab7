"""test_curve.py - an agent on TCP, secured with CURVE

Drives the real pmd and pmctl over loopback TCP with real CURVE keys made
by `pmctl keygen` (czmq's certificate format, read back here with
python3-zmq's own reader).  Checked here:

- keygen: the two files and their modes, the printed key, never
  replacing a file;
- a TCP endpoint without keys, or with a key file that cannot be read, is
  refused at start and by --check (exit 2, naming what is wrong);
- an authorised pmctl --connect runs every kind of command: status,
  start/stop that wait, logs, events -f, through the TCP endpoints, while
  pmctl -c keeps working over the local ipc sockets; hello over TCP names
  the TCP endpoints, and a wildcard host in them is replaced by the host
  pmctl connected to; PMBUS_CONNECT / PMBUS_SERVER_KEY / PMBUS_KEY do the
  same as the options;
- an unknown client key, a wrong server key and a client without CURVE
  are each refused, pmctl saying which (exit 3, within its 5 s), the
  agent logging the refused key and serving everyone else;
- SIGHUP re-reads the clients directory: a key added is admitted, a key
  removed is refused at its next handshake, and a session it already has
  open gets "unauthorised" for every request;
- a malformed frame over TCP gets an error reply, an oversized one drops
  only that connection.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zmq  # noqa: E402
import zmq.auth  # noqa: E402

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402

SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'
CHATTY = ('command = "i=0; while [ $i -lt 5 ]; do echo line $i; i=$((i+1)); '
          'done; exec sleep 1000"; stop_timeout = 1.0;')


class CurveTest(pmtest.AgentTest):

    def setUp(self):
        super().setUp()
        self.keys = self.path("keys")
        self.clients = self.path("keys", "clients")
        os.makedirs(self.clients)
        for name in ("server", "client", "stranger"):
            code, out, err = self.keygen(os.path.join(self.keys, name))
            self.assertEqual(code, 0, err)
        shutil.copy(os.path.join(self.keys, "client"), self.clients)

    # -- helpers ----------------------------------------------------------

    def keygen(self, path):
        done = subprocess.run([pmtest.PMCTL, "keygen", path],
                              capture_output=True, text=True, env=self.env,
                              timeout=30)
        return done.returncode, done.stdout, done.stderr

    def key(self, name):
        return os.path.join(self.keys, name)

    def curve_config(self, host="127.0.0.1", services=None, extra=""):
        self.port_c, self.port_e = pmtest.free_port(), pmtest.free_port()
        agent = ('control = "tcp://%s:%d"; events = "tcp://%s:%d"; '
                 'curve = { secret_key = "keys/server_secret"; '
                 'clients = "keys/clients"; }; %s'
                 % (host, self.port_c, host, self.port_e, extra))
        return self.config(services if services is not None
                           else "  s: { %s };\n" % SLEEP, agent_extra=agent)

    def remote(self, *args, key="client", server="server", timeout=30.0,
               endpoint=None, env=None):
        """pmctl --connect tcp://127.0.0.1:PORT with the given keys."""
        endpoint = endpoint or "tcp://127.0.0.1:%d" % self.port_c
        argv = [pmtest.PMCTL]
        if endpoint is not False:
            argv += ["--connect", endpoint]
        if server:
            argv += ["--server-key", self.key(server)]
        if key:
            argv += ["--key", self.key(key + "_secret")]
        environ = dict(self.env)
        environ.update(env or {})
        started = time.monotonic()
        done = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=environ,
                              timeout=timeout, cwd=self.tmp)
        self.elapsed = time.monotonic() - started
        return done.returncode, done.stdout, done.stderr

    def follow_events(self, *names):
        """pmctl --connect ... events -f NAMES, running."""
        return subprocess.Popen(
            [pmtest.PMCTL, "--connect", "tcp://127.0.0.1:%d" % self.port_c,
             "--server-key", self.key("server"),
             "--key", self.key("client_secret"), "events", "-f"] + list(names),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env)

    def curve_socket(self, kind, key="client", server="server"):
        sock = self.track(self.context.socket(kind))
        sock.linger = 0
        public, _ = zmq.auth.load_certificate(self.key(server))
        own_public, own_secret = zmq.auth.load_certificate(
            self.key(key + "_secret"))
        sock.curve_serverkey = public
        sock.curve_publickey = own_public
        sock.curve_secretkey = own_secret
        return sock

    def request(self, sock, cmd, rid, timeout=5.0, **extra):
        body = {"v": 1, "id": rid, "cmd": cmd}
        body.update(extra)
        sock.send(pmtest.pack(body))
        if not sock.poll(int(timeout * 1000)):
            return None
        return pmtest.unpack(sock.recv())

    def agent_log(self, agent):
        return agent.logs_tail(400)

    # -- keygen -----------------------------------------------------------

    def test_keygen_files_modes_and_no_overwrite(self):
        path = self.path("box")
        code, out, err = self.keygen(path)
        self.assertEqual(code, 0, err)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        self.assertEqual(os.stat(path + "_secret").st_mode & 0o777, 0o600)
        public, secret = zmq.auth.load_certificate(path + "_secret")
        self.assertEqual(out.strip().encode(), public)
        self.assertEqual(len(secret), 40)
        only_public, none = zmq.auth.load_certificate(path)
        self.assertEqual(only_public, public)
        self.assertIsNone(none)
        #  A second run replaces nothing, the public file or the secret.
        before = (pmtest.read_bytes(path), pmtest.read_bytes(path + "_secret"))
        code, out, err = self.keygen(path)
        self.assertEqual(code, 2, out + err)
        self.assertIn("exists", err)
        os.unlink(path)
        code, out, err = self.keygen(path)
        self.assertEqual(code, 2, out + err)
        self.assertIn(path + "_secret", err)
        self.assertFalse(os.path.exists(path), "half a pair was written")
        self.assertEqual(pmtest.read_bytes(path + "_secret"), before[1])

    # -- refusals at start ------------------------------------------------

    def test_tcp_without_keys_is_refused(self):
        port = pmtest.free_port()
        config = self.config("  s: { %s };\n" % SLEEP, agent_extra=(
            'control = "tcp://127.0.0.1:%d"; events = "tcp://127.0.0.1:%d"; '
            % (port, pmtest.free_port())))
        for args in (["--check"], []):
            done = subprocess.run([pmtest.PMD, "-c", config] + args,
                                  capture_output=True, text=True,
                                  env=self.env, timeout=30)
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertIn("tcp://127.0.0.1:%d" % port, done.stderr)
            self.assertIn("agent.curve", done.stderr)
            self.assertIn("secret_key", done.stderr)

    def test_unreadable_key_is_refused_naming_the_file(self):
        config = self.curve_config()
        secret = self.key("server_secret")
        os.rename(secret, secret + ".away")
        for args in (["--check"], []):
            done = subprocess.run([pmtest.PMD, "-c", config] + args,
                                  capture_output=True, text=True,
                                  env=self.env, timeout=30)
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertIn(secret, done.stderr)
        #  A public certificate where the secret one belongs.
        shutil.copy(self.key("server"), secret)
        done = subprocess.run([pmtest.PMD, "-c", config], capture_output=True,
                              text=True, env=self.env, timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("not a CURVE secret certificate", done.stderr)
        os.unlink(secret)
        os.rename(secret + ".away", secret)
        shutil.rmtree(self.clients)
        done = subprocess.run([pmtest.PMD, "-c", config], capture_output=True,
                              text=True, env=self.env, timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn(self.clients, done.stderr)

    # -- an authorised client ---------------------------------------------

    def test_authorised_client_runs_every_command(self):
        agent = self.start_agent(config=self.curve_config(
            services="  s: { %s };\n  talk: { %s };\n" % (SLEEP, CHATTY)))
        agent.wait_state("s", "running")
        code, out, err = self.remote("ping")
        self.assertEqual(code, 0, err)
        self.assertIn("tcp://127.0.0.1:%d" % self.port_c, out)
        self.assertIn("tcp://127.0.0.1:%d" % self.port_e, out)

        code, out, err = self.remote("status")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^s\s+running")
        code, out, err = self.remote("status", "--json", "nosuch")
        self.assertEqual(code, 2, out + err)

        follower = self.follow_events("s")
        try:
            #  Its first line is the current state: subscribed by then.
            first = follower.stdout.readline()
            self.assertIn("running", first)
            code, out, err = self.remote("stop", "--wait", "stopped", "s")
            self.assertEqual(code, 0, err)
            self.assertEqual(agent.record("s")["state"], "stopped")
            code, out, err = self.remote("start", "--wait", "running", "s")
            self.assertEqual(code, 0, err)
            seen = []
            deadline = pmtest.Deadline(10)
            while not any("starting -> running" in l for l in seen):
                self.assertFalse(deadline.passed(), seen)
                seen.append(follower.stdout.readline())
            self.assertTrue(any("running -> stopping" in l for l in seen),
                            seen)
        finally:
            pmtest.kill_and_reap([follower.pid])
            follower.communicate()

        wait_until(lambda: "line 4" in self.remote("logs", "talk")[1], 10,
                   what="talk's lines through TCP")
        code, out, err = self.remote("logs", "-n", "2", "talk")
        self.assertEqual(code, 0, err)
        self.assertEqual([l for l in out.splitlines() if "line" in l][-1:],
                         [l for l in out.splitlines() if "line 4" in l])
        #  The local ipc sockets still serve pmctl -c, without keys.
        code, out, err = self.run_pmctl("status", "--live")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^s\s+running")
        #  The environment instead of the options.
        code, out, err = self.remote(
            "status", "s", endpoint=False, server=None, key=None,
            env={"PMBUS_CONNECT": "tcp://127.0.0.1:%d" % self.port_c,
                 "PMBUS_SERVER_KEY": self.key("server"),
                 "PMBUS_KEY": self.key("client_secret")})
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^s\s+running")

    def test_wildcard_host_is_replaced_for_the_events(self):
        agent = self.start_agent(config=self.curve_config(
            host="*", services="  s: { %s };\n" % SLEEP))
        agent.wait_state("s", "running")
        code, out, err = self.remote("ping")
        self.assertEqual(code, 0, err)
        self.assertIn("tcp://*:%d" % self.port_e, out)
        #  events -f must connect somewhere real: the host of --connect.
        follower = self.follow_events("s")
        try:
            self.assertIn("running", follower.stdout.readline())
            code, out, err = self.remote("restart", "s")
            self.assertEqual(code, 0, err)
            deadline = pmtest.Deadline(10)
            line = ""
            while "running -> stopping" not in line:
                self.assertFalse(deadline.passed())
                line = follower.stdout.readline()
        finally:
            pmtest.kill_and_reap([follower.pid])
            follower.communicate()

    # -- refused clients --------------------------------------------------

    def test_refused_clients_get_exit_3_and_the_agent_serves_on(self):
        agent = self.start_agent(config=self.curve_config())
        code, out, err = self.remote("status", key="stranger")
        self.assertEqual(code, 3, out + err)
        self.assertIn("security handshake failed", err)
        self.assertIn("refused this client's key", err)
        self.assertLess(self.elapsed, 5.5)
        stranger, _ = zmq.auth.load_certificate(self.key("stranger"))
        wait_until(lambda: stranger.decode() in self.agent_log(agent), 5,
                   what="the refused key in the agent's log")

        code, out, err = self.remote("status", server="stranger")
        self.assertEqual(code, 3, out + err)
        self.assertIn("security handshake failed", err)
        self.assertIn("--server-key", err)
        self.assertLess(self.elapsed, 5.5)

        #  No CURVE at all: no answer, ever, and nothing done.
        plain = self.track(self.context.socket(zmq.DEALER))
        plain.linger = 0
        plain.connect("tcp://127.0.0.1:%d" % self.port_c)
        self.assertIsNone(self.request(plain, "stop", 1, timeout=1.0,
                                       names=["s"]))
        sub = self.track(self.context.socket(zmq.SUB))
        sub.subscribe(b"")
        sub.connect("tcp://127.0.0.1:%d" % self.port_e)

        code, out, err = self.remote("status")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^s\s+running")
        code, out, err = self.remote("restart", "s")
        self.assertEqual(code, 0, err)
        self.assertFalse(sub.poll(500), "a subscriber without keys got a "
                         "message")

    def test_sighup_rereads_the_clients_directory(self):
        agent = self.start_agent(config=self.curve_config())
        session = self.curve_socket(zmq.DEALER)
        session.connect("tcp://127.0.0.1:%d" % self.port_c)
        reply = self.request(session, "hello", 1)
        self.assertTrue(reply and reply["ok"], reply)

        #  Added: the stranger is admitted from its next handshake on.
        shutil.copy(self.key("stranger"), self.clients)
        agent.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "2 keys in" in self.agent_log(agent), 10,
                   what="the keys read again")
        code, out, err = self.remote("status", key="stranger")
        self.assertEqual(code, 0, err)

        #  Removed: refused at the handshake, and the open session is
        #  answered "unauthorised" with nothing done.
        os.unlink(os.path.join(self.clients, "client"))
        code, out, err = self.run_pmctl("reload")
        self.assertEqual(code, 0, err)
        wait_until(lambda: "(0 added, 1 removed)" in self.agent_log(agent), 10,
                   what="the keys read again")
        reply = self.request(session, "stop", 2, names=["s"])
        self.assertIsNotNone(reply)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "unauthorised")
        self.assertEqual(agent.record("s")["state"], "running")
        code, out, err = self.remote("status")
        self.assertEqual(code, 3, out + err)
        self.assertIn("security handshake failed", err)

    def test_a_removed_key_loses_its_subscription(self):
        """A key taken out of the clients directory: at the next SIGHUP
        its open event subscription is cut (its connection dropped, its
        reconnection refused), while another key's subscription goes on
        receiving every message."""
        shutil.copy(self.key("stranger"), self.clients)
        services = ('  talk: { command = "i=0; while true; do i=$((i+1)); '
                    'echo n=$i; sleep 0.01; done"; stop_timeout = 1.0; };\n')
        agent = self.start_agent(config=self.curve_config(services=services))
        events = "tcp://127.0.0.1:%d" % self.port_e
        subs = {}
        for key in ("client", "stranger"):
            sub = self.curve_socket(zmq.SUB, key=key)
            sub.rcvhwm = 0
            sub.subscribe(b"log/")
            subs[key] = sub
        monitor = subs["stranger"].get_monitor_socket(
            zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        self.track(monitor)
        for sub in subs.values():
            sub.connect(events)
        for key, sub in subs.items():
            self.assertTrue(sub.poll(10000), "%s got no log message" % key)
        os.unlink(os.path.join(self.clients, "stranger"))
        agent.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "subscription (descriptor" in
                   self.agent_log(agent), 10, what="the subscription cut")
        #  The stranger's connection goes, and its reconnection is
        #  refused by the handshake; the client receives on.
        pmtest.check_subscription_cut(self, subs["client"], subs["stranger"],
                                      monitor)
        self.assertIn(self.stranger_public(), self.agent_log(agent))

    def stranger_public(self):
        public, _ = zmq.auth.load_certificate(self.key("stranger"))
        return public.decode()

    # -- the example ------------------------------------------------------

    def test_the_documented_example_works(self):
        """conf/remote/agent.cfg, set up as its comment says."""
        source = os.environ.get("PM_SOURCE_DIR", os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        text = pmtest.read_bytes(os.path.join(
            source, "conf", "remote", "agent.cfg")).decode()
        self.assertIn("pmctl keygen keys/agent", text)
        self.port_c, self.port_e = pmtest.free_port(), pmtest.free_port()
        text = text.replace("7710", str(self.port_c)).replace(
            "7711", str(self.port_e))
        config = self.write_file("remote.cfg", text)
        for name in ("agent", "me"):
            self.assertEqual(self.keygen(self.key(name))[0], 0)
        shutil.copy(self.key("me"), self.clients)
        agent = self.start_agent(config=config, name="remote-demo")
        agent.wait_state("clock", "running")
        code, out, err = self.remote("status", key="me", server="agent")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^clock\s+running")
        code, out, err = self.run_pmctl("status", config=config)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^clock\s+running")

    # -- bad frames -------------------------------------------------------

    def test_malformed_and_oversized_frames_over_tcp(self):
        agent = self.start_agent(config=self.curve_config())
        sock = self.curve_socket(zmq.DEALER)
        sock.connect("tcp://127.0.0.1:%d" % self.port_c)
        sock.send(b"\xc1 not msgpack")
        self.assertTrue(sock.poll(5000))
        reply = pmtest.unpack(sock.recv())
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "bad-request")
        big = self.curve_socket(zmq.DEALER)
        big.connect("tcp://127.0.0.1:%d" % self.port_c)
        big.send(b"x" * (3 * 1024 * 1024))
        self.assertFalse(big.poll(1000), "an oversized frame was answered")
        self.assertTrue(agent.alive())
        code, out, err = self.remote("status")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.request(sock, "hello", 9)["ok"], True)


if __name__ == "__main__":
    pmtest.main()
