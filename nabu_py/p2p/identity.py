"""Host identity and the libp2p TLS certificate: the only nabu_py module touching `cryptography`/`OpenSSL`.

Keys (libp2p specs, peer-ids/peer-ids.md "Keys"): a key travels as the protobuf
`PublicKey|PrivateKey { required KeyType Type = 1; required bytes Data = 2; }` with KeyType RSA=0,
Ed25519=1, Secp256k1=2, ECDSA=3. Data is, for public keys: Ed25519 the 32 raw bytes, secp256k1 the 33-byte
compressed point, RSA and ECDSA a DER SubjectPublicKeyInfo; for private keys: Ed25519 the 32-byte seed
followed by the 32-byte public key (kubo/go write 64 bytes; we also read the 32-byte form jvm-libp2p writes
and go's legacy 96-byte form), RSA a PKCS#1 DER key. The peer id is the multihash of the canonical
protobuf public key (`PeerId.from_public_key`). Signatures: Ed25519 plain, RSA PKCS#1 v1.5/SHA-256,
ECDSA and secp256k1 DER-encoded ECDSA over SHA-256.

Config encoding (spec/nabu.md §1.11): `Identity.PrivKey` is base64 of the protobuf PrivateKey and
`Identity.PeerID` its base58 peer id; loading checks that the two agree (Nabu throws on mismatch).

TLS (libp2p specs, tls/tls.md): each host makes one self-signed certificate for an ephemeral ECDSA P-256
key and reuses it for every connection (allowed by the spec). It carries the libp2p Public Key Extension
(OID 1.3.6.1.4.1.53594.1.1, not critical) whose value is the DER `SignedKey ::= SEQUENCE { publicKey
OCTET STRING, signature OCTET STRING }`: the protobuf host public key and the host key's signature over
`"libp2p-tls-handshake:" || DER(SubjectPublicKeyInfo of the certificate key)`. The peer's certificate is
checked by `verify_certificate` (validity period, self-signature, no unknown critical extension, the
extension's signature) instead of PKIX chains: `tls_context` builds a pyOpenSSL context (TLS 1.3 only,
ALPN "libp2p", client certificate required) whose verify callback runs that check. Key material stays
in memory (py-libp2p 0.8.1 writes it to temporary files and patches CPython's SSLContext through ctypes).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from OpenSSL import SSL, crypto

from nabu_py.errors import DecodeError
from nabu_py.multiformats import varint
from nabu_py.p2p.errors import SecurityError
from nabu_py.p2p.peer_id import PeerId

__all__ = [
    "LIBP2P_TLS_ALPN",
    "LIBP2P_TLS_OID",
    "HostIdentity",
    "KeyType",
    "PeerCertificate",
    "canonical_public_key",
    "decode_public_key",
    "encode_key",
    "load_or_create_identity",
    "make_certificate",
    "tls_context",
    "verify_certificate",
    "verify_signature",
]

LIBP2P_TLS_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.1")
LIBP2P_TLS_ALPN: Final = b"libp2p"
_SIGNATURE_PREFIX: Final = b"libp2p-tls-handshake:"
MAX_KEY_PROTO: Final = 4096
"""Largest protobuf key accepted from outside (RSA-8192 public key in DER is about 1.1 KiB)."""
MAX_CERTIFICATE: Final = 16384
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
_CERT_VALIDITY: Final = datetime.timedelta(days=3650)
_CERT_BACKDATE: Final = datetime.timedelta(hours=1)
_UNDERSTOOD_CRITICAL: Final = frozenset(
    {
        LIBP2P_TLS_OID,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)


class KeyType(IntEnum):
    """libp2p `KeyType` enum (peer-ids spec)."""

    RSA = 0
    ED25519 = 1
    SECP256K1 = 2
    ECDSA = 3


# ---- protobuf PublicKey / PrivateKey ------------------------------------------------------------------
def encode_key(key_type: KeyType, data: bytes) -> bytes:
    """Canonical protobuf encoding of a `PublicKey`/`PrivateKey` message."""
    return b"\x08" + varint.encode(int(key_type)) + b"\x12" + varint.encode(len(data)) + data


def decode_key(proto: bytes | bytearray | memoryview) -> tuple[KeyType, bytes]:
    """Decode a protobuf `PublicKey`/`PrivateKey`; both fields required, unknown fields rejected."""
    raw = bytes(proto)
    if len(raw) > MAX_KEY_PROTO:
        raise DecodeError(f"key protobuf longer than {MAX_KEY_PROTO} bytes")
    key_type: int | None = None
    data: bytes | None = None
    i = 0
    while i < len(raw):
        tag, i = varint.decode_from(raw, i)
        if tag == 0x08:
            key_type, i = varint.decode_from(raw, i)
        elif tag == 0x12:
            length, i = varint.decode_from(raw, i)
            if i + length > len(raw):
                raise DecodeError("truncated key data")
            data = raw[i : i + length]
            i += length
        else:
            raise DecodeError(f"unexpected field tag {tag} in key protobuf")
    if key_type is None or data is None:
        raise DecodeError("key protobuf lacks Type or Data")
    try:
        return KeyType(key_type), data
    except ValueError:
        raise DecodeError(f"unknown key type {key_type}") from None


def _load_public(key_type: KeyType, data: bytes) -> object:
    try:
        if key_type == KeyType.ED25519:
            if len(data) != 32:
                raise DecodeError("Ed25519 public key must be 32 bytes")
            return ed25519.Ed25519PublicKey.from_public_bytes(data)
        if key_type == KeyType.SECP256K1:
            if len(data) != 33:
                raise DecodeError("secp256k1 public key must be a 33-byte compressed point")
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), data)
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise DecodeError(f"invalid {key_type.name} public key: {e}") from None
    if key_type == KeyType.RSA:
        if not isinstance(key, rsa.RSAPublicKey):
            raise DecodeError("RSA key type with a non-RSA key")
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise DecodeError(f"RSA key of {key.key_size} bits is outside {MIN_RSA_BITS}..{MAX_RSA_BITS}")
        return key
    if key_type == KeyType.ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
        return key
    raise DecodeError(f"{key_type.name} key type with a mismatching key")


def _public_data(key: object) -> tuple[KeyType, bytes]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyType.ED25519, key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256K1):
        return KeyType.SECP256K1, key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
    if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return (KeyType.RSA if isinstance(key, rsa.RSAPublicKey) else KeyType.ECDSA), spki
    raise TypeError(f"unsupported public key {type(key).__name__}")


def decode_public_key(proto: bytes) -> tuple[KeyType, bytes]:
    """Validate a protobuf public key from a peer; return (type, data). DecodeError if malformed."""
    key_type, data = decode_key(proto)
    _load_public(key_type, data)
    return key_type, data


def canonical_public_key(proto: bytes) -> bytes:
    """Re-encode a peer's protobuf public key canonically (what its peer id is computed from)."""
    key_type, data = decode_public_key(proto)
    return encode_key(key_type, data)


def verify_signature(public_key_proto: bytes, data: bytes, signature: bytes) -> bool:
    """Check `signature` over `data` by the protobuf-encoded libp2p public key (any of the four types)."""
    key_type, raw = decode_key(public_key_proto)
    key = _load_public(key_type, raw)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:  # pragma: no cover - _load_public returns only the types above
            return False
    except InvalidSignature:
        return False
    return True


# ---- the host identity -------------------------------------------------------------------------------
HostPrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class HostIdentity:
    """A node's long-term key pair (Ed25519, or a loaded RSA key) and its peer id."""

    __slots__ = ("_key", "_peer_id", "_public_proto")

    def __init__(self, key: HostPrivateKey) -> None:
        if isinstance(key, rsa.RSAPrivateKey) and not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise ValueError(f"RSA host keys must have {MIN_RSA_BITS}..{MAX_RSA_BITS} bits")
        self._key = key
        self._public_proto = encode_key(*_public_data(key.public_key()))
        self._peer_id = PeerId.from_public_key(self._public_proto)

    @classmethod
    def generate(cls, seed: bytes | None = None) -> HostIdentity:
        """A new Ed25519 identity (from a 32-byte seed when given, e.g. in tests)."""
        if seed is None:
            return cls(ed25519.Ed25519PrivateKey.generate())
        if len(seed) != 32:
            raise ValueError("Ed25519 seed must be 32 bytes")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_private_key_proto(cls, proto: bytes) -> HostIdentity:
        """Load a protobuf `PrivateKey` (Ed25519 32/64/96-byte Data, or RSA PKCS#1 DER)."""
        key_type, data = decode_key(proto)
        if key_type == KeyType.ED25519:
            if len(data) not in (32, 64, 96):
                raise DecodeError("Ed25519 private key must be 32, 64 or 96 bytes")
            key = ed25519.Ed25519PrivateKey.from_private_bytes(data[:32])
            pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            if any(data[i : i + 32] != pub for i in range(32, len(data), 32)):
                raise DecodeError("Ed25519 private key carries a public key that does not match its seed")
            return cls(key)
        if key_type == KeyType.RSA:
            try:
                rsa_key = serialization.load_der_private_key(data, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as e:
                raise DecodeError(f"invalid RSA private key: {e}") from None
            if not isinstance(rsa_key, rsa.RSAPrivateKey):
                raise DecodeError("RSA key type with a non-RSA key")
            try:
                return cls(rsa_key)
            except ValueError as e:
                raise DecodeError(str(e)) from None
        raise DecodeError(f"{key_type.name} host keys are not supported (Ed25519 or RSA only)")

    @classmethod
    def from_config(cls, peer_id: str, priv_key_b64: str) -> HostIdentity:
        """Load kubo/Nabu config `Identity.PrivKey` (base64 protobuf) and check `Identity.PeerID`."""
        try:
            proto = base64.b64decode(priv_key_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("Identity.PrivKey is not valid base64") from None
        identity = cls.from_private_key_proto(proto)
        expected = PeerId.parse(peer_id)
        if expected != identity.peer_id:
            raise DecodeError(
                f"Identity.PeerID {expected} does not match the private key's peer id {identity.peer_id}"
            )
        return identity

    # ---- accessors ------------------------------------------------------------------------------
    @property
    def peer_id(self) -> PeerId:
        """The peer id of this identity."""
        return self._peer_id

    @property
    def key_type(self) -> KeyType:
        """Ed25519 or RSA."""
        return KeyType.ED25519 if isinstance(self._key, ed25519.Ed25519PrivateKey) else KeyType.RSA

    def public_key_proto(self) -> bytes:
        """Canonical protobuf `PublicKey` (identify, TLS extension, Noise payload)."""
        return self._public_proto

    def private_key_proto(self) -> bytes:
        """Protobuf `PrivateKey` in the kubo encoding (Ed25519 Data = seed || public key, 64 bytes)."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            seed = self._key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            pub = self._public_proto[-32:]
            return encode_key(KeyType.ED25519, seed + pub)
        der = self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return encode_key(KeyType.RSA, der)

    def to_config(self) -> dict[str, str]:
        """The kubo/Nabu config `Identity` section: {"PeerID": base58, "PrivKey": base64 protobuf}."""
        return {
            "PeerID": self._peer_id.to_base58(),
            "PrivKey": base64.b64encode(self.private_key_proto()).decode("ascii"),
        }

    def sign(self, data: bytes) -> bytes:
        """Sign with the host key (Ed25519, or RSA PKCS#1 v1.5 with SHA-256)."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def libp2p_key_material(self) -> tuple[KeyType, bytes]:
        """(type, bytes) to build py-libp2p's KeyPair: the Ed25519 seed or the RSA PKCS#1 DER key."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return KeyType.ED25519, self._key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
        return KeyType.RSA, self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"HostIdentity({self._peer_id}, {self.key_type.name})"


def load_or_create_identity(path: str | os.PathLike[str]) -> HostIdentity:
    """Read `{"Identity": {"PeerID", "PrivKey"}}` JSON (a kubo config subset) or create it, mode 0600.

    An existing file whose key and peer id disagree raises DecodeError (never silently replaced).
    """
    p = Path(path)
    if p.exists():
        try:
            doc = json.loads(p.read_text())
            section = doc["Identity"]
            return HostIdentity.from_config(str(section["PeerID"]), str(section["PrivKey"]))
        except (ValueError, KeyError, TypeError) as e:
            if isinstance(e, DecodeError):
                raise
            raise DecodeError(f"{p}: not an identity file: {e}") from None
    identity = HostIdentity.generate()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"Identity": identity.to_config()}, f, indent=2)
        f.write("\n")
    os.replace(tmp, p)
    return identity


# ---- DER SignedKey ------------------------------------------------------------------------------------
def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_read(data: bytes, i: int, tag: int) -> tuple[bytes, int]:
    if i + 2 > len(data) or data[i] != tag:
        raise DecodeError(f"expected DER tag 0x{tag:02x}")
    first = data[i + 1]
    i += 2
    if first < 0x80:
        length = first
    else:
        nbytes = first & 0x7F
        if nbytes == 0 or nbytes > 3 or i + nbytes > len(data):
            raise DecodeError("unsupported DER length")
        length = int.from_bytes(data[i : i + nbytes], "big")
        if length < 0x80 or data[i] == 0:
            raise DecodeError("non-minimal DER length")
        i += nbytes
    if i + length > len(data):
        raise DecodeError("truncated DER value")
    return data[i : i + length], i + length


def encode_signed_key(public_key_proto: bytes, signature: bytes) -> bytes:
    """DER `SignedKey` (the libp2p extension's value)."""
    return _der_tlv(0x30, _der_tlv(0x04, public_key_proto) + _der_tlv(0x04, signature))


def decode_signed_key(der: bytes) -> tuple[bytes, bytes]:
    """Strictly parse a DER `SignedKey`; return (public key protobuf, signature)."""
    body, end = _der_read(der, 0, 0x30)
    if end != len(der):
        raise DecodeError("trailing bytes after SignedKey")
    pub, i = _der_read(body, 0, 0x04)
    sig, i = _der_read(body, i, 0x04)
    if i != len(body):
        raise DecodeError("trailing fields in SignedKey")
    return pub, sig


# ---- certificates -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerCertificate:
    """A verified peer certificate: who the peer is (peer id and canonical protobuf public key)."""

    peer_id: PeerId
    public_key_proto: bytes


def make_certificate(
    identity: HostIdentity, now: datetime.datetime | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh self-signed certificate (ephemeral P-256 key) carrying the libp2p extension."""
    now = now or datetime.datetime.now(datetime.UTC)
    cert_key = ec.generate_private_key(ec.SECP256R1())
    spki = cert_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed_key = encode_signed_key(identity.public_key_proto(), identity.sign(_SIGNATURE_PREFIX + spki))
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, str(secrets.randbits(63)))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(secrets.randbits(63) | 1)
        .not_valid_before(now - _CERT_BACKDATE)
        .not_valid_after(now + _CERT_VALIDITY)
        .add_extension(x509.UnrecognizedExtension(LIBP2P_TLS_OID, signed_key), critical=False)
        .sign(cert_key, hashes.SHA256())
    )
    return cert, cert_key


def verify_certificate(
    cert: bytes | x509.Certificate, now: datetime.datetime | None = None
) -> PeerCertificate:
    """Authenticate a peer's libp2p TLS certificate (tls.md "Peer Authentication"); SecurityError if not."""
    if isinstance(cert, bytes):
        if len(cert) > MAX_CERTIFICATE:
            raise SecurityError("peer certificate too large")
        try:
            cert = x509.load_der_x509_certificate(cert)
        except ValueError as e:
            raise SecurityError(f"malformed peer certificate: {e}") from None
    now = now or datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SecurityError("peer certificate is not valid at this time")
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as e:
        raise SecurityError(f"peer certificate self-signature is invalid: {e or type(e).__name__}") from None
    signed_key: bytes | None = None
    try:
        extensions = list(cert.extensions)
    except ValueError as e:
        raise SecurityError(f"malformed peer certificate extensions: {e}") from None
    for ext in extensions:
        if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
            raise SecurityError(f"peer certificate has an unknown critical extension {ext.oid.dotted_string}")
        if ext.oid == LIBP2P_TLS_OID:
            value = ext.value
            if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover - cryptography internals
                raise SecurityError("unexpected libp2p extension representation")
            signed_key = value.value
    if signed_key is None:
        raise SecurityError("peer certificate lacks the libp2p public key extension")
    try:
        pub_proto, signature = decode_signed_key(signed_key)
        canonical = canonical_public_key(pub_proto)
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        ok = verify_signature(canonical, _SIGNATURE_PREFIX + spki, signature)
    except DecodeError as e:
        raise SecurityError(f"malformed libp2p extension: {e}") from None
    if not ok:
        raise SecurityError("libp2p extension signature does not match the certificate key")
    return PeerCertificate(PeerId.from_public_key(canonical), canonical)


# ---- the pyOpenSSL context ----------------------------------------------------------------------------
VerifyResult = Callable[[SSL.Connection, PeerCertificate | SecurityError], None]
"""Called from the handshake with the peer certificate's verdict (tls.py records it per connection)."""


def tls_context(identity: HostIdentity, on_verify: VerifyResult) -> SSL.Context:
    """A TLS 1.3-only pyOpenSSL context for both roles: our certificate, ALPN "libp2p", peer cert required.

    OpenSSL's PKIX verdict is ignored; the leaf certificate is authenticated by `verify_certificate`
    and the verdict (or the SecurityError) is handed to `on_verify`; a failed check aborts the
    handshake with a certificate alert.
    """
    cert, key = make_certificate(identity)
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    ctx.check_privatekey()

    def verify_cb(conn: SSL.Connection, peer: crypto.X509, _errno: int, depth: int, _ok: int) -> bool:
        if depth != 0:
            on_verify(conn, SecurityError("peer sent a certificate chain longer than one certificate"))
            return False
        try:
            result: PeerCertificate | SecurityError = verify_certificate(peer.to_cryptography())
        except SecurityError as e:
            result = e
        except Exception as e:  # a hostile certificate must never escape as anything else
            result = SecurityError(f"peer certificate rejected: {type(e).__name__}: {e}")
        on_verify(conn, result)
        return isinstance(result, PeerCertificate)

    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb)
    ctx.set_alpn_protos([LIBP2P_TLS_ALPN])

    def select_alpn(_conn: SSL.Connection, offered: list[bytes]) -> bytes:
        if LIBP2P_TLS_ALPN in offered:
            return LIBP2P_TLS_ALPN
        raise SecurityError("client did not offer the libp2p ALPN protocol")

    ctx.set_alpn_select_callback(select_alpn)
    return ctx
