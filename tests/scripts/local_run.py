"""Driving scripts/run as a person does, in a copy of the working tree (shared .venv)."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.helpers import ROOT


def working_tree_copy(destination: Path) -> Path:
    """The repository's files as a clone has them (tracked and new, not ignored), with the
    project's .venv linked in so that nothing is installed again."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    return destination


def clean_env(**extra):
    """A shell's environment: none of the test run's settings."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update(extra)
    return env


def descendants(pid):
    """Every live process under pid (children, grandchildren, ...)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class LocalRun:
    """scripts/run in its own session (as in a terminal), its output collected line by line."""

    def __init__(self, folder, env):
        self.process = subprocess.Popen(["scripts/run"], cwd=folder, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self):
        return "\n".join(self.lines)

    def wait_for(self, *needles, timeout=240):
        """Until every needle has shown in the output (or the run ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(needle in self.output for needle in needles):
                return True
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        return False

    def ready(self, timeout=240):
        return self.wait_for("Listening at:", "ready.", "beat: Starting", timeout=timeout)

    def wait(self, timeout=60):
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return status

    def press_ctrl_c(self):
        """What a terminal does: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def kill_everything(self):
        for pid in [self.process.pid] + descendants(self.process.pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
