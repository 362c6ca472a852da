"""Crash safety of the persistent block stores: SIGKILL a writer process mid-stream, reopen, check.

A separate OS process (`blockstore_crash_writer.py`) streams puts and batches of mixed sizes into a
store, announcing `begin <cid> <size>` / `done <cid>` around each. The test kills it with SIGKILL once
a random number of puts were acknowledged, at a random moment after the next put began (aimed at the
write that follows the hashing, so most kills land inside a put or batch), reopens the store and checks:

- every listed block is one the writer started, reads back complete and hashes to its CID;
- every acknowledged put is present (a process crash loses nothing that `put` returned for, with or
  without `sync`);
- every block `has` reports is complete, including the ones in flight at the kill;
- no crash leftovers remain in the file store's temporary directory.

Several kills hit the same store in turn (recovery after recovery), alternating `sync` on and off.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nabu_py.blockstore import open_blockstore
from nabu_py.multiformats.cid import Cid

WRITER = Path(__file__).with_name("blockstore_crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]
STEP_TIMEOUT = 30.0


def _run_and_kill(kind: str, path: Path, seed: int, sync: bool, acks: int, delay: float) -> list[str]:
    """Start a writer; once `acks` puts were acknowledged and another began, SIGKILL it about when that
    put has hashed its block and is writing it (after the hashing time plus `delay` seconds).

    Returns every complete line the writer printed.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), kind, str(path), str(seed), "1" if sync else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.endswith(b"\n"):  # a line cut by the kill is not an announcement
                lines.put(raw.decode().rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        done = 0
        while True:  # wait for `acks` acknowledgements, then for the next put to begin
            line = lines.get(timeout=STEP_TIMEOUT)
            if line is None:
                assert proc.stderr is not None
                raise AssertionError(f"writer exited early: {proc.stderr.read().decode()[-2000:]}")
            seen.append(line)
            done += line.startswith("done ")
            if done >= acks and line.startswith("begin "):
                break
        # Aim inside the write: put() first hashes the block (~1.4 GB/s here), then writes it.
        time.sleep(int(line.split()[2]) / 1.4e9 + delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=STEP_TIMEOUT)
        reader.join(timeout=STEP_TIMEOUT)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    while (line := lines.get(timeout=STEP_TIMEOUT)) is not None:
        seen.append(line)
    return seen


def _check_after_crash(kind: str, path: Path, begun: set[Cid], acknowledged: set[Cid]) -> int:
    with open_blockstore(kind, path) as store:  # verify=True: get() re-hashes
        listed = list(store.list())
        assert len(listed) == len(set(listed)), "a block is listed twice"
        assert set(listed) <= begun, "a block nobody wrote appeared"
        for cid in listed:
            data = store.get(cid)
            cid.verify(data)
            assert store.size(cid) == len(data)
        missing = acknowledged - set(listed)
        assert not missing, f"{len(missing)} acknowledged puts were lost"
        for cid in begun:
            if store.has(cid):
                cid.verify(store.get(cid))
        tmp_dirs = {"files": [path / ".tmp"], "hybrid": [path / "blocks" / ".tmp"]}
        for tmp in tmp_dirs.get(kind, []):
            assert list(tmp.iterdir()) == [], "crash leftovers were not cleaned on reopen"
        return len(listed)


def _crash_rounds(kind: str, path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    begun: set[Cid] = set()
    acknowledged: set[Cid] = set()
    stored = 0
    for r in range(rounds):
        acks = rng.choice([0, 1, rng.randrange(2, 12), rng.randrange(12, 40)])
        delay = rng.random() * 0.0015
        lines = _run_and_kill(kind, path, seed * 1000 + r, sync=r % 2 == 0, acks=acks, delay=delay)
        for line in lines:
            tag, *fields = line.split()
            if tag == "begin":
                begun.add(Cid.parse(fields[0]))
            elif tag == "done":
                acknowledged.add(Cid.parse(fields[0]))
        stored = _check_after_crash(kind, path, begun, acknowledged)
    assert stored >= len(acknowledged) > 0


@pytest.mark.parametrize("kind", ["rocksdict", "files", "hybrid"])
def test_sigkill_mid_stream(kind: str, tmp_path: Path) -> None:
    _crash_rounds(kind, tmp_path / "store", rounds=10, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rocksdict", "files", "hybrid"])
@pytest.mark.parametrize("seed", range(2, 8))
def test_sigkill_mid_stream_soak(kind: str, seed: int, tmp_path: Path) -> None:
    _crash_rounds(kind, tmp_path / "store", rounds=15, seed=seed)
