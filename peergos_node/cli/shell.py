"""`peergos shell`: browse and change your Peergos filesystem from a terminal (spec/peergos.md §16).

    peergos shell [-peergos-url URL] [-username NAME] [-signup true -token TOKEN]

The password is taken from the PEERGOS_PASSWORD environment variable (or `-PEERGOS_PASSWORD`); at a
terminal, whatever is missing is asked for (server address, username, password; a second-factor code
when the account has one). `-signup true` creates the account first, with a signup `-token` from the
server's admin (`peergos quota token create`).

Commands: help, ls, cd, pwd, mkdir, put (a file or a folder, with a progress bar), get, cat, rm, mv,
cp, space, passwd, lls, lcd, lpwd, exit (also quit, bye). `help COMMAND` describes one.

At a terminal the shell keeps a command history in $PEERGOS_PATH/shell_history (default
~/.peergos) and completes command and file names with Tab; Ctrl-C stops the running command, and at
the prompt leaves the shell, like Ctrl-D. When standard input is not a terminal it runs one command per
line (the answers to `passwd` are the lines after it), reports each failure on standard error as
`error: ...` and exits with status 1 if any command failed, 0 otherwise.

Theory of operation
-------------------
The commands themselves live in `peergos_node.cli.shell_commands` (async, over a `UserContext`).
This module is the terminal front end: the main thread owns the terminal (readline line editing,
history and completion, `getpass`, the script's lines) and alone receives SIGINT (the other threads
block it), as KeyboardInterrupt; a trio event loop runs in a second thread and owns the HTTP client
and every filesystem operation (`_Loop`). The main thread hands each line to the loop and waits on one
queue for either the result or a question (a password for `passwd`, a second-factor code), which it
answers itself; a Ctrl-C while it waits cancels the command's trio cancel scope, and the loop reports
it as `Interrupted`. Tab completion asks the loop for remote names with a time limit. The progress
meter is one line on standard error, drawn only when standard error is a terminal.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, TextIO, TypeVar

import httpx
import trio

from peergos_node.accounts.mfa import MfaType, MultiFactorAuthRequest, MultiFactorAuthResponse
from peergos_node.cli.args import Args, ArgsError
from peergos_node.cli.shell_commands import Shell, human_size
from peergos_node.client.account import LoginFailed
from peergos_node.client.user_context import UserContext
from peergos_node.errors import PeergosError

T = TypeVar("T")

DEFAULT_URL = "http://localhost:8000"
HISTORY_FILE = "shell_history"
HISTORY_LENGTH = 1000
COMPLETION_TIMEOUT = 5.0
"""Seconds a Tab completion may wait for the server before offering nothing."""
PROGRESS_INTERVAL = 0.1
"""Seconds between redraws of the progress bar."""
POLL_INTERVAL = 0.25
"""Seconds the main thread sleeps at most while a command runs (it then checks for Ctrl-C)."""
LOOP_START_TIMEOUT = 30.0
LOOP_STOP_TIMEOUT = 10.0


class Interrupted(Exception):
    """The running command was stopped by Ctrl-C."""


@dataclass
class _Done:
    value: object
    error: BaseException | None


@dataclass
class _Ask:
    prompt: str
    secret: bool
    reply: Callable[[str | None], None]


class _Loop:
    """A trio event loop on a background thread, driven from the main thread (module docstring)."""

    def __init__(self, answer: Callable[[str, bool], str | None]) -> None:
        self._answer = answer
        self._ready = threading.Event()
        self._messages: queue.Queue[_Done | _Ask] = queue.Queue()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="peergos-shell-trio", daemon=True)

    def __enter__(self) -> _Loop:
        self._thread.start()
        if not self._ready.wait(LOOP_START_TIMEOUT) or self._token is None:
            raise RuntimeError(f"the event loop did not start: {self._crash!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):  # it has stopped by itself meanwhile
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(LOOP_STOP_TIMEOUT)

    def _main(self) -> None:
        # SIGINT must reach the main thread: a signal taken by another thread would set Python's flag but
        # leave the main thread asleep in readline. The loop's worker threads inherit this mask.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            trio.run(self._serve)
        except BaseException as e:  # reported to the main thread by __enter__
            self._crash = e
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` on the loop and return its result; Ctrl-C meanwhile cancels it (Interrupted)."""
        assert self._token is not None and self._nursery is not None
        scope = trio.CancelScope()
        messages = self._messages

        async def task() -> None:
            done = _Done(None, Interrupted())
            try:
                with scope:
                    done = _Done(await fn(), None)
            except Exception as e:  # handed to the main thread; cancellation stays Interrupted
                done = _Done(None, e)
            finally:
                messages.put(done)

        trio.from_thread.run_sync(self._nursery.start_soon, task, trio_token=self._token)
        while True:
            try:
                # a short timeout: the main thread wakes up now and then, so a SIGINT that arrived just
                # before it went to sleep is not left pending until the command ends
                msg = messages.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                self._cancel(scope)
                continue
            if isinstance(msg, _Done):
                if msg.error is not None:
                    raise msg.error
                return msg.value  # type: ignore[return-value]  # fn's own result
            try:
                answer = self._answer(msg.prompt, msg.secret)
            except (KeyboardInterrupt, EOFError):
                answer = None
                self._cancel(scope)
            trio.from_thread.run_sync(msg.reply, answer, trio_token=self._token)

    def _cancel(self, scope: trio.CancelScope) -> None:
        assert self._token is not None
        trio.from_thread.run_sync(scope.cancel, trio_token=self._token)

    def run_with_timeout(self, fn: Callable[[], Awaitable[T]], timeout: float, default: T) -> T:
        """Run `fn` on the loop for at most `timeout` seconds (`default` if it takes longer)."""
        assert self._token is not None

        async def limited() -> T:
            with trio.move_on_after(timeout):
                return await fn()
            return default

        return trio.from_thread.run(limited, trio_token=self._token)

    async def ask(self, prompt: str, secret: bool) -> str | None:
        """(On the loop) have the main thread ask the user; None when there is no answer."""
        answered = trio.Event()
        box: list[str | None] = []

        def reply(value: str | None) -> None:
            box.append(value)
            answered.set()

        self._messages.put(_Ask(prompt, secret, reply))
        await answered.wait()
        return box[0]


class _Console:
    """The shell's standard output, standard error and questions (see `shell_commands.Console`)."""

    def __init__(self, loop: _Loop, stdout: TextIO, stderr: TextIO, meter: bool) -> None:
        self._loop = loop
        self._stdout = stdout
        self._stderr = stderr
        self._meter = meter
        self._drawn = False
        self._last_draw = 0.0

    def out(self, text: str) -> None:
        self.progress_done()
        self._stdout.write(text + "\n")
        self._stdout.flush()

    async def out_bytes(self, data: bytes) -> None:
        self.progress_done()
        self._stdout.flush()
        await trio.to_thread.run_sync(_write_flush, self._stdout.buffer, data)

    def error(self, text: str) -> None:
        self.progress_done()
        self._stdout.flush()
        self._stderr.write(f"error: {text}\n")
        self._stderr.flush()

    async def ask(self, prompt: str, *, secret: bool) -> str | None:
        self.progress_done()
        return await self._loop.ask(prompt, secret)

    def progress(self, label: str, done: int, total: int) -> None:
        if not self._meter:
            return
        now = time.monotonic()
        if self._drawn and now - self._last_draw < PROGRESS_INTERVAL and done < total:
            return
        self._last_draw = now
        self._stderr.write("\r\x1b[K" + progress_line(label, done, total, shutil.get_terminal_size().columns))
        self._stderr.flush()
        self._drawn = True

    def progress_done(self) -> None:
        if self._drawn:
            self._stderr.write("\r\x1b[K")
            self._stderr.flush()
            self._drawn = False


def _write_flush(out: BinaryIO, data: bytes) -> None:
    out.write(data)
    out.flush()


def progress_line(label: str, done: int, total: int, width: int) -> str:
    """One line of the progress meter: `[#####-----]  50%  1.0 MiB/2.0 MiB  name`, at most `width`."""
    frac = done / total if total > 0 else 1.0
    bar_width = 20
    filled = min(bar_width, int(frac * bar_width))
    text = f"[{'#' * filled}{'-' * (bar_width - filled)}] {int(frac * 100):3d}% "
    text += f"{human_size(done)}/{human_size(total)}"
    room = max(0, width - 1 - len(text) - 2)
    if room > 3 and label:
        name = label if len(label) <= room else "..." + label[-(room - 3) :]
        text += f"  {name}"
    return text[: max(1, width - 1)]


# ---- credentials and login ---------------------------------------------------------------------------
@dataclass
class Credentials:
    """Where and who to log in as."""

    url: str
    username: str
    password: str
    signup: bool
    token: str


def credentials(args: Args, interactive: bool) -> Credentials:
    """Server, username and password from the arguments, asking at a terminal for what is missing."""
    signup = args.get_bool("signup")
    url = args.params.get("peergos-url", "")
    username = args.params.get("username", "")
    password = args.params.get("PEERGOS_PASSWORD", "")
    if not interactive:
        missing = [n for n, v in (("-peergos-url", url), ("-username", username)) if not v]
        if not password:
            missing.append("PEERGOS_PASSWORD (environment)")
        if missing:
            raise ArgsError(f"{', '.join(missing)} needed when standard input is not a terminal")
    if not url:
        url = input(f"Peergos server address [{DEFAULT_URL}]: ").strip() or DEFAULT_URL
    while not username:
        username = input("Username: ").strip()
    while not password:
        password = getpass.getpass("Password: ")
        if password and signup and getpass.getpass("Repeat the password: ") != password:
            print("the passwords do not match", file=sys.stderr)
            password = ""
    if not url.startswith(("http://", "https://")):
        raise ArgsError(f"-peergos-url must start with http:// or https://, not {url!r}")
    return Credentials(url.rstrip("/"), username, password, signup, args.params.get("token", ""))


Ask = Callable[[str, bool], Awaitable[str | None]]
"""Asks the user a question (prompt, secret) from the loop; None when there is no answer."""


def mfa_prompter(ask: Ask) -> Callable[[MultiFactorAuthRequest], Awaitable[MultiFactorAuthResponse]]:
    """A login second-factor callback asking for a TOTP (or backup) code with `ask`."""

    async def answer(req: MultiFactorAuthRequest) -> MultiFactorAuthResponse:
        usable = [m for m in req.methods if m.enabled and m.type in (MfaType.TOTP, MfaType.BACKUP_CODES)]
        if not usable:
            raise LoginFailed("the account's second factor (a security key) cannot be used from the shell")
        method = next((m for m in usable if m.type is MfaType.TOTP), usable[0])
        what = "authenticator code" if method.type is MfaType.TOTP else "backup code"
        code = await ask(f"Enter the {what} for {method.name!r}: ", False)
        if not code:
            raise LoginFailed("no second-factor code given")
        return MultiFactorAuthResponse(method.credential_id, code.strip())

    return answer


async def connect(creds: Credentials, ask: Ask) -> UserContext:
    """Sign up (when asked) or log in (a second factor is asked for with `ask`)."""
    if creds.signup:
        return await UserContext.signup(creds.url, creds.username, creds.password, creds.token)
    return await UserContext.login(creds.url, creds.username, creds.password, mfa=mfa_prompter(ask))


def _login_error(e: BaseException) -> str:
    if isinstance(e, httpx.HTTPError):
        return f"cannot reach the server: {e or type(e).__name__}"
    if isinstance(e, PeergosError | OSError):
        return str(e) or type(e).__name__
    return f"unexpected {type(e).__name__}: {e}"


# ---- the two front ends --------------------------------------------------------------------------------
class _Terminal:
    """readline set-up: history file and Tab completion through the loop."""

    def __init__(self, readline: ModuleType, history: Path, shell: Shell, loop: _Loop) -> None:
        self.rl = readline
        self.history = history
        self.shell = shell
        self.loop = loop
        self._matches: list[str] = []

    def __enter__(self) -> _Terminal:
        rl = self.rl
        rl.clear_history()
        rl.set_history_length(HISTORY_LENGTH)
        try:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            if self.history.exists():
                rl.read_history_file(str(self.history))
            else:
                self.history.touch(mode=0o600)
        except OSError as e:
            print(f"peergos shell: history not kept: {e}", file=sys.stderr)
        rl.set_completer_delims(" \t\n")
        rl.set_completer(self.complete)
        rl.parse_and_bind("tab: complete")
        return self

    def __exit__(self, *exc: object) -> None:
        self.rl.set_completer(None)
        try:
            self.rl.write_history_file(str(self.history))
        except OSError as e:
            print(f"peergos shell: history not saved: {e}", file=sys.stderr)

    def added(self) -> None:
        """Append the line just entered to the history file at once (survives a killed shell)."""
        with contextlib.suppress(OSError):  # a history that cannot be written is not worth an error per line
            self.rl.append_history_file(1, str(self.history))

    def forget_last(self) -> None:
        """Drop the last history entry (an answer to a question, not a command)."""
        n = self.rl.get_current_history_length()
        if n > 0:
            self.rl.remove_history_item(n - 1)

    def complete(self, text: str, state: int) -> str | None:
        """readline's completer: candidates computed once per Tab (state 0)."""
        if state == 0:
            before = self.rl.get_line_buffer()[: self.rl.get_begidx()]
            try:
                self._matches = self.loop.run_with_timeout(
                    lambda: self.shell.complete(before, text), COMPLETION_TIMEOUT, []
                )
            except Exception:  # a completion must never break the line being edited
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None


def _interactive(shell: Shell, loop: _Loop, terminal: _Terminal | None) -> int:
    while not shell.exited:
        try:
            line = input(shell.prompt())
        except EOFError:
            print()
            break
        except KeyboardInterrupt:
            print()
            break
        if terminal is not None and line.strip():
            terminal.added()
        try:
            loop.call(functools.partial(shell.execute, line))
        except Interrupted:
            print("interrupted", file=sys.stderr)
    return 0


def _script(shell: Shell, loop: _Loop, lines: Iterator[str]) -> int:
    failed = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        try:
            ok = loop.call(functools.partial(shell.execute, line))
        except Interrupted:
            print("interrupted", file=sys.stderr)
            return 130
        failed = failed or not ok
        if shell.exited:
            break
    return 1 if failed else 0


def run(argv: list[str]) -> int:
    """Entry point (see the module docstring)."""
    interactive = sys.stdin.isatty()
    try:
        args = Args.parse(argv)
        creds = credentials(args, interactive)
    except ArgsError as e:
        print(f"peergos shell: {e}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return 130
    lines: Iterator[str] = iter(sys.stdin)
    readline: ModuleType | None = None
    if interactive:
        try:
            import readline as rl  # only at a terminal: it changes how input() behaves

            readline = rl
        except ImportError:
            readline = None
    terminal_ref: list[_Terminal] = []

    def answer(prompt: str, secret: bool) -> str | None:
        if not interactive:
            line = next(lines, None)
            return None if line is None else line.rstrip("\r\n")
        value = getpass.getpass(prompt) if secret else input(prompt)
        if not secret and terminal_ref:
            terminal_ref[0].forget_last()
        return value

    try:
        with _Loop(answer) as loop:
            try:
                ctx = loop.call(lambda: connect(creds, loop.ask))
            except Interrupted:
                return 130
            except Exception as e:  # whatever went wrong, one line and a non-zero status
                action = "signup" if creds.signup else "login"
                print(f"peergos shell: {action} failed: {_login_error(e)}", file=sys.stderr)
                return 1
            try:
                console = _Console(loop, sys.stdout, sys.stderr, meter=sys.stderr.isatty())
                shell = Shell(ctx, console)
                if not interactive:
                    return _script(shell, loop, lines)
                verb = "signed up" if creds.signup else "logged in"
                print(f"{verb} as {creds.username} at {creds.url}; 'help' lists the commands")
                if readline is None:
                    return _interactive(shell, loop, None)
                history = args.peergos_path / HISTORY_FILE
                with _Terminal(readline, history, shell, loop) as terminal:
                    terminal_ref.append(terminal)
                    return _interactive(shell, loop, terminal)
            finally:
                with contextlib.suppress(Exception):  # closing the HTTP client: nothing is left to lose
                    loop.call(ctx.aclose)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


__all__ = [
    "Ask",
    "Credentials",
    "Interrupted",
    "connect",
    "credentials",
    "mfa_prompter",
    "progress_line",
    "run",
]

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
