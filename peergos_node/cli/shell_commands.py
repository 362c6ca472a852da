"""The command layer of `peergos shell` (spec/peergos.md §16 "shell"): one line in, one filesystem
operation through a logged-in `UserContext`, text (or file bytes) out.

Theory of operation
-------------------
`Shell.execute(line)` splits the line like a POSIX shell (`shlex`: quotes and backslashes keep spaces in
names), looks the first word up in `COMMANDS`, checks the options and the number of arguments, and
awaits the command. Every failure a user can cause — an unknown command, a wrong argument count, a
missing local file, a remote path that does not exist, a name taken, the server unreachable — ends as
one line handed to `Console.error` and `execute` returning False; nothing else is printed and the shell
goes on. The layer does no terminal I/O of its own: it talks to a `Console` (text lines, raw bytes for
`cat`, secret questions for `passwd`, an upload/download progress meter), so the terminal front end
(`peergos_node.cli.shell`) and in-process tests drive exactly the same code.

Paths: the shell keeps a remote working folder (`cd`, `pwd`, starting at `/<username>`) and a local
one (`lcd`, `lpwd`, starting at the process's working directory, never `chdir`-ed). Remote arguments
are resolved against the remote folder with `.`, `..` and `~` (the home folder) understood; local
arguments against the local folder.

Transfers: `put` uploads a file, or a folder with everything below it, folder by folder: files of at
most one chunk go up in batches (bounded in count and bytes) with one commit per batch
(`UserContext.upload_files`), bigger ones one by one through resumable upload transactions whose
per-chunk progress feeds the meter. `get` streams a file (or a folder, recursively) into a `.part` file
beside the target and renames it into place only when complete. `--skip-existing` leaves files that
are already at the destination alone.

`complete(before, text)` answers tab completion: command names for the first word, then remote or
local names depending on the command and the argument's position, folders ending in `/`.
"""

from __future__ import annotations

import os
import shlex
import stat as stat_module
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import httpx
import trio

from peergos_node.client.account import LoginFailed
from peergos_node.client.errors import AlreadyExists, FsError, IsADirectory, NotADirectory, PathNotFound
from peergos_node.client.uploads import UploadProgress
from peergos_node.client.user_context import FileInfo, UserContext
from peergos_node.cryptree.properties import CHUNK_SIZE
from peergos_node.errors import PeergosError

BATCH_FILES = 100
"""At most this many small files are committed together by `put` of a folder."""
BATCH_BYTES = 16 * 1024 * 1024
"""At most this many bytes of small files are held in memory for one batch of `put`."""
COMPLETION_LIMIT = 1000
"""At most this many candidates are offered for one tab completion."""


class ShellError(Exception):
    """A command cannot run as typed (usage, local files); its message is shown as one line."""


class Console(Protocol):
    """What the command layer needs from its front end."""

    def out(self, text: str) -> None:
        """Write a line of text to standard output."""
        ...

    async def out_bytes(self, data: bytes) -> None:
        """Write raw bytes (file content) to standard output."""
        ...

    def error(self, text: str) -> None:
        """Report a failed command (one line, without the `error: ` prefix)."""
        ...

    async def ask(self, prompt: str, *, secret: bool) -> str | None:
        """Ask the user for a line (a password when `secret`); None when there is no answer."""
        ...

    def progress(self, label: str, done: int, total: int) -> None:
        """A transfer is at `done` of `total` bytes; `label` names what is being moved now."""
        ...

    def progress_done(self) -> None:
        """The transfer in progress has ended (remove any meter)."""
        ...


Handler = Callable[["Shell", list[str], set[str]], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    """A shell command: its usage line, a one-line summary, options, argument count and the kind of each
    argument for completion (`remote`, `local` or `command`; the last kind repeats)."""

    name: str
    usage: str
    summary: str
    handler: Handler
    min_args: int = 0
    max_args: int | None = 0
    options: frozenset[str] = frozenset()
    arg_kinds: tuple[str, ...] = ()

    def kind_of(self, index: int) -> str | None:
        """The completion kind of positional argument `index`."""
        if not self.arg_kinds or (self.max_args is not None and index >= self.max_args):
            return None
        return self.arg_kinds[min(index, len(self.arg_kinds) - 1)]


def human_size(n: int) -> str:
    """Bytes in binary units: `512 B`, `1.5 KiB`, `3.0 GiB`."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            break
    return f"{value:.1f} {unit}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def _parent(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def _leaf(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


def _local_message(e: OSError) -> str:
    what = e.strerror or str(e)
    return f"{what}: {e.filename}" if e.filename else what


class Shell:
    """The state of one shell session (see the module docstring) over a logged-in `UserContext`."""

    def __init__(self, ctx: UserContext, console: Console, *, local_cwd: Path | None = None) -> None:
        self.ctx = ctx
        self.console = console
        self.cwd = ctx.home
        self.local_cwd = (local_cwd or Path.cwd()).absolute()
        self.exited = False

    # ---- paths -------------------------------------------------------------------------------------
    def prompt(self) -> str:
        """The interactive prompt: `<username>:<remote folder>> `."""
        return f"{self.ctx.username}:{self.cwd}> "

    def resolve(self, path: str) -> str:
        """An absolute remote path for an argument (relative to the remote folder; `.`, `..`, `~`)."""
        if path == "~" or path.startswith("~/"):
            path = self.ctx.home + path[1:]
        full = path if path.startswith("/") else f"{self.cwd}/{path}"
        parts: list[str] = []
        for p in full.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(p)
        return "/" + "/".join(parts)

    def local_path(self, path: str) -> Path:
        """A local path for an argument (relative to the local folder; `~` expanded)."""
        p = Path(path).expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else self.local_cwd / p))

    async def _stat_or_none(self, path: str) -> FileInfo | None:
        try:
            return await self.ctx.stat(path)
        except (PathNotFound, NotADirectory):
            return None

    # ---- running a line ----------------------------------------------------------------------------
    async def execute(self, line: str) -> bool:
        """Run one command line; False (after reporting one error line) if it failed."""
        try:
            words = shlex.split(line, comments=False)
        except ValueError as e:
            self.console.error(f"cannot parse the line: {e}")
            return False
        if not words or words[0].startswith("#"):
            return True
        try:
            await self._dispatch(words)
        except Exception as e:  # every failure is one line; only cancellation propagates
            self.console.progress_done()  # before the error line
            self.console.error(self._message(_leaf(e)))
            return False
        finally:
            self.console.progress_done()  # also when cancelled (Ctrl-C)
        return True

    @staticmethod
    def _message(e: BaseException) -> str:
        if isinstance(e, ShellError | FsError | LoginFailed):
            return str(e)
        if isinstance(e, httpx.TimeoutException):
            return f"the server did not answer in time ({type(e).__name__})"
        if isinstance(e, httpx.HTTPError):
            return f"cannot reach the server: {e or type(e).__name__}"
        if isinstance(e, PeergosError):
            return str(e) or type(e).__name__
        if isinstance(e, OSError):
            return _local_message(e)
        return f"unexpected {type(e).__name__}: {e}"

    async def _dispatch(self, words: list[str]) -> None:
        cmd = COMMANDS.get(words[0])
        if cmd is None:
            raise ShellError(f"unknown command {words[0]!r} (try 'help')")
        args: list[str] = []
        opts: set[str] = set()
        only_args = False
        for w in words[1:]:
            if only_args or not w.startswith("-") or w == "-":
                args.append(w)
            elif w == "--":
                only_args = True
            elif w in cmd.options:
                opts.add(w)
            else:
                raise ShellError(f"{cmd.name}: unknown option {w!r}; usage: {cmd.usage}")
        if len(args) < cmd.min_args or (cmd.max_args is not None and len(args) > cmd.max_args):
            raise ShellError(f"{cmd.name}: wrong number of arguments; usage: {cmd.usage}")
        await cmd.handler(self, args, opts)

    # ---- completion --------------------------------------------------------------------------------
    async def complete(self, before: str, text: str) -> list[str]:
        """Tab-completion candidates for the word `text` typed after `before` (the line up to that word).

        Commands complete with a trailing space, folders with a trailing `/`; errors give no candidates.
        """
        try:
            words = shlex.split(before)
        except ValueError:
            return []
        if not words:
            return [f"{name} " for name in sorted(COMMANDS) if name.startswith(text)]
        cmd = COMMANDS.get(words[0])
        if cmd is None:
            return []
        if text.startswith("-"):
            return [f"{o} " for o in sorted(cmd.options) if o.startswith(text)]
        index = len([w for w in words[1:] if not w.startswith("-")])
        kind = cmd.kind_of(index)
        try:
            if kind == "command":
                return [f"{name} " for name in sorted(COMMANDS) if name.startswith(text)]
            if kind == "remote":
                return await self._complete_remote(text)
            if kind == "local":
                return await trio.to_thread.run_sync(self._complete_local, text)
        except (FsError, PeergosError, OSError, httpx.HTTPError):
            return []
        return []

    async def _complete_remote(self, text: str) -> list[str]:
        head, _, prefix = text.rpartition("/")
        head = f"{head}/" if "/" in text else ""
        if head == "/":
            home = self.ctx.username
            return [f"/{home}/"] if home.startswith(prefix) else []
        folder = self.resolve(head) if head else self.cwd
        entries = await self.ctx.ls(folder, include_hidden=prefix.startswith("."))
        out = [f"{head}{i.name}{'/' if i.is_dir else ' '}" for i in entries if i.name.startswith(prefix)]
        return out[:COMPLETION_LIMIT]

    def _complete_local(self, text: str) -> list[str]:
        head, _, prefix = text.rpartition("/")
        head = f"{head}/" if "/" in text else ""
        folder = self.local_path(head) if head else self.local_cwd
        out: list[str] = []
        with os.scandir(folder) as it:
            for entry in it:
                visible = prefix.startswith(".") or not entry.name.startswith(".")
                if visible and entry.name.startswith(prefix):
                    out.append(f"{head}{entry.name}{'/' if entry.is_dir() else ' '}")
                    if len(out) >= COMPLETION_LIMIT:
                        break
        return sorted(out)

    # ---- commands ----------------------------------------------------------------------------------
    async def cmd_help(self, args: list[str], opts: set[str]) -> None:
        if args:
            cmd = COMMANDS.get(args[0])
            if cmd is None:
                raise ShellError(f"unknown command {args[0]!r}")
            self.console.out(f"{cmd.usage}\n    {cmd.summary}")
            return
        width = max(len(c.usage) for c in _TABLE)
        for c in _TABLE:
            self.console.out(f"{c.usage.ljust(width)}  {c.summary}")

    async def cmd_exit(self, args: list[str], opts: set[str]) -> None:
        self.exited = True

    async def cmd_pwd(self, args: list[str], opts: set[str]) -> None:
        self.console.out(self.cwd)

    async def cmd_cd(self, args: list[str], opts: set[str]) -> None:
        target = self.resolve(args[0]) if args else self.ctx.home
        info = await self.ctx.stat(target)
        if not info.is_dir:
            raise NotADirectory(f"{target} is not a folder")
        self.cwd = target

    async def cmd_ls(self, args: list[str], opts: set[str]) -> None:
        paths = [self.resolve(a) for a in args] or [self.cwd]
        long = "-l" in opts
        for n, path in enumerate(paths):
            info = await self.ctx.stat(path)
            items = await self.ctx.ls(path, include_hidden="-a" in opts) if info.is_dir else [info]
            if len(paths) > 1:
                if n > 0:
                    self.console.out("")
                self.console.out(f"{path}:")
            for i in items:
                name = f"{i.name}/" if i.is_dir else i.name
                if long:
                    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(i.modified.seconds))
                    self.console.out(f"{'d' if i.is_dir else '-'} {i.size:>12} {when} {name}")
                else:
                    self.console.out(name)

    async def cmd_mkdir(self, args: list[str], opts: set[str]) -> None:
        for a in args:
            await self.ctx.mkdir(self.resolve(a), parents="-p" in opts)

    async def cmd_cat(self, args: list[str], opts: set[str]) -> None:
        for a in args:
            path = self.resolve(a)
            if (await self.ctx.stat(path)).is_dir:
                raise IsADirectory(f"{path} is a folder")
            reader = await self.ctx.open(path)
            await reader.stream(self.console.out_bytes)

    async def cmd_rm(self, args: list[str], opts: set[str]) -> None:
        for a in args:
            path = self.resolve(a)
            info = await self.ctx.stat(path)
            if info.is_dir and "-r" not in opts:
                raise IsADirectory(f"{path} is a folder: use rm -r to delete it with everything in it")
            await self.ctx.delete(path)
            if self.cwd == path or self.cwd.startswith(path + "/"):
                self.cwd = _parent(path)[0]

    async def cmd_mv(self, args: list[str], opts: set[str]) -> None:
        src, dst = self.resolve(args[0]), self.resolve(args[1])
        if src == dst:
            return
        src_parent, src_name = _parent(src)
        dest = await self._stat_or_none(dst)
        if dest is not None and dest.is_dir:
            await self.ctx.move(src, dst)
            moved_to = _join(dst, src_name)
        elif dest is not None:
            raise AlreadyExists(f"{dst} already exists")
        else:
            dst_parent, dst_name = _parent(dst)
            await self.ctx.stat(src)
            if dst_parent == src_parent:
                await self.ctx.rename(src, dst_name)
            else:
                folder = await self.ctx.stat(dst_parent)
                if not folder.is_dir:
                    raise NotADirectory(f"{dst_parent} is not a folder")
                if not await self.ctx.exists(_join(dst_parent, src_name)):
                    await self.ctx.move(src, dst_parent)
                    await self.ctx.rename(_join(dst_parent, src_name), dst_name)
                elif not await self.ctx.exists(_join(src_parent, dst_name)):
                    await self.ctx.rename(src, dst_name)
                    await self.ctx.move(_join(src_parent, dst_name), dst_parent)
                else:
                    raise AlreadyExists(f"cannot move {src} to {dst}: both names are taken")
            moved_to = dst
        if self.cwd == src or self.cwd.startswith(src + "/"):
            self.cwd = moved_to + self.cwd[len(src) :]

    async def cmd_cp(self, args: list[str], opts: set[str]) -> None:
        src, dst = self.resolve(args[0]), self.resolve(args[1])
        dest = await self._stat_or_none(dst)
        if dest is not None and dest.is_dir:
            await self.ctx.copy(src, dst)
        elif dest is not None:
            raise AlreadyExists(f"{dst} already exists")
        else:
            dst_parent, dst_name = _parent(dst)
            await self.ctx.copy(src, dst_parent, dst_name)

    async def cmd_space(self, args: list[str], opts: set[str]) -> None:
        used, quota = await self.ctx.usage(), await self.ctx.quota()
        share = f" ({100 * used / quota:.1f}%)" if quota > 0 else ""
        self.console.out(f"used {human_size(used)} of {human_size(quota)}{share}")
        self.console.out(f"used {used} bytes, quota {quota} bytes, free {max(0, quota - used)} bytes")

    async def cmd_passwd(self, args: list[str], opts: set[str]) -> None:
        old = await self._secret("Current password: ")
        new = await self._secret("New password: ")
        again = await self._secret("Repeat the new password: ")
        if new != again:
            raise ShellError("the new passwords do not match; the password is unchanged")
        if not new:
            raise ShellError("the new password is empty; the password is unchanged")
        if new == old:
            raise ShellError("the new password is the current one; the password is unchanged")
        await self.ctx.change_password(old, new)
        self.console.out("password changed")

    async def _secret(self, prompt: str) -> str:
        answer = await self.console.ask(prompt, secret=True)
        if answer is None:
            raise ShellError("no password given; the password is unchanged")
        return answer

    async def cmd_lpwd(self, args: list[str], opts: set[str]) -> None:
        self.console.out(str(self.local_cwd))

    async def cmd_lcd(self, args: list[str], opts: set[str]) -> None:
        target = self.local_path(args[0]) if args else Path.home()
        if await _local_kind(target) != "dir":
            raise ShellError(f"no such local folder: {args[0] if args else target}")
        self.local_cwd = target

    async def cmd_lls(self, args: list[str], opts: set[str]) -> None:
        target = self.local_path(args[0]) if args else self.local_cwd
        kind = await _local_kind(target)
        if kind is None:
            raise ShellError(f"no such local file or folder: {args[0] if args else target}")
        if kind != "dir":
            self.console.out(target.name)
            return
        for name, is_dir in await trio.to_thread.run_sync(_list_local, target):
            if "-a" in opts or not name.startswith("."):
                self.console.out(f"{name}/" if is_dir else name)

    # ---- put ---------------------------------------------------------------------------------------
    async def cmd_put(self, args: list[str], opts: set[str]) -> None:
        local = self.local_path(args[0])
        kind = await _local_kind(local)
        if kind is None:
            raise ShellError(f"no such local file or folder: {args[0]}")
        skip = "--skip-existing" in opts
        target = self.resolve(args[1]) if len(args) > 1 else self.cwd
        info = await self._stat_or_none(target)
        dest = _join(target, local.name) if info is not None and info.is_dir else target
        upload = _Transfer(self.console)
        try:
            if kind == "dir":
                await self._put_folder(local, dest, skip, upload)
            else:
                upload.total = (await trio.to_thread.run_sync(local.stat)).st_size
                await self._put_files(dest.rpartition("/")[0] or "/", [(dest, local)], skip, upload)
        finally:
            self.console.progress_done()
        skipped = f", skipped {upload.skipped} already there" if upload.skipped else ""
        self.console.out(
            f"uploaded {_plural(upload.files, 'file')} ({human_size(upload.bytes)}) to {dest}{skipped}"
        )

    async def _put_folder(self, local: Path, dest: str, skip: bool, t: _Transfer) -> None:
        plan = await trio.to_thread.run_sync(_walk, local)
        t.total = sum(size for _, files in plan for _, size in files)
        for rel, files in plan:
            folder = dest if not rel else _join(dest, rel)
            info = await self._stat_or_none(folder)
            if info is None:
                await self.ctx.mkdir(folder)
            elif not info.is_dir:
                raise AlreadyExists(f"{folder} is a file, not a folder")
            pairs = [(_join(folder, name), local / rel / name) for name, _ in files]
            await self._put_files(folder, pairs, skip, t, known_new=info is None)

    async def _put_files(
        self,
        folder: str,
        files: Sequence[tuple[str, Path]],
        skip: bool,
        t: _Transfer,
        *,
        known_new: bool = False,
    ) -> None:
        """Upload local files into one remote folder: small ones in batches, big ones one by one."""
        taken: set[str] = set()
        if not known_new:
            taken = {i.name for i in await self.ctx.ls(folder, include_hidden=True)}
        batch: list[tuple[str, Path, int]] = []
        batch_bytes = 0

        async def flush() -> None:
            nonlocal batch, batch_bytes
            if batch:
                t.label = batch[-1][0]
                await self.ctx.upload_files(folder, [(name, path) for name, path, _ in batch])
                t.committed(len(batch), batch_bytes)
                batch, batch_bytes = [], 0

        for remote, path in files:
            name = remote.rpartition("/")[2]
            size = (await trio.to_thread.run_sync(path.stat)).st_size
            if name in taken:
                if skip:
                    t.skip(size)
                    continue
                raise AlreadyExists(f"{remote} already exists (use put --skip-existing to leave it)")
            if size > CHUNK_SIZE:
                await flush()
                await self._put_big(remote, path, size, t)
                continue
            if len(batch) >= BATCH_FILES or batch_bytes + size > BATCH_BYTES:
                await flush()
            batch.append((name, path, size))
            batch_bytes += size
        await flush()

    async def _put_big(self, remote: str, path: Path, size: int, t: _Transfer) -> None:
        t.label = remote

        async def progress(p: UploadProgress) -> None:
            t.at(p.bytes_done)

        await self.ctx.upload(remote, path, progress=progress)
        t.committed(1, size)

    # ---- get ---------------------------------------------------------------------------------------
    async def cmd_get(self, args: list[str], opts: set[str]) -> None:
        remote = self.resolve(args[0])
        info = await self.ctx.stat(remote)
        local = self.local_path(args[1]) if len(args) > 1 else self.local_cwd
        if await _local_kind(local) == "dir":
            local = local / info.name
        skip = "--skip-existing" in opts
        t = _Transfer(self.console)
        try:
            if info.is_dir:
                await self._get_folder(remote, local, skip, t)
            else:
                t.total = info.size
                await self._get_file(info, local, skip, t)
        finally:
            self.console.progress_done()
        skipped = f", skipped {t.skipped} already there" if t.skipped else ""
        self.console.out(f"downloaded {_plural(t.files, 'file')} ({human_size(t.bytes)}) to {local}{skipped}")

    async def _get_folder(self, remote: str, local: Path, skip: bool, t: _Transfer) -> None:
        if await _local_kind(local) not in (None, "dir"):
            raise ShellError(f"{local} exists and is not a folder")
        await trio.to_thread.run_sync(lambda: local.mkdir(exist_ok=True))
        items = await self.ctx.ls(remote, include_hidden=True)
        t.total += sum(i.size for i in items if not i.is_dir)
        for i in items:
            if i.is_dir:
                await self._get_folder(i.path, local / i.name, skip, t)
            else:
                await self._get_file(i, local / i.name, skip, t)

    async def _get_file(self, info: FileInfo, local: Path, skip: bool, t: _Transfer) -> None:
        kind = await _local_kind(local)
        if kind is not None:
            if skip:
                t.skip(info.size)
                return
            if kind == "dir":
                raise ShellError(f"{local} is a local folder")
        t.label = info.path
        part = local.with_name(local.name + ".part")
        reader = await self.ctx.open(info.path)
        f: BinaryIO = await trio.to_thread.run_sync(_open_new, part)
        try:
            done = 0

            async def write(b: bytes) -> None:
                nonlocal done
                await trio.to_thread.run_sync(f.write, b)
                done += len(b)
                t.at(done)

            await reader.stream(write)
            await trio.to_thread.run_sync(f.close)
            await trio.to_thread.run_sync(os.replace, part, local)
        except BaseException:
            f.close()
            part.unlink(missing_ok=True)
            raise
        t.committed(1, info.size)


class _Transfer:
    """Counts of one `put`/`get` and the progress meter fed from them."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.files = 0
        self.bytes = 0
        self.skipped = 0
        self.skipped_bytes = 0
        self.total = 0
        self.label = ""

    def at(self, in_flight: int) -> None:
        """Report the meter with `in_flight` bytes of the current file moved so far."""
        done = self.bytes + self.skipped_bytes + in_flight
        self.console.progress(self.label, done, max(self.total, done))

    def committed(self, files: int, size: int) -> None:
        """`files` files of `size` bytes in all have arrived."""
        self.files += files
        self.bytes += size
        self.at(0)

    def skip(self, size: int) -> None:
        """A file of `size` bytes was already there."""
        self.skipped += 1
        self.skipped_bytes += size
        self.at(0)


async def _local_kind(path: Path) -> str | None:
    """`dir`, `file` (anything else that exists) or None, looked up in a worker thread."""

    def kind() -> str | None:
        if path.is_dir():
            return "dir"
        return "file" if path.exists() else None

    return await trio.to_thread.run_sync(kind)


def _list_local(folder: Path) -> list[tuple[str, bool]]:
    with os.scandir(folder) as it:
        return sorted((e.name, e.is_dir()) for e in it)


def _open_new(path: Path) -> BinaryIO:
    return path.open("wb")


def _walk(top: Path) -> list[tuple[str, list[tuple[str, int]]]]:
    """Folders under `top` (relative, top first, sorted) with their regular files and sizes."""
    out: list[tuple[str, list[tuple[str, int]]]] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=_raise):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        files: list[tuple[str, int]] = []
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            if stat_module.S_ISREG(st.st_mode):
                files.append((name, st.st_size))
        out.append(("" if rel == "." else rel.replace(os.sep, "/"), files))
    return out


def _raise(e: OSError) -> None:
    raise e


_TABLE: tuple[Command, ...] = (
    Command("help", "help [COMMAND]", "list the commands, or describe one", Shell.cmd_help, 0, 1,
            arg_kinds=("command",)),
    Command("ls", "ls [-a] [-l] [PATH...]", "list a folder (-a: hidden entries too, -l: sizes and dates)",
            Shell.cmd_ls, 0, None, frozenset({"-a", "-l"}), ("remote",)),
    Command("cd", "cd [PATH]", "change the remote folder (home without PATH)", Shell.cmd_cd, 0, 1,
            arg_kinds=("remote",)),
    Command("pwd", "pwd", "print the remote folder", Shell.cmd_pwd),
    Command("mkdir", "mkdir [-p] PATH...", "create folders (-p: with missing parents)",
            Shell.cmd_mkdir, 1, None, frozenset({"-p"}), ("remote",)),
    Command("put", "put [--skip-existing] LOCAL [REMOTE]",
            "upload a local file or folder (into REMOTE if it is a folder)", Shell.cmd_put, 1, 2,
            frozenset({"--skip-existing"}), ("local", "remote")),
    Command("get", "get [--skip-existing] REMOTE [LOCAL]",
            "download a file or folder (into LOCAL if it is a folder)", Shell.cmd_get, 1, 2,
            frozenset({"--skip-existing"}), ("remote", "local")),
    Command("cat", "cat PATH...", "write files to standard output", Shell.cmd_cat, 1, None,
            arg_kinds=("remote",)),
    Command("rm", "rm [-r] PATH...", "delete files (-r: folders with everything in them)",
            Shell.cmd_rm, 1, None, frozenset({"-r"}), ("remote",)),
    Command("mv", "mv SOURCE TARGET", "move or rename (into TARGET if it is a folder)", Shell.cmd_mv,
            2, 2, arg_kinds=("remote",)),
    Command("cp", "cp SOURCE TARGET", "copy a file or folder (into TARGET if it is a folder)",
            Shell.cmd_cp, 2, 2, arg_kinds=("remote",)),
    Command("space", "space", "show used space and quota", Shell.cmd_space),
    Command("passwd", "passwd", "change the password", Shell.cmd_passwd),
    Command("lls", "lls [-a] [PATH]", "list a local folder", Shell.cmd_lls, 0, 1, frozenset({"-a"}),
            ("local",)),
    Command("lcd", "lcd [PATH]", "change the local folder", Shell.cmd_lcd, 0, 1, arg_kinds=("local",)),
    Command("lpwd", "lpwd", "print the local folder", Shell.cmd_lpwd),
    Command("exit", "exit", "leave the shell (also quit, bye, or end of input)", Shell.cmd_exit),
)  # fmt: skip

COMMANDS: dict[str, Command] = {c.name: c for c in _TABLE}
"""Every command by name (with the aliases `quit` and `bye` of `exit`)."""
COMMANDS["quit"] = COMMANDS["bye"] = COMMANDS["exit"]

__all__ = ["COMMANDS", "Command", "Console", "Shell", "ShellError", "human_size"]
