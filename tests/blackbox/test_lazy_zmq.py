"""test_lazy_zmq.py - pmctl loads libzmq only for commands with a socket

Drives the real pmd and pmctl.  pmctl is not linked with libzmq; it loads
it (dlopen) when a command first needs a socket (ctl/zmqlib.h).  glibc's
loader says which libraries a process loads (LD_DEBUG=libs), so:

- `--version`, `is-running`, `check` and `status` (from the status
  snapshot) load no libzmq, and no library but the C library's;
- `status --live`, `logs` and a command like `start` load it;
- with libzmq unloadable, a socket command fails with exit 3 and says
  why, while the others work as before.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402

SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


class LazyZmqTest(pmtest.AgentTest):

    def loaded(self, *args, env=None):
        """(exit code, the libraries pmctl ARGS asked the loader for)."""
        environ = dict(self.env)
        environ.update(env or {})
        environ["LD_DEBUG"] = "libs"
        config = self.agents[0].config if self.agents else \
            self.path("pmbus.cfg")
        done = subprocess.run([pmtest.PMCTL, "-c", config] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=environ, timeout=30,
                              cwd=self.tmp)
        return done.returncode, set(
            re.findall(r"find library=(\S+?) \[", done.stderr)), done

    def test_only_socket_commands_load_libzmq(self):
        agent = self.start_agent(config=self.config(
            "  a: { %s };\n" % SLEEP, probe=False))
        agent.wait_state("a", "running")
        for args in (("--version",), ("is-running",), ("check",),
                     ("status",), ("status", "a"), ("--json", "status")):
            code, libs, done = self.loaded(*args)
            self.assertEqual(code, 0, (args, done.stderr[-500:]))
            self.assertNotIn("libzmq.so.5", libs, args)
            # The C library alone (and, in a sanitizer build, its
            # runtimes).
            others = {lib for lib in libs
                      if not re.match(r"lib(c|m|asan|ubsan|gcc_s|stdc\+\+"
                                      r"|dl|pthread|rt)\.so", lib)}
            self.assertEqual(others, set(), args)
        for args in (("status", "--live"), ("logs", "a"),
                     ("start", "a")):
            code, libs, done = self.loaded(*args)
            self.assertEqual(code, 0, (args, done.stderr[-500:]))
            self.assertIn("libzmq.so.5", libs, args)

    def test_unloadable_libzmq(self):
        agent = self.start_agent(config=self.config(
            "  a: { %s };\n" % SLEEP, probe=False))
        agent.wait_state("a", "running")
        broken = self.path("broken")
        os.mkdir(broken)
        with open(os.path.join(broken, "libzmq.so.5"), "w") as f:
            f.write("not a library\n")
        env = {"LD_LIBRARY_PATH": broken}
        code, out, err = self.run_pmctl("status", "--live", env=env)
        self.assertEqual(code, 3, (out, err))
        self.assertIn("cannot load libzmq.so.5", err)
        code, out, err = self.run_pmctl("status", env=env)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^a +running ")
        code, out, err = self.run_pmctl("--version", env=env)
        self.assertEqual((code, err), (0, ""))


if __name__ == "__main__":
    pmtest.main()
