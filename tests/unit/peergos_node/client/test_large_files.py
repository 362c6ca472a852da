"""Multi-chunk files against a real in-process home server (spec/peergos.md §6.5, §8, §13): a 12 MiB round
trip, seeking without reading earlier chunks, edits across chunk boundaries, interrupted uploads resumed
or cleaned up, and quota exhaustion mid-upload."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from peergos_node.client.errors import StorageQuotaExceeded, UploadNotResumable
from peergos_node.client.uploads import UploadProgress
from peergos_node.cryptree.properties import CHUNK_SIZE
from tests.helpers.fs import SpyTransport, fs_user

MIB = 1024 * 1024


def data_of(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Interrupt(Exception):
    """Raised by a progress callback to stop an upload part way."""


def stop_after(chunks: int, seen: list[UploadProgress]):  # type: ignore[no-untyped-def]
    async def progress(p: UploadProgress) -> None:
        seen.append(p)
        if p.chunks_done >= chunks:
            raise Interrupt()

    return progress


async def test_12mib_round_trip_and_seeking_reads_only_the_needed_chunk(tmp_path: Path) -> None:
    data = data_of(12 * MIB, 1)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        events: list[UploadProgress] = []

        async def progress(p: UploadProgress) -> None:
            events.append(p)

        info = await ctx.upload("/alice/big.bin", local, progress=progress)
        assert info.size == len(data)
        assert [(e.chunks_done, e.bytes_done) for e in events] == [
            (1, CHUNK_SIZE),
            (2, 2 * CHUNK_SIZE),
            (3, len(data)),
        ]
        assert await ctx.pending_uploads() == []
        assert await ctx.ls("/alice/.transactions", include_hidden=True) == []
        out = tmp_path / "out.bin"
        assert await ctx.download("/alice/big.bin", out) == len(data)
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()

        # a fresh session (empty caches) seeks to 11 MiB: one chunk's fragments are fetched, no more
        spy = SpyTransport()
        other = await u.login_again(spy)
        async with other:
            reader = await other.open("/alice/big.bin")
            spy.reset()
            await reader.seek(11 * MIB)
            assert await reader.read(1000) == data[11 * MIB : 11 * MIB + 1000]
            assert reader.chunks_fetched == 1
            assert spy.counts["/api/v0/block/get"] == 2, spy.counts  # chunk 2 holds 2 MiB: two fragments
            assert spy.counts["/api/v0/champ/get/bulk"] == 1
            # reading across a chunk boundary
            await reader.seek(CHUNK_SIZE - 10)
            assert await reader.read(20) == data[CHUNK_SIZE - 10 : CHUNK_SIZE + 10]
            assert reader.tell() == CHUNK_SIZE + 10
            assert await reader.read(-1) == data[CHUNK_SIZE + 10 :]
            assert await reader.read(10) == b""

        # edits across chunk boundaries, growing into a new chunk, and shrinking (chunks leave the tree)
        model = bytearray(data)
        await ctx.write_at("/alice/big.bin", CHUNK_SIZE - 3, b"ABCDEF")
        model[CHUNK_SIZE - 3 : CHUNK_SIZE + 3] = b"ABCDEF"
        tail = data_of(4 * MIB, 2)
        await ctx.append("/alice/big.bin", tail)
        model += tail
        assert (await ctx.stat("/alice/big.bin")).size == 16 * MIB
        reader = await ctx.open("/alice/big.bin")
        await reader.seek(CHUNK_SIZE - 5)
        assert await reader.read(10) == bytes(model[CHUNK_SIZE - 5 : CHUNK_SIZE + 5])
        await reader.seek(12 * MIB - 2)
        assert await reader.read(4) == bytes(model[12 * MIB - 2 : 12 * MIB + 2])
        before = u.usage()
        await ctx.truncate("/alice/big.bin", 3 * MIB + 7)
        del model[3 * MIB + 7 :]
        assert u.usage() < before - 12 * MIB
        assert await ctx.read("/alice/big.bin") == bytes(model)


async def test_interrupted_uploads_resume_from_the_first_missing_chunk_or_are_cleaned_up(
    tmp_path: Path,
) -> None:
    data = data_of(3 * CHUNK_SIZE + 1000, 3)
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        baseline = u.usage()
        seen: list[UploadProgress] = []
        with pytest.raises(Interrupt):
            await ctx.upload("/alice/f.bin", data, progress=stop_after(2, seen))
        assert not await ctx.exists("/alice/f.bin")
        [record] = await ctx.pending_uploads()
        assert (record.path, record.size, record.chunk_count) == ("/alice/f.bin", len(data), 4)
        assert await ctx.uploaded_chunks(record) == 2
        assert u.usage() > baseline + 2 * CHUNK_SIZE  # the committed chunks count against the quota

        # another device resumes it: only the missing chunks are uploaded
        other = await u.login_again()
        async with other:
            resumed: list[UploadProgress] = []

            async def progress(p: UploadProgress) -> None:
                resumed.append(p)

            with pytest.raises(UploadNotResumable):
                await other.resume_uploads(lambda r: data_of(len(data), 99))
            infos = await other.resume_uploads(
                lambda r: data if r.path == "/alice/f.bin" else None, progress=progress
            )
            assert [i.path for i in infos] == ["/alice/f.bin"]
            assert [p.chunks_done for p in resumed] == [3, 4]
            assert await other.pending_uploads() == []
        assert await ctx.read("/alice/f.bin") == data

        # a second interrupted upload is cleaned up: its chunks leave the tree, usage drops, GC frees them
        with_file = u.usage()
        with pytest.raises(Interrupt):
            await ctx.upload("/alice/g.bin", data_of(2 * CHUNK_SIZE + 5, 4), progress=stop_after(1, []))
        assert u.usage() > with_file + CHUNK_SIZE
        assert await ctx.cleanup_failed_uploads() == ["/alice/g.bin"]
        assert await ctx.pending_uploads() == []
        assert with_file - 1024 < u.usage() < with_file + 1024
        assert u.home.server.storage.collect_garbage().deleted >= 5  # the stored chunk's fragments and nodes

        # uploading different content to a path with a pending upload starts afresh
        with pytest.raises(Interrupt):
            await ctx.upload("/alice/h.bin", data_of(2 * CHUNK_SIZE, 5), progress=stop_after(1, []))
        fresh = data_of(2 * CHUNK_SIZE, 6)
        await ctx.upload("/alice/h.bin", fresh)
        assert await ctx.read("/alice/h.bin") == fresh
        assert await ctx.pending_uploads() == []


async def test_quota_exhaustion_mid_upload_is_a_clean_error_and_resumable(tmp_path: Path) -> None:
    data = data_of(2 * CHUNK_SIZE + 3 * MIB, 7)
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        usage = u.home.server.storage.usage
        usage.set_quota("alice", u.usage() + CHUNK_SIZE + 2 * MIB)
        with pytest.raises(StorageQuotaExceeded, match="quota"):
            await ctx.upload("/alice/q.bin", data)
        assert not await ctx.exists("/alice/q.bin")
        [record] = await ctx.pending_uploads()
        # chunk 0 fit; whether it was committed before the refusal depends on the race between the
        # parallel fragment writes and the server's quota check
        stored = await ctx.uploaded_chunks(record)
        assert stored in (0, 1)
        usage.set_quota("alice", 1 << 30)
        events: list[UploadProgress] = []

        async def progress(p: UploadProgress) -> None:
            events.append(p)

        await ctx.upload("/alice/q.bin", data, progress=progress)  # the same upload again resumes it
        assert [e.chunks_done for e in events] == list(range(stored + 1, 4))
        assert await ctx.pending_uploads() == []
        assert await ctx.read("/alice/q.bin") == data
