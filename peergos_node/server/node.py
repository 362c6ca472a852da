"""Composition root of the Peergos home server (spec/peergos.md §0, §16 `daemon`).

`HomeServerConfig.from_args` reads Peergos-style arguments; `open_home_server` builds the pieces in
order — identity, database (SQLite in `$PEERGOS_PATH` by default, PostgreSQL with `-use-postgres true`),
block store (`$PEERGOS_PATH/blocks`), stores, `HomeStorage` — and `serve_home_server` runs the HTTP
API (`http_server.ApiServer`, a connection per thread) plus the periodic garbage collector until cancelled.

Everything a user stores lives under `$PEERGOS_PATH` (default `~/.peergos`):
`config` (this node's arguments), `identity.json` (the libp2p Ed25519 identity; its peer id is the
server id users name in their PKI claims), `peergos.sqlite` (pointers, transactions, block metadata,
users, quotas, usage, signup tokens) and `blocks/` (the block store).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from nabu_py.blockstore import DEFAULT_KIND, KINDS, open_blockstore
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_LIBP2P_KEY, Cid
from nabu_py.node import NabuNode, NodeConfig
from nabu_py.p2p import PeerId, parse_multiaddr, split_peer
from nabu_py.p2p.identity import HostIdentity, load_or_create_identity
from nabu_py.protocols.kademlia.service import DhtConfig, KademliaService
from peergos_node.cli.args import Args, ArgsError
from peergos_node.client.http import RemoteError
from peergos_node.corenode.dates import LocalDate
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.server.accounts_service import AccountService
from peergos_node.server.api import build_api
from peergos_node.server.core_api import build_core_api
from peergos_node.server.db import Database, DatabaseError
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage
from peergos_node.server.http_server import ApiServer
from peergos_node.server.p2p_remote import P2pRemotePki
from peergos_node.server.pki import DEFAULT_MAX_DAILY_SIGNUPS, CoreNode, PkiKeys, PkiNode, init_pki
from peergos_node.server.pki_mirror import MirrorCoreNode, MirrorRejected
from peergos_node.server.signup import SignupService
from peergos_node.server.stores.accounts import SqlAccountStore
from peergos_node.server.stores.metadata import SqlBlockMetadataStore
from peergos_node.server.stores.pointers import SqlPointerStore
from peergos_node.server.stores.tokens import SqlTokenStore, TokenStore
from peergos_node.server.stores.transactions import SqlTransactionStore
from peergos_node.server.stores.usage import SqlUsageStore

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000
DEFAULT_QUOTA = 1024 * 1024 * 1024
DEFAULT_GC_PERIOD_MS = 12 * 3600 * 1000
PERSISTED_KEYS = (
    "port",
    "listen-host",
    "public-server",
    "use-postgres",
    "postgres.host",
    "postgres.port",
    "postgres.database",
    "postgres.username",
    "postgres.password",
    "default-quota",
    "enable-gc",
    "gc.period.millis",
    "blockstore",
    "open-signups",
    "max-daily-signups",
    "proxy-target",
    "ipfs-swarm-addrs",
    "ipfs-swarm-port",
    "ipfs-config-bootstrap-node-list",
    "enable-dht",
    "pki-node-id",
    "pki.node.swarm.address",
    "peergos.identity.hash",
    "mirror.period.seconds",
)
PKI_KEYS_FILE = "pki-keys.json"
PKI_PASSWORD_FILE = "pki-keyfile-password"


@dataclass(frozen=True)
class HomeServerConfig:
    """Resolved settings of a home server."""

    peergos_path: Path
    listen_host: str
    port: int
    public_server: bool
    use_postgres: bool
    postgres_conninfo: str
    default_quota: int
    enable_gc: bool
    gc_period_s: float
    blockstore_kind: str
    open_signups: bool = False
    pki_keyfile_password: str | None = None
    max_daily_signups: int = DEFAULT_MAX_DAILY_SIGNUPS
    swarm_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001")
    p2p_api: tuple[str, int] = ("127.0.0.1", 8003)
    bootstrap: tuple[str, ...] = ()
    pki_node_id: str | None = None
    pki_node_address: str | None = None
    peergos_identity: str | None = None
    mirror_period_s: float = 60.0
    enable_dht: bool = True
    require_pki_keys: bool = False

    @property
    def is_mirror(self) -> bool:
        """Whether this server follows a remote PKI node (else it is a PKI node itself)."""
        return self.pki_node_id is not None

    @classmethod
    def from_args(cls, args: Args) -> HomeServerConfig:
        """Read the daemon's Peergos-style arguments (with their Peergos defaults)."""
        host = args.get("listen-host", "localhost")
        if host == "localhost":
            host = "127.0.0.1"
        kind = args.get("blockstore", DEFAULT_KIND)
        if kind not in KINDS or kind == "memory":
            raise ArgsError(f"-blockstore must be one of {[k for k in KINDS if k != 'memory']}")
        port = args.get_int("port", DEFAULT_PORT)
        if not 0 <= port < 65536:
            raise ArgsError("-port must be 0..65535")
        conninfo = ""
        use_pg = args.get_bool("use-postgres")
        if use_pg:
            parts = {
                "host": args.get("postgres.host", "localhost"),
                "port": str(args.get_int("postgres.port", 5432)),
                "dbname": args.get("postgres.database", "peergos"),
                "user": args.get("postgres.username"),
                "password": args.get("postgres.password", ""),
            }
            conninfo = " ".join(f"{k}={_quote(v)}" for k, v in parts.items() if v)
        return cls(
            peergos_path=args.peergos_path,
            listen_host=host,
            port=port,
            public_server=args.get_bool("public-server"),
            use_postgres=use_pg,
            postgres_conninfo=conninfo,
            default_quota=args.get_int("default-quota", DEFAULT_QUOTA),
            enable_gc=args.get_bool("enable-gc", True),
            gc_period_s=args.get_int("gc.period.millis", DEFAULT_GC_PERIOD_MS) / 1000,
            blockstore_kind=kind,
            open_signups=args.get_bool("open-signups"),
            pki_keyfile_password=args.params.get("pki.keyfile.password"),
            max_daily_signups=args.get_int("max-daily-signups", DEFAULT_MAX_DAILY_SIGNUPS),
            swarm_addrs=_swarm_addrs(args),
            p2p_api=_host_port(args.get("proxy-target", "/ip4/127.0.0.1/tcp/8003"), "proxy-target"),
            bootstrap=tuple(a for a in args.get("ipfs-config-bootstrap-node-list", "").split(",") if a),
            pki_node_id=_peer_id_arg(args, "pki-node-id"),
            pki_node_address=_peer_addr_arg(args, "pki.node.swarm.address"),
            peergos_identity=args.params.get("peergos.identity.hash"),
            mirror_period_s=args.get_int("mirror.period.seconds", 60),
            enable_dht=args.get_bool("enable-dht", True),
        )


def _swarm_addrs(args: Args) -> tuple[str, ...]:
    if args.has("ipfs-swarm-addrs"):
        addrs = tuple(a for a in args.get("ipfs-swarm-addrs").split(",") if a)
    else:
        port = args.get_int("ipfs-swarm-port", 4001)
        addrs = (f"/ip4/0.0.0.0/tcp/{port}", f"/ip6/::/tcp/{port}")
    for a in addrs:
        try:
            parse_multiaddr(a)
        except (DecodeError, ValueError) as e:
            raise ArgsError(f"invalid swarm address {a!r}: {e}") from None
    return addrs


def _host_port(addr: str, key: str) -> tuple[str, int]:
    parts = addr.strip("/").split("/")
    if len(parts) != 4 or parts[0] not in ("ip4", "ip6") or parts[2] != "tcp" or not parts[3].isdigit():
        raise ArgsError(f"-{key} must look like /ip4/127.0.0.1/tcp/8003, not {addr!r}")
    return parts[1], int(parts[3])


def _peer_id_arg(args: Args, key: str) -> str | None:
    if not args.has(key):
        return None
    try:
        return str(PeerId.parse(args.get(key)))
    except (DecodeError, ValueError) as e:
        raise ArgsError(f"-{key}: {e}") from None


def _peer_addr_arg(args: Args, key: str) -> str | None:
    if not args.has(key):
        return None
    try:
        addr, peer = split_peer(args.get(key))
    except (DecodeError, ValueError) as e:
        raise ArgsError(f"-{key}: {e}") from None
    if addr is None or peer is None:
        raise ArgsError(f"-{key} must be a multiaddr ending in /p2p/<peer id>")
    return args.get(key)


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "._-/" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def open_database(cfg: HomeServerConfig) -> Database:
    """The server database: PostgreSQL if configured, else `$PEERGOS_PATH/peergos.sqlite`."""
    if cfg.use_postgres:
        return Database.postgres(cfg.postgres_conninfo)
    cfg.peergos_path.mkdir(parents=True, exist_ok=True)
    return Database.sqlite(cfg.peergos_path / "peergos.sqlite")


@dataclass
class HomeServer:
    """A running home server's parts."""

    config: HomeServerConfig
    identity: HostIdentity
    db: Database
    storage: HomeStorage
    tokens: TokenStore
    core: CoreNode
    accounts: AccountService
    signup: SignupService

    @property
    def peer_cid(self) -> Cid:
        """This server's peer id as a CIDv1 libp2p-key."""
        return self.storage.peer_id


def peer_cid(identity: HostIdentity) -> Cid:
    """A host identity's peer id as a CIDv1 libp2p-key."""
    return Cid.v1(CODEC_LIBP2P_KEY, identity.peer_id.to_bytes())


@contextmanager
def open_home_server(cfg: HomeServerConfig) -> Iterator[HomeServer]:
    """Open identity, database, block store and stores; close them all on exit."""
    cfg.peergos_path.mkdir(parents=True, exist_ok=True)
    identity = load_or_create_identity(cfg.peergos_path / "identity.json")
    db = open_database(cfg)
    try:
        # Clients re-hash every block they receive (trust-free clients, spec §11.5), so the server does not
        # hash blocks again on each read; writes are always verified.
        blocks = open_blockstore(
            cfg.blockstore_kind, cfg.peergos_path / "blocks", max_block_size=MAX_BLOCK_SIZE, verify=False
        )
        try:
            storage = HomeStorage(
                peer_cid(identity),
                blocks,
                SqlBlockMetadataStore(db),
                SqlTransactionStore(db),
                SqlPointerStore(db),
                SqlUsageStore(db),
                atomic=db.transaction,
            )
            tokens = SqlTokenStore(db)
            core = open_pki(cfg, storage, db)
            account_store = SqlAccountStore(db)
            accounts = AccountService(account_store, storage, core.get_public_key)
            signup = SignupService(
                storage, core, account_store, tokens, [storage.peer_id], cfg.default_quota, cfg.open_signups
            )
            yield HomeServer(cfg, identity, db, storage, tokens, core, accounts, signup)
        finally:
            blocks.close()
    finally:
        db.close()


def pki_password(cfg: HomeServerConfig) -> str:
    """The PKI key file password: `-pki.keyfile.password`, else one generated for a standalone node and
    kept (mode 0600) in `$PEERGOS_PATH/pki-keyfile-password`."""
    if cfg.pki_keyfile_password:
        return cfg.pki_keyfile_password
    path = cfg.peergos_path / PKI_PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def open_pki(cfg: HomeServerConfig, storage: HomeStorage, db: Database) -> CoreNode:
    """This node's PKI. With `-pki-node-id` it mirrors that PKI node (over p2p); otherwise it is a PKI node
    itself: a standalone network initialised on first start (`peergos pki-init` does that explicitly;
    `peergos pki` requires it done)."""
    if cfg.pki_node_id is not None:
        if not cfg.peergos_identity:
            raise ArgsError("-pki-node-id needs -peergos.identity.hash (the PKI's peergos identity)")
        try:
            identity = PublicKeyHash.parse(cfg.peergos_identity)
        except (DecodeError, ValueError) as e:
            raise ArgsError(f"-peergos.identity.hash: {e}") from None
        return MirrorCoreNode(db, P2pRemotePki(PeerId.parse(cfg.pki_node_id), identity), identity)
    keys_path = cfg.peergos_path / PKI_KEYS_FILE
    if cfg.require_pki_keys and not keys_path.exists():
        raise ArgsError(f"no PKI keys in {keys_path}: run `peergos pki-init` first")
    password = pki_password(cfg)
    if not keys_path.exists():
        keys = PkiKeys(SigningKeyPair.random(), SigningKeyPair.random())
        init_pki(storage, keys, storage.peer_id, cfg.default_quota, LocalDate.from_epoch_seconds(time.time()))
        keys.save(keys_path, password)
        log.info("initialised a new PKI: peergos identity %s", keys.peergos_hash)
    return PkiNode(storage, PkiKeys.load(keys_path, password), max_daily_signups=cfg.max_daily_signups)


async def _gc_loop(server: HomeServer) -> None:
    while True:
        await trio.sleep(server.config.gc_period_s)
        try:
            report = await trio.to_thread.run_sync(server.storage.collect_garbage)
            log.info("garbage collection: %s", report)
        except DatabaseError:
            log.exception("garbage collection failed; will retry next period")


@dataclass
class Serving:
    """Where a running home server can be reached."""

    url: str
    p2p_api_url: str
    swarm_addrs: list[str]


async def _mirror_loop(server: HomeServer) -> None:
    core = server.core
    assert isinstance(core, MirrorCoreNode)
    while True:
        try:
            await trio.to_thread.run_sync(core.sync)
        except MirrorRejected:
            log.exception("PKI mirror refused the PKI node's state; keeping ours")
        except RemoteError as e:  # the PKI node may be unreachable for a while; keep trying every period
            log.warning("PKI mirror sync failed (%s); retrying in %ss", e, server.config.mirror_period_s)
        except Exception:
            log.warning(
                "PKI mirror sync failed; retrying in %ss", server.config.mirror_period_s, exc_info=True
            )
        await trio.sleep(server.config.mirror_period_s)


@asynccontextmanager
async def serving_home_server(server: HomeServer) -> AsyncIterator[Serving]:
    """Run everything in the background — the local API, the p2p API (the `/http` proxy target), the
    embedded p2p node with its DHT, the PKI mirror and the garbage collector — until the block exits."""
    cfg = server.config
    app = build_api(server.storage, public_server=cfg.public_server)
    app.mount(build_core_api(server.core, server.signup, server.accounts))
    background: list[trio.CancelScope] = []

    async def periodic(fn: Callable[[HomeServer], Awaitable[None]]) -> None:
        scope = trio.CancelScope()
        background.append(scope)
        with scope:
            await fn(server)

    def stop_background() -> None:
        for scope in background:
            scope.cancel()

    async with trio.open_nursery() as nursery:
        url = await nursery.start(ApiServer(app, cfg.listen_host, cfg.port).serve)
        p2p_url = await nursery.start(ApiServer(app, *cfg.p2p_api).serve)
        p2p_host, p2p_port = p2p_url.removeprefix("http://").rsplit(":", 1)
        bootstrap = list(cfg.bootstrap)
        if cfg.pki_node_address:
            bootstrap.append(cfg.pki_node_address)
        node_cfg = NodeConfig(
            server.identity,
            listen_addrs=cfg.swarm_addrs,
            bootstrap=tuple(bootstrap),
            proxy_target=(p2p_host.strip("[]"), int(p2p_port)),
            address_book_path=cfg.peergos_path / "address-book.sqlite",
        )
        try:
            async with NabuNode.open(node_cfg) as node:
                dht_cm = (
                    KademliaService.start(
                        node.host, DhtConfig(mode="auto", data_dir=cfg.peergos_path / "dht")
                    )
                    if cfg.enable_dht
                    else None
                )
                dht = await dht_cm.__aenter__() if dht_cm is not None else None
                try:
                    remote = getattr(server.core, "remote", None)
                    if isinstance(remote, P2pRemotePki):
                        if cfg.pki_node_address:
                            # known before the bootstrap dial completes, so the first sync can dial it
                            addr, peer = split_peer(cfg.pki_node_address)
                            if peer is not None and addr is not None:
                                node.host.address_book.add(peer, [addr])
                        remote.bind(node)
                        nursery.start_soon(periodic, _mirror_loop)
                    if dht is not None:
                        nursery.start_soon(dht.bootstrap)
                    if cfg.enable_gc:
                        nursery.start_soon(periodic, _gc_loop)
                    swarm = [str(a) for a in node.host.addrs_with_peer_id()]
                    yield Serving(url, p2p_url, swarm)
                finally:
                    stop_background()
                    if isinstance(remote, P2pRemotePki):
                        remote.unbind()
                    if dht_cm is not None:
                        await dht_cm.__aexit__(None, None, None)
        finally:
            stop_background()
            nursery.cancel_scope.cancel()  # the API servers close every connection
