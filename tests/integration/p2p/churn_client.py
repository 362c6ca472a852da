"""Churn client for test_hardening.py, run as a separate OS process.

    python churn_client.py <multiaddr with /p2p> <cycles> <security> <same|fresh>

Each cycle: connect, one 1 KiB echo over a new stream, disconnect. `same` keeps one client host (one
peer id) for all cycles; `fresh` starts a new host with a new identity every cycle (many distinct peers,
as a public node sees them). The client never listens, so a server cannot dial it back. Prints one JSON
line {"cycles", "failures", "first_failure" (index or null), "first_errors"} and exits 0: failures are
data, not crashes.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import AsyncExitStack

import trio

from nabu_py.p2p import HostConfig, HostIdentity, P2PError, P2PHost

ECHO = "/churn/echo/1.0.0"


def _config(security: str) -> HostConfig:
    return HostConfig(identity=HostIdentity.generate(), security=(security,), listen_addrs=())


async def _cycle(host: P2PHost, addr: str) -> None:
    peer = await host.connect(addr)
    stream = await host.new_stream(peer, [ECHO])
    payload = os.urandom(1024)
    await stream.write(payload)
    if await stream.read_exactly(len(payload)) != payload:
        raise AssertionError("echo mismatch")
    await stream.close()
    await host.disconnect(peer)


async def main(addr: str, cycles: int, security: str, mode: str) -> None:
    failures: list[str] = []
    first_failure: int | None = None
    async with AsyncExitStack() as stack:
        shared = await stack.enter_async_context(P2PHost.open(_config(security))) if mode == "same" else None
        for i in range(cycles):
            try:
                with trio.fail_after(10):
                    if shared is not None:
                        await _cycle(shared, addr)
                    else:
                        async with P2PHost.open(_config(security)) as host:
                            await _cycle(host, addr)
            except (P2PError, trio.TooSlowError, AssertionError) as e:
                failures.append(f"{type(e).__name__}: {e}")
                if first_failure is None:
                    first_failure = i
    summary = {
        "cycles": cycles,
        "failures": len(failures),
        "first_failure": first_failure,
        "first_errors": failures[:3],
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
