"""`peergos daemon` as a real process: startup line, API on loopback, signup tokens, config persistence,
clean exit on SIGTERM/SIGINT, and SIGKILL leaving a database that reopens."""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

from tests.helpers.home import LOOPBACK
from tests.helpers.procs import peergos, run_cli, running

START = r"Peergos daemon started: peer id (\S+), API (http://\S+),"


def post(url: str) -> bytes:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        data: bytes = resp.read()
        return data


def test_daemon_serves_generates_tokens_and_stops_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "peergos"
    argv = peergos("daemon", "-PEERGOS_PATH", str(home), *LOOPBACK, "-generate-token", "true")
    with running(argv) as proc:
        m = proc.wait_for(START)
        peer_id, url = m.group(1), m.group(2)
        token = proc.wait_for(r"signup=true&token=([0-9a-f]{64})").group(1)
        assert post(f"{url}/api/v0/id") == f'{{"ID":"{peer_id}"}}'.encode()
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert (home / "config").read_text().count("port = 0") == 1
    assert (home / "identity.json").exists() and (home / "peergos.sqlite").exists()
    listed = run_cli(peergos("quota", "token", "list", "-PEERGOS_PATH", str(home)))
    assert listed.returncode == 0 and f"{token} unused" in listed.stdout
    created = run_cli(peergos("quota", "token", "create", "-count", "3", "-PEERGOS_PATH", str(home)))
    assert created.returncode == 0 and len(created.stdout.split()) == 3
    # restart with no arguments: the saved config and identity are used, and SIGINT stops it too
    with running(peergos("daemon", "-PEERGOS_PATH", str(home))) as proc:
        assert proc.wait_for(START).group(1) == peer_id
        proc.signal(signal.SIGINT)
        assert proc.wait(30) == 0
    # SIGKILL: nothing torn, it starts again
    with running(peergos("daemon", "-PEERGOS_PATH", str(home))) as proc:
        proc.wait_for(START)
        proc.signal(signal.SIGKILL)
        proc.wait(30)
    with running(peergos("daemon", "-PEERGOS_PATH", str(home))) as proc:
        proc.wait_for(START)


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    r = run_cli(peergos("daemon", "-PEERGOS_PATH", str(tmp_path), "-port", "notaport"))
    assert r.returncode == 2 and "-port must be an integer" in r.stderr
    r = run_cli(peergos("daemon", "-PEERGOS_PATH", str(tmp_path), "-blockstore", "tape"))
    assert r.returncode == 2 and "-blockstore" in r.stderr
    r = run_cli(peergos("quota", "token", "create", "-count", "0", "-PEERGOS_PATH", str(tmp_path)))
    assert r.returncode == 2
