"""`peergos pki-init` and `peergos pki`: bootstrap and run the PKI node of a new network
(spec/peergos.md §3.3, §16).

    peergos pki-init -pki.keyfile.password PW [-PEERGOS_PATH DIR] [daemon args]
        create the `peergos` identity and its `pki` key (saved encrypted under PW in
        $PEERGOS_PATH/pki-keys.json), register `peergos` on this server, write the empty PKI tree and
        claim the name `peergos`; print the peergos identity hash and this server's peer id — the two
        values other servers need (-peergos.identity.hash, -pki-node-id).
    peergos pki -pki.keyfile.password PW [daemon args]
        run this server as the network's PKI node (it refuses to start without pki-init's keys).

Every other server of the network runs `peergos daemon -pki-node-id <id> -peergos.identity.hash <hash>
-pki.node.swarm.address /ip4/.../tcp/.../p2p/<id>` and mirrors the PKI over p2p.
"""

from __future__ import annotations

import sys

from peergos_node.cli import daemon
from peergos_node.cli.args import Args, ArgsError
from peergos_node.server.db import DatabaseError
from peergos_node.server.node import PERSISTED_KEYS, PKI_KEYS_FILE, HomeServerConfig, open_home_server
from peergos_node.server.pki import PkiNode


def run_init(argv: list[str]) -> int:
    """`peergos pki-init`."""
    try:
        args = Args.parse(argv)
        if not args.has("pki.keyfile.password"):
            raise ArgsError("-pki.keyfile.password is required")
        cfg = HomeServerConfig.from_args(args)
        if cfg.is_mirror:
            raise ArgsError("pki-init makes this server a PKI node; it takes no -pki-node-id")
        if (cfg.peergos_path / PKI_KEYS_FILE).exists():
            raise ArgsError(f"{cfg.peergos_path} already has a PKI")
        with open_home_server(cfg) as server:
            assert isinstance(server.core, PkiNode)
            print(f"PKI initialised in {cfg.peergos_path}")
            print(f"peergos.identity.hash {server.core.keys.peergos_hash}")
            print(f"pki-node-id {server.identity.peer_id.to_base58()}")
        # like the daemon: `peergos pki` later starts with the same ports and database without arguments
        args.save_config([k for k in PERSISTED_KEYS if k in args.from_command_line])
        return 0
    except ArgsError as e:
        print(f"peergos pki-init: {e}", file=sys.stderr)
        return 2
    except (DatabaseError, OSError) as e:
        print(f"peergos pki-init: {e}", file=sys.stderr)
        return 1


def run(argv: list[str]) -> int:
    """`peergos pki`."""
    return daemon.run(argv, pki=True)
