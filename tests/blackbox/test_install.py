"""test_install.py - `make install` into a scratch root, and a program
outside the tree built with `pkg-config --cflags --libs pmbus`

The build directory is the one of the pmd under test.  `cmake --install`
with DESTDIR puts pmd, pmctl, pmbroker, libpmproto (shared and static),
its public headers and pmbus.pc under a scratch root; a small C program
written here, compiled by the system's cc with only what pkg-config says
(PKG_CONFIG_SYSROOT_DIR maps the root), sends `hello` and `status` to a
real agent and prints what it decoded.  It must link the installed shared
library, and the installed pmd must be the one built.  The man pages
are installed and render without a warning, and pmctl(1) names every
command `pmctl --help` lists; the bash completion, sourced in a real
bash, completes commands and the agent's service names.
"""

import glob
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402

CLIENT = r'''
#include <pm_proto.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

static pm_reply_t *
s_call (void *sock, pm_cmd_t cmd, uint64_t id)
{
    pm_request_t *request = pm_request_new (cmd, id);
    char *data;
    size_t size;
    if (pm_request_encode (request, &data, &size) != 0)
        exit (10);
    pm_request_destroy (&request);
    zmq_send (sock, data, size, 0);
    free (data);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, sock, 0) == -1)
        exit (11);
    pm_reply_t *reply = NULL;
    char err [256];
    if (pm_reply_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &reply,
                         err, sizeof err) != PM_OK) {
        fprintf (stderr, "decode: %s\n", err);
        exit (12);
    }
    zmq_msg_close (&msg);
    return reply;
}

int
main (int argc, char **argv)
{
    void *context = zmq_ctx_new ();
    void *sock = zmq_socket (context, ZMQ_DEALER);
    int timeout = 10000;
    zmq_setsockopt (sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (argc != 2 || zmq_connect (sock, argv [1]) != 0)
        return 2;
    pm_reply_t *hello = s_call (sock, PM_CMD_HELLO, 1);
    printf ("agent %s pid %lld\n", hello->agent, (long long) hello->agent_pid);
    pm_reply_destroy (&hello);
    pm_reply_t *status = s_call (sock, PM_CMD_STATUS, 2);
    for (size_t i = 0; i < status->services_count; i++)
        printf ("service %s %s\n", status->services [i].name,
                pm_state_name (status->services [i].state));
    pm_reply_destroy (&status);
    zmq_close (sock);
    zmq_ctx_term (context);
    return 0;
}
'''


#  A sanitizer build's libpmproto.so needs the ASan runtime loaded first,
#  which a plain program outside the tree does not do: the plain build's
#  run covers the install.
@unittest.skipIf(os.environ.get("PM_SANITIZE", "").upper()
                 in ("ON", "1", "TRUE"), "sanitizer build")
class InstallTest(pmtest.AgentTest):

    def test_install_and_build_a_client_with_pkg_config(self):
        build = os.path.dirname(os.path.dirname(os.path.realpath(pmtest.PMD)))
        root = self.path("root")
        env = dict(self.env, DESTDIR=root)
        done = subprocess.run(["cmake", "--install", build],
                              capture_output=True, text=True, env=env,
                              timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        pcs = glob.glob(os.path.join(root, "**", "pkgconfig", "pmbus.pc"),
                        recursive=True)
        self.assertEqual(len(pcs), 1, pcs)
        libdir = os.path.dirname(os.path.dirname(pcs[0]))
        prefix = os.path.dirname(libdir)
        for name in ("pmd", "pmctl", "pmbroker"):
            self.assertTrue(os.access(os.path.join(prefix, "bin", name),
                                      os.X_OK), name)
        for name in ("libpmproto.a", "libpmproto.so", "libpmproto.so.0"):
            self.assertTrue(os.path.exists(os.path.join(libdir, name)), name)
        self.assertTrue(os.path.exists(os.path.join(
            prefix, "include", "pmbus", "pm_proto.h")))
        done = subprocess.run([os.path.join(prefix, "bin", "pmd"),
                               "--version"], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, subprocess.run(
            [pmtest.PMD, "--version"], capture_output=True, text=True,
            timeout=30).stdout)

        #  Only what pkg-config says, from the scratch root.
        pc_env = dict(self.env, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                      PKG_CONFIG_SYSROOT_DIR=root)
        done = subprocess.run(["pkg-config", "--cflags", "--libs", "pmbus"],
                              capture_output=True, text=True, env=pc_env,
                              timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        flags = done.stdout.split()
        self.assertIn("-lpmproto", flags)
        self.assertIn("-lzmq", flags)
        source = self.write_file("client.c", CLIENT)
        binary = self.path("client")
        done = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", source,
                               "-o", binary] + flags, capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        run_env = dict(self.env, LD_LIBRARY_PATH=libdir)
        done = subprocess.run(["ldd", binary], capture_output=True,
                              text=True, env=run_env, timeout=30)
        self.assertIn(os.path.join(libdir, "libpmproto.so.0"), done.stdout)

        agent = self.start_agent('  web: { command = "sleep 1000"; '
                                 'stop_timeout = 1.0; };\n')
        agent.wait_state("web", "running")
        endpoint = agent.request("hello")["control"]
        done = subprocess.run([binary, endpoint], capture_output=True,
                              text=True, env=run_env, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertEqual(lines[0], "agent %s pid %d"
                         % (pmtest.AGENT_NAME, agent.pid))
        self.assertIn("service web running", lines)

        #  Man pages: there, rendered clean, and pmctl(1) complete.
        mandir = os.path.join(prefix, "share", "man", "man1")
        for page in ("pmd.1", "pmctl.1", "pmbroker.1"):
            path = os.path.join(mandir, page)
            done = subprocess.run(["man", "--warnings", "-l", path],
                                  capture_output=True, text=True,
                                  env=dict(self.env, MANWIDTH="80"),
                                  timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            #  groff's warnings ("troff: ...: warning: ..."); a locale
            #  message of man's own is not the page's fault.
            self.assertNotIn("warning", done.stderr, page)
            self.assertIn("NAME", done.stdout)
            if page == "pmctl.1":
                pmctl_page = done.stdout
        usage = subprocess.run([pmtest.PMCTL, "--help"], capture_output=True,
                               text=True, timeout=30).stdout
        listed = usage.split("\ncommands:\n")[1].split("\noptions:\n")[0]
        commands = [line.split()[0] for line in listed.splitlines()
                    if line.startswith("  ") and not line.startswith("   ")]
        self.assertIn("status", commands)
        for command in commands:
            self.assertRegex(pmctl_page, r"(?m)^\s+%s\b" % command,
                             "pmctl(1) lacks %s" % command)

        #  Completion, in bash, with the installed pmctl on PATH.
        completion = os.path.join(prefix, "share", "bash-completion",
                                  "completions", "pmctl")

        def complete(*words):
            script = ('source "$0"; COMP_WORDS=("$@"); '
                      'COMP_CWORD=$(($# - 1)); _pmctl; '
                      'printf "%s\\n" "${COMPREPLY[@]}"')
            done = subprocess.run(["bash", "-c", script, completion,
                                   "pmctl"] + list(words),
                                  capture_output=True, text=True,
                                  env=dict(run_env, PATH=os.path.join(
                                      prefix, "bin") + ":" + self.env["PATH"]),
                                  timeout=30)
            self.assertEqual(done.stderr, "")
            return done.stdout.split()
        self.assertEqual(complete("sta"), ["status", "start"])
        self.assertEqual(complete("--wa"), ["--wait"])
        self.assertEqual(complete("-c", agent.config, "restart", "w"),
                         ["web"])


if __name__ == "__main__":
    pmtest.main()
