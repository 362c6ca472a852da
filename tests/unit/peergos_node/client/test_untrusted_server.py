"""A malicious or broken server cannot make the client read forged data or commit anything built on it
(spec/peergos.md §11.5). The server is real; a transport between it and the client alters answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.client.errors import PointerRollback, TamperedData
from tests.helpers.fs import SpyTransport, flip_byte, fs_user


async def test_tampered_blocks_and_proofs_are_detected(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        await u.ctx.mkdir("/alice/docs")
        content = bytes(range(256)) * 400  # 100 KiB: stored as fragments
        await u.ctx.upload("/alice/docs/f.bin", content)
        spy = SpyTransport()
        ctx = await u.login_again(spy)
        async with ctx:
            # fragments with a flipped byte
            spy.rewrite = lambda path, q, body: (
                flip_byte(body) if path == "/api/v0/block/get" and body else None
            )
            with pytest.raises(TamperedData, match="does not match its hash"):
                await ctx.read("/alice/docs/f.bin")
            # a withheld block
            spy.rewrite = lambda path, q, body: b"" if path == "/api/v0/block/get" else None
            with pytest.raises(TamperedData, match="does not have block"):
                await ctx.read("/alice/docs/f.bin")

            # a CHAMP proof whose blocks were altered
            def bad_proof(path: str, q: dict[str, list[str]], body: bytes) -> bytes | None:
                if path != "/api/v0/champ/get/bulk":
                    return None
                return dag_cbor.encode([flip_byte(b, 10) for b in dag_cbor.decode(body)])

            ctx.net.clear_caches()
            spy.rewrite = bad_proof
            with pytest.raises(TamperedData):
                await ctx.stat("/alice/docs/f.bin")
            # a proof that omits the path
            spy.rewrite = lambda path, q, body: (
                dag_cbor.encode([]) if path == "/api/v0/champ/get/bulk" else None
            )
            with pytest.raises(TamperedData, match="proof"):
                await ctx.stat("/alice/docs/f.bin")

            # nothing is written on top of what a lying server says
            fs_writer = ctx.session.entries[0].cap.writer
            storage = u.home.server.storage
            before = storage.get_pointer(fs_writer)
            spy.rewrite = bad_proof
            with pytest.raises(TamperedData):
                await ctx.upload("/alice/docs/new.txt", b"x")
            with pytest.raises(TamperedData):
                await ctx.mkdir("/alice/docs/new")
            assert storage.get_pointer(fs_writer) == before
            spy.rewrite = None
            assert await ctx.read("/alice/docs/f.bin") == content  # an honest answer reads fine again


async def test_forged_and_replayed_pointers_are_refused(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        spy = SpyTransport()
        ctx = await u.login_again(spy)
        async with ctx:
            fs_writer = str(ctx.session.entries[0].cap.writer)
            storage = u.home.server.storage
            old_pointers: list[bytes] = []

            def record(path: str, q: dict[str, list[str]], body: bytes) -> bytes | None:
                if path == "/peergos/v0/mutable/getPointer" and q.get("writer") == [fs_writer]:
                    old_pointers.append(body)
                return None

            spy.rewrite = record
            await ctx.ls("/alice")
            spy.rewrite = None
            await ctx.mkdir("/alice/one")
            await u.ctx.mkdir("/alice/two")  # another device moves the pointer on too
            assert [i.name for i in await ctx.ls("/alice")] == ["one", "two"]

            # replaying the older signed pointer (a valid signature, a lower sequence) is a rollback
            def replay(path: str, q: dict[str, list[str]], body: bytes) -> bytes | None:
                if path == "/peergos/v0/mutable/getPointer" and q.get("writer") == [fs_writer]:
                    return old_pointers[0]
                return None

            spy.rewrite = replay
            with pytest.raises(PointerRollback):
                await ctx.ls("/alice")
            before = storage.get_pointer(ctx.session.entries[0].cap.writer)
            with pytest.raises(PointerRollback):
                await ctx.mkdir("/alice/three")
            assert storage.get_pointer(ctx.session.entries[0].cap.writer) == before

            # claiming there is no pointer any more is a rollback too; a forged signature is tampering
            spy.rewrite = lambda path, q, body: b"" if path == "/peergos/v0/mutable/getPointer" else None
            with pytest.raises(PointerRollback):
                await ctx.ls("/alice")
            spy.rewrite = lambda path, q, body: (
                flip_byte(body, 5) if path == "/peergos/v0/mutable/getPointer" else None
            )
            with pytest.raises(TamperedData, match="does not verify"):
                await ctx.ls("/alice")
            spy.rewrite = None
            assert [i.name for i in await ctx.ls("/alice")] == ["one", "two"]


async def test_tampered_or_withheld_fragments_of_a_multi_fragment_chunk_are_detected(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        content = bytes(range(256)) * (10 * 1024)  # 2.5 MiB: one chunk of three fragments
        await u.ctx.upload("/alice/big.bin", content)
        spy = SpyTransport()
        ctx = await u.login_again(spy)
        async with ctx:
            assert await ctx.read("/alice/big.bin") == content  # fetched as a batch of fragments
            for tamper, message in [(flip_byte, "does not match its hash"), (lambda b: b"", "does not have")]:
                ctx.net.clear_caches()
                seen: list[int] = []

                def rewrite(
                    path: str,
                    q: dict[str, list[str]],
                    body: bytes,
                    seen: list[int] = seen,
                    tamper: Callable[[bytes], bytes] = tamper,
                ) -> bytes | None:
                    if path != "/api/v0/block/get" or len(body) < 512 * 1024:
                        return None
                    seen.append(len(body))
                    return tamper(body) if len(seen) == 2 else None  # only the second big fragment

                spy.rewrite = rewrite
                with pytest.raises(TamperedData, match=message):
                    await ctx.read("/alice/big.bin")
                spy.rewrite = None
