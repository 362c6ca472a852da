"""Fixes for measured defects of py-libp2p 0.8.1 (spec/py-libp2p.md §7, §1), one block per defect.

Every fix is scoped to the objects our host creates (subclasses handed to py-libp2p's constructors), so a
stock py-libp2p host in the same process keeps its stock behaviour. `tests/integration/p2p/
test_hardening.py` runs each functional scenario against both (its `test_stock_*` tests assert the
defective behaviour, the others ours); D7 and D10 only cost time and are measured by
`benchmarks/p2p_stream.py` instead. When upstream fixes a defect, delete its block and override here.
Replacements of whole components live in their own modules: `tls.py` (TLS transport), `yamux.py`
(muxer; fixes the reset of a paused reader's stream), `upgrader.py` (connection upgrade, which 0.8.1
hard-wires to its own yamux) and `multistream.py` (bounded, pipelined negotiation).

D1  Inbound connections leak (swarm.py `_do_handle_inbound_connection` "Intentional barrier"): the
    per-connection handler waits for the *swarm* to finish, so each inbound connection holds a slot of
    the inbound limiter (250 by default) for the life of the host; connection 251 and all later ones are
    refused. Fix: `HardenedSwarm._do_handle_inbound_connection` waits for that connection to close.
D2  Listeners outlive the host: `TCPListener` serves from a trio *system* task and `host.run()` does not
    close the host, so after leaving `run()` the port still accepts and answers multistream. Fix:
    `ScopedTCPListener` serves inside the swarm's nursery, and `HardenedSwarm.close()` closes listeners
    and every connection. `P2PHost.open` always closes on exit.
D3  Port sharing: listeners set SO_REUSEPORT, so binding a port already in use "succeeds" and the kernel
    load-balances dials between two different peers; `Swarm.listen` also turns bind errors into a
    `False` return. Fix: `ScopedTCPListener` binds with SO_REUSEADDR only; `HardenedSwarm.listen` raises
    `ListenError` for any address that cannot be bound.
D4  Insecure defaults: `new_host()` without `sec_opt` offers `/plaintext/2.0.0` (a peer claims any peer
    id) and secio. Fix: we never call `new_host`; `upgrader.Upgrader` refuses insecure protocol ids and
    `ensure_secure_only` checks a configuration.
D5  Simultaneous dials leave two connections per peer even with `max_connections_per_peer=1` (the
    per-peer trim skips connections younger than the 20 s grace period and, later, may close
    different connections on the two sides). Fix: `HardenedSwarm` keeps one canonical connection per
    peer, chosen the same way on both ends (the one dialed by the smaller peer id; among connections
    from the same dialer, the newest), routes new streams to it and closes the others once their
    streams are done.
D6  Unsolicited dialing: the auto-connector dials peers it merely knows of (peer store) every 10-30 s
    until it holds 100+ connections. A Peergos node connects to whom it needs; `HardenedSwarm` disables
    the auto-connector.
D7  (performance) Disconnect and shutdown are slow: `SwarmConn._cleanup` sleeps 100 ms per connection,
    `Swarm.close` closes connections one after another, `add_conn` runs resource-manager bookkeeping and
    formats a traceback into a WARNING for every failed registration. Fix: `HardenedSwarm.add_conn`
    registers connections without that machinery (our yamux bounds streams), `_ScopedSwarmConn` yields
    once instead of sleeping, `HardenedSwarm.close` closes connections concurrently.
D8  Logging: importing libp2p sets its logger to `propagate=False` with no handler, so WARNING and
    ERROR records bypass the application's logging and hit stderr through Python's last-resort handler;
    `swarm_connection` logs on the *root* logger; expected churn (failed dials, closed streams) is logged
    at ERROR/WARNING with tracebacks. Fix: `configure_logging()`.
D9  IPv6 connections have no remote address: `TrioTCPStream.get_remote_address` rejects the 4-tuple
    `getpeername()` returns for AF_INET6 sockets, so identify's observed address, the connection gate
    and logging see `None`. Fix: `ScopedTCP` and `ScopedTCPListener` fill in (host, port).
D10 (performance) Every network event (stream opened/closed, connection) opens a nursery and spawns one
    task per notifee: two extra nurseries per stream. Fix: `HardenedSwarm._notify` calls the notifees one
    after another, still isolating their exceptions (go-libp2p calls them inline too).
D11 Unbounded per-peer state: the peer store keeps keys, addresses and protocols of every peer ever seen
    (~10 KB each; its 1000-peer cap only applies in an optional cleanup task and may then evict our own
    key), and the auto-connector remembers every disconnect. Fix: `HardenedSwarm.notify_disconnected`
    drops a peer's peer-store entry when its last connection closes (dialable addresses live in our own
    bounded address book); the disabled auto-connector records nothing.
"""

from __future__ import annotations

import logging
import socket as _socket
from collections.abc import Iterable
from typing import Any, Final

import trio
from libp2p.abc import IListener, IMuxedConn, INetConn, IRawConnection, ITransport
from libp2p.custom_types import THandler
from libp2p.io.abc import ReadWriteCloser
from libp2p.io.trio import TrioTCPStream
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.connection import swarm_connection as _swarm_connection_module
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.connection.swarm_connection import SwarmConn
from libp2p.network.exceptions import SwarmException
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStoreError
from libp2p.rcmgr import Direction
from libp2p.transport.exceptions import OpenConnectionError
from libp2p.transport.tcp.tcp import TCP
from multiaddr import Multiaddr

from nabu_py.p2p.errors import ListenError
from nabu_py.p2p.upgrader import INSECURE_PROTOCOLS

__all__ = [
    "HardenedSwarm",
    "ScopedTCP",
    "ScopedTCPListener",
    "configure_logging",
    "ensure_secure_only",
]

logger = logging.getLogger(__name__)

LISTEN_BACKLOG: Final = 512
DRAIN_TIMEOUT: Final = 10.0
"""How long a duplicate connection may keep serving its streams before it is closed (D5)."""


# ---- D2, D3: listener bound to the host's lifetime, no SO_REUSEPORT ---------------------------------
def _parse_tcp(maddr: Multiaddr) -> tuple[int, str, int]:
    protos = [p.name for p in maddr.protocols()]
    if len(protos) != 2 or protos[1] != "tcp" or protos[0] not in ("ip4", "ip6"):
        raise OpenConnectionError(f"cannot listen on {maddr}: only /ip4|ip6/<addr>/tcp/<port> is supported")
    family = _socket.AF_INET if protos[0] == "ip4" else _socket.AF_INET6
    host = str(maddr.value_for_protocol(protos[0]))
    port = int(str(maddr.value_for_protocol("tcp")))
    return family, host, port


def _sock_multiaddr(sock: trio.socket.SocketType) -> Multiaddr:
    name = sock.getsockname()
    proto = "ip6" if sock.family == _socket.AF_INET6 else "ip4"
    return Multiaddr(f"/{proto}/{name[0]}/tcp/{name[1]}")


# D9
def _remember_remote_address(stream: TrioTCPStream) -> None:
    try:
        peer = stream.stream.socket.getpeername()
    except OSError:
        return
    stream._cached_remote_address = (str(peer[0]), int(peer[1]))


class ScopedTCPListener(IListener):
    """TCP listener serving from the swarm's nursery (not a system task), bound without SO_REUSEPORT."""

    def __init__(self, handler: THandler) -> None:
        self._handler = handler
        self._listeners: list[trio.SocketListener] = []
        self._scopes: list[trio.CancelScope] = []
        self._closed = False
        self.background_nursery: trio.Nursery | None = None  # set by the swarm before listen()

    async def listen(self, maddr: Multiaddr) -> None:
        """Bind and start accepting; OpenConnectionError (from an OSError) if the bind fails."""
        if self._closed:
            raise OpenConnectionError(f"cannot listen on {maddr}: listener closed")
        nursery = self.background_nursery
        if nursery is None:
            raise OpenConnectionError(f"cannot listen on {maddr}: swarm is not running")
        family, host, port = _parse_tcp(maddr)
        sock = trio.socket.socket(family, _socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR lets a restarted node rebind while old connections sit in TIME_WAIT; without
            # SO_REUSEPORT a port with a live listener still fails with EADDRINUSE (Linux, BSD).
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if family == _socket.AF_INET6:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            await sock.bind((host, port))
            sock.listen(LISTEN_BACKLOG)
        except OSError as e:
            sock.close()
            raise OpenConnectionError(f"cannot listen on {maddr}: {e}") from e
        listener = trio.SocketListener(sock)
        self._listeners.append(listener)
        await nursery.start(self._serve, listener)

    async def _serve(
        self, listener: trio.SocketListener, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            self._scopes.append(scope)
            task_status.started()
            try:
                await trio.serve_listeners(self._handle, [listener])
            finally:
                with trio.CancelScope(shield=True):
                    await listener.aclose()

    async def _handle(self, stream: trio.SocketStream) -> None:
        tcp = TrioTCPStream(stream)
        _remember_remote_address(tcp)
        try:
            await self._handler(tcp)
        except Exception as e:  # one bad connection must never stop the listener
            logger.debug("inbound connection handler failed: %s", e)
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def get_addrs(self) -> tuple[Multiaddr, ...]:
        """The bound addresses (port 0 resolved)."""
        return tuple(_sock_multiaddr(listener.socket) for listener in self._listeners if not self._closed)

    async def close(self) -> None:
        """Stop accepting and close the listening sockets (connections are the swarm's business)."""
        if self._closed:
            return
        self._closed = True
        for scope in self._scopes:
            scope.cancel()
        for listener in self._listeners:
            await listener.aclose()


class ScopedTCP(ITransport):
    """py-libp2p's TCP transport for dialing, `ScopedTCPListener` for listening."""

    def __init__(self) -> None:
        self._tcp = TCP()

    async def dial(self, maddr: Multiaddr) -> IRawConnection:
        raw = await self._tcp.dial(maddr)
        stream = getattr(raw, "stream", None)
        if isinstance(stream, TrioTCPStream):
            _remember_remote_address(stream)
        return raw

    def create_listener(self, handler_function: THandler) -> ScopedTCPListener:
        return ScopedTCPListener(handler_function)

    def can_dial(self, maddr: Multiaddr) -> bool:
        return self._tcp.can_dial(maddr)

    def can_listen(self, maddr: Multiaddr) -> bool:
        return self._tcp.can_listen(maddr)

    def protocols(self) -> list[str]:
        return self._tcp.protocols()


# ---- D4 ---------------------------------------------------------------------------------------------
def ensure_secure_only(security: Iterable[str]) -> None:
    """Raise ValueError if `security` names a protocol that does not authenticate the peer."""
    bad = INSECURE_PROTOCOLS.intersection(security)
    if bad:
        raise ValueError(f"insecure security protocols are not allowed: {sorted(bad)}")


# ---- D6 ---------------------------------------------------------------------------------------------
class _NoAutoConnector(AutoConnector):
    """The auto-connector with its dialing switched off."""

    async def run_background_task(self, nursery: trio.Nursery) -> None:
        return None

    async def maybe_connect(self) -> None:
        return None

    def record_disconnect(self, peer_id: ID) -> None:  # D11: nothing to back off from
        return None


# ---- D7 ---------------------------------------------------------------------------------------------
class _ScopedSwarmConn(SwarmConn):
    """SwarmConn whose cleanup yields once instead of sleeping 100 ms, and which can wait until idle."""

    _streams_changed: trio.Event | None = None

    def remove_stream(self, stream: Any) -> None:
        super().remove_stream(stream)
        if self._streams_changed is not None:
            self._streams_changed.set()

    async def close(self) -> None:
        await super().close()
        if self._streams_changed is not None:
            self._streams_changed.set()

    async def wait_idle(self) -> None:
        """Return once the connection carries no stream (or is closed)."""
        while self.streams and not self.is_closed:
            self._streams_changed = trio.Event()
            await self._streams_changed.wait()

    async def _cleanup(self) -> None:
        self.swarm.remove_conn(self)
        try:
            if not self.muxed_conn.is_closed:
                await self.muxed_conn.close()
        except Exception as e:
            logger.debug("closing muxed connection to %s: %s", self.muxed_conn.peer_id, e)
        for stream in self.streams.copy():
            try:
                await stream.reset()
            except Exception as e:
                logger.debug("resetting stream: %s", e)
        await trio.lowlevel.checkpoint()
        await self._notify_disconnected()


class HardenedSwarm(Swarm):
    """py-libp2p's Swarm with fixes D1-D3 and D5-D7 (see the module docstring)."""

    def _init_connection_management(self) -> None:
        super()._init_connection_management()
        self.auto_connector = _NoAutoConnector(  # D6
            swarm=self, auto_connect_interval=self.connection_config.auto_connect_interval
        )

    # D1
    async def _do_handle_inbound_connection(
        self, read_write_closer: ReadWriteCloser, maddr: Multiaddr, failure_event: Any
    ) -> None:
        remote = self._build_remote_multiaddr(read_write_closer)
        if remote is not None and not await self.connection_gate.is_allowed(remote):
            await read_write_closer.close()
            return
        raw_conn = RawConnection(read_write_closer, False)
        try:
            muxed = await self.upgrade_inbound_raw_conn(raw_conn, maddr)
        except Exception as e:
            logger.debug("inbound connection from %s failed: %s", remote, e)
            await raw_conn.close()
            return
        closed = getattr(muxed, "event_closed", None)
        if isinstance(closed, trio.Event):
            await closed.wait()  # hold the inbound slot exactly as long as the connection lives

    # D3
    async def listen(self, *multiaddrs: Multiaddr) -> bool:
        """Listen on every address or raise ListenError (nothing is left half-open on failure)."""
        await self.event_background_nursery_created.wait()
        for maddr in multiaddrs:
            if str(maddr) in self.listeners:
                continue
            transport = self.transport_manager.transport_for_listening(maddr)
            if transport is None:
                raise ListenError(f"no transport can listen on {maddr}")

            async def conn_handler(rwc: ReadWriteCloser, _maddr: Multiaddr = maddr) -> None:
                await self._handle_inbound_connection(rwc, _maddr)

            listener = transport.create_listener(conn_handler)
            setattr(listener, "background_nursery", self.background_nursery)  # noqa: B010
            try:
                await listener.listen(maddr)
            except (OSError, OpenConnectionError) as e:
                await listener.close()
                raise ListenError(f"cannot listen on {maddr}: {e.__cause__ or e}") from e
            self.listeners[str(maddr)] = listener
            await self.notify_listen(maddr)
        return True

    # D2
    async def close(self) -> None:
        """Stop listening, close every connection concurrently, stop the swarm's tasks. Idempotent."""
        if self._closing:
            return
        listeners = list(self.listeners.values())
        self.listeners.clear()
        for listener in listeners:
            await listener.close()
        conns = [c for cs in self.connections.values() for c in cs]
        async with trio.open_nursery() as nursery:
            for conn in conns:
                nursery.start_soon(_close_quietly, conn)
        await super().close()

    # D7
    async def add_conn(self, muxed_conn: IMuxedConn, direction: str = "unknown") -> SwarmConn:
        """Start the muxed connection, wrap and register it, resolve duplicates (D5), notify."""
        peer_id = muxed_conn.peer_id
        for existing in self.connections.get(peer_id, []):
            if existing.muxed_conn is muxed_conn:
                return existing  # type: ignore[return-value]
        swarm_conn = _ScopedSwarmConn(muxed_conn, self, direction=direction)
        swarm_conn._metric_send_channel = self.metric_send_channel
        swarm_conn.set_transport_info(muxed_conn.get_transport_addresses(), muxed_conn.get_connection_type())
        swarm_conn.set_negotiated_protocols(
            getattr(muxed_conn, "negotiated_security_protocol", None),
            getattr(muxed_conn, "negotiated_muxer_protocol", None),
        )
        try:
            if self._closing:
                raise SwarmException("swarm is closing")
            self.manager.run_task(muxed_conn.start)
            await muxed_conn.event_started.wait()
            if muxed_conn.is_closed:
                raise SwarmException(f"connection to {peer_id} closed while starting")
            self.manager.run_task(swarm_conn.start)
            await swarm_conn.event_started.wait()
            if len(self.get_connections()) >= self.connection_config.max_connections:
                raise SwarmException("maximum number of connections reached")
            self.connections.setdefault(peer_id, []).append(swarm_conn)
        except BaseException:
            with trio.CancelScope(shield=True):
                await _close_quietly(swarm_conn)
            raise
        self._resolve_duplicates(peer_id)
        await self.notify_connected(swarm_conn)
        return swarm_conn

    # D11
    async def notify_disconnected(self, conn: INetConn) -> None:
        await super().notify_disconnected(conn)
        peer_id = conn.muxed_conn.peer_id
        if peer_id != self.self_id and not any(not c.is_closed for c in self.connections.get(peer_id, [])):
            try:
                self.peerstore.clear_peerdata(peer_id)
            except PeerStoreError:
                pass

    # D10
    async def _notify(self, method: str, *args: Any) -> None:
        for notifee in list(self.notifees):
            try:
                await getattr(notifee, method)(self, *args)
            except Exception as e:
                logger.debug("notifee %s.%s failed: %s", type(notifee).__name__, method, e)

    # D5
    def _canonical(self, peer_id: ID, conns: list[INetConn]) -> INetConn:
        smaller_dials = self.self_id.to_bytes() < peer_id.to_bytes()

        def rank(conn: INetConn) -> tuple[bool, float]:
            # Both ends agree on "dialed by the smaller peer id". Between connections from the same
            # dialer the newest wins: a peer that dials again has given up on its older connection
            # (it reconnected before we noticed the old one die).
            outbound = getattr(conn, "direction", None) == Direction.OUTBOUND
            dialed_by_smaller = outbound == smaller_dials
            return (not dialed_by_smaller, -float(getattr(conn, "_created_at", 0.0)))

        return min(conns, key=rank)

    def _resolve_duplicates(self, peer_id: ID) -> None:
        conns = [c for c in self.connections.get(peer_id, []) if not c.is_closed]
        if len(conns) <= 1:
            return
        keep = self._canonical(peer_id, conns)
        for conn in conns:
            if conn is not keep and not getattr(conn, "_nabu_draining", False):
                setattr(conn, "_nabu_draining", True)  # noqa: B010
                logger.debug("closing duplicate connection to %s once idle", peer_id)
                self.manager.run_task(_drain_and_close, conn)

    def _select_connection(self, connections: list[INetConn], peer_id: ID) -> INetConn:
        live = [c for c in connections if not getattr(c, "_nabu_draining", False)] or connections
        return self._canonical(peer_id, live)

    def _trim_connections(self, peer_id: ID) -> None:
        self._resolve_duplicates(peer_id)


async def _close_quietly(conn: INetConn) -> None:
    try:
        await conn.close()
    except Exception as e:
        logger.debug("closing connection: %s", e)


async def _drain_and_close(conn: INetConn) -> None:
    if isinstance(conn, _ScopedSwarmConn):
        with trio.move_on_after(DRAIN_TIMEOUT):
            await conn.wait_idle()
    await _close_quietly(conn)


# ---- D8 ---------------------------------------------------------------------------------------------
_EXPECTED_CHURN: Final = (
    "failed to upgrade security",
    "fail to upgrade mux",
    "failed to upgrade mux",
    "[ADDCONN_FAIL]",
    "[ADDCONN_DENY]",
    "Failed to open stream",
    "Error closing connection",
    "Error while closing muxed connection",
    "Error resetting stream",
    "Error getting transport addresses",
    "Error getting remote address",
    "Error sending identify response",
    "Failed to parse identify response",
    "Notifee ",
)


class _DemoteExpectedChurn(logging.Filter):
    """Re-level records about normal network churn (failed dials, vanished peers) to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            msg = str(record.msg)
            if any(s in msg for s in _EXPECTED_CHURN):
                if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                    return False  # handlers do not re-check logger levels: drop it here
                record.levelno = logging.DEBUG
                record.levelname = "DEBUG"
                record.exc_info = None
                record.exc_text = None
        return True


class _ModuleLogging:
    """Stand-in for the `logging` module inside py-libp2p modules that log on the root logger."""

    def __init__(self, named: logging.Logger) -> None:
        self._named = named

    def __getattr__(self, name: str) -> Any:
        if name in ("debug", "info", "warning", "error", "exception", "critical", "log"):
            return getattr(self._named, name)
        return getattr(logging, name)


_configured: dict[str, int] = {}


def configure_logging(level: int = logging.ERROR, *, force: bool = False) -> None:
    """Route py-libp2p's logging through the standard hierarchy (D8); call once, early.

    * `libp2p` records propagate to the application's handlers (0.8.1 stops them at the `libp2p`
      logger, so they reach stderr via `logging.lastResort`, bypassing any configuration);
    * the `libp2p` logger's level becomes `level` (default ERROR: its WARNINGs describe internal
      retries, not anything an operator acts on; our own `nabu_py.p2p` loggers report what matters);
    * records about expected churn are re-levelled to DEBUG and lose their tracebacks;
    * `swarm_connection`, which logs on the root logger, logs on its own module logger instead.

    Leaves everything alone when `LIBP2P_DEBUG` is set (py-libp2p's own debug logging) unless `force`.
    Idempotent; `P2PHost.open` calls it with the defaults if the application has not.
    """
    import os

    if os.environ.get("LIBP2P_DEBUG") and not force:
        return
    root = logging.getLogger("libp2p")
    root.handlers.clear()
    root.propagate = True
    root.setLevel(level)
    demote = _DemoteExpectedChurn()
    names = [n for n in logging.Logger.manager.loggerDict if n == "libp2p" or n.startswith("libp2p.")]
    for name in [*names, "libp2p.network.swarm", "libp2p.host.basic_host"]:
        lg = logging.getLogger(name)
        if not any(isinstance(f, _DemoteExpectedChurn) for f in lg.filters):
            lg.addFilter(demote)
    module_logger = logging.getLogger(_swarm_connection_module.__name__)
    if not any(isinstance(f, _DemoteExpectedChurn) for f in module_logger.filters):
        module_logger.addFilter(demote)
    setattr(_swarm_connection_module, "logging", _ModuleLogging(module_logger))  # noqa: B010
    _configured["level"] = level


def logging_configured() -> bool:
    """Whether `configure_logging` has run in this process."""
    return bool(_configured)
