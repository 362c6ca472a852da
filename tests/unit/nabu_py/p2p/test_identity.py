"""Host identity, kubo/Nabu config encoding and the libp2p TLS certificate (nabu_py/p2p/identity.py)."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nabu_py.errors import DecodeError
from nabu_py.p2p.errors import SecurityError
from nabu_py.p2p.identity import (
    LIBP2P_TLS_OID,
    HostIdentity,
    KeyType,
    decode_key,
    decode_signed_key,
    encode_key,
    encode_signed_key,
    load_or_create_identity,
    make_certificate,
    verify_certificate,
    verify_signature,
)
from nabu_py.p2p.peer_id import PeerId

VECTORS = json.loads((Path(__file__).with_name("tls_vectors.json")).read_text())
SPEC_VECTORS = {v["peer_id"]: v["certificate"] for v in VECTORS["valid"]}
SPEC_INVALID = VECTORS["invalid"][0]["certificate"]
SEED = bytes(range(32))


@pytest.mark.parametrize("peer_id", list(SPEC_VECTORS))
def test_spec_vectors_authenticate_their_peer_ids(peer_id: str) -> None:
    result = verify_certificate(bytes.fromhex(SPEC_VECTORS[peer_id]))
    assert result.peer_id == PeerId.parse(peer_id)


def test_spec_invalid_certificate_is_rejected() -> None:
    with pytest.raises(SecurityError, match="signature"):
        verify_certificate(bytes.fromhex(SPEC_INVALID))


def test_generated_identity_and_certificate() -> None:
    identity = HostIdentity.generate(SEED)
    assert identity.key_type == KeyType.ED25519
    assert str(identity.peer_id).startswith("12D3KooW")
    assert HostIdentity.generate(SEED).peer_id == identity.peer_id
    cert, _key = make_certificate(identity)
    assert verify_certificate(cert.public_bytes(serialization.Encoding.DER)).peer_id == identity.peer_id
    ext = cert.extensions.get_extension_for_oid(LIBP2P_TLS_OID)
    assert not ext.critical


def test_kubo_config_round_trip_and_encoding() -> None:
    identity = HostIdentity.generate(SEED)
    config = identity.to_config()
    proto = base64.b64decode(config["PrivKey"])
    key_type, data = decode_key(proto)
    assert key_type == KeyType.ED25519 and len(data) == 64  # kubo: seed || public key
    assert data[:32] == SEED and data[32:] == identity.public_key_proto()[4:]
    assert config["PeerID"] == str(identity.peer_id)
    assert HostIdentity.from_config(config["PeerID"], config["PrivKey"]).peer_id == identity.peer_id


def test_config_accepts_32_byte_ed25519_keys() -> None:
    identity = HostIdentity.generate(SEED)
    short = base64.b64encode(encode_key(KeyType.ED25519, SEED)).decode()
    assert HostIdentity.from_config(str(identity.peer_id), short).peer_id == identity.peer_id


def test_config_peer_id_mismatch_is_refused() -> None:
    config = HostIdentity.generate(SEED).to_config()
    other = str(HostIdentity.generate(bytes(32)).peer_id)
    with pytest.raises(DecodeError, match="does not match"):
        HostIdentity.from_config(other, config["PrivKey"])


@pytest.mark.parametrize(
    "priv",
    [
        "not base64!",
        base64.b64encode(b"\x08\x01").decode(),  # no Data
        base64.b64encode(encode_key(KeyType.ED25519, bytes(31))).decode(),
        base64.b64encode(encode_key(KeyType.ED25519, SEED + bytes(32))).decode(),  # wrong public half
        base64.b64encode(encode_key(KeyType.SECP256K1, bytes(32))).decode(),  # unsupported host key type
        base64.b64encode(b"\x08\x09\x12\x00").decode(),  # unknown key type
    ],
)
def test_bad_private_keys_are_decode_errors(priv: str) -> None:
    with pytest.raises(DecodeError):
        HostIdentity.from_config(str(HostIdentity.generate(SEED).peer_id), priv)


def test_rsa_identity_loads_signs_and_certifies() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    identity = HostIdentity.from_private_key_proto(encode_key(KeyType.RSA, der))
    assert str(identity.peer_id).startswith("Qm")
    assert verify_signature(identity.public_key_proto(), b"data", identity.sign(b"data"))
    assert not verify_signature(identity.public_key_proto(), b"other", identity.sign(b"data"))
    cert, _ = make_certificate(identity)
    assert verify_certificate(cert.public_bytes(serialization.Encoding.DER)).peer_id == identity.peer_id
    again = HostIdentity.from_private_key_proto(identity.private_key_proto())
    assert again.peer_id == identity.peer_id


def test_identity_file_is_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "identity.json"
    first = load_or_create_identity(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["Identity"]["PeerID"] == str(first.peer_id)
    assert load_or_create_identity(path).peer_id == first.peer_id
    path.write_text(
        json.dumps(
            {
                "Identity": {
                    "PeerID": str(HostIdentity.generate(SEED).peer_id),
                    "PrivKey": first.to_config()["PrivKey"],
                }
            }
        )
    )
    with pytest.raises(DecodeError):
        load_or_create_identity(path)
    path.write_text("[]")
    with pytest.raises(DecodeError):
        load_or_create_identity(path)


def test_signed_key_der_round_trip_and_strictness() -> None:
    der = encode_signed_key(b"k" * 200, b"s" * 70)
    assert decode_signed_key(der) == (b"k" * 200, b"s" * 70)
    for bad in (der + b"\x00", der[:-1], b"\x31" + der[1:], b"\x30\x81\x05" + der[3:]):
        with pytest.raises(DecodeError):
            decode_signed_key(bad)


def _cert(identity: HostIdentity, **overrides: object) -> bytes:
    """A certificate built like make_certificate, with one property changed."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = encode_signed_key(identity.public_key_proto(), identity.sign(b"libp2p-tls-handshake:" + spki))
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.SERIAL_NUMBER, "1")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(overrides.get("issuer", name))  # type: ignore[arg-type]
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(overrides.get("not_before", now - datetime.timedelta(hours=1)))  # type: ignore[arg-type]
        .not_valid_after(overrides.get("not_after", now + datetime.timedelta(days=1)))  # type: ignore[arg-type]
    )
    if not overrides.get("no_extension"):
        builder = builder.add_extension(x509.UnrecognizedExtension(LIBP2P_TLS_OID, signed), critical=False)
    if overrides.get("unknown_critical"):
        oid = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, b"\x05\x00"), critical=True)
    signer = overrides.get("signer", key)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def test_certificate_checks() -> None:
    identity = HostIdentity.generate(SEED)
    assert verify_certificate(_cert(identity)).peer_id == identity.peer_id
    now = datetime.datetime.now(datetime.UTC)
    cases = {
        "not valid at this time": {"not_before": now + datetime.timedelta(hours=1)},
        "lacks the libp2p": {"no_extension": True},
        "unknown critical": {"unknown_critical": True},
        "self-signature": {"signer": ec.generate_private_key(ec.SECP256R1())},
    }
    for message, overrides in cases.items():
        with pytest.raises(SecurityError, match=message):
            verify_certificate(_cert(identity, **overrides))
    expired = {"not_before": now - datetime.timedelta(days=3), "not_after": now - datetime.timedelta(days=1)}
    with pytest.raises(SecurityError, match="not valid"):
        verify_certificate(_cert(identity, **expired))
    with pytest.raises(SecurityError, match="malformed"):
        verify_certificate(b"\x30\x03\x02\x01\x00")
