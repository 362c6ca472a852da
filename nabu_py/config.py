"""The node's configuration file `$IPFS_PATH/config` (spec/nabu.md §1.11, §1.12) and its overrides.

The file is kubo-like JSON with Nabu's key names and encodings, written in Nabu's section order:

    {
      "Addresses": {"API": "/ip4/127.0.0.1/tcp/5001", "Gateway": "/ip4/127.0.0.1/tcp/8080",
                    "ProxyTarget": "/ip4/127.0.0.1/tcp/8003", "AllowTarget": "http://localhost:8002",
                    "Swarm": ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"]},
      "Bootstrap": ["/dnsaddr/bootstrap.libp2p.io/p2p/Qm...", ...],
      "Datastore": {"Type": "hybrid"},
      "Identity": {"PeerID": "12D3KooW...", "PrivKey": "<base64 protobuf PrivateKey>"}
    }

Differences from Nabu, on purpose:
- `Addresses.Swarm` defaults to IPv4 *and* IPv6 wildcards (`/ip6/::` alone listens IPv6-only here).
- `Datastore.Type` names a nabu_py block store kind (`nabu_py.blockstore.KINDS`, default `hybrid`: small
  blocks in RocksDB, large ones as files, see `nabu_py.blockstore.hybrid`), rooted at `$IPFS_PATH/blocks`.
  A Java Nabu config (`Datastore.Spec` with a flatfs `/blocks` mount) is read as the `files` kind, whose
  layout is Nabu's, so an existing Nabu repository keeps its blocks. S3 mounts are refused with a clear
  error. `Metrics` and `Datastore.Filter`/`Codecs` are accepted and ignored (not implemented).
- `Addresses.ProxyTarget` is optional as in Nabu; when absent the node does not serve `/http`, but the
  `/p2p/` calling side is always available on the API (Nabu mounted it only with a ProxyTarget).

Overrides: `apply_overrides(doc, {"Addresses.API": "/ip4/127.0.0.1/tcp/5002"})` edits the JSON document
before validation, so a bad override fails exactly like a bad file. List-valued keys (`Addresses.Swarm`,
`Bootstrap`) take a JSON list or a comma-separated string (empty: no entries). Only known keys may be
overridden (`OVERRIDABLE`), so a typo is an error instead of being ignored.

Every problem is a `ConfigError` naming the key; nothing is half-applied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from nabu_py.blockstore import DEFAULT_KIND, KINDS
from nabu_py.errors import DecodeError
from nabu_py.p2p import HostIdentity, parse_multiaddr

__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_BOOTSTRAP",
    "OVERRIDABLE",
    "ConfigError",
    "NabuConfig",
    "apply_overrides",
    "tcp_endpoint",
]

CONFIG_FILENAME: Final = "config"
MAX_CONFIG_BYTES: Final = 1 << 20
MAX_LIST_ENTRIES: Final = 256

DEFAULT_SWARM: Final = ("/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001")
DEFAULT_API: Final = "/ip4/127.0.0.1/tcp/5001"
DEFAULT_GATEWAY: Final = "/ip4/127.0.0.1/tcp/8080"
DEFAULT_PROXY_TARGET: Final = "/ip4/127.0.0.1/tcp/8003"
DEFAULT_ALLOW_TARGET: Final = "http://localhost:8002"
DEFAULT_BOOTSTRAP: Final = (
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
    "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
)
"""Nabu's default bootstrap list (spec/nabu.md §1.7; `/dnsaddr/` entries need dnsaddr resolution)."""

OVERRIDABLE: Final = (
    "Addresses.API",
    "Addresses.Gateway",
    "Addresses.ProxyTarget",
    "Addresses.AllowTarget",
    "Addresses.Swarm",
    "Bootstrap",
    "Datastore.Type",
)
"""Keys `apply_overrides` accepts (`-Key value` on the command line)."""
_LIST_KEYS: Final = frozenset({"Addresses.Swarm", "Bootstrap"})
_NABU_FLATFS_SHARD: Final = "/repo/flatfs/shard/v1/next-to-last/2"


class ConfigError(ValueError):
    """The configuration file or an override is malformed; the message names the key."""


def tcp_endpoint(addr: str, key: str) -> tuple[str, int]:
    """(host, port) of `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`; ConfigError naming `key` otherwise."""
    try:
        maddr = parse_multiaddr(addr)
    except DecodeError as e:
        raise ConfigError(f"{key}: {e}") from None
    items = [(p.name, str(v) if v is not None else "") for p, v in maddr.items()]
    if len(items) != 2 or items[0][0] not in ("ip4", "ip6", "dns", "dns4", "dns6") or items[1][0] != "tcp":
        raise ConfigError(f"{key}: expected /ip4|ip6|dns4|dns6/<host>/tcp/<port>, not {addr!r}")
    port = int(items[1][1])
    if not 0 <= port < 65536:
        raise ConfigError(f"{key}: port {port} out of range")
    return items[0][1], port


def _split_list(value: str, key: str) -> list[str]:
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"{key}: not a JSON list: {e}") from None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise ConfigError(f"{key}: expected a JSON list of strings")
        return [x.strip() for x in parsed]
    return [part.strip() for part in text.split(",") if part.strip()]


def apply_overrides(doc: dict[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the JSON document `doc` with dotted `Section.Key` overrides applied."""
    out: dict[str, Any] = json.loads(json.dumps(doc))
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise ConfigError(f"unknown setting -{key}; settable: {', '.join(OVERRIDABLE)}")
        section, _, name = key.partition(".")
        new: object = _split_list(value, key) if key in _LIST_KEYS else value
        if not name:
            out[section] = new
            continue
        holder = out.setdefault(section, {})
        if not isinstance(holder, dict):
            raise ConfigError(f"{section}: expected an object")
        holder[name] = new
    return out


def _get(doc: Mapping[str, Any], path: str, kind: type, default: object = None) -> Any:
    node: Any = doc
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            raise ConfigError(f"{'.'.join(parts[:i])}: expected an object")
        if part not in node:
            if default is None:
                raise ConfigError(f"{path}: missing")
            return default
        node = node[part]
    if not isinstance(node, kind):
        raise ConfigError(f"{path}: expected {kind.__name__}, not {type(node).__name__}")
    return node


def _addr_list(doc: Mapping[str, Any], path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = _get(doc, path, list, list(default))
    if len(raw) > MAX_LIST_ENTRIES:
        raise ConfigError(f"{path}: more than {MAX_LIST_ENTRIES} entries")
    out: list[str] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, str):
            raise ConfigError(f"{path}[{i}]: expected a multiaddr string")
        try:
            parse_multiaddr(entry)
        except DecodeError as e:
            raise ConfigError(f"{path}[{i}]: {e}") from None
        out.append(entry.strip())
    return tuple(out)


def _datastore_kind(doc: Mapping[str, Any]) -> str:
    section = _get(doc, "Datastore", dict, {})
    if "Type" in section:
        kind = section["Type"]
        if kind not in KINDS or kind == "memory":
            persistent = [k for k in KINDS if k != "memory"]
            raise ConfigError(f"Datastore.Type: expected one of {persistent}, not {kind!r}")
        return str(kind)
    spec = section.get("Spec")
    if spec is None:
        return DEFAULT_KIND
    # A Java Nabu config: find the /blocks mount.
    mounts = spec.get("mounts") if isinstance(spec, dict) else None
    if not isinstance(mounts, list):
        raise ConfigError("Datastore.Spec: expected Nabu's mount spec with a 'mounts' list")
    for mount in mounts:
        if isinstance(mount, dict) and mount.get("mountpoint") == "/blocks":
            child = mount.get("child")
            if not isinstance(child, dict):
                raise ConfigError("Datastore.Spec: the /blocks mount has no child")
            if child.get("type") == "s3ds":
                raise ConfigError("Datastore.Spec: S3 block stores are not supported by nabu_py")
            if child.get("type") != "flatfs" or child.get("path") != "blocks":
                raise ConfigError("Datastore.Spec: expected a flatfs /blocks mount with path 'blocks'")
            if child.get("shardFunc") != _NABU_FLATFS_SHARD:
                raise ConfigError(f"Datastore.Spec: only the {_NABU_FLATFS_SHARD} flatfs layout is supported")
            return "files"
    raise ConfigError("Datastore.Spec: no /blocks mount")


@dataclass(frozen=True)
class NabuConfig:
    """A validated configuration (see the module docstring for the file format)."""

    identity: HostIdentity
    swarm: tuple[str, ...] = DEFAULT_SWARM
    api: str = DEFAULT_API
    gateway: str = DEFAULT_GATEWAY
    proxy_target: str | None = DEFAULT_PROXY_TARGET
    allow_target: str | None = DEFAULT_ALLOW_TARGET
    bootstrap: tuple[str, ...] = DEFAULT_BOOTSTRAP
    datastore: str = DEFAULT_KIND
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Sections we do not interpret (Metrics, a Java Nabu Datastore spec), written back unchanged."""

    @classmethod
    def default(cls, identity: HostIdentity | None = None) -> NabuConfig:
        """Nabu's defaults with a new Ed25519 identity (or the given one)."""
        return cls(identity=identity if identity is not None else HostIdentity.generate())

    @property
    def api_endpoint(self) -> tuple[str, int]:
        """(host, port) of `Addresses.API`."""
        return tcp_endpoint(self.api, "Addresses.API")

    @property
    def proxy_target_endpoint(self) -> tuple[str, int] | None:
        """(host, port) of `Addresses.ProxyTarget`, or None when unset."""
        if self.proxy_target is None:
            return None
        return tcp_endpoint(self.proxy_target, "Addresses.ProxyTarget")

    # ---- JSON -----------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, doc: object) -> NabuConfig:
        """Validate a parsed JSON document; ConfigError naming the first bad key."""
        if not isinstance(doc, dict):
            raise ConfigError("the config must be a JSON object")
        try:
            identity = HostIdentity.from_config(
                _get(doc, "Identity.PeerID", str), _get(doc, "Identity.PrivKey", str)
            )
        except (DecodeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"Identity: {e}") from None
        swarm = _addr_list(doc, "Addresses.Swarm", DEFAULT_SWARM)
        if not swarm:
            raise ConfigError("Addresses.Swarm: at least one listen address is required")
        api = _get(doc, "Addresses.API", str, DEFAULT_API)
        tcp_endpoint(api, "Addresses.API")
        gateway = _get(doc, "Addresses.Gateway", str, DEFAULT_GATEWAY)
        tcp_endpoint(gateway, "Addresses.Gateway")
        addresses = _get(doc, "Addresses", dict, {})
        proxy_target = addresses.get("ProxyTarget")
        if proxy_target is not None:
            if not isinstance(proxy_target, str):
                raise ConfigError("Addresses.ProxyTarget: expected a multiaddr string")
            if proxy_target.strip() == "":
                proxy_target = None
            else:
                tcp_endpoint(proxy_target, "Addresses.ProxyTarget")
        allow_target = addresses.get("AllowTarget")
        if allow_target is not None and not isinstance(allow_target, str):
            raise ConfigError("Addresses.AllowTarget: expected a string")
        bootstrap = _addr_list(doc, "Bootstrap", ())
        datastore = _datastore_kind(doc)
        extra = {k: v for k, v in doc.items() if k not in ("Addresses", "Bootstrap", "Identity", "Datastore")}
        ds = doc.get("Datastore")
        if isinstance(ds, dict) and "Type" not in ds and ds:
            extra["Datastore"] = ds
        return cls(
            identity=identity,
            swarm=swarm,
            api=api,
            gateway=gateway,
            proxy_target=proxy_target,
            allow_target=allow_target,
            bootstrap=bootstrap,
            datastore=datastore,
            extra=extra,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON document, sections in Nabu's order (Addresses, Bootstrap, Datastore, ..., Identity)."""
        addresses: dict[str, Any] = {"API": self.api, "Gateway": self.gateway}
        if self.proxy_target is not None:
            addresses["ProxyTarget"] = self.proxy_target
        if self.allow_target is not None:
            addresses["AllowTarget"] = self.allow_target
        addresses["Swarm"] = list(self.swarm)
        doc: dict[str, Any] = {"Addresses": addresses, "Bootstrap": list(self.bootstrap)}
        doc["Datastore"] = self.extra.get("Datastore", {"Type": self.datastore})
        for key, value in self.extra.items():
            if key != "Datastore":
                doc[key] = value
        doc["Identity"] = self.identity.to_config()
        return doc

    # ---- files ----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, ipfs_path: Path, overrides: Mapping[str, str] | None = None) -> NabuConfig:
        """Read `$IPFS_PATH/config`, apply `overrides` (not saved); ConfigError if missing or malformed."""
        path = ipfs_path / CONFIG_FILENAME
        try:
            size = path.stat().st_size
            if size > MAX_CONFIG_BYTES:
                raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist; run `nabu init` first") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read: {e}") from None
        except ValueError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: the config must be a JSON object")
        try:
            return cls.from_json(apply_overrides(doc, overrides or {}))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def save(self, ipfs_path: Path) -> Path:
        """Write `$IPFS_PATH/config` atomically, mode 0600 (it holds the private key)."""
        ipfs_path.mkdir(parents=True, exist_ok=True)
        path = ipfs_path / CONFIG_FILENAME
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def create(cls, ipfs_path: Path, overrides: Mapping[str, str] | None = None) -> NabuConfig:
        """A default config with a new identity and `overrides` applied, saved to `ipfs_path`.

        ConfigError if a config already exists there (it holds an identity; never overwritten).
        """
        if (ipfs_path / CONFIG_FILENAME).exists():
            raise ConfigError(f"{ipfs_path / CONFIG_FILENAME} already exists; not overwriting it")
        config = cls.from_json(apply_overrides(cls.default().to_json(), overrides or {}))
        config.save(ipfs_path)
        return config
