"""The command layer of `peergos shell` (spec/peergos.md §16) against a real in-process home server: every
command, folder transfers both ways, errors as one line, tab completion, `passwd` (and
`UserContext.change_password`), and the progress meter's line."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from peergos_node.accounts.time_limited import login_path, sign_request
from peergos_node.accounts.totp import totp
from peergos_node.cli.args import Args, ArgsError
from peergos_node.cli.shell import Credentials, Interrupted, _Loop, connect, credentials, progress_line
from peergos_node.cli.shell_commands import COMMANDS, Shell, human_size
from peergos_node.client.account import LoginFailed
from peergos_node.client.errors import PathNotFound
from peergos_node.client.user_context import UserContext
from peergos_node.cryptree.properties import CHUNK_SIZE
from tests.helpers.home import RunningHome, home_server

PASSWORD = "correct horse battery"


class RecordingConsole:
    """A Console that records what the shell prints and answers questions from a list."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.data = bytearray()
        self.errors: list[str] = []
        self.answers: list[str] = []
        self.asked: list[tuple[str, bool]] = []
        self.meter: list[tuple[str, int, int]] = []

    def out(self, text: str) -> None:
        self.lines.extend(text.split("\n"))

    async def out_bytes(self, data: bytes) -> None:
        self.data += data

    def error(self, text: str) -> None:
        self.errors.append(text)

    async def ask(self, prompt: str, *, secret: bool) -> str | None:
        self.asked.append((prompt, secret))
        return self.answers.pop(0) if self.answers else None

    def progress(self, label: str, done: int, total: int) -> None:
        assert 0 <= done <= total
        self.meter.append((label, done, total))

    def progress_done(self) -> None:
        pass


class Session:
    """A shell over a freshly signed-up user, with helpers to run lines."""

    def __init__(self, home: RunningHome, shell: Shell, console: RecordingConsole, local: Path) -> None:
        self.home = home
        self.shell = shell
        self.console = console
        self.local = local

    async def ok(self, line: str) -> list[str]:
        """Run a line that must succeed; its output lines."""
        self.console.lines.clear()
        self.console.errors.clear()
        assert await self.shell.execute(line), self.console.errors
        assert self.console.errors == []
        return list(self.console.lines)

    async def fails(self, line: str) -> str:
        """Run a line that must fail with exactly one error line (and no output); the error."""
        self.console.lines.clear()
        self.console.errors.clear()
        assert not await self.shell.execute(line), self.console.lines
        assert len(self.console.errors) == 1 and "\n" not in self.console.errors[0]
        assert "Traceback" not in self.console.errors[0]
        return self.console.errors[0]


@asynccontextmanager
async def shell_session(tmp_path: Path) -> AsyncIterator[Session]:
    async with home_server(tmp_path / "home") as home:
        ctx = await UserContext.signup(home.url, "alice", PASSWORD, home.token())
        async with ctx:
            local = tmp_path / "local"
            local.mkdir()
            console = RecordingConsole()
            yield Session(home, Shell(ctx, console, local_cwd=local), console, local)


async def test_folders_files_and_paths(tmp_path: Path) -> None:
    async with shell_session(tmp_path) as s:
        assert await s.ok("pwd") == ["/alice"]
        assert s.shell.prompt() == "alice:/alice> "
        assert await s.ok("ls") == []
        assert await s.ok("") == [] and await s.ok("   ") == [] and await s.ok("# a comment") == []
        await s.ok("mkdir docs 'my photos'")
        await s.ok("mkdir -p docs/a/b")
        assert await s.ok("ls") == ["docs/", "my photos/"]
        assert sorted(await s.ok("ls -a")) == [
            ".capabilitycache/",
            ".transactions/",
            "docs/",
            "my photos/",
            "shared/",
        ]
        await s.ok("cd docs/a")
        assert await s.ok("pwd") == ["/alice/docs/a"]
        await s.ok("cd ../..")
        assert await s.ok("pwd") == ["/alice"]
        await s.ok('cd "my photos"')
        assert await s.ok("pwd") == ["/alice/my photos"]
        await s.ok("cd")
        assert await s.ok("pwd") == ["/alice"]
        await s.ok("cd ~/docs")
        assert s.shell.resolve("..") == "/alice" and s.shell.resolve("/alice/./x/../y") == "/alice/y"
        assert s.shell.resolve("../../../..") == "/" and s.shell.resolve("~") == "/alice"

        (s.local / "hello.txt").write_bytes(b"hello world\n")
        assert await s.ok("put hello.txt") == ["uploaded 1 file (12 B) to /alice/docs/hello.txt"]
        await s.ok("put hello.txt /alice/docs/a/greeting.txt")
        assert await s.ok("ls") == ["a/", "hello.txt"]
        assert await s.ok("ls a /alice/docs/hello.txt") == [
            "/alice/docs/a:", "b/", "greeting.txt", "", "/alice/docs/hello.txt:", "hello.txt",
        ]  # fmt: skip
        long = await s.ok("ls -l")
        assert long[0].startswith("d ") and long[0].endswith(" a/")
        assert long[1].split()[:2] == ["-", "12"] and long[1].endswith(" hello.txt")

        await s.ok("cat hello.txt a/greeting.txt")
        assert bytes(s.console.data) == b"hello world\n" * 2

        # mv: rename in place, into a folder, into a folder under a new name; cp likewise
        await s.ok("mv hello.txt hi.txt")
        await s.ok("mv hi.txt a")
        await s.ok("mv a/hi.txt b.txt")
        assert await s.ok("ls") == ["a/", "b.txt"]
        await s.ok("cp b.txt a")
        await s.ok("cp b.txt a/c.txt")
        await s.ok("cp a /alice/a-copy")
        assert await s.ok("ls a") == ["b/", "b.txt", "c.txt", "greeting.txt"]
        assert await s.ok("ls /alice/a-copy") == ["b/", "b.txt", "c.txt", "greeting.txt"]
        s.console.data.clear()
        await s.ok("cat /alice/a-copy/c.txt")
        assert bytes(s.console.data) == b"hello world\n"

        # moving the folder we are in takes us along; deleting it takes us to its parent
        await s.ok("cd a/b")
        await s.ok("mv /alice/docs/a /alice/moved")
        assert await s.ok("pwd") == ["/alice/moved/b"]
        await s.ok("rm -r /alice/moved")
        assert await s.ok("pwd") == ["/alice"]
        await s.ok("rm docs/b.txt a-copy/b.txt")
        assert await s.ok("ls docs") == []
        assert await s.ok("ls a-copy") == ["b/", "c.txt", "greeting.txt"]

        space = await s.ok("space")
        assert space[0].startswith("used ") and " of 1.0 GiB (" in space[0]
        used, quota = int(space[1].split()[1]), int(space[1].split()[4])
        assert quota == 1024**3 and 0 < used < quota

        out = await s.ok("help")
        for name in (
            "help",
            "ls",
            "cd",
            "pwd",
            "mkdir",
            "put",
            "get",
            "cat",
            "rm",
            "mv",
            "cp",
            "space",
            "passwd",
        ):
            assert any(line.startswith(name + " ") for line in out), name
        assert await s.ok("help put") == [
            "put [--skip-existing] LOCAL [REMOTE]",
            "    upload a local file or folder (into REMOTE if it is a folder)",
        ]
        await s.ok("exit")
        assert s.shell.exited
        assert COMMANDS["quit"] is COMMANDS["bye"] is COMMANDS["exit"]


async def test_errors_are_one_line_and_change_nothing(tmp_path: Path) -> None:
    async with shell_session(tmp_path) as s:
        (s.local / "f.txt").write_bytes(b"x")
        await s.ok("mkdir d")
        await s.ok("put f.txt d")
        assert "unknown command 'frobnicate'" in await s.fails("frobnicate")
        assert "usage: mv SOURCE TARGET" in await s.fails("mv onlyone")
        assert "wrong number of arguments" in await s.fails("pwd extra")
        assert "unknown option '-z'" in await s.fails("ls -z")
        assert "cannot parse" in await s.fails("cd 'unclosed")
        assert "no such local file or folder: nope.txt" in await s.fails("put nope.txt")
        assert "/alice/nope does not exist" in await s.fails("cd nope")
        assert "/alice/nope does not exist" in await s.fails("cat nope")
        assert "/alice/nope does not exist" in await s.fails("get nope")
        assert "/alice/nope does not exist" in await s.fails("rm nope")
        assert "not a folder" in await s.fails("cd d/f.txt")
        assert "is a folder" in await s.fails("cat d")
        assert "use rm -r" in await s.fails("rm d")
        assert "already exists" in await s.fails("put f.txt d")
        assert "already exists" in await s.fails("mkdir d")
        await s.ok("put f.txt d/g.txt")
        assert "/alice/d/g.txt already exists" in await s.fails("mv d/f.txt d/g.txt")
        assert "/alice/d/g.txt already exists" in await s.fails("cp d/f.txt d/g.txt")
        assert "itself or a descendant" in await s.fails("mv d d/inner")
        assert "root folder" in await s.fails("rm -r /alice")
        assert "no access to /bob" in await s.fails("ls /bob")
        assert "unknown command 'nope'" in await s.fails("help nope")
        # nothing of the failed commands happened
        assert await s.ok("ls -a d") == ["f.txt", "g.txt"]
        assert await s.ok("pwd") == ["/alice"]
        assert not s.shell.exited


async def test_put_and_get_folders_with_a_big_file_and_skip_existing(tmp_path: Path) -> None:
    async with shell_session(tmp_path) as s:
        rng = random.Random(7)
        tree = {
            "top.txt": b"top",
            "empty.bin": b"",
            "sub/one.bin": rng.randbytes(3000),
            "sub/deeper/big.bin": rng.randbytes(CHUNK_SIZE + 4321),
            "sub/deeper/.hidden": b"dot",
            "emptydir/": b"",
        }
        src = s.local / "project"
        for rel, data in tree.items():
            p = src / rel
            if rel.endswith("/"):
                p.mkdir(parents=True)
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        total = sum(len(d) for d in tree.values())
        out = await s.ok("put project")
        assert out == [f"uploaded 5 files ({human_size(total)}) to /alice/project"]
        assert s.console.meter[-1][1:] == (total, total)
        assert any(0 < done < total for _, done, _ in s.console.meter)  # the big file reports chunks
        assert await s.ok("ls project") == ["empty.bin", "emptydir/", "sub/", "top.txt"]
        assert await s.ok("ls -a project/sub/deeper") == [".hidden", "big.bin"]

        # again: every file is there already
        assert "already exists" in await s.fails("put project")
        out = await s.ok("put --skip-existing project")
        assert out == ["uploaded 0 files (0 B) to /alice/project, skipped 5 already there"]
        (src / "sub" / "new.txt").write_bytes(b"new")
        out = await s.ok("put --skip-existing project /alice")
        assert out == ["uploaded 1 file (3 B) to /alice/project, skipped 5 already there"]

        # download the folder elsewhere and compare byte for byte
        dest = tmp_path / "down"
        dest.mkdir()
        out = await s.ok(f"get project {dest}")
        assert out == [f"downloaded 6 files ({human_size(total + 3)}) to {dest / 'project'}"]
        for rel, data in {**tree, "sub/new.txt": b"new"}.items():
            got = dest / "project" / rel
            assert got.is_dir() if rel.endswith("/") else got.read_bytes() == data, rel
        assert not list(dest.rglob("*.part"))
        # a file, to a new local name, into the local folder, and skipped when present
        await s.ok(f"get project/sub/one.bin {tmp_path / 'renamed.bin'}")
        assert (tmp_path / "renamed.bin").read_bytes() == tree["sub/one.bin"]
        await s.ok("get project/top.txt")
        assert (s.local / "top.txt").read_bytes() == b"top"
        (s.local / "top.txt").write_bytes(b"local edit")
        assert await s.ok("get --skip-existing project/top.txt") == [
            f"downloaded 0 files (0 B) to {s.local / 'top.txt'}, skipped 1 already there"
        ]
        assert (s.local / "top.txt").read_bytes() == b"local edit"
        await s.ok("get project/top.txt")  # without the option a file is replaced
        assert (s.local / "top.txt").read_bytes() == b"top"
        # local folder commands
        assert await s.ok("lpwd") == [str(s.local)]
        assert await s.ok("lls") == ["project/", "top.txt"]
        await s.ok("lcd project/sub")
        assert await s.ok("lls -a deeper") == [".hidden", "big.bin"]
        assert "no such local folder" in await s.fails("lcd nowhere")


async def test_tab_completion(tmp_path: Path) -> None:
    async with shell_session(tmp_path) as s:
        await s.ok("mkdir docs dogs")
        (s.local / "data.txt").write_bytes(b"d")
        (s.local / "dir").mkdir()
        await s.ok("put data.txt docs/notes.txt")
        c = s.shell.complete
        assert await c("", "p") == ["passwd ", "put ", "pwd "]
        assert await c("", "zz") == []
        assert await c("cd ", "do") == ["docs/", "dogs/"]
        assert await c("cat ", "docs/n") == ["docs/notes.txt "]
        assert await c("cat ", "/alice/docs/") == ["/alice/docs/notes.txt "]
        assert await c("cat ", "/al") == ["/alice/"]
        assert await c("ls ", ".tr") == [".transactions/"]
        assert await c("ls ", "nowhere/x") == []
        assert await c("put ", "d") == ["data.txt ", "dir/"]  # first argument of put is local
        assert await c("put data.txt ", "do") == ["docs/", "dogs/"]  # then remote
        assert await c("get docs/notes.txt ", "di") == ["dir/"]
        assert await c("put ", "--s") == ["--skip-existing "]
        assert await c("help ", "ex") == ["exit "]
        assert await c("pwd ", "") == []
        assert await c("nosuch ", "") == []


async def test_passwd_checks_the_current_password_and_changes_it(tmp_path: Path) -> None:
    async with home_server(tmp_path / "home") as home:
        ctx = await UserContext.signup(home.url, "alice", PASSWORD, home.token())
        async with ctx:
            console = RecordingConsole()
            shell = Shell(ctx, console, local_cwd=tmp_path)
            console.answers = ["wrong password", "new one", "new one"]
            assert not await shell.execute("passwd")
            assert console.errors == ["the current password is incorrect"]
            assert [secret for _, secret in console.asked] == [True, True, True]
            console.errors.clear()
            console.answers = [PASSWORD, "new one", "new two"]
            assert not await shell.execute("passwd")
            assert "do not match" in console.errors.pop()
            console.answers = [PASSWORD]  # then no more answers (end of input)
            assert not await shell.execute("passwd")
            assert "no password given" in console.errors.pop()
            console.answers = [PASSWORD, PASSWORD, PASSWORD]
            assert not await shell.execute("passwd")
            assert "is the current one" in console.errors.pop()

            console.answers = [PASSWORD, "brand new pass", "brand new pass"]
            assert await shell.execute("passwd"), console.errors
            assert console.lines == ["password changed"]
            # the session goes on working, and can change the password again directly
            assert await shell.execute("mkdir after")
            with pytest.raises(LoginFailed, match="incorrect"):
                await ctx.change_password(PASSWORD, "whatever else")
            await ctx.change_password("brand new pass", "third pass")
        with pytest.raises(LoginFailed):
            await UserContext.login(home.url, "alice", PASSWORD)
        with pytest.raises(LoginFailed):
            await UserContext.login(home.url, "alice", "brand new pass")
        async with await UserContext.login(home.url, "alice", "third pass") as again:
            assert [i.name for i in await again.ls("/alice")] == ["after"]


def test_help_and_progress_line() -> None:
    for cmd in COMMANDS.values():
        assert cmd.usage.split()[0] == cmd.name
    assert human_size(0) == "0 B" and human_size(1023) == "1023 B" and human_size(1536) == "1.5 KiB"
    assert human_size(5 * 1024**3) == "5.0 GiB"
    line = progress_line("/alice/some/long/path/name.bin", 512, 1024, 60)
    assert line.startswith("[##########----------]  50% 512 B/1.0 KiB")
    assert len(line) <= 59 and line.endswith("name.bin")
    assert progress_line("x", 0, 0, 80).startswith("[####################] 100%")
    assert len(progress_line("x" * 500, 1, 2, 10)) <= 9


# ---- the terminal front end's parts ----------------------------------------------------------------


def _ctrl_c_soon(delay: float = 0.5) -> threading.Timer:
    """SIGINT to this (main) thread after `delay`, as Ctrl-C at a terminal would send."""
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread() is threading.main_thread()
    timer = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


def test_loop_runs_calls_asks_the_main_thread_and_ctrl_c_cancels_the_call() -> None:
    asked: list[tuple[str, bool, bool]] = []

    def answer(prompt: str, secret: bool) -> str | None:
        asked.append((prompt, secret, threading.current_thread() is threading.main_thread()))
        if prompt == "interrupt me":
            raise KeyboardInterrupt
        return "42"

    with _Loop(answer) as loop:

        async def question() -> str | None:
            return await loop.ask("number? ", True)

        async def boom() -> None:
            raise PathNotFound("/alice/x does not exist")

        async def interrupted_question() -> str | None:
            answer = await loop.ask("interrupt me", False)
            await trio.sleep(60)  # not reached: the Ctrl-C cancelled the call
            return answer

        async def forever() -> None:
            await trio.sleep(60)

        async def after() -> str:
            await trio.lowlevel.checkpoint()
            return "still running"

        assert loop.call(question) == "42"
        assert asked == [("number? ", True, True)]  # answered on the main thread, which owns the terminal
        with pytest.raises(PathNotFound, match="does not exist"):
            loop.call(boom)
        with pytest.raises(Interrupted):
            loop.call(interrupted_question)
        started = time.monotonic()
        timer = _ctrl_c_soon()
        try:
            with pytest.raises(Interrupted):
                loop.call(forever)
        finally:
            timer.join(10)
        assert time.monotonic() - started < 30
        assert loop.call(after) == "still running"


def test_credentials_without_a_terminal(tmp_path: Path) -> None:
    env = {"PEERGOS_PATH": str(tmp_path), "PEERGOS_PASSWORD": "pw"}
    args = Args.parse(["-peergos-url", "http://127.0.0.1:8000/", "-username", "alice"], env=env)
    creds = credentials(args, interactive=False)
    assert creds == Credentials("http://127.0.0.1:8000", "alice", "pw", False, "")
    args = Args.parse(
        ["-peergos-url", "http://h", "-username", "a", "-signup", "true", "-token", "t"], env=env
    )
    assert credentials(args, interactive=False) == Credentials("http://h", "a", "pw", True, "t")
    with pytest.raises(ArgsError, match="-username, PEERGOS_PASSWORD"):
        credentials(Args.parse(["-peergos-url", "http://h"], env={"PEERGOS_PATH": str(tmp_path)}), False)
    with pytest.raises(ArgsError, match="must start with http"):
        credentials(Args.parse(["-peergos-url", "ftp://h", "-username", "a"], env=env), False)
    with pytest.raises(ArgsError, match="true or false"):
        credentials(Args.parse(["-signup", "maybe"], env=env), False)


async def test_login_asks_for_a_second_factor(tmp_path: Path) -> None:
    async with shell_session(tmp_path) as s:
        net, session = s.home.net, s.shell.ctx.session
        now = int(time.time() * 1000)
        key = await net.account.add_totp(
            "alice", sign_request(session.identity.secret, login_path("addTotp"), now)
        )
        auth = sign_request(session.identity.secret, login_path("enableTotp"), now)
        assert await net.account.enable_totp("alice", key.credential_id, totp(key.key, now), auth)
        prompts: list[tuple[str, bool]] = []

        async def ask(prompt: str, secret: bool) -> str | None:
            prompts.append((prompt, secret))
            return totp(key.key, int(time.time() * 1000)) + "\n"

        async def no_answer(prompt: str, secret: bool) -> str | None:
            return None

        creds = Credentials(s.home.url, "alice", PASSWORD, False, "")
        async with await connect(creds, ask) as ctx:
            assert await ctx.exists("/alice/shared")
        assert len(prompts) == 1 and prompts[0][0].startswith("Enter the authenticator code for ")
        assert prompts[0][1] is False
        with pytest.raises(LoginFailed, match="no second-factor code"):
            await connect(creds, no_answer)
        with pytest.raises(LoginFailed):
            await connect(Credentials(s.home.url, "alice", "wrong", False, ""), ask)
