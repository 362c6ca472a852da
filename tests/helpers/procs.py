"""Run our CLIs as separate OS processes in tests, with timeouts and guaranteed cleanup."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process that imports this checkout's packages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Proc:
    """A child process whose output lines are collected in the background."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(env),
            cwd=ROOT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first output line matching `pattern` (AssertionError with the output on timeout/exit)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-60:])
                    )
                self._cond.wait(min(left, 0.5))

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float = 30) -> int:
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(10)
        finally:
            self._reader.join(5)
            if self.popen.stdout is not None:
                self.popen.stdout.close()


@contextmanager
def running(argv: list[str], env: dict[str, str] | None = None) -> Iterator[Proc]:
    """Start a process; always kill it (and its process group) on exit."""
    proc = Proc(argv, env)
    try:
        yield proc
    finally:
        proc.kill()


def peergos(*args: str) -> list[str]:
    """argv for `peergos ...` with this interpreter."""
    return [sys.executable, "-m", "peergos_node.cli.main", *args]


def nabu(*args: str) -> list[str]:
    """argv for `nabu ...` with this interpreter."""
    return [sys.executable, "-m", "nabu_py.cli", *args]


def run_cli(
    argv: list[str], timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a CLI to completion."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=cli_env(env), cwd=ROOT)
