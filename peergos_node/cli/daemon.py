"""`peergos daemon [-key value ...]`: run the home server (spec/peergos.md §16 `daemon`).

Arguments (Peergos names and defaults): `-PEERGOS_PATH` (default ~/.peergos), `-port 8000`,
`-listen-host localhost`, `-public-server false`, `-use-postgres false` with `-postgres.host`,
`-postgres.port 5432`, `-postgres.database peergos`, `-postgres.username`, `-postgres.password`,
`-default-quota 1g`, `-enable-gc true`, `-gc.period.millis 43200000`, `-blockstore hybrid|rocksdict|files`,
`-generate-token true` (print a single-use signup URL). The effective settings are saved in
`$PEERGOS_PATH/config`, so the next start needs no arguments. SIGINT/SIGTERM stop it cleanly.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import replace

import trio

from nabu_py.tuning import tune_allocator
from peergos_node.cli.args import Args, ArgsError
from peergos_node.server.db import DatabaseError
from peergos_node.server.node import PERSISTED_KEYS, HomeServerConfig, open_home_server, serving_home_server


async def _run(args: Args, pki: bool = False) -> int:
    cfg = HomeServerConfig.from_args(args)
    if pki:
        if cfg.is_mirror:
            raise ArgsError("`peergos pki` runs a PKI node; it takes no -pki-node-id")
        cfg = replace(cfg, require_pki_keys=True)
    with open_home_server(cfg) as server:
        args.save_config([k for k in PERSISTED_KEYS if k in args.from_command_line])
        # Take over SIGINT/SIGTERM before anything announces that the daemon is up, so a signal sent
        # right after the startup line always means a clean shutdown (never a KeyboardInterrupt).
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with serving_home_server(server) as serving:
                url = serving.url
                host = url.replace("http://", "")
                print(
                    f"Peergos daemon started: peer id {server.identity.peer_id.to_base58()}, API {url}, "
                    f"p2p API {serving.p2p_api_url}, swarm {' '.join(serving.swarm_addrs)}, "
                    f"data {cfg.peergos_path}, {'PostgreSQL' if cfg.use_postgres else 'SQLite'}"
                    + (f", PKI mirror of {cfg.pki_node_id}" if cfg.is_mirror else ", PKI node"),
                    flush=True,
                )
                if args.get_bool("generate-token"):
                    [token] = await trio.to_thread.run_sync(
                        lambda: server.tokens.create(server.storage.now_ms(), 1)
                    )
                    print(
                        f"Peergos daemon started. Browse to http://{host}/?signup=true&token={token} "
                        f"to sign up, or use the shell command with the token {token}",
                        flush=True,
                    )
                async for signum in signals:
                    print(f"received {signal.Signals(signum).name}, shutting down", flush=True)
                    break
    return 0


def run(argv: list[str], pki: bool = False) -> int:
    """Entry point; exit 2 on bad arguments, 1 if the server cannot start."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_allocator()
    try:
        args = Args.parse(argv)
        return trio.run(_run, args, pki)
    except ArgsError as e:
        print(f"peergos daemon: {e}", file=sys.stderr)
        return 2
    except (DatabaseError, OSError) as e:
        print(f"peergos daemon: cannot start: {e}", file=sys.stderr)
        return 1
