"""The filesystem client across real OS processes and a real `peergos daemon` (spec/peergos.md §4.4, §6.5):
a client killed with SIGKILL mid-upload is resumed (and another cleaned up) by a new process, and two
client processes writing different entries of one folder at the same time both succeed."""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from peergos_node.client.user_context import UserContext
from peergos_node.cryptree.properties import CHUNK_SIZE
from tests.helpers.home import LOOPBACK
from tests.helpers.procs import Proc, peergos, run_cli, running

CLIENT = Path(__file__).with_name("fs_client.py")
START = r"Peergos daemon started: peer id (\S+), API (http://\S+),"
PASSWORD = "kill-me-softly"


def client(url: str, *args: str) -> list[str]:
    return [sys.executable, str(CLIENT), url, "alice", PASSWORD, *args]


@asynccontextmanager
async def daemon_with_user(tmp_path: Path) -> AsyncIterator[tuple[str, UserContext]]:
    # every listener on a free loopback port (the p2p API's default 8003 may be taken by another daemon)
    argv = peergos("daemon", "-PEERGOS_PATH", str(tmp_path / "server"), *LOOPBACK, "-generate-token", "true")
    with running(argv) as proc:
        url = proc.wait_for(START).group(2)
        token = proc.wait_for(r"signup=true&token=([0-9a-f]{64})").group(1)
        with trio.fail_after(60):
            ctx = await UserContext.signup(url, "alice", PASSWORD, token)
        async with ctx:
            yield url, ctx


async def wait_line(proc: Proc, pattern: str) -> None:
    """Wait (at most 60 s) for an output line of a client process."""
    await trio.to_thread.run_sync(proc.wait_for, pattern, 60)


async def test_killed_upload_is_resumed_and_another_cleaned_up_from_a_new_process(tmp_path: Path) -> None:
    sizes = {"a.bin": 2 * CHUNK_SIZE + 12345, "b.bin": 2 * CHUNK_SIZE + 1}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(random.Random(name).randbytes(size))
    async with daemon_with_user(tmp_path) as (url, ctx):
        baseline = await ctx.usage()
        for name in sizes:
            with running(client(url, "upload", f"/alice/{name}", str(tmp_path / name), "1")) as proc:
                await wait_line(proc, "^paused$")
                proc.kill()  # SIGKILL to the process group, mid-upload
                assert "uploaded" not in proc.output()
        pending = await ctx.pending_uploads()
        assert [r.path for r in pending] == ["/alice/a.bin", "/alice/b.bin"]
        assert [await ctx.uploaded_chunks(r) for r in pending] == [1, 1]
        assert await ctx.usage() > baseline + 2 * CHUNK_SIZE

        finish = client(url, "finish", f"/alice/a.bin={tmp_path / 'a.bin'}")
        done = await trio.to_thread.run_sync(lambda: run_cli(finish, timeout=120))
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert "pending /alice/a.bin 1/3" in lines and "pending /alice/b.bin 1/3" in lines
        assert "resumed /alice/a.bin" in lines and "cleaned /alice/b.bin" in lines

        assert await ctx.pending_uploads() == []
        assert [i.name for i in await ctx.ls("/alice")] == ["a.bin"]
        reader = await ctx.open("/alice/a.bin")
        digest = hashlib.sha256()

        async def feed(b: bytes) -> None:
            digest.update(b)

        await reader.stream(feed)
        assert digest.digest() == hashlib.sha256((tmp_path / "a.bin").read_bytes()).digest()
        # no orphaned chunks stay counted: usage is the finished file on top of where we started
        grown = await ctx.usage() - baseline
        assert sizes["a.bin"] < grown < sizes["a.bin"] + 64 * 1024


async def test_two_processes_write_different_entries_of_one_folder_at_once(tmp_path: Path) -> None:
    async with daemon_with_user(tmp_path) as (url, ctx):
        await ctx.mkdir("/alice/together")
        go = tmp_path / "go"
        count = 8
        argv_a = client(url, "write-many", "/alice/together", "a", str(count), str(go))
        argv_b = client(url, "write-many", "/alice/together", "b", str(count), str(go))
        with running(argv_a) as a, running(argv_b) as b:
            await wait_line(a, "^ready$")
            await wait_line(b, "^ready$")
            go.write_text("go")
            await wait_line(a, "^done merges=")
            await wait_line(b, "^done merges=")
            assert a.wait(30) == 0 and b.wait(30) == 0
        names = [i.name for i in await ctx.ls("/alice/together")]
        assert names == sorted([f"a{i}" for i in range(count)] + [f"b{i}" for i in range(count)])
        assert await ctx.read("/alice/together/b7") == b"b 7"
