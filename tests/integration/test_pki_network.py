"""A two-server network of real processes: a PKI node and a home server mirroring it over p2p
(spec/peergos.md §3.3-3.4). Signups on the home server are claimed at the PKI node over libp2p and
replayed locally; names claimed anywhere reach the mirror; lookups are answered locally."""

from __future__ import annotations

from pathlib import Path

import httpx

from peergos_node.cli.args import CONFIG_FILENAME, read_config_file
from peergos_node.client.account import Network, login, signup
from peergos_node.client.http import HttpAccount, HttpCoreNode, HttpMutablePointers, HttpStorage, PeergosHttp
from tests.helpers.home import LOOPBACK
from tests.helpers.polling import eventually
from tests.helpers.procs import peergos, run_cli, running

START = r"Peergos daemon started: peer id (\S+), API (http://\S+), p2p API \S+, swarm (\S+?),"


def network(url: str, client: httpx.AsyncClient) -> Network:
    http = PeergosHttp(url, client)
    return Network(HttpStorage(http), HttpMutablePointers(http), HttpCoreNode(http), HttpAccount(http))


async def test_signup_through_a_mirror_and_pki_propagation(tmp_path: Path) -> None:
    a, b = tmp_path / "pki", tmp_path / "home"
    pw = ["-pki.keyfile.password", "test-keyfile-password"]
    many = ["-max-daily-signups", "1000000000"]
    init = run_cli(peergos("pki-init", "-PEERGOS_PATH", str(a), *pw, *LOOPBACK))
    assert init.returncode == 0, init.stderr
    values = dict(
        line.split(" ", 1) for line in init.stdout.splitlines() if line.startswith(("peergos.", "pki-"))
    )
    with running(peergos("pki", "-PEERGOS_PATH", str(a), *pw, *LOOPBACK, *many)) as pki_proc:
        m = pki_proc.wait_for(START)
        pki_id, pki_url, pki_swarm = m.group(1), m.group(2), m.group(3)
        assert pki_id == values["pki-node-id"]
        home_args = [
            "-PEERGOS_PATH",
            str(b),
            *LOOPBACK,
            *many,
            "-pki-node-id",
            pki_id,
            "-peergos.identity.hash",
            values["peergos.identity.hash"],
            "-pki.node.swarm.address",
            pki_swarm,
            "-mirror.period.seconds",
            "1",
        ]
        with running(peergos("daemon", *home_args)) as home_proc:
            home_url = home_proc.wait_for(START).group(2)
            home_proc.wait_for("PKI mirror of")
            token = run_cli(peergos("quota", "token", "create", "-PEERGOS_PATH", str(b))).stdout.strip()
            async with httpx.AsyncClient() as client:
                home, pki = network(home_url, client), network(pki_url, client)
                await eventually(lambda: home.core.get_usernames(""), lambda names: "peergos" in names)
                session = await signup(home, "alice", "alice-password", token)
                assert await pki.core.get_chain("alice") == await home.core.get_chain("alice") != ()
                assert await home.core.get_public_key("alice") == session.owner
                again = await login(home, "alice", "alice-password")
                assert again.owner == session.owner
                # the name is taken network-wide: signing up "alice" on the PKI node's own server fails
                pki_token = run_cli(
                    peergos("quota", "token", "create", "-PEERGOS_PATH", str(a))
                ).stdout.strip()
                try:
                    await signup(pki, "alice", "other-password", pki_token)
                    raise AssertionError("a taken name was claimed twice")
                except Exception as e:  # the client refuses before sending, or the PKI refuses
                    assert "exists" in str(e)
                # a user created at the PKI node's server shows up in the mirror
                await signup(pki, "bob", "bob-password", pki_token)
                await eventually(lambda: home.core.get_public_key("bob"), lambda key: key is not None)


def test_pki_init_saves_its_settings_for_the_pki_node(tmp_path: Path) -> None:
    # `peergos pki` after `pki-init` must start with the same ports and database without repeating them
    a = tmp_path / "pki"
    init = run_cli(peergos("pki-init", "-PEERGOS_PATH", str(a), "-pki.keyfile.password", "pw", *LOOPBACK))
    assert init.returncode == 0, init.stderr
    saved = read_config_file(a / CONFIG_FILENAME)
    given = dict(zip(LOOPBACK[::2], LOOPBACK[1::2], strict=True))
    for key, value in given.items():
        assert saved[key.lstrip("-")] == value
    assert saved["port"] == "0"
    assert "pki.keyfile.password" not in saved  # the key file's password is never written in clear
