"""Our `/tls/1.0.0` server against hand-made clients built on the *stdlib* ssl module (an independent TLS
stack): a proper libp2p client is accepted and can authenticate the server; clients without a certificate,
with a certificate lacking the libp2p extension, or offering a foreign ALPN protocol are refused and never
become connections (libp2p specs, tls/tls.md)."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nabu_py.p2p import HostConfig, HostIdentity, P2PHost
from nabu_py.p2p.identity import make_certificate, verify_certificate
from nabu_py.p2p.multistream import PROTOCOL_ID, encode_message, read_message


def _write_pem(tmp: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _plain_self_signed() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "not libp2p")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _client_context(cert_key: tuple[Path, Path] | None, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # libp2p authenticates through the extension, not PKIX
    ctx.set_alpn_protocols(alpn)
    if cert_key is not None:
        ctx.load_cert_chain(*cert_key)
    return ctx


class _TcpIO:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream

    async def read(self, n: int) -> bytes:
        return bytes(await self.stream.receive_some(n))

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)


@asynccontextmanager
async def _tls_client(port: int, ctx: ssl.SSLContext) -> AsyncIterator[trio.SSLStream[trio.SocketStream]]:
    """Negotiate /tls/1.0.0 over multistream, then run the stdlib TLS handshake; always closes the socket."""
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        io = _TcpIO(tcp)
        await io.write(encode_message(PROTOCOL_ID) + encode_message("/tls/1.0.0"))
        assert await read_message(io) == PROTOCOL_ID
        assert await read_message(io) == "/tls/1.0.0"
        stream = trio.SSLStream(tcp, ctx, server_hostname=None)
        await stream.do_handshake()
        yield stream
    finally:
        await tcp.aclose()


async def _refused(stream: trio.SSLStream[trio.SocketStream]) -> bool:
    """After a TLS 1.3 client 'finishes', the server's verdict arrives as an alert or EOF on first read."""
    try:
        await stream.send_all(encode_message(PROTOCOL_ID) + encode_message("/yamux/1.0.0"))
        return await stream.receive_some(100) == b""
    except (trio.BrokenResourceError, ssl.SSLError):
        return True


async def test_stdlib_client_with_a_libp2p_certificate_is_accepted(tmp_path: Path) -> None:
    async with P2PHost.open(HostConfig(identity=HostIdentity.generate(), security=("tls",))) as server:
        port = int(server.listen_addrs[0].value_for_protocol("tcp"))
        client_identity = HostIdentity.generate()
        ctx = _client_context(_write_pem(tmp_path, *make_certificate(client_identity)), ["libp2p"])
        with trio.fail_after(10):
            async with _tls_client(port, ctx) as stream:
                assert stream.selected_alpn_protocol() == "libp2p"
                server_cert = stream.getpeercert(binary_form=True)
                assert server_cert is not None
                assert verify_certificate(server_cert).peer_id == server.peer_id
                await stream.send_all(encode_message(PROTOCOL_ID) + encode_message("/yamux/1.0.0"))
                io = _TcpIO(stream)
                assert await read_message(io) == PROTOCOL_ID
                assert await read_message(io) == "/yamux/1.0.0"


@pytest.mark.parametrize("case", ["no certificate", "no libp2p extension", "foreign ALPN"])
async def test_unauthenticated_clients_are_refused(case: str, tmp_path: Path) -> None:
    async with P2PHost.open(HostConfig(identity=HostIdentity.generate(), security=("tls",))) as server:
        port = int(server.listen_addrs[0].value_for_protocol("tcp"))
        if case == "no certificate":
            ctx = _client_context(None, ["libp2p"])
        elif case == "no libp2p extension":
            ctx = _client_context(_write_pem(tmp_path, *_plain_self_signed()), ["libp2p"])
        else:
            ctx = _client_context(_write_pem(tmp_path, *make_certificate(HostIdentity.generate())), ["h2"])
        with trio.fail_after(10):
            try:
                async with _tls_client(port, ctx) as stream:
                    assert await _refused(stream)
            except (ssl.SSLError, trio.BrokenResourceError):
                pass  # refused during the handshake
        assert server.connection_count() == 0
