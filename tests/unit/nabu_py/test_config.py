"""`$IPFS_PATH/config` (nabu_py/config.py): defaults, Nabu's encodings, Java configs, overrides, errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from nabu_py.config import (
    DEFAULT_BOOTSTRAP,
    ConfigError,
    NabuConfig,
    apply_overrides,
    tcp_endpoint,
)
from nabu_py.p2p import HostIdentity

SEED = bytes(range(32))


def java_nabu_config(identity: HostIdentity, blocks_child: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config as Java Nabu writes it (spec/nabu.md §1.11)."""
    child = blocks_child or {
        "path": "blocks",
        "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2",
        "sync": "true",
        "type": "flatfs",
    }
    return {
        "Addresses": {
            "API": "/ip4/127.0.0.1/tcp/5001",
            "Gateway": "/ip4/127.0.0.1/tcp/8080",
            "ProxyTarget": "/ip4/127.0.0.1/tcp/8003",
            "AllowTarget": "http://localhost:8002",
            "Swarm": ["/ip6/::/tcp/4001"],
        },
        "Bootstrap": ["/ip4/104.131.131.82/tcp/4001/ipfs/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"],
        "Datastore": {
            "Spec": {
                "type": "mount",
                "mounts": [
                    {
                        "mountpoint": "/blocks",
                        "prefix": "flatfs.datastore",
                        "type": "measure",
                        "child": child,
                    },
                    {
                        "mountpoint": "/",
                        "prefix": "h2.datastore",
                        "type": "measure",
                        "child": {"compression": "none", "path": "datastore", "type": "h2"},
                    },
                ],
            },
            "Filter": {"type": "none", "falsePositiveRate": "0.0"},
        },
        "Metrics": {"Enabled": True, "Address": "localhost", "Port": 9100},
        "Identity": identity.to_config(),
    }


def test_default_config_round_trips_in_nabu_key_order(tmp_path: Path) -> None:
    config = NabuConfig.create(tmp_path / "repo")
    path = tmp_path / "repo" / "config"
    doc = json.loads(path.read_text())
    assert list(doc) == ["Addresses", "Bootstrap", "Datastore", "Identity"]
    assert doc["Addresses"]["Swarm"] == ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"]
    assert doc["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/5001"
    assert doc["Addresses"]["ProxyTarget"] == "/ip4/127.0.0.1/tcp/8003"
    assert doc["Bootstrap"] == list(DEFAULT_BOOTSTRAP)
    assert doc["Datastore"] == {"Type": "hybrid"}
    assert doc["Identity"]["PeerID"].startswith("12D3KooW")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "the config holds the private key"
    loaded = NabuConfig.load(tmp_path / "repo")
    assert loaded.identity.peer_id == config.identity.peer_id
    assert loaded.to_json() == doc
    assert loaded.api_endpoint == ("127.0.0.1", 5001)
    assert loaded.proxy_target_endpoint == ("127.0.0.1", 8003)


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    NabuConfig.create(tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        NabuConfig.create(tmp_path)


def test_java_nabu_config_is_read_with_its_flatfs_blocks(tmp_path: Path) -> None:
    identity = HostIdentity.generate(SEED)
    (tmp_path / "config").write_text(json.dumps(java_nabu_config(identity)))
    config = NabuConfig.load(tmp_path)
    assert config.identity.peer_id == identity.peer_id
    assert config.datastore == "files", "Nabu's flatfs layout is the files store's layout"
    assert config.swarm == ("/ip6/::/tcp/4001",)
    assert config.bootstrap == (
        "/ip4/104.131.131.82/tcp/4001/ipfs/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
    )
    out = config.to_json()
    assert out["Datastore"]["Spec"]["type"] == "mount" and out["Metrics"]["Port"] == 9100, "kept as found"
    assert list(out)[-1] == "Identity"


def test_java_nabu_s3_config_is_refused_clearly(tmp_path: Path) -> None:
    doc = java_nabu_config(HostIdentity.generate(SEED), {"type": "s3ds", "bucket": "b"})
    (tmp_path / "config").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="S3 block stores are not supported"):
        NabuConfig.load(tmp_path)


def test_overrides_replace_values_and_lists() -> None:
    doc = NabuConfig.default(HostIdentity.generate(SEED)).to_json()
    out = apply_overrides(
        doc,
        {
            "Addresses.API": "/ip4/127.0.0.1/tcp/5002",
            "Addresses.Swarm": "/ip4/127.0.0.1/tcp/0, /ip6/::1/tcp/0",
            "Bootstrap": "",
            "Datastore.Type": "rocksdict",
        },
    )
    config = NabuConfig.from_json(out)
    assert config.api_endpoint == ("127.0.0.1", 5002)
    assert config.swarm == ("/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0")
    assert config.bootstrap == ()
    assert config.datastore == "rocksdict"
    assert doc["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/5001", "the input document is not modified"
    as_json = apply_overrides(doc, {"Bootstrap": '["/ip4/10.0.0.1/tcp/4001"]'})
    assert as_json["Bootstrap"] == ["/ip4/10.0.0.1/tcp/4001"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Adresses.API": "/ip4/127.0.0.1/tcp/1"}, "unknown setting -Adresses.API"),
        ({"Addresses.API": "garbage"}, "Addresses.API"),
        ({"Addresses.API": "/ip4/127.0.0.1/udp/5001"}, "Addresses.API: expected"),
        ({"Addresses.ProxyTarget": "/ip4/999.0.0.1/tcp/1"}, "Addresses.ProxyTarget"),
        ({"Addresses.Swarm": ""}, "at least one listen address"),
        ({"Addresses.Swarm": "/ip4/1.2.3.4/tcp/notaport"}, r"Addresses.Swarm\[0\]"),
        ({"Bootstrap": "[1, 2]"}, "JSON list of strings"),
        ({"Bootstrap": "[not json"}, "not a JSON list"),
        ({"Datastore.Type": "tape"}, "Datastore.Type"),
        ({"Datastore.Type": "memory"}, "Datastore.Type"),
    ],
)
def test_bad_overrides_are_named_errors(overrides: dict[str, str], message: str) -> None:
    doc = NabuConfig.default(HostIdentity.generate(SEED)).to_json()
    with pytest.raises(ConfigError, match=message):
        NabuConfig.from_json(apply_overrides(doc, overrides))


def _mutated(mutate: Any) -> dict[str, Any]:
    doc = NabuConfig.default(HostIdentity.generate(SEED)).to_json()
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        (_mutated(lambda d: d.pop("Identity")), "Identity.PeerID: missing"),
        (_mutated(lambda d: d["Identity"].update(PrivKey="!!")), "Identity: .*base64"),
        (
            _mutated(lambda d: d["Identity"].update(PeerID=HostIdentity.generate().peer_id.to_base58())),
            "does not match",
        ),
        (
            _mutated(lambda d: d["Addresses"].update(Swarm="/ip4/1.2.3.4/tcp/1")),
            "Addresses.Swarm: expected list",
        ),
        (_mutated(lambda d: d.update(Addresses=[])), "Addresses"),
        (_mutated(lambda d: d["Addresses"].update(ProxyTarget=5)), "Addresses.ProxyTarget"),
        (_mutated(lambda d: d.update(Bootstrap=["/ip4/1.2.3.4/tcp/1", 7])), r"Bootstrap\[1\]"),
    ],
)
def test_malformed_documents_are_named_errors(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NabuConfig.from_json(doc)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `nabu init` first"):
        NabuConfig.load(tmp_path)
    (tmp_path / "config").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        NabuConfig.load(tmp_path)
    (tmp_path / "config").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read"):
        NabuConfig.load(tmp_path)


def test_empty_proxy_target_means_none() -> None:
    doc = _mutated(lambda d: d["Addresses"].update(ProxyTarget=""))
    config = NabuConfig.from_json(doc)
    assert config.proxy_target is None and config.proxy_target_endpoint is None
    assert "ProxyTarget" not in config.to_json()["Addresses"]


@pytest.mark.parametrize(
    ("addr", "endpoint"),
    [
        ("/ip4/127.0.0.1/tcp/5001", ("127.0.0.1", 5001)),
        ("/ip6/::1/tcp/0", ("::1", 0)),
        ("/dns4/localhost/tcp/8003", ("localhost", 8003)),
    ],
)
def test_tcp_endpoint(addr: str, endpoint: tuple[str, int]) -> None:
    assert tcp_endpoint(addr, "k") == endpoint


@pytest.mark.parametrize(
    "addr", ["/ip4/127.0.0.1", "/ip4/127.0.0.1/tcp/1/p2p/x", "tcp/1", "/ip4/127.0.0.1/udp/1"]
)
def test_tcp_endpoint_rejects(addr: str) -> None:
    with pytest.raises(ConfigError, match=r"^k: "):
        tcp_endpoint(addr, "k")
