"""test_disk_full.py - a log_dir whose disk fills up, then has room again

log_dir is a 256 KiB tmpfs (root only: the test skips, saying why, when
it cannot mount one).  A service prints numbered lines in batches the
test asks for through a FIFO, so every step waits on an event, a record
or a file, never on time.  The disk is filled with a filler file; then:

- the service keeps running and is never held up: every batch is read,
  published (a subscriber sees every seq) and kept in the ring (`pmctl
  logs` and the `logs` command return the lines);
- the agent says so once per episode: one error line on its stderr and
  one `agent` event `log-write-failed`, however many lines are lost;
- once the filler is deleted, the next batch is written, after a marker
  saying exactly how many lines are missing there (`log-write-resumed`
  is published), in text and in JSON log files.
"""

import errno
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pmtest  # noqa: E402
from pmtest import wait_until  # noqa: E402

PYTHON = "/usr/bin/python3"

TALK = """\
import sys
#  One batch "FIRST LAST" per line read; EOF (the test closed its end)
#  ends the service.
with open(sys.argv[1]) as commands:
    for command in commands:
        first, last = map(int, command.split())
        for i in range(first, last + 1):
            sys.stdout.write("line %06d %s\\n" % (i, "x" * 80))
        sys.stdout.flush()
"""

MARKER = re.compile(r"^pmd: (\d+) lines not written here \(No space left on "
                    r"device\); they may still be in the agent's memory: "
                    r"pmctl logs talk$")
LINE = re.compile(r"^line (\d{6}) x{80}$")


class DiskFullTest(pmtest.AgentTest):

    def mount_small_tmpfs(self, path):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        os.mkdir(path)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k",
                               "pmtest", path], capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            self.skipTest("cannot mount a tmpfs on %s: %s"
                          % (path, done.stderr.strip()))
        #  Lazy: the agent may still hold files there when this runs (it
        #  runs before the harness stops the agents).
        self.addCleanup(subprocess.run, ["umount", "-l", path],
                        capture_output=True, timeout=30)

    def fill(self, directory):
        """Writes a filler file until the disk says ENOSPC; returns it."""
        path = os.path.join(directory, "filler")
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC, e)
        return path

    def entries(self, path, json_format):
        """The file's entries as ("line", number) or ("marker", missing)."""
        out = []
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.endswith(b"\n"), data[-200:])
        for raw in data[:-1].split(b"\n"):
            text = raw.decode()
            if json_format:
                entry = json.loads(text)
                text = entry["line"]
                if entry.get("marker"):
                    self.assertEqual(entry["service"], "talk")
                    match = MARKER.match(text)
                    self.assertIsNotNone(match, text)
                    self.assertEqual(entry["missing"], int(match.group(1)))
                    out.append(("marker", entry["missing"]))
                    continue
                self.assertEqual(entry["seq"], int(text[5:11]))
            match = LINE.match(text)
            if match:
                out.append(("line", int(match.group(1))))
                continue
            match = MARKER.match(text)
            self.assertIsNotNone(match, "neither a line nor a marker: %r"
                                 % text[:200])
            out.append(("marker", int(match.group(1))))
        return out

    def run_disk_full(self, json_format):
        logs = self.path("logs")
        self.mount_small_tmpfs(logs)
        fifo = self.path("commands")
        os.mkfifo(fifo)
        self.script("talk.py", TALK, shell=PYTHON)
        extra = ' log_format = "json";' if json_format else ""
        agent = self.start_agent(
            '  talk: { command = "./talk.py %s";%s };\n' % (fifo, extra))
        sub = agent.subscribe("agent/%s/" % agent.name,
                              "log/%s/talk/" % agent.name)
        #  Read-write: opening does not wait for the service, and the
        #  service sees EOF only when we close it.
        commands = os.open(fifo, os.O_RDWR)
        self.addCleanup(lambda: commands is not None and os.close(commands))
        log_file = os.path.join(logs, "talk.log")

        def batch(first, last):
            os.write(commands, b"%d %d\n" % (first, last))
            wait_until(lambda: agent.request("logs", {
                "names": ["talk"], "tail": 0})["logs"][0]["last"] == last,
                30, what="line %d in the agent's memory" % last)

        batch(1, 100)
        wait_until(lambda: b"line 000100 " in pmtest.read_bytes(log_file), 10,
                   what="the first lines in the file")
        filler = self.fill(logs)

        #  Far more than the disk has room for, in two batches.
        batch(101, 3000)
        failed = sub.wait_for(lambda e: e.get("event") == "log-write-failed",
                              10, what="the agent event log-write-failed")
        self.assertIn("talk: cannot write log file %s: No space left on "
                      "device" % log_file, failed.get("message", ""))
        code, out, err = self.run_pmctl("logs", "-n", "3", "talk")
        self.assertEqual(code, 0, err)
        self.assertIn("line 003000 ", out)
        batch(3001, 4000)
        self.assertEqual(agent.record("talk")["state"], "running")

        os.unlink(filler)
        batch(4001, 4010)
        resumed = sub.wait_for(
            lambda e: e.get("event") == "log-write-resumed", 10,
            what="the agent event log-write-resumed")
        wait_until(lambda: b"line 004010 " in pmtest.read_bytes(log_file), 10,
                   what="the last batch in the file")

        #  The file: 1..k, one marker for k+1..4000, then 4001..4010.
        entries = self.entries(log_file, json_format)
        markers = [i for i, e in enumerate(entries) if e[0] == "marker"]
        self.assertEqual(len(markers), 1, entries[-20:])
        at = markers[0]
        written = [n for kind, n in entries[:at]]
        missing = entries[at][1]
        self.assertEqual(written, list(range(1, len(written) + 1)))
        self.assertGreaterEqual(len(written), 100)
        self.assertEqual(len(written) + missing, 4000)
        self.assertEqual([n for kind, n in entries[at + 1:]],
                         list(range(4001, 4011)))
        self.assertIn("%d lines are missing there" % missing,
                      resumed.get("message", ""))
        sys.stderr.write("\n%s: %d lines written, %d missing, marker: %s\n"
                         % ("json" if json_format else "text", len(written),
                            missing, pmtest.read_bytes(log_file).split(b"\n")
                            [at].decode()))

        #  Once per episode, however many lines were lost.
        sub.drain(0.1)
        events = [e["event"] for e in sub.events if e.get("kind") == "agent"]
        self.assertEqual(events, ["log-write-failed", "log-write-resumed"])
        with open(agent.stderr_path, errors="replace") as f:
            self.assertEqual(f.read().count("talk: cannot write log file"), 1)
        #  Published, every one of them, in order.
        seqs = [e["seq"] for e in sub.events if e.get("kind") == "log"]
        self.assertEqual(seqs, list(range(1, 4011)))

        os.close(commands)
        commands = None
        agent.wait_state("talk", "completed", 10)
        #  A clean exit (sanitizer builds exit non-zero on a report).
        reply = agent.request("shutdown", timeout=30)
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(agent.wait_exit(30), 0, agent.logs_tail())

    def test_text(self):
        self.run_disk_full(json_format=False)

    def test_json(self):
        self.run_disk_full(json_format=True)


if __name__ == "__main__":
    pmtest.main()
