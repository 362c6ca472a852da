"""A password change survives SIGKILL of the server between any two of its steps: after a restart the
old password or the new one works — the old one before the pointer update (the commit point), the new
one from then on — never neither (spec/peergos.md §2.5)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from peergos_node.client.account import LoginFailed, Network, change_password, login, signup
from peergos_node.client.http import (
    HttpAccount,
    HttpCoreNode,
    HttpMutablePointers,
    HttpStorage,
    PeergosHttp,
    RemoteError,
)
from peergos_node.server.accounts_service import CRASH_ENV
from tests.helpers.home import LOOPBACK
from tests.helpers.procs import peergos, run_cli, running

START = r"Peergos daemon started: peer id \S+, API (http://\S+),"
STEPS = [
    ("password-change:block-written", "old"),
    ("password-change:staged", "old"),
    ("password-change:published", "new"),
    ("password-change:promoted", "new"),
]


def network(url: str, client: httpx.AsyncClient) -> Network:
    http = PeergosHttp(url, client)
    return Network(HttpStorage(http), HttpMutablePointers(http), HttpCoreNode(http), HttpAccount(http))


async def works(net: Network, password: str) -> bool:
    try:
        await login(net, "victor", password)
    except LoginFailed:
        return False
    return True


@pytest.mark.parametrize(("step", "expected"), STEPS)
async def test_password_change_crash(tmp_path: Path, step: str, expected: str) -> None:
    home = tmp_path / "home"
    daemon = peergos("daemon", "-PEERGOS_PATH", str(home), *LOOPBACK, "-enable-gc", "false")
    with running(daemon, env={CRASH_ENV: step}) as proc:
        url = proc.wait_for(START).group(1)
        token = run_cli(peergos("quota", "token", "create", "-PEERGOS_PATH", str(home))).stdout.strip()
        async with httpx.AsyncClient() as client:
            net = network(url, client)
            session = await signup(net, "victor", "old-password", token)
            with pytest.raises((RemoteError, LoginFailed)):  # the server dies inside the request
                await change_password(net, session, "new-password")
        assert proc.wait(30) == -signal.SIGKILL
    with running(peergos("daemon", "-PEERGOS_PATH", str(home))) as proc:
        url = proc.wait_for(START).group(1)
        async with httpx.AsyncClient() as client:
            net = network(url, client)
            old_ok = await works(net, "old-password")
            new_ok = await works(net, "new-password")
        assert old_ok != new_ok, "exactly one password must work"
        assert (old_ok, new_ok) == ((True, False) if expected == "old" else (False, True))
