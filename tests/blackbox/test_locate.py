"""test_locate.py - how pmctl finds the agent of a config file

Drives the real pmd and pmctl.  The agent writes a record in its runtime
directory (`config`: the config's path, its identity when read, the
endpoints; pm_rundir.h).  While the file is exactly what the agent loaded,
pmctl finds the agent by that record without parsing the file; once the
file changed, it parses it again (and warns when it no longer parses):

- the record names the file and its identity, "-" for a config with
  @include, and is rewritten by a reload;
- an edited file is read again: a broken one gives the warning, a valid
  one is found;
- an unchanged file is not even opened by pmctl (strace).
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402

SLEEP = 'command = "sleep 1000"; stop_timeout = 1.0;'


def identity(path):
    st = os.stat(path)
    return "%d %d %d %d %d" % (st.st_dev, st.st_ino, st.st_size,
                               st.st_mtime_ns, st.st_ctime_ns)


def age(path):
    """Moves path's mtime a minute back: the agent records the identity
    only of a file not changed in the clock tick its read began in, and a
    test writes its config just before starting the agent."""
    past = time.time() - 60
    os.utime(path, (past, past))


class LocateTest(pmtest.AgentTest):

    def start(self, services, name="pmbus.cfg"):
        config = self.config(services, probe=False, name=name)
        age(config)
        return self.start_agent(config=config)

    def record(self, agent):
        with open(os.path.join(agent.rundir, "config")) as f:
            return f.read().split("\n")

    def test_record_names_file_and_identity(self):
        agent = self.start("  a: { %s };\n" % SLEEP)
        lines = self.record(agent)
        self.assertEqual(lines[0], os.path.realpath(agent.config))
        self.assertEqual(lines[1], identity(agent.config))
        self.assertEqual(lines[2], agent.control)
        self.assertTrue(lines[3].startswith("ipc://"), lines)
        self.assertEqual(lines[4:], [""])
        # A valid edit and a reload: the record follows.
        with open(agent.config, "a") as f:
            f.write("# edited\n")
        age(agent.config)
        self.assertNotEqual(self.record(agent)[1], identity(agent.config))
        code, out, err = self.run_pmctl("reload")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.record(agent)[1], identity(agent.config))

    def test_include_has_no_identity(self):
        self.write_file("part.inc", "services: { a: { %s }; };\n" % SLEEP)
        config = self.write_file("main.cfg", 'agent: { name = "t"; };\n'
                                 '@include "part.inc"\n')
        age(config)
        agent = self.start_agent(config=config)
        self.assertEqual(self.record(agent)[1], "-")
        code, out, err = self.run_pmctl("status", config=config)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^a +running ")

    def test_edited_file_is_read_again(self):
        agent = self.start("  a: { %s };\n" % SLEEP)
        agent.wait_state("a", "running")
        code, out, err = self.run_pmctl("status")
        self.assertEqual((code, err), (0, ""))
        # Broken since the agent loaded it: found anyway, with the warning
        # only a parse can give.
        with open(agent.config, "a") as f:
            f.write("services: {\n")
        code, out, err = self.run_pmctl("status")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^a +running ")
        self.assertIn("warning:", err)
        self.assertIn("syntax error", err)

    @pmtest.unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_unchanged_file_is_not_opened(self):
        agent = self.start("  a: { %s };\n" % SLEEP)
        agent.wait_state("a", "running")
        trace = self.path("trace")
        # LeakSanitizer cannot run under ptrace (sanitizer builds).
        env = dict(self.env)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":detect_leaks=0").lstrip(":")

        def opened():
            done = subprocess.run(
                ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o",
                 trace, pmtest.PMCTL, "-c", agent.config, "status"],
                env=env, cwd=self.tmp, capture_output=True, text=True,
                timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertRegex(done.stdout, r"(?m)^a +running ")
            with open(trace) as f:
                text = f.read()
            self.assertIn("status.snapshot", text)
            return os.path.realpath(agent.config) in text or \
                '"%s"' % agent.config in text or \
                '"pmbus.cfg"' in text

        self.assertFalse(opened(), "pmctl read the unchanged config")
        with open(agent.config, "a") as f:
            f.write("# edited\n")
        self.assertTrue(opened(), "pmctl did not read the edited config")


if __name__ == "__main__":
    pmtest.main()
