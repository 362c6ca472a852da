"""Connection upgrade: raw TCP -> secure channel -> yamux (libp2p specs, connections/README.md "Upgrading").

Plugs into py-libp2p's swarm where 0.8.1 uses `TransportUpgrader`, which we cannot keep because:
* `MuxerMultistream.new_conn` builds py-libp2p's own `Yamux` whenever `/yamux/1.0.0` is negotiated, ignoring
  the muxer class configured in `muxer_opt` -- our yamux could not be plugged in otherwise;
* its multistream-select reads unbounded messages and spends an extra round trip per negotiation.

Security protocols are only ever the ones handed in (TLS and Noise in our host): there is no plaintext or
secio fallback, whatever the remote proposes. Both negotiations use the pipelined, bounded
`multistream` module; failures raise py-libp2p's `SecurityUpgradeFailure` / `MuxerUpgradeFailure`, which
the swarm already turns into a closed connection and a dial error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import trio
from libp2p.abc import IMuxedConn, IRawConnection, ISecureConn, ISecureTransport
from libp2p.peer.id import ID
from libp2p.security.exceptions import HandshakeFailure
from libp2p.transport.exceptions import MuxerUpgradeFailure, SecurityUpgradeFailure
from libp2p.transport.upgrader import TransportUpgrader

from nabu_py.errors import DecodeError
from nabu_py.p2p import multistream
from nabu_py.p2p.errors import ProtocolNegotiationError
from nabu_py.p2p.yamux import PROTOCOL_ID as YAMUX_ID
from nabu_py.p2p.yamux import YamuxConfig, YamuxConnection

__all__ = ["INSECURE_PROTOCOLS", "Upgrader"]

INSECURE_PROTOCOLS: Final = frozenset({"/plaintext/1.0.0", "/plaintext/2.0.0", "/secio/1.0.0"})
"""Security protocol ids that identify nobody; the upgrader refuses to be configured with them."""

logger = logging.getLogger(__name__)


class _ConnIO:
    """multistream ByteStream over a raw or secured connection (`b""` at EOF, never over-reads)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: IRawConnection) -> None:
        self._conn = conn

    async def read(self, n: int) -> bytes:
        return await self._conn.read(n)

    async def write(self, data: bytes) -> None:
        await self._conn.write(data)


class Upgrader(TransportUpgrader):
    """Security then muxer negotiation for the swarm (replaces both of `TransportUpgrader`'s steps)."""

    def __init__(
        self,
        security: Mapping[str, ISecureTransport],
        *,
        yamux_config: YamuxConfig | None = None,
        negotiate_timeout: float = 10.0,
    ) -> None:
        """`security` maps protocol id to transport, in our order of preference."""
        super().__init__({}, {})  # the base's multistream selectors stay empty and unused
        if not security:
            raise ValueError("at least one security transport is required")
        insecure = INSECURE_PROTOCOLS.intersection(security)
        if insecure:
            raise ValueError(f"refusing insecure security protocols {sorted(insecure)}")
        self._security = dict(security)
        self._yamux_config = yamux_config or YamuxConfig()
        self._timeout = negotiate_timeout

    @property
    def security_protocols(self) -> tuple[str, ...]:
        """Security protocol ids in preference order."""
        return tuple(self._security)

    async def upgrade_security(
        self, raw_conn: IRawConnection, is_initiator: bool, peer_id: ID | None = None
    ) -> ISecureConn:
        """Negotiate a security protocol and run its handshake; outbound checks the remote peer id."""
        io = _ConnIO(raw_conn)
        try:
            with trio.fail_after(self._timeout):
                if is_initiator:
                    protocol = await multistream.select(io, self._security)
                else:
                    protocol = await multistream.handle(io, self._security)
        except (ProtocolNegotiationError, DecodeError, trio.TooSlowError, OSError) as e:
            raise SecurityUpgradeFailure(f"security negotiation failed: {e}") from e
        except Exception as e:  # connection-level errors of py-libp2p's raw connection
            raise SecurityUpgradeFailure(f"security negotiation failed: {type(e).__name__}: {e}") from e
        transport = self._security[protocol]
        try:
            if is_initiator:
                if peer_id is None:
                    raise ValueError("outbound upgrade needs the expected peer id")
                secured = await transport.secure_outbound(raw_conn, peer_id)
                if secured.get_remote_peer() != peer_id:
                    await secured.close()
                    raise SecurityUpgradeFailure(
                        f"Peer ID mismatch: expected {peer_id}, got {secured.get_remote_peer()}"
                    )
            else:
                secured = await transport.secure_inbound(raw_conn)
        except SecurityUpgradeFailure:
            raise
        except HandshakeFailure as e:
            raise SecurityUpgradeFailure(f"{protocol} handshake failed: {e}") from e
        except Exception as e:
            raise SecurityUpgradeFailure(f"{protocol} handshake failed: {type(e).__name__}: {e}") from e
        setattr(secured, "negotiated_security_protocol", protocol)  # noqa: B010 - read by the swarm
        return secured

    async def upgrade_connection(self, conn: ISecureConn, peer_id: ID) -> IMuxedConn:
        """Negotiate yamux over the secure channel and wrap it (not started: the swarm starts it)."""
        io = _ConnIO(conn)
        muxers = (YAMUX_ID,)
        try:
            with trio.fail_after(self._timeout):
                if conn.is_initiator:
                    await multistream.select(io, muxers)
                else:
                    await multistream.handle(io, muxers)
        except Exception as e:
            raise MuxerUpgradeFailure(f"muxer negotiation failed: {type(e).__name__}: {e}") from e
        muxed = YamuxConnection(conn, peer_id, is_initiator=conn.is_initiator, config=self._yamux_config)
        setattr(muxed, "negotiated_muxer_protocol", YAMUX_ID)  # noqa: B010 - read by the swarm
        setattr(  # noqa: B010
            muxed, "negotiated_security_protocol", getattr(conn, "negotiated_security_protocol", None)
        )
        return muxed
