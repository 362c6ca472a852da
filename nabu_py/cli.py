"""`nabu init` / `nabu daemon`: the standalone node (spec/nabu.md §1.2, §1.11, §1.12).

    nabu init   [-IPFS_PATH dir] [-Key value ...]   create $IPFS_PATH/config with a new identity
    nabu daemon [-IPFS_PATH dir] [-Key value ...]   run the node until SIGINT/SIGTERM

Arguments are Nabu-style `-Key value` pairs (`--Key value` and `-Key=value` work too). `IPFS_PATH`
comes from the argument, else the environment, else `~/.ipfs`. Any `nabu_py.config.OVERRIDABLE` key
(`-Addresses.API /ip4/127.0.0.1/tcp/5002`, `-Addresses.Swarm /ip4/0.0.0.0/tcp/4001,/ip6/::/tcp/4001`,
`-Bootstrap ""`, `-Datastore.Type rocksdict`, ...) overrides the config: `init` writes it into the new
file, `daemon` applies it for this run only (as Nabu does with `-Addresses.API`). `daemon` creates a
default config when there is none, like Nabu. `-log-to-console false` keeps the log in
`$IPFS_PATH/nabu.log` only (rotated at 1 MiB, 10 files, like Nabu's); `-log-level DEBUG|INFO|WARNING`.

What `daemon` runs: the block store at `$IPFS_PATH/blocks` (`Datastore.Type`, default `hybrid`: RocksDB
for small blocks, files for large ones, so 1 MiB fragments never hold the GIL in RocksDB; a Java Nabu
config keeps Nabu's flatfs layout), the persistent address book `$IPFS_PATH/address-book.sqlite`
(SQLite LRU of 1000 peers), the p2p host on `Addresses.Swarm`, `/http` serving towards
`Addresses.ProxyTarget` (if set), and the HTTP API (`/api/v0/...` and `/p2p/<peer>/http/...`) on
`Addresses.API`. Once everything listens it prints one line:

    nabu daemon started: peer id <id>, swarm <addr> <addr>, API http://<host>:<port>, proxy target <...>

The process applies `nabu_py.tuning.tune_allocator()` (MiB-sized buffers stay on the heap). SIGINT or
SIGTERM stop it cleanly (exit 0). Exit 2: malformed arguments or config; exit 1: the node could
not start (an address in use, an unreadable block store).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import trio

from nabu_py.api import serving
from nabu_py.blockstore import open_blockstore
from nabu_py.config import OVERRIDABLE, ConfigError, NabuConfig
from nabu_py.errors import BlockstoreError, DecodeError
from nabu_py.node import NabuNode, NodeConfig
from nabu_py.p2p import P2PError, configure_logging
from nabu_py.tuning import tune_allocator

__all__ = ["main"]

USAGE: Final = (
    "usage: nabu init|daemon [-IPFS_PATH dir] [-Key value ...]\n"
    f"  settable keys: {', '.join(OVERRIDABLE)}\n"
    "  options: -log-to-console true|false, -log-level DEBUG|INFO|WARNING|ERROR"
)
OPTIONS: Final = ("IPFS_PATH", "log-to-console", "log-level")
LOG_FILE: Final = "nabu.log"
ADDRESS_BOOK_FILE: Final = "address-book.sqlite"
BLOCKS_DIR: Final = "blocks"

log = logging.getLogger("nabu_py.cli")


class UsageError(ValueError):
    """Malformed command line."""


def parse_args(argv: Sequence[str]) -> tuple[str, dict[str, str]]:
    """(command, {key: value}) from `cmd -Key value ...`; UsageError if malformed."""
    if not argv or argv[0].startswith("-"):
        raise UsageError("missing command (init or daemon)")
    command, rest = argv[0], list(argv[1:])
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        if not tok.startswith("-") or tok.strip("-") == "":
            raise UsageError(f"expected -Key value, got {tok!r}")
        key = tok.lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(rest) and not (rest[i + 1].startswith("-") and len(rest[i + 1]) > 1):
            value = rest[i + 1]
            i += 2
        else:
            value = "true"  # a bare -flag, as in Nabu's Args
            i += 1
        if key not in OVERRIDABLE and key not in OPTIONS:
            raise UsageError(f"unknown argument -{key}")
        params[key] = value
    return command, params


def _bool(params: dict[str, str], key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise UsageError(f"-{key} must be true or false, not {value!r}")


def ipfs_path(params: dict[str, str]) -> Path:
    """`-IPFS_PATH`, else `$IPFS_PATH`, else `~/.ipfs`."""
    raw = params.get("IPFS_PATH") or os.environ.get("IPFS_PATH") or str(Path.home() / ".ipfs")
    return Path(raw).expanduser()


def _overrides(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k in OVERRIDABLE}


def _setup_logging(path: Path, params: dict[str, str]) -> None:
    level_name = params.get("log-level", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise UsageError(f"-log-level must be DEBUG, INFO, WARNING or ERROR, not {level_name!r}")
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    path.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        path / LOG_FILE, maxBytes=1 << 20, backupCount=10, encoding="utf-8"
    )
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    if _bool(params, "log-to-console", True):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    configure_logging()


def cmd_init(params: dict[str, str]) -> int:
    """`nabu init`: write a new config (refuses to overwrite one)."""
    path = ipfs_path(params)
    config = NabuConfig.create(path, _overrides(params))
    print(f"initialized nabu node in {path}: peer id {config.identity.peer_id.to_base58()}", flush=True)
    return 0


async def run_daemon(path: Path, config: NabuConfig) -> int:
    """Run the node described by `config` with its data in `path` until SIGINT/SIGTERM."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    print(f"received {signal.Signals(signum).name}, shutting down", flush=True)
                    stop.set()
                    return

            nursery.start_soon(watch)
            try:
                await _serve(path, config, stop)
            finally:
                nursery.cancel_scope.cancel()
    return 0


async def _serve(path: Path, config: NabuConfig, stop: trio.Event) -> None:
    api_host, api_port = config.api_endpoint
    target = config.proxy_target_endpoint
    store = open_blockstore(config.datastore, path / BLOCKS_DIR)
    try:
        node_config = NodeConfig(
            identity=config.identity,
            listen_addrs=config.swarm,
            bootstrap=config.bootstrap,
            proxy_target=target,
            address_book_path=path / ADDRESS_BOOK_FILE,
        )
        async with (
            NabuNode.open(node_config, blockstore=store) as node,
            serving(node.api_app(), api_host, api_port) as url,
        ):
            swarm = " ".join(str(a) for a in node.host.listen_addrs)
            proxy = f"{target[0]}:{target[1]}" if target else "none"
            print(
                f"nabu daemon started: peer id {node.peer_id.to_base58()}, swarm {swarm}, API {url}, "
                f"proxy target {proxy}, blocks {config.datastore} in {path / BLOCKS_DIR}",
                flush=True,
            )
            await stop.wait()
    finally:
        await trio.to_thread.run_sync(store.close)


def cmd_daemon(params: dict[str, str]) -> int:
    """`nabu daemon`: load (or create) the config and run the node."""
    path = ipfs_path(params)
    overrides = _overrides(params)
    if not (path / "config").exists():
        config = NabuConfig.create(path)
        print(
            f"created a default config in {path}: peer id {config.identity.peer_id.to_base58()}", flush=True
        )
    config = NabuConfig.load(path, overrides)
    _setup_logging(path, params)
    tune_allocator()
    try:
        return trio.run(run_daemon, path, config)
    except BaseExceptionGroup as group:
        # Startup failures surface from inside nurseries; report the underlying error.
        leaves = _leaves(group)
        if leaves:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        elif not isinstance(exc, trio.Cancelled):
            out.append(exc)
    return out


def main(argv: list[str] | None = None) -> int:
    """Dispatch `nabu <command>`; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    try:
        command, params = parse_args(args)
        if command == "init":
            return cmd_init(params)
        if command == "daemon":
            return cmd_daemon(params)
        raise UsageError(f"unknown command {command!r}")
    except (UsageError, ConfigError) as e:
        print(f"nabu: {e}\n{USAGE}" if isinstance(e, UsageError) else f"nabu: {e}", file=sys.stderr)
        return 2
    except (P2PError, BlockstoreError, DecodeError, OSError) as e:
        print(f"nabu: cannot start: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
