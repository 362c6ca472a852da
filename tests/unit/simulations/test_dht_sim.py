"""The DHT simulation as a test: small networks must reach the success goals (never timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulations.dht import SimParams, main, run
from simulations.plots import CHURNS

REQUIRED = {"nodes", "lookups", "churn", "success_rate", "mean_hops", "p95_hops", "mean_messages", "wall_s"}


def test_300_nodes_no_churn_all_lookups_succeed() -> None:
    r = run(SimParams(nodes=300, lookups=150, seed=3))
    assert r["finished"] == 150
    assert r["success_rate"] == 1.0
    assert r["mean_recall"] > 0.99
    assert 1.0 <= r["mean_hops"] <= 4.5
    assert r["penalties"] == 0


def test_300_nodes_with_20_percent_silently_dead() -> None:
    base = run(SimParams(nodes=300, lookups=150, seed=4))
    r = run(SimParams(nodes=300, lookups=150, churn=0.2, seed=4))
    assert r["success_rate"] >= 0.97
    # dead peers cost requests and time: the lookups really had to route around them
    assert r["mean_messages"] > base["mean_messages"]
    assert r["mean_latency_s"] > 5 * base["mean_latency_s"]


def test_every_message_through_the_real_codec() -> None:
    r = run(SimParams(nodes=200, lookups=80, churn=0.1, seed=5, wire=True))
    assert r["success_rate"] >= 0.97
    assert r["penalties"] == 0


def test_sequential_join_bootstrap_without_global_knowledge() -> None:
    r = run(SimParams(nodes=200, lookups=80, seed=6, bootstrap="join"))
    assert r["seed_offers"] == 0
    assert r["success_rate"] == 1.0
    assert r["mean_table_size"] > 40


def test_runs_are_reproducible() -> None:
    a = run(SimParams(nodes=120, lookups=40, churn=0.2, seed=9))
    b = run(SimParams(nodes=120, lookups=40, churn=0.2, seed=9))
    wall = {"wall_s", "setup_wall_s", "lookup_wall_s"}
    assert {k: v for k, v in a.items() if k not in wall} == {k: v for k, v in b.items() if k not in wall}


def test_cli_prints_json_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "60", "--lookups", "10", "--churn", "0.1", "--seed", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    data = json.loads(last)
    assert set(data) >= REQUIRED
    assert data["nodes"] == 60 and data["churn"] == 0.1


@pytest.mark.slow
def test_goals_at_10k_nodes() -> None:
    clean = run(SimParams(nodes=10_000, lookups=1000, seed=1))
    assert clean["success_rate"] == 1.0
    assert clean["mean_hops"] <= 4.5
    churn = run(SimParams(nodes=10_000, lookups=1000, churn=0.2, seed=1))
    assert churn["success_rate"] >= 0.99


def test_plot_sweep_writes_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nodes", "50", "--lookups", "8", "--plot", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(CHURNS) + 1  # sweep points (all at N=50), then the requested run
    for name in ("dht_vs_nodes.png", "dht_vs_churn.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
