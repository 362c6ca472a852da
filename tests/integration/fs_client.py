"""A filesystem client run as its own OS process by tests/integration/test_fs_processes.py.

fs_client.py URL USER PASSWORD upload REMOTE LOCAL [PAUSE_AFTER_CHUNKS]
    upload a local file; prints "chunk N" after each committed chunk, and with PAUSE_AFTER_CHUNKS
    prints "paused" once that many chunks are committed and then waits (to be killed mid-upload)
fs_client.py URL USER PASSWORD write-many DIR PREFIX COUNT START_FILE
    wait until START_FILE exists, then upload COUNT small files DIR/PREFIXi one after another;
    prints "done merges=M"
fs_client.py URL USER PASSWORD finish REMOTE=LOCAL...
    resume the pending uploads named (from the local files given), clean up all others;
    prints "resumed PATH" and "cleaned PATH" lines
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio

from peergos_node.client.uploads import UploadProgress
from peergos_node.client.user_context import UserContext


async def upload(ctx: UserContext, remote: str, local: str, pause_after: int | None) -> None:
    async def progress(p: UploadProgress) -> None:
        print(f"chunk {p.chunks_done}", flush=True)
        if pause_after is not None and p.chunks_done >= pause_after:
            print("paused", flush=True)
            await trio.sleep_forever()

    await ctx.upload(remote, Path(local), progress=progress)
    print("uploaded", flush=True)


def wait_for_file(path: Path) -> None:
    while not path.exists():
        time.sleep(0.005)


async def write_many(ctx: UserContext, folder: str, prefix: str, count: int, start_file: str) -> None:
    print("ready", flush=True)
    await trio.to_thread.run_sync(wait_for_file, Path(start_file))
    for i in range(count):
        await ctx.upload(f"{folder}/{prefix}{i}", f"{prefix} {i}".encode())
    print(f"done merges={ctx.net.stats.merges}", flush=True)


async def finish(ctx: UserContext, pairs: list[str]) -> None:
    sources = dict(p.split("=", 1) for p in pairs)
    for record in await ctx.pending_uploads():
        print(f"pending {record.path} {await ctx.uploaded_chunks(record)}/{record.chunk_count}", flush=True)
    for info in await ctx.resume_uploads(lambda r: Path(sources[r.path]) if r.path in sources else None):
        print(f"resumed {info.path}", flush=True)
    for path in await ctx.cleanup_failed_uploads():
        print(f"cleaned {path}", flush=True)


async def main(argv: list[str]) -> None:
    url, user, password, command, *rest = argv
    async with await UserContext.login(url, user, password) as ctx:
        if command == "upload":
            await upload(ctx, rest[0], rest[1], int(rest[2]) if len(rest) > 2 else None)
        elif command == "write-many":
            await write_many(ctx, rest[0], rest[1], int(rest[2]), rest[3])
        elif command == "finish":
            await finish(ctx, rest)
        else:
            raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
