"""A js-libp2p peer (tests/interop/js/peer.mjs) run as a separate OS process and driven over its stdin.

The process prints one JSON line when it listens and answers JSON commands one line each; closing its
stdin makes it exit. Every step has a timeout, and `js_peer` kills the process if it does not exit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

JS_DIR = Path(__file__).resolve().parent / "js"
PEER_SCRIPT = JS_DIR / "peer.mjs"
STARTUP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0


def require_node() -> str:
    """Path of `node`; fails the test (never skips) with the fix when the fixtures are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (>= 20) is not on PATH: the js-libp2p interop tests need Node.js and npm")
    modules = JS_DIR / "node_modules"
    if not all((modules / m).is_dir() for m in ("libp2p", "@libp2p/kad-dht", "ipns")):
        pytest.fail(
            "js-libp2p fixtures are not installed: run `python3 dev.py test` (it runs `npm ci` in "
            f"{JS_DIR}) or `npm ci` there yourself"
        )
    return node


class JsPeer:
    """Handle on the running js-libp2p process."""

    def __init__(self, proc: trio.Process, ready: dict[str, Any], reader: _LineReader) -> None:
        self.proc = proc
        self.peer_id: str = ready["peerId"]
        self.addrs: list[str] = ready["addrs"]
        self._reader = reader
        self._next = 0

    async def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command and return its answer; fail the test if it reports an error."""
        self._next += 1
        msg = {"id": self._next, "cmd": cmd, **args}
        assert self.proc.stdin is not None
        with trio.fail_after(COMMAND_TIMEOUT):
            await self.proc.stdin.send_all((json.dumps(msg) + "\n").encode())
            while True:
                answer = await self._reader.next()
                if answer.get("id") == self._next:
                    break
        if not answer.get("ok"):
            raise AssertionError(f"js peer failed {cmd}: {answer.get('error')}")
        return answer


class _LineReader:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buf = b""

    async def next(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                raise AssertionError("js peer exited unexpectedly")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        parsed: dict[str, Any] = json.loads(line)
        return parsed


@asynccontextmanager
async def js_peer(security: str, *, kad: bool = False) -> AsyncIterator[JsPeer]:
    """Start `node peer.mjs <security> [kad]`; stop (and if need be kill) it on exit."""
    node = require_node()
    argv = [node, str(PEER_SCRIPT), security, *(["kad"] if kad else [])]
    proc = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=JS_DIR)
    try:
        assert proc.stdout is not None
        reader = _LineReader(proc.stdout)
        with trio.fail_after(STARTUP_TIMEOUT):
            ready = await reader.next()
        assert ready.get("event") == "ready", ready
        yield JsPeer(proc, ready, reader)
    finally:
        with trio.CancelScope(shield=True):
            if proc.stdin is not None:
                await proc.stdin.aclose()
            with trio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
