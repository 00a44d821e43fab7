"""The example configurations in conf/ are valid, and the demo works.

Every conf/*.cfg passes `pmd --check` and `pmctl check`; the demo (what
`make run` starts) reaches its documented states: init completed, web
running once it answers HTTP, worker running and logging what it fetched.
"""

import glob
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402

SOURCE = os.environ.get("PM_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))


class ConfTest(pmtest.AgentTest):

    def test_examples_validate(self):
        files = sorted(glob.glob(os.path.join(SOURCE, "conf", "*.cfg")))
        self.assertGreaterEqual(len(files), 3, files)
        for path in files:
            done = subprocess.run([pmtest.PMD, "--check", "-c", path],
                                  capture_output=True, timeout=10)
            self.assertEqual(done.returncode, 0,
                             "%s: %s" % (path, done.stderr.decode()))
            rc, out, err = self.run_pmctl("check", config=path)
            self.assertEqual(rc, 0, "%s: %s" % (path, err))

    def test_demo_reaches_its_states(self):
        with open(os.path.join(SOURCE, "conf", "demo.cfg")) as f:
            text = f.read()
        #  Run a copy in the test's directory: same services, own paths.
        text = text.replace('name = "demo";', 'name = "%s";' % pmtest.AGENT_NAME)
        text = text.replace("../build/demo", "demo")
        text = text.replace("8765", str(pmtest.free_port()))
        agent = self.start_agent(config=self.write_file("demo.cfg", text),
                                 timeout=20)
        agent.wait_state("init", "completed", timeout=20)
        web = agent.wait_state("web", "running", timeout=20)
        self.assertTrue(web["ready"])
        agent.wait_state("worker", "running", timeout=20)
        pmtest.wait_until(
            lambda: b"worker fetched: hello from pmbus"
            in pmtest.read_bytes(self.path("demo", "logs", "worker.log")),
            20, what="the worker's first fetch in its log")


if __name__ == "__main__":
    unittest.main()
