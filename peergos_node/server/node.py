"""Composition root of the Peergos home server (spec/peergos.md §0, §16 `daemon`).

`HomeServerConfig.from_args` reads Peergos-style arguments; `open_home_server` builds the pieces in
order — identity, database (SQLite in `$PEERGOS_PATH` by default, PostgreSQL with `-use-postgres true`),
block store (`$PEERGOS_PATH/blocks`), stores, `HomeStorage` — and `serve_home_server` runs the HTTP
API with hypercorn on trio plus the periodic garbage collector until cancelled.

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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from nabu_py.blockstore import DEFAULT_KIND, KINDS, open_blockstore
from nabu_py.multiformats.cid import CODEC_LIBP2P_KEY, Cid
from nabu_py.p2p.identity import HostIdentity, load_or_create_identity
from peergos_node.cli.args import Args, ArgsError
from peergos_node.corenode.dates import LocalDate
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.server.accounts_service import AccountService
from peergos_node.server.api import build_api
from peergos_node.server.core_api import build_core_api
from peergos_node.server.db import Database, DatabaseError
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage
from peergos_node.server.pki import DEFAULT_MAX_DAILY_SIGNUPS, CoreNode, PkiKeys, PkiNode, init_pki
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
        )


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
            core = open_pki(cfg, storage)
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


def open_pki(cfg: HomeServerConfig, storage: HomeStorage) -> CoreNode:
    """This node's PKI. A node with no remote PKI configured is a standalone network: it is its own PKI,
    initialised on first start (`peergos pki-init` does the same explicitly)."""
    keys_path = cfg.peergos_path / PKI_KEYS_FILE
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


@asynccontextmanager
async def serving_home_server(server: HomeServer) -> AsyncIterator[str]:
    """Serve the API (and run GC) in the background; yield the bound base URL."""
    cfg = server.config
    app = build_api(server.storage, public_server=cfg.public_server)
    app.mount(build_core_api(server.core, server.signup, server.accounts))
    hc = HypercornConfig()
    hc.bind = [f"{cfg.listen_host}:{cfg.port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = 2
    hc.keep_alive_timeout = 60
    shutdown = trio.Event()
    gc_scope = trio.CancelScope()

    async def gc_task() -> None:
        with gc_scope:
            await _gc_loop(server)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, hc, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
        if cfg.enable_gc:
            nursery.start_soon(gc_task)
        try:
            yield binds[0]
        finally:
            gc_scope.cancel()
            shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + 10
