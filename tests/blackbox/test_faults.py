"""test_faults.py - the agent under faults (issue 9)

- out of file descriptors: a start that cannot get its pipes fails with
  the call and errno named, and the agent goes on serving its clients and
  its other services; a notify descriptor the child cannot have fails the
  start with the step named;
- the runtime directory's `config` file cannot be written: pmd refuses to
  start, saying so;
- SIGKILL of the agent in the middle of a reload, of a start of 100
  services and of a burst of log output: the next pmd for the same config
  starts clean (lock taken over, sockets replaced, the old run's processes
  killed) and nothing of the old run survives;
- clients that misbehave (garbage, a disconnect in the middle of a
  parked request, 10,000 requests whose replies are never read): the
  others are answered promptly and the agent never blocks.

The old run's processes are found the way the harness finds leftovers:
this test is a child subreaper, so whatever the dead agent left is
reparented to it and shows among its descendants (pmtest.descendants),
apart from the new agent and what it runs.
"""

import os
import re
import resource
import signal
import subprocess
import time

import zmq

import pmtest
from pmtest import AgentTest, Deadline, wait_until, pack

#  Generous under the sanitizers, which slow every spawn and request.
SLOW = 3.0 if os.environ.get("PM_SANITIZE", "").upper() in ("ON", "1", "TRUE") else 1.0


class RundirTest(AgentTest):

    def test_config_file_cannot_be_written(self):
        """The runtime directory's `config` file (how pmctl finds an agent
        whose config no longer parses) cannot be written: pmd exits with
        an error naming it, instead of running unfindable."""
        rundir = os.path.join(self.xdg, "pmbus", pmtest.AGENT_NAME)
        os.makedirs(rundir, 0o700)
        #  A directory where the file goes: the rename over it fails.
        os.mkdir(os.path.join(rundir, "config"))
        agent = self.spawn_pmd(self.config(""))
        code = agent.wait_exit(10 * SLOW)
        self.assertNotEqual(code, 0)
        with open(agent.stderr_path) as f:
            err = f.read()
        self.assertIn("cannot write %s/config: Is a directory" % rundir, err)
        #  Nothing left behind: the lock and pid file are gone.
        self.assertFalse(os.path.exists(agent.pidfile))
        self.assertFalse(os.path.exists(agent.lockfile))


if __name__ == "__main__":
    pmtest.main()
