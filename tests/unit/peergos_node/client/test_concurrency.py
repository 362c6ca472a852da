"""Concurrent writers (spec/peergos.md §4.4): two sessions of one user racing on a real in-process home
server. A commit is held back (`WriteSynchronizer.before_commit`) until the other session has committed,
so the pointer CAS fails deterministically and the 3-way merge runs."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from peergos_node.client.errors import ConcurrentModificationError
from peergos_node.client.nodes import load_node
from peergos_node.client.synchronizer import Snapshot, WriteBatch, merge_children
from peergos_node.client.user_context import UserContext
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.relative import NamedRelativeCapability, RelativeCapability
from peergos_node.mutable.pointer_update import PointerUpdate
from tests.helpers.fs import SpyTransport, fs_user


def interleave(ctx: UserContext, first: Callable[[], Awaitable[object]]) -> list[int]:
    """Make `ctx`'s next commit wait until `first` (another session's write) has completed."""
    calls: list[int] = []

    async def hook(owner: PublicKeyHash, writer: PublicKeyHash) -> None:
        calls.append(1)
        if len(calls) == 1:
            await first()

    ctx.sync.before_commit = hook
    return calls


async def test_different_entries_of_one_folder_merge(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        a = u.ctx
        await a.mkdir("/alice/docs")
        await a.upload("/alice/docs/keep.txt", b"keep")
        b = await u.login_again()
        async with b:
            interleave(a, lambda: b.upload("/alice/docs/from-b.txt", b"bee"))
            await a.upload("/alice/docs/from-a.txt", b"aye")
            assert a.net.stats.merges == 1
            interleave(a, lambda: b.mkdir("/alice/docs/dir-b"))
            await a.mkdir("/alice/docs/dir-a")
            interleave(a, lambda: b.rename("/alice/docs/keep.txt", "kept.txt"))
            await a.delete("/alice/docs/from-b.txt")
            interleave(b, lambda: a.upload("/alice/other.txt", b"o"))  # different folders merge trivially
            await b.upload("/alice/docs/late.txt", b"l")
            assert a.net.stats.merges == 3 and b.net.stats.merges == 1
            for ctx in (a, b):
                names = [i.name for i in await ctx.ls("/alice/docs")]
                assert names == ["dir-a", "dir-b", "from-a.txt", "kept.txt", "late.txt"]
            assert await b.read("/alice/docs/from-a.txt") == b"aye"
            assert await a.read("/alice/docs/kept.txt") == b"keep"


async def test_conflicting_edits_raise_and_write_nothing(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        a = u.ctx
        await a.mkdir("/alice/docs")
        await a.upload("/alice/docs/f.txt", b"original")
        b = await u.login_again()
        async with b:
            storage = u.home.server.storage
            fs_writer = a.session.entries[0].cap.writer

            def pointer() -> bytes | None:
                return storage.get_pointer(fs_writer)

            # the same new name on both sides
            interleave(a, lambda: b.upload("/alice/docs/x.txt", b"from b"))
            with pytest.raises(ConcurrentModificationError, match=r"x\.txt"):
                await a.upload("/alice/docs/x.txt", b"from a")
            assert await a.read("/alice/docs/x.txt") == b"from b"

            # both rewrite the same chunk of one file: a's commit is refused, nothing of it lands
            after_b: list[bytes | None] = []

            async def b_writes() -> None:
                await b.write_at("/alice/docs/f.txt", 0, b"B")
                after_b.append(pointer())

            interleave(a, b_writes)
            with pytest.raises(ConcurrentModificationError, match="same file"):
                await a.write_at("/alice/docs/f.txt", 1, b"A")
            assert after_b and pointer() == after_b[0]
            assert await a.read("/alice/docs/f.txt") == b"Briginal"

            # a folder removed on one side and changed on the other
            await a.mkdir("/alice/docs/sub")
            before = pointer()
            interleave(a, lambda: b.delete("/alice/docs/sub"))
            with pytest.raises(ConcurrentModificationError):
                await a.upload("/alice/docs/sub/new.txt", b"n")
            assert pointer() != before  # b's delete is committed ...
            assert not await a.exists("/alice/docs/sub")  # ... and nothing of a's upload
            a.sync.before_commit = None
            await a.upload("/alice/docs/after.txt", b"fine")  # the client carries on normally


async def test_racing_sessions_and_one_session_running_writes_at_once(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        a = u.ctx
        await a.mkdir("/alice/race")
        b = await u.login_again()
        async with b:

            async def writes(ctx: UserContext, tag: str) -> None:
                for i in range(6):
                    await ctx.upload(f"/alice/race/{tag}{i}", tag.encode() * (i + 1))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writes, a, "a")
                nursery.start_soon(writes, b, "b")
            names = [i.name for i in await a.ls("/alice/race")]
            assert names == sorted([f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)])
            assert await a.read("/alice/race/b5") == b"b" * 6

        # one session's own concurrent writes are serialised per writer: no merge needed; reads running
        # meanwhile never mistake a commit of our own overtaking their request for a rollback
        merges = a.net.stats.merges
        listings: list[int] = []

        async def keep_listing(done: trio.Event) -> None:
            while not done.is_set():
                listings.append(len(await a.ls("/alice/race")))

        done = trio.Event()
        async with trio.open_nursery() as readers:
            readers.start_soon(keep_listing, done)
            async with trio.open_nursery() as nursery:
                for i in range(8):
                    nursery.start_soon(a.mkdir, f"/alice/race/d{i}")
            done.set()
        assert a.net.stats.merges == merges
        assert len(await a.ls("/alice/race")) == 12 + 8
        assert listings and listings == sorted(listings)


def _link(name: str, key: int) -> NamedRelativeCapability:
    cap = RelativeCapability(bytes([key]) * 32, SymmetricKey(bytes([key]) * 32))
    return NamedRelativeCapability(name, cap, False, "", 0)


def test_merge_children_by_name() -> None:
    x, y, z = _link("x", 1), _link("y", 2), _link("z", 3)
    base = [x, y]
    assert merge_children(base, [x, y, z], [x]) == [x, z]  # we added z, they removed y
    assert merge_children(base, [y], [x, y, _link("w", 4)]) == [y, _link("w", 4)]
    assert merge_children(base, [_link("x", 9), y], [x]) == [_link("x", 9)]
    assert merge_children(base, [x, y, z], [x, y, z]) == [x, y, z]  # the same change on both sides
    with pytest.raises(ConcurrentModificationError, match="'x'"):
        merge_children(base, [_link("x", 8), y], [_link("x", 9), y])
    with pytest.raises(ConcurrentModificationError, match="'z'"):
        merge_children(base, [x, y, z], [x, y, _link("z", 7)])
    with pytest.raises(ConcurrentModificationError, match="'y'"):
        merge_children(base, [x], [x, _link("y", 5)])


async def test_several_writers_commit_with_one_set_pointers(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        owner = ctx.owner
        fs_writer = ctx.session.entries[0].cap.writer
        identity = SigningPrivateKeyAndPublicHash.of(ctx.session.identity)
        root = await ctx.sync.net.writer_data(owner, fs_writer)
        fs_signer_node = await _root_signer(ctx)
        ident_before = await ctx.net.writer_data(owner, owner)
        some_block = root.cid
        assert some_block is not None
        spy: SpyTransport = u.spy
        spy.reset()

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            for batch in batches.values():
                batch.put_existing(os.urandom(32), some_block)

        await ctx.sync.apply_multi(owner, [identity, fs_signer_node], op)
        assert spy.counts["/peergos/v0/mutable/setPointers"] == 1
        assert spy.counts["/peergos/v0/mutable/setPointer"] == 0
        ident_after = await ctx.net.writer_data(owner, owner)
        fs_after = await ctx.net.writer_data(owner, fs_writer)
        assert ident_after.sequence == PointerUpdate.next_sequence(ident_before.sequence)
        assert fs_after.sequence == PointerUpdate.next_sequence(root.sequence)
        assert ident_after.data.algorithm == ident_before.data.algorithm
        async with await u.login_again() as again:  # the identity's WriterData still serves logins
            assert await again.ls("/alice") == []


async def _root_signer(ctx: UserContext) -> SigningPrivateKeyAndPublicHash:
    root = await load_node(Snapshot(ctx.net), ctx.session.entries[0].cap)
    assert root is not None and root.signer is not None
    return root.signer
