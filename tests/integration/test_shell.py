"""`peergos shell` as a real process against a real `peergos daemon` on loopback (spec/peergos.md §16):
signup and a whole session from a script on standard input (files compared byte for byte), logging in
again with the changed password, a failing line that does not stop the others, login and argument
errors, and the terminal mode under a pseudo-terminal (Tab completion of a command and of a remote
name, the history file, Ctrl-C at the prompt)."""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peergos_node.cli.shell_commands import human_size
from peergos_node.cryptree.properties import CHUNK_SIZE
from tests.helpers.home import LOOPBACK
from tests.helpers.procs import ROOT, cli_env, peergos, run_cli, running

START = r"Peergos daemon started: peer id (\S+), API (http://\S+),"
PASSWORD = "shell-password-1"
NEW_PASSWORD = "shell-password-2"


@dataclass
class Daemon:
    url: str
    home: Path
    first_token: str

    def token(self) -> str:
        r = run_cli(peergos("quota", "token", "create", "-PEERGOS_PATH", str(self.home)), timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("server")
    argv = peergos("daemon", "-PEERGOS_PATH", str(home), *LOOPBACK, "-generate-token", "true")
    with running(argv) as proc:
        url = proc.wait_for(START).group(2)
        assert url.startswith("http://127.0.0.1:")
        token = proc.wait_for(r"signup=true&token=([0-9a-f]{64})").group(1)
        yield Daemon(url, home, token)


def shell(
    d: Daemon, client: Path, username: str, password: str, script: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run `peergos shell` with `script` on standard input (not a terminal)."""
    argv = peergos(
        "shell", "-peergos-url", d.url, "-username", username, "-PEERGOS_PATH", str(client), *extra
    )
    return subprocess.run(
        argv,
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env({"PEERGOS_PASSWORD": password}),
        cwd=ROOT,
    )


def test_script_session_signup_transfers_and_password_change(daemon: Daemon, tmp_path: Path) -> None:
    rng = random.Random(6)
    notes = b"first line\nsecond line\n"
    (tmp_path / "notes.txt").write_bytes(notes)
    album = tmp_path / "album"
    files = {
        "one.bin": rng.randbytes(1000),
        "big.bin": rng.randbytes(CHUNK_SIZE + 777),
        "inner/two.txt": b"two\n",
    }
    for rel, data in files.items():
        (album / rel).parent.mkdir(parents=True, exist_ok=True)
        (album / rel).write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    client = tmp_path / "client"
    total = sum(len(v) for v in files.values())
    script = f"""
mkdir docs
put {tmp_path / "notes.txt"} docs
put {album}
ls
cd docs
pwd
cat notes.txt
cd ..
get docs/notes.txt {out / "notes-copy.txt"}
get album {out}
mv docs/notes.txt docs/renamed.txt
cp docs/renamed.txt album
rm album/one.bin
ls album
ls docs
space
passwd
{PASSWORD}
{NEW_PASSWORD}
{NEW_PASSWORD}
exit
mkdir never-run
"""
    r = shell(daemon, client, "alice", PASSWORD, script, "-signup", "true", "-token", daemon.first_token)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    space = [ln for ln in lines if ln.startswith("used ")]
    assert len(space) == 2 and " of 1.0 GiB (" in space[0]
    assert [ln for ln in lines if not ln.startswith("used ")] == [
        "uploaded 1 file (23 B) to /alice/docs/notes.txt",
        f"uploaded 3 files ({human_size(total)}) to /alice/album",
        "album/",
        "docs/",
        "/alice/docs",
        "first line",
        "second line",
        f"downloaded 1 file (23 B) to {out / 'notes-copy.txt'}",
        f"downloaded 3 files ({human_size(total)}) to {out / 'album'}",
        "big.bin",
        "inner/",
        "renamed.txt",
        "renamed.txt",
        "password changed",
    ]
    assert (out / "notes-copy.txt").read_bytes() == notes
    for rel, data in files.items():
        assert (out / "album" / rel).read_bytes() == data, rel
    assert not (client / "shell_history").exists()  # history is kept only at a terminal

    # log in again with the new password; a failing line is reported and the rest still runs
    script = "ls\nnosuchcommand arg\ncat docs/renamed.txt\ncat docs/missing.txt\nls album/inner\n"
    r = shell(daemon, client, "alice", NEW_PASSWORD, script)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["album/", "docs/", "first line", "second line", "two.txt"]
    assert r.stderr.splitlines() == [
        "error: unknown command 'nosuchcommand' (try 'help')",
        "error: /alice/docs/missing.txt does not exist",
    ]

    # the old password no longer works; nothing of the script runs
    r = shell(daemon, client, "alice", PASSWORD, "ls\n")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("peergos shell: login failed: ") and "Traceback" not in r.stderr
    # an account that exists cannot be signed up again
    r = shell(daemon, client, "alice", PASSWORD, "ls\n", "-signup", "true", "-token", daemon.token())
    assert r.returncode == 1 and "signup failed" in r.stderr and "Traceback" not in r.stderr


def test_argument_and_connection_errors(daemon: Daemon, tmp_path: Path) -> None:
    client = str(tmp_path / "client")
    env = cli_env({"PEERGOS_PASSWORD": ""})
    argv = peergos("shell", "-peergos-url", daemon.url, "-PEERGOS_PATH", client)
    r = subprocess.run(argv, input="ls\n", capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert r.returncode == 2
    assert (
        "-username, PEERGOS_PASSWORD (environment) needed when standard input is not a terminal" in r.stderr
    )
    # nothing listens on this port (it was just free): a clear error, not a traceback
    free = _free_port()
    r = run_cli(peergos("shell", "-peergos-url", f"http://127.0.0.1:{free}", "-username", "x"), timeout=60,
                env={"PEERGOS_PASSWORD": "pw", "PEERGOS_PATH": client})  # fmt: skip
    assert r.returncode == 1 and "cannot reach" in r.stderr and "Traceback" not in r.stderr


# ---- terminal mode -----------------------------------------------------------------------------------
CTTY = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
"""Make the pseudo-terminal on fd 0 the child's controlling terminal (it is a session leader), then run
the real command: so Ctrl-C typed on the terminal is a SIGINT, as for a person at a terminal."""


class Pty:
    """A child process on a pseudo-terminal; every read has a deadline."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CTTY, *argv[1:]],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text: str, timeout: float = 60) -> None:
        """Read until `text` has appeared after what earlier calls consumed."""
        want = text.encode()
        deadline = time.monotonic() + timeout
        while want not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} did not appear; the terminal showed:\n{self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the child has gone
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} did not appear before the end:\n{self.seen!r}")
                self.seen += chunk
        self.seen = self.seen[self.seen.index(want) + len(want) :]

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        os.close(self.master)


def test_terminal_completion_history_and_ctrl_c(daemon: Daemon, tmp_path: Path) -> None:
    client = tmp_path / "client"
    argv = peergos(
        "shell", "-peergos-url", daemon.url, "-username", "bob", "-PEERGOS_PATH", str(client),
        "-signup", "true", "-token", daemon.token(),
    )  # fmt: skip
    env = cli_env({"PEERGOS_PASSWORD": PASSWORD, "TERM": "dumb", "INPUTRC": os.devnull})
    term = Pty(argv, env)
    try:
        term.expect("signed up as bob", timeout=120)
        term.expect("bob:/bob> ")
        term.send("mkdir documents\r")
        term.expect("bob:/bob> ")
        term.send("pw\t")  # completes the command name
        term.expect("pwd ")
        term.send("\r")
        term.expect("/bob\r\n")
        term.expect("bob:/bob> ")
        (tmp_path / "small.txt").write_bytes(b"small")
        term.send(f"put {tmp_path / 'small.txt'} documents\r")
        term.expect("] 100% 5 B/5 B")  # the progress bar, on standard error as it is a terminal
        term.expect("uploaded 1 file (5 B) to /bob/documents/small.txt\r\n")
        term.expect("bob:/bob> ")
        term.send("cd doc\t")  # completes a remote folder name
        term.expect("documents/")
        term.send("\r")
        term.expect("bob:/bob/documents> ")
        # Ctrl-C at the prompt leaves the shell cleanly. CPython's readline loses a SIGINT that lands in the
        # microseconds between drawing the prompt and waiting for a key (the next key delivers it), so
        # pause as a person would, and press it once more should that window have been hit anyway.
        time.sleep(0.3)
        term.send("\x03")
        try:
            code = term.proc.wait(10)
        except subprocess.TimeoutExpired:
            term.send("\x03")
            code = term.proc.wait(60)
        assert code == 0
    finally:
        term.close()
    history = (client / "shell_history").read_text().splitlines()
    assert history == ["mkdir documents", "pwd ", f"put {tmp_path / 'small.txt'} documents", "cd documents/"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
