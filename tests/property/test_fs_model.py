"""Model test of the filesystem client: random operation sequences against a reference model (issue 6
item 7; spec/peergos.md §6.5, §6.6; Java `peergos.server.tests.simulation.Simulator`).

Theory of operation
-------------------
A real home server (SQLite, block store, HTTP on loopback) and a signed-up user; `OpGenerator`
(tests/helpers/fs_model.py) draws operations from `random.Random(seed)` and each one runs on the client
(`UserContext`) and on `FsModel`. After **every** step:

- both sides must agree on the outcome: the same result value, or the same error class — and a failed
  operation must change nothing (the model is transactional; the client's tree is compared below);
- the client's whole tree must equal the model's names, kinds, sizes and hidden flags, system folders
  included (`.transactions` must be empty once an upload has finished). Per step the tree is read through
  one snapshot (one pointer read; the nodes `ls` reads); every `FULL_EVERY` steps with `ls` itself,
  folder by folder;
- every file the operation wrote (for a folder copy or move, every file below it) is read back in full.

Every `FULL_EVERY` steps and at the end every file is read back; every `FRESH_LOGIN_EVERY` steps a fresh
login (another device, nothing cached) must see the same tree and contents. About one operation in ten is
made through a second long-lived session, so each session must also see the other's commits (§4.4).

Like the Java `Simulator`, the reference is a trivially correct in-memory filesystem, and the walk
compares the two trees; unlike it, failures are part of the sequence (name clashes, illegal names, moves
into a descendant, paths below a file), since the error semantics are part of the contract.

A failure message names the seed, the step and the last operations, so the run can be repeated with
`run_model(seed, ops)` on the same seed.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from peergos_node.client.errors import (
    AlreadyExists,
    FsError,
    IllegalName,
    InvalidMove,
    IsADirectory,
    NotADirectory,
)
from peergos_node.client.nodes import child_cap, list_entries, load_nodes
from peergos_node.client.synchronizer import Snapshot
from peergos_node.client.user_context import FileInfo, UserContext
from tests.helpers.fs import FsUser, fs_user
from tests.helpers.fs_model import FsModel, Info, MFile, Op, OpGenerator, apply_to_model

CI_SEED = 20261128
CI_OPS = 520
SLOW_SEEDS = (1, 7, 42, 1234, 99991)
SLOW_OPS = 1000
FULL_EVERY = 50
FRESH_LOGIN_EVERY = 130
TAIL = 30


def _info(i: FileInfo) -> Info:
    return Info(i.path, i.name, i.is_dir, i.size, i.is_hidden)


async def apply_to_client(ctx: UserContext, op: Op) -> object:
    """Run `op` on the client; returns a result comparable with the model's."""
    a = op.args
    match op.kind:
        case "mkdir":
            return _info(await ctx.mkdir(str(a[0]), parents=bool(a[1]), hidden=bool(a[2])))
        case "upload":
            assert isinstance(a[1], bytes)
            return _info(await ctx.upload(str(a[0]), a[1], overwrite=bool(a[2])))
        case "upload_files":
            assert isinstance(a[1], tuple)
            files = [(str(n), bytes(d)) for n, d in a[1]]
            return tuple(_info(i) for i in await ctx.upload_files(str(a[0]), files, overwrite=bool(a[2])))
        case "download":
            out = io.BytesIO()
            n = await ctx.download(str(a[0]), out)
            assert n == len(out.getvalue()), f"download reported {n} bytes, wrote {len(out.getvalue())}"
            return out.getvalue()
        case "read":
            assert isinstance(a[1], int) and isinstance(a[2], int)
            return await ctx.read(str(a[0]), a[1], a[2])
        case "open_read":
            assert isinstance(a[1], int) and isinstance(a[2], int) and isinstance(a[3], tuple)
            reader = await ctx.open(str(a[0]))
            await reader.seek(a[1], a[2])
            return tuple([await reader.read(n) for n in a[3]])
        case "write_at":
            assert isinstance(a[1], int) and isinstance(a[2], bytes)
            return _info(await ctx.write_at(str(a[0]), a[1], a[2]))
        case "append":
            assert isinstance(a[1], bytes)
            return _info(await ctx.append(str(a[0]), a[1]))
        case "truncate":
            assert isinstance(a[1], int)
            return _info(await ctx.truncate(str(a[0]), a[1]))
        case "rename":
            return _info(await ctx.rename(str(a[0]), str(a[1])))
        case "move":
            return _info(await ctx.move(str(a[0]), str(a[1])))
        case "copy":
            return _info(await ctx.copy(str(a[0]), str(a[1]), None if a[2] is None else str(a[2])))
        case "delete":
            await ctx.delete(str(a[0]))
            return None
        case "ls":
            return tuple(_info(i) for i in await ctx.ls(str(a[0]), include_hidden=bool(a[1])))
        case "stat":
            return _info(await ctx.stat(str(a[0])))
        case "exists":
            return await ctx.exists(str(a[0]))
    raise AssertionError(f"unknown op {op.kind}")


async def _outcome(call: Awaitable[object]) -> tuple[str, object]:
    try:
        return "ok", await call
    except (FsError, ValueError) as e:
        return "error", type(e).__name__


def _outcome_model(model: FsModel, op: Op) -> tuple[str, object]:
    try:
        return "ok", apply_to_model(model, op)
    except (FsError, ValueError) as e:
        return "error", type(e).__name__


def _short(v: object) -> str:
    if isinstance(v, bytes) and len(v) > 16:
        return f"<{len(v)} bytes {hashlib.sha256(v).hexdigest()[:8]}>"
    if isinstance(v, tuple) and any(isinstance(x, bytes) for x in v):
        return "(" + ", ".join(_short(x) for x in v) + ")"
    s = repr(v)
    return s if len(s) < 400 else s[:200] + " … " + s[-150:]


async def client_listing(ctx: UserContext, home: str) -> dict[str, Info]:
    """Every entry below `home` (hidden ones too), by path, walking with `ls`."""
    out: dict[str, Info] = {}
    todo = [home]
    while todo:
        for i in await ctx.ls(todo.pop(), include_hidden=True):
            out[i.path] = _info(i)
            if i.is_dir:
                todo.append(i.path)
    return out


async def snapshot_listing(ctx: UserContext, home: str) -> dict[str, Info]:
    """The same as `client_listing`, read through one snapshot (one pointer read for the whole walk, so
    it is cheap enough for every step); `ls` itself is checked by `client_listing` periodically."""
    snap = Snapshot(ctx.net)
    out: dict[str, Info] = {}
    todo = [await ctx._dir(snap, home)]
    paths = {id(todo[0]): home}
    while todo:
        folder = todo.pop()
        base = paths[id(folder)]
        entries = await list_entries(snap, folder)
        nodes = await load_nodes(snap, [child_cap(e) for e in entries], folder.signer)
        for e, n in zip(entries, nodes, strict=True):
            if n is None:
                raise AssertionError(f"{base}/{e.name} is listed but its node is missing")
            info = _info(FileInfo.of(f"{base}/{e.name}", n))
            out[info.path] = info
            if n.is_dir:
                paths[id(n)] = info.path
                todo.append(n)
    return out


class Mismatch(AssertionError):
    pass


class Runner:
    """Drives one seeded run (see the module docstring)."""

    def __init__(self, u: FsUser, other: UserContext, seed: int, ops: int) -> None:
        self.u = u
        self.other = other
        self.seed = seed
        self.ops = ops
        self.model = FsModel(u.ctx.username)
        self.gen = OpGenerator(self.model, random.Random(seed))
        self.log: deque[str] = deque(maxlen=TAIL)
        self.step = 0
        self.counts: dict[str, int] = {}
        self.errors = 0

    def fail(self, what: str) -> Mismatch:
        tail = "\n".join(f"  {line}" for line in self.log)
        return Mismatch(
            f"fs model mismatch, seed={self.seed} step={self.step} (of {self.ops}): {what}\n"
            f"last {len(self.log)} operations (newest last):\n{tail}"
        )

    async def compare_tree(self, ctx: UserContext, who: str, quick: bool = False) -> None:
        expected = self.model.listing()
        walk = snapshot_listing if quick else client_listing
        try:
            got = await walk(ctx, self.model.home)
        except AssertionError as e:
            if isinstance(e, Mismatch):
                raise
            raise self.fail(f"{who}: {e}") from e
        if got != expected:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            differ = sorted(p for p in set(got) & set(expected) if got[p] != expected[p])
            details = [f"missing {missing[:10]}", f"unexpected {extra[:10]}"]
            details += [f"{p}: client {got[p]} model {expected[p]}" for p in differ[:10]]
            raise self.fail(f"{who}: trees differ: " + "; ".join(details))

    async def compare_files(self, ctx: UserContext, paths: list[str], who: str) -> None:
        files = self.model.files()
        for p in paths:
            data = await ctx.read(p)
            if data != files[p]:
                diff = next((i for i, (x, y) in enumerate(zip(data, files[p], strict=False)) if x != y), None)
                raise self.fail(
                    f"{who}: content of {p} differs: client {len(data)} bytes, model {len(files[p])} bytes, "
                    f"first difference at {diff}"
                )

    async def step_once(self) -> None:
        op = self.gen.next()
        self.log.append(f"#{self.step} {op}")
        ctx = self.other if op.other else self.u.ctx
        before = self.model.listing()
        expected = _outcome_model(self.model, op)
        got = await _outcome(apply_to_client(ctx, op))
        self.log[-1] += f" -> {_short(expected[1]) if expected[0] == 'ok' else expected[1]}"
        self.counts[op.label] = self.counts.get(op.label, 0) + 1
        if expected[0] == "error":
            self.errors += 1
            assert self.model.listing() == before, "the model changed on an error"
        if got != expected:
            raise self.fail(f"{op}: client {_short(got)}, model {_short(expected)}")
        await self.compare_tree(self.u.ctx, "session", quick=True)
        touched = [f for t in self.model.touched for f in self.model.files_below(t)]
        await self.compare_files(self.u.ctx, touched, "session")

    async def check_everything(self, ctx: UserContext, who: str) -> None:
        await self.compare_tree(ctx, who)
        await self.compare_files(ctx, sorted(self.model.files()), who)

    async def run(self) -> None:
        await self.check_everything(self.u.ctx, "session")
        for step in range(1, self.ops + 1):
            self.step = step
            await self.step_once()
            if self.step % FULL_EVERY == 0:
                await self.check_everything(self.u.ctx, "session")
                await self.compare_tree(self.other, "second session")
            if self.step % FRESH_LOGIN_EVERY == 0:
                async with await self.u.login_again() as fresh:
                    await self.check_everything(fresh, "fresh login")
        await self.check_everything(self.u.ctx, "session")
        await self.check_everything(self.other, "second session")
        async with await self.u.login_again() as fresh:
            await self.check_everything(fresh, "fresh login")


async def run_model(tmp_path: Path, seed: int, ops: int) -> Runner:
    """Run `ops` random operations from `seed`; raises Mismatch on the first difference."""
    async with fs_user(tmp_path) as u, await u.login_again() as other:
        runner = Runner(u, other, seed, ops)
        await runner.run()
        return runner


def _summary(r: Runner, seconds: float) -> str:
    files = [n for _, n in r.model.walk() if isinstance(n, MFile)]
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()))
    return (
        f"seed {r.seed}: {r.ops} ops ({r.errors} expected errors) in {seconds:.1f} s; "
        f"final tree {len(list(r.model.walk()))} entries, {len(files)} files, "
        f"{r.model.total_bytes()} bytes; {kinds}"
    )


async def test_fs_model_fixed_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    runner = await run_model(tmp_path, CI_SEED, CI_OPS)
    assert runner.step == CI_OPS
    # the generator must reach the interesting cases, or the test proves little
    assert runner.errors > CI_OPS // 12
    assert all(runner.counts.get(k, 0) > 0 for k in OpGenerator.WEIGHTS), runner.counts
    with capsys.disabled():
        print("\n" + _summary(runner, time.monotonic() - start))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
async def test_fs_model_more_seeds(tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    runner = await run_model(tmp_path, seed, SLOW_OPS)
    assert runner.step == SLOW_OPS
    with capsys.disabled():
        print("\n" + _summary(runner, time.monotonic() - start))


def test_model_agrees_with_itself_on_a_replayed_sequence() -> None:
    """The generator is deterministic for a seed (so a failure is reproducible)."""

    def ops(seed: int) -> list[str]:
        model = FsModel("alice")
        gen = OpGenerator(model, random.Random(seed))
        out = []
        for _ in range(300):
            op = gen.next()
            out.append(str(op))
            try:
                apply_to_model(model, op)
            except (FsError, ValueError):
                pass
        return out

    assert ops(5) == ops(5)
    assert ops(5) != ops(6)


def test_model_semantics_spot_checks() -> None:
    """A few hand-written expectations of the model itself (it is the oracle, so it gets tests too)."""

    m = FsModel("alice")
    m.mkdir("/alice/a/b", parents=True)
    m.upload("a/f", b"0123456789")
    assert m.write_at("/alice/a/f", 12, b"!").size == 13
    assert m.read("/alice/a/f") == b"0123456789\x00\x00!"
    assert m.truncate("/alice/a/f", 3).size == 3
    assert m.open_read("/alice/a/f", -2, io.SEEK_END, (1, -1, 5)) == (b"1", b"2", b"")
    failing: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: m.mkdir("/alice/a"), AlreadyExists),
        (lambda: m.mkdir("/alice/a/f/x"), NotADirectory),
        (lambda: m.mkdir("/alice/a/" + "n" * 256), IllegalName),
        (lambda: m.move("/alice/a", "/alice/a/b"), InvalidMove),
        (lambda: m.rename("/alice", "x"), InvalidMove),
        (lambda: m.upload("/alice/a/b", b"", True), IsADirectory),
        (lambda: m.mkdir("/alice/x/" + "n" * 256 + "/y", parents=True), IllegalName),
    ]
    for call, err in failing:
        before = m.listing()
        with pytest.raises(err):
            call()
        assert m.listing() == before
    m.copy("/alice/a", "/alice", "c")
    m.write_at("/alice/c/f", 0, b"X")
    assert m.read("/alice/a/f") == b"012" and m.read("/alice/c/f") == b"X12"
    m.mkdir("/alice/h", hidden=True)
    assert [i.name for i in m.ls("/alice")] == ["a", "c"]
    assert [i.name for i in m.ls("/alice", include_hidden=True)] == [".capabilitycache", ".transactions",
                                                                     "a", "c", "h", "shared"]  # fmt: skip
