"""`/tls/1.0.0` secure channel (libp2p specs, tls/tls.md) on trio, replacing py-libp2p 0.8.1's TLSTransport.

TLS 1.3 runs in a pyOpenSSL `Connection` over memory BIOs that this module pumps to and from the TCP
socket (a `trio.SocketStream` when the raw connection is py-libp2p's TCP one, any `IRawConnection`
otherwise). Certificates and the peer check come from `identity.tls_context` / `verify_certificate`:
one self-signed certificate per host carrying the libp2p Public Key Extension, the peer's certificate
authenticated inside the handshake's verify callback, the client's expected peer id compared after it.

Why not py-libp2p's transport: it writes a new certificate and key to temporary files for every
connection, installs an accept-all verify callback into CPython's `SSLContext` through ctypes (struct
layout and libssl coupling), and its read path feeds OpenSSL from 4 KiB socket reads and returns one
TLS record per call, which kept a TLS+yamux stream at 0.2-0.45x of a plain trio TLS stream
(spec/py-libp2p.md §2). Here reads take up to `RECV_SIZE` of ciphertext per syscall and `read()` returns
every record already decrypted (up to the caller's limit), so per-record Python overhead is paid once per
batch, not once per 16 KiB.

Concurrency: one reader at a time (the muxer's reader task; a lock makes misuse harmless), any number of
writers. Everything that drains the outgoing BIO does so under `_send_lock`, so ciphertext reaches the
socket in the order OpenSSL produced it, and a `write()` returns only once its records are on the socket.
"""

from __future__ import annotations

import logging
import threading
from typing import Final, Protocol

import trio
from libp2p.abc import IRawConnection, ISecureConn, ISecureTransport
from libp2p.connection_types import ConnectionType
from libp2p.crypto.exceptions import MissingDeserializerError
from libp2p.crypto.keys import KeyPair, KeyType, PublicKey
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.io.exceptions import ConnectionClosedError
from libp2p.peer.id import ID
from libp2p.security.base_session import BaseSession
from libp2p.security.exceptions import HandshakeFailure
from multiaddr import Multiaddr
from OpenSSL import SSL

from nabu_py.p2p import identity as _identity
from nabu_py.p2p.errors import SecurityError
from nabu_py.p2p.identity import HostIdentity, PeerCertificate

__all__ = ["PROTOCOL_ID", "TlsConnection", "TlsTransport"]

PROTOCOL_ID: Final = "/tls/1.0.0"
RECV_SIZE: Final = 256 * 1024
"""Ciphertext bytes requested from the socket per read (OpenSSL then decrypts record by record)."""
MAX_READ: Final = 1024 * 1024
"""Plaintext returned by one `read()` when the caller sets no limit."""
_BIO_CHUNK: Final = 256 * 1024
HANDSHAKE_TIMEOUT: Final = 10.0

logger = logging.getLogger(__name__)


_local = threading.local()


def _scratch() -> memoryview:
    """A per-thread 1 MiB decryption buffer shared by all connections (a read never awaits while it
    holds data in it), instead of 1 MiB per connection."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(MAX_READ))
    return view


class _Transport(Protocol):
    async def receive_some(self, max_bytes: int) -> bytes: ...

    async def send_all(self, data: bytes) -> None: ...


class _SocketTransport:
    """Direct access to the trio socket under py-libp2p's TCP raw connection (no extra locks)."""

    __slots__ = ("_sock",)

    def __init__(self, sock: trio.SocketStream) -> None:
        self._sock = sock

    async def receive_some(self, max_bytes: int) -> bytes:
        try:
            return bytes(await self._sock.receive_some(max_bytes))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            raise ConnectionClosedError(f"TCP connection lost: {e}") from e

    async def send_all(self, data: bytes) -> None:
        try:
            await self._sock.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            raise ConnectionClosedError(f"TCP connection lost: {e}") from e


class _RawTransport:
    """Any other IRawConnection (e.g. a PSK-protected one)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: IRawConnection) -> None:
        self._conn = conn

    async def receive_some(self, max_bytes: int) -> bytes:
        return await self._conn.read(max_bytes)

    async def send_all(self, data: bytes) -> None:
        await self._conn.write(data)


def _transport_for(conn: IRawConnection) -> _Transport:
    inner = getattr(getattr(conn, "stream", None), "stream", None)
    if isinstance(inner, trio.SocketStream):
        return _SocketTransport(inner)
    return _RawTransport(conn)


class _ForeignPublicKey(PublicKey):
    """A peer key type py-libp2p cannot deserialize (ECDSA); verification goes through identity.py."""

    def __init__(self, key_type: KeyType, data: bytes, proto: bytes) -> None:
        self._type = key_type
        self._data = data
        self._proto = proto

    def to_bytes(self) -> bytes:
        return self._data

    def get_type(self) -> KeyType:
        return self._type

    def verify(self, data: bytes, signature: bytes) -> bool:
        return _identity.verify_signature(self._proto, data, signature)


def _libp2p_public_key(proto: bytes) -> PublicKey:
    try:
        key: PublicKey = deserialize_public_key(proto)
        return key
    except (MissingDeserializerError, ValueError):
        key_type, data = _identity.decode_key(proto)
        return _ForeignPublicKey(KeyType(int(key_type)), data, proto)


class _HandshakeState:
    """Per-connection verdict of the verify callback (stored as the SSL connection's app data)."""

    __slots__ = ("verdict",)

    def __init__(self) -> None:
        self.verdict: PeerCertificate | SecurityError | None = None


class TlsConnection(BaseSession):
    """A secured connection: `read`/`write` plaintext; the remote is authenticated."""

    def __init__(
        self,
        *,
        raw: IRawConnection,
        transport: _Transport,
        ssl_conn: SSL.Connection,
        local_key_pair: KeyPair,
        local_peer: ID,
        remote_peer: ID,
        remote_public_key: PublicKey,
        is_initiator: bool,
    ) -> None:
        super().__init__(
            local_peer=local_peer,
            local_private_key=local_key_pair.private_key,
            remote_peer=remote_peer,
            remote_permanent_pubkey=remote_public_key,
            is_initiator=is_initiator,
        )
        self._raw = raw
        self._transport = transport
        self._ssl = ssl_conn
        self._send_lock = trio.Lock()
        self._recv_lock = trio.Lock()
        self._eof = False
        self._closed = False

    # ---- plaintext I/O ------------------------------------------------------------------------------
    async def read(self, n: int | None = None) -> bytes:
        """Up to `n` bytes of plaintext (up to 1 MiB if None); `b""` once the peer closed the channel."""
        limit = MAX_READ if n is None or n < 0 else min(n, MAX_READ)
        if limit == 0:
            return b""
        async with self._recv_lock:
            while True:
                view = _scratch()
                got = self._decrypt_into(view, limit)
                if got:
                    return bytes(view[:got])  # copied out before any await: the buffer is shared
                if self._eof or self._closed:
                    return b""
                await self._flush_from_reader()
                data = await self._transport.receive_some(RECV_SIZE)
                if data:
                    self._ssl.bio_write(data)
                else:
                    self._ssl.bio_shutdown()

    def _decrypt_into(self, view: memoryview, limit: int) -> int:
        got = 0
        ssl_conn = self._ssl
        while got < limit:
            try:
                got += ssl_conn.recv_into(view[got:limit])
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:  # close_notify
                self._eof = True
                break
            except SSL.SysCallError as e:  # transport EOF without close_notify
                logger.debug("TLS connection to %s ended without close_notify: %s", self.remote_peer, e)
                self._eof = True
                break
            except SSL.Error as e:
                if got:
                    break
                raise ConnectionClosedError(f"TLS error: {e}") from e
        return got

    async def write(self, data: bytes) -> None:
        """Encrypt and send all of `data`."""
        if self._closed:
            raise ConnectionClosedError("TLS connection is closed")
        if data:
            try:
                self._ssl.sendall(data)
            except SSL.Error as e:
                raise ConnectionClosedError(f"TLS error: {e}") from e
        await self._flush()

    async def _flush(self) -> None:
        async with self._send_lock:
            await self._drain_locked()

    async def _drain_locked(self) -> None:
        while True:
            try:
                out = self._ssl.bio_read(_BIO_CHUNK)
            except SSL.WantReadError:
                return
            await self._transport.send_all(out)

    async def _flush_from_reader(self) -> None:
        """Send records OpenSSL produced while reading (KeyUpdate replies), never waiting for writers.

        A writer holding `_send_lock` drains the BIO until it is empty before releasing it, so output
        appended meanwhile goes out with its batch; blocking the reader on that lock instead could
        deadlock two peers that both write more than the socket buffers hold.
        """
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            return
        try:
            await self._drain_locked()
        finally:
            self._send_lock.release()

    async def close(self) -> None:
        """Send close_notify (best effort, bounded) and close the socket."""
        if self._closed:
            return
        self._closed = True
        with trio.move_on_after(1.0) as scope:
            scope.shield = True
            try:
                self._ssl.shutdown()
                await self._flush()
            except (SSL.Error, ConnectionClosedError, OSError, trio.BusyResourceError):
                pass
        await self._raw.close()

    # ---- connection metadata ------------------------------------------------------------------------
    def get_remote_address(self) -> tuple[str, int] | None:
        return self._raw.get_remote_address()

    def get_transport_addresses(self) -> list[Multiaddr]:
        return self._raw.get_transport_addresses()

    def get_connection_type(self) -> ConnectionType:
        return self._raw.get_connection_type()


class TlsTransport(ISecureTransport):
    """py-libp2p `ISecureTransport` for `/tls/1.0.0` (one certificate per host, verified peers)."""

    def __init__(
        self, identity: HostIdentity, key_pair: KeyPair, handshake_timeout: float = HANDSHAKE_TIMEOUT
    ):
        self._identity = identity
        self._key_pair = key_pair
        self._local_peer = ID(identity.peer_id.to_bytes())
        self._timeout = handshake_timeout
        self._ctx = _identity.tls_context(identity, self._record_verdict)

    @staticmethod
    def _record_verdict(conn: SSL.Connection, verdict: PeerCertificate | SecurityError) -> None:
        state = conn.get_app_data()
        if isinstance(state, _HandshakeState) and not isinstance(state.verdict, SecurityError):
            state.verdict = verdict

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        """Run the server side of the handshake; the client's certificate is required."""
        return await self._secure(conn, None)

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        """Run the client side; fail unless the server proves it is `peer_id`."""
        return await self._secure(conn, peer_id)

    async def _secure(self, conn: IRawConnection, expected: ID | None) -> TlsConnection:
        transport = _transport_for(conn)
        ssl_conn = SSL.Connection(self._ctx, None)
        state = _HandshakeState()
        ssl_conn.set_app_data(state)
        if expected is None:
            ssl_conn.set_accept_state()
        else:
            ssl_conn.set_connect_state()
        try:
            with trio.fail_after(self._timeout):
                await self._handshake(ssl_conn, transport)
        except trio.TooSlowError:
            raise HandshakeFailure("TLS handshake timed out") from None
        except (SSL.Error, ConnectionClosedError, OSError) as e:
            verdict = state.verdict
            if isinstance(verdict, SecurityError):
                raise HandshakeFailure(f"TLS peer authentication failed: {verdict}") from e
            raise HandshakeFailure(f"TLS handshake failed: {e}") from e
        verdict = state.verdict
        if not isinstance(verdict, PeerCertificate):
            raise HandshakeFailure(f"TLS peer authentication failed: {verdict or 'no certificate'}")
        chain = ssl_conn.get_peer_cert_chain(as_cryptography=True) or []
        leaf = ssl_conn.get_peer_certificate(as_cryptography=True)
        extra = [c for c in chain if c != leaf]
        if extra:
            raise HandshakeFailure("TLS peer sent more than one certificate")
        remote = ID(verdict.peer_id.to_bytes())
        if expected is not None and remote != expected:
            raise HandshakeFailure(f"TLS peer id mismatch: expected {expected}, got {remote}")
        return TlsConnection(
            raw=conn,
            transport=transport,
            ssl_conn=ssl_conn,
            local_key_pair=self._key_pair,
            local_peer=self._local_peer,
            remote_peer=remote,
            remote_public_key=_libp2p_public_key(verdict.public_key_proto),
            is_initiator=expected is not None,
        )

    @staticmethod
    async def _handshake(ssl_conn: SSL.Connection, transport: _Transport) -> None:
        while True:
            done = False
            try:
                ssl_conn.do_handshake()
                done = True
            except SSL.WantReadError:
                pass
            while True:
                try:
                    out = ssl_conn.bio_read(_BIO_CHUNK)
                except SSL.WantReadError:
                    break
                await transport.send_all(out)
            if done:
                return
            data = await transport.receive_some(RECV_SIZE)
            if not data:
                raise ConnectionClosedError("connection closed during the TLS handshake")
            ssl_conn.bio_write(data)
