"""Listing a big folder from a fresh login (issue 6): every entry comes back through the `DirectPool` path
of `champ/get/bulk` (a plain client of an `http://` server), over several directory chunks and many
20-key requests, and the answers are still verified: a server that alters the CHAMP nodes it serves
from its lookup cache is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from peergos_node.client.errors import TamperedData
from peergos_node.client.network import MAX_CHAMP_KEYS_PER_REQUEST
from peergos_node.client.user_context import UserContext
from peergos_node.cryptree.chunks import MAX_CHILD_LINKS_PER_CHUNK
from tests.helpers.fs import PASSWORD, flip_byte, fs_user


async def test_a_fresh_login_lists_every_entry_of_a_big_folder(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        n = MAX_CHILD_LINKS_PER_CHUNK + 37  # two directory chunks, 27 lookup requests
        files = {f"f{i:04d}": bytes([i % 256]) * (i % 50 + 1) for i in range(n)}
        await u.ctx.mkdir("/alice/many")
        await u.ctx.upload_files("/alice/many", files)
        fresh = await UserContext.login(u.home.url, "alice", PASSWORD)  # plain client: DirectPool
        async with fresh:
            assert fresh.net.net.storage.http.pool is not None
            before = fresh.net.stats.champ_requests
            listed = await fresh.ls("/alice/many")
            assert fresh.net.stats.champ_requests - before >= n // MAX_CHAMP_KEYS_PER_REQUEST
            assert {i.name: i.size for i in listed} == {k: len(v) for k, v in files.items()}
            assert [i.name for i in listed] == sorted(files)
            assert await fresh.read("/alice/many/f0510") == files["f0510"]
            # warm: the same answer from the caches, with no CHAMP request at all
            before = fresh.net.stats.champ_requests
            assert await fresh.ls("/alice/many") == listed
            assert fresh.net.stats.champ_requests == before


async def test_altered_champ_nodes_from_the_servers_lookup_cache_are_detected(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        await u.ctx.mkdir("/alice/docs")
        await u.ctx.upload_files("/alice/docs", {f"d{i:03d}": b"x" for i in range(60)})
        first = await UserContext.login(u.home.url, "alice", PASSWORD)
        async with first:
            assert len(await first.ls("/alice/docs")) == 60  # fills the server's lookup cache
        cache = u.home.server.storage._lookup_getter._cache
        assert cache
        for cid in list(cache):  # the server now answers with altered CHAMP nodes
            cache[cid] = flip_byte(cache[cid], 3)
        fresh = await UserContext.login(u.home.url, "alice", PASSWORD)
        async with fresh:
            with pytest.raises(TamperedData):
                await fresh.ls("/alice/docs")
