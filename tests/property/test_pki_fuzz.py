"""Every PKI and account decoder and verifier fed arbitrary and mutated input raises only our typed errors.

Inputs mix arbitrary bytes (or text) with random edits of valid encodings (bit flips, insertions,
deletions, truncations), so the fuzzing gets past the first byte into each parser. Whatever decodes must
re-encode and decode to an equal value; decoded chains then go through the chain rules, which may only
refuse them with `InvalidChain`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from peergos_node.accounts.backup_codes import BackupCodeHashes, BackupCodes
from peergos_node.accounts.login_data import LoginData, LoginResponse, verify_login_data_auth
from peergos_node.accounts.mfa import (
    MfaType,
    MultiFactorAuthMethod,
    MultiFactorAuthRequest,
    MultiFactorAuthResponse,
    WebauthnResponse,
    parse_mfa_types,
)
from peergos_node.accounts.time_limited import (
    SignedRequest,
    login_path,
    sign_request,
    sign_time,
    verify_signed_request,
    verify_signed_time,
)
from peergos_node.accounts.totp import TotpKey, verify_totp
from peergos_node.corenode.chain import merge, validate_chain
from peergos_node.corenode.claims import (
    Claim,
    UserPublicKeyLink,
    claim_payload,
    deserialize_chain,
    parse_claim_payload,
    serialize_chain,
)
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.errors import InvalidChain, InvalidUsername
from peergos_node.corenode.messages import (
    DifficultyResponse,
    GetChainRequest,
    GetPublicKeyResponse,
    GetUsernameRequest,
    GetUsernameResponse,
    GetUserSnapshotsRequest,
    MigrateUserRequest,
    SignupRequest,
    StartMirrorRequest,
    UpdateChainRequest,
    decode_bool,
    decode_chain_response,
    decode_snapshots,
    decode_usernames_gzip,
    encode_snapshots,
    encode_usernames_gzip,
    parse_core_path,
)
from peergos_node.corenode.oplog import OpLog
from peergos_node.corenode.snapshot import BlindFollowRequest, LinkCounts, UserSnapshot
from peergos_node.corenode.usernames import validate_username
from peergos_node.corenode.writes import BlockWrite, PointerWrite
from peergos_node.crypto.boxing import BoxingKeyPair
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.errors import AuthError, BadSignature, DecodeError
from tests.helpers.fuzz import fuzz_settings
from tests.helpers.fuzz_inputs import byte_inputs, text_inputs
from tests.helpers.pki import EXPIRY, initial, key_change, keypair, login_data, mirror_bat, peer, signer

TYPED = (DecodeError, BadSignature, AuthError, InvalidChain)

CHAIN = key_change(initial(), "alice", "alice2")
SIGNUP = initial()
PROOF = ProofOfWork.of_counter(3)
BLOCK = BlockWrite.build(keypair("writer"), b"\xa0", False)
POINTER = PointerWrite(signer("writer").public_key_hash, b"\x01" * 100)
OPLOG = OpLog((BLOCK, POINTER), (login_data(), b"\x02" * 64), (mirror_bat(), b"a"))
METHOD = MultiFactorAuthMethod("key", b"\x01" * 16, LocalDate(2026, 1, 1), MfaType.WEBAUTHN, True)
SNAPSHOT = UserSnapshot(
    "alice",
    signer("alice").public_key_hash,
    {signer("w").public_key_hash: b"\x03" * 99},
    (BlindFollowRequest(BoxingKeyPair.random_curve25519(DeterministicRng("fuzz-box")).public, b"\x00" * 40),),
    (mirror_bat(),),
    login_data(),
    LinkCounts({1: (2, 3)}),
)
NOW = 1_777_593_600_000


def _decode_each(data: Any, decoders: Sequence[Callable[[Any], Any]]) -> list[Any]:
    decoded = []
    for decode in decoders:
        try:
            value = decode(data)
        except TYPED:
            continue
        decoded.append(value)
        if hasattr(value, "serialize") and hasattr(type(value), "deserialize"):
            assert type(value).deserialize(value.serialize()) == value
    return decoded


@fuzz_settings
@given(
    byte_inputs(
        [
            SIGNUP[0].claim.serialize(),
            CHAIN[0].serialize(),
            serialize_chain(CHAIN),
            serialize_chain(SIGNUP),
            claim_payload("alice", EXPIRY, (peer("home"),)),
            claim_payload("alice", LocalDate.MAX, ()),
        ],
        max_size=600,
    )
)
def test_claim_and_chain_decoders_and_rules(data: bytes) -> None:
    _decode_each(data, [Claim.deserialize, UserPublicKeyLink.deserialize])
    try:
        parse_claim_payload(data)
    except DecodeError:
        pass
    try:
        chain = deserialize_chain(data)
    except DecodeError:
        return
    assert deserialize_chain(serialize_chain(chain)) == chain
    for check in (
        lambda: validate_chain(chain, "alice"),
        lambda: merge(SIGNUP, chain, "alice"),
        lambda: merge(CHAIN, chain, "alice"),
        lambda: merge((), chain, "alice"),
    ):
        try:
            check()
        except InvalidChain:
            pass


_BODIES: list[tuple[bytes, Callable[[bytes], Any]]] = [
    (GetChainRequest("alice").encode(), GetChainRequest.decode),
    (SignupRequest("alice", SIGNUP[0], OPLOG, PROOF, "t").encode(), SignupRequest.decode),
    (UpdateChainRequest("alice", CHAIN, PROOF, "").encode(), UpdateChainRequest.decode),
    (DifficultyResponse(14).encode(), DifficultyResponse.decode),
    (GetPublicKeyResponse(signer("a").public_key_hash).encode(), GetPublicKeyResponse.decode),
    (GetUsernameRequest(signer("a").public_key_hash).encode(), GetUsernameRequest.decode),
    (GetUsernameResponse("alice").encode(), GetUsernameResponse.decode),
    (
        MigrateUserRequest("alice", CHAIN, peer("h"), mirror_bat(), 5, 6, True).encode(),
        MigrateUserRequest.decode,
    ),
    (GetUserSnapshotsRequest("b", mirror_bat(), 7).encode(), GetUserSnapshotsRequest.decode),
    (StartMirrorRequest("alice", mirror_bat(), b"auth", PROOF).encode(), StartMirrorRequest.decode),
    (serialize_chain(CHAIN), decode_chain_response),
    (encode_snapshots([SNAPSHOT]), decode_snapshots),
    (b"\x01", decode_bool),
]


@fuzz_settings
@given(byte_inputs([b for b, _ in _BODIES], max_size=600))
def test_pki_body_decoders(data: bytes) -> None:
    for _sample, decode in _BODIES:
        try:
            value = decode(data)
        except DecodeError:
            continue
        if hasattr(value, "encode"):
            assert type(value).decode(value.encode()) == value


@fuzz_settings
@given(
    byte_inputs(
        [
            OPLOG.serialize(),
            BLOCK.serialize(),
            POINTER.serialize(),
            SNAPSHOT.serialize(),
            OpLog().serialize(),
        ],
        max_size=600,
    )
)
def test_oplog_and_snapshot_decoders(data: bytes) -> None:
    for value in _decode_each(
        data,
        [
            OpLog.deserialize,
            BlockWrite.deserialize,
            PointerWrite.deserialize,
            UserSnapshot.deserialize,
            LinkCounts.deserialize,
            BlindFollowRequest.deserialize,
        ],
    ):
        if isinstance(value, BlockWrite):
            try:
                value.verify()
            except TYPED:
                pass


@fuzz_settings
@given(
    byte_inputs(
        [
            login_data(with_update=True).serialize(),
            LoginResponse(MultiFactorAuthRequest((METHOD,), b"c")).serialize(),
            METHOD.serialize(),
            MultiFactorAuthResponse(b"i", "123456").serialize(),
            MultiFactorAuthResponse(b"i", WebauthnResponse(b"a", b"c", b"s")).serialize(),
            BackupCodes(b"\x01", ("aaaaaaaaaa",)).serialize(),
            BackupCodes(b"\x01", ("aaaaaaaaaa",)).hashes().serialize(),
            SignedRequest("peergos/v0/login/listMfa", NOW).serialize(),
        ],
        max_size=600,
    )
)
def test_account_decoders(data: bytes) -> None:
    _decode_each(
        data,
        [
            LoginData.deserialize,
            LoginData.from_body,
            LoginResponse.deserialize,
            MultiFactorAuthMethod.deserialize,
            MultiFactorAuthRequest.deserialize,
            MultiFactorAuthResponse.deserialize,
            WebauthnResponse.deserialize,
            BackupCodes.deserialize,
            BackupCodeHashes.deserialize,
            SignedRequest.deserialize,
        ],
    )


_IDENTITY = keypair("fuzz-identity")
_SIGNED_TIME = sign_time(_IDENTITY.secret, NOW)
_SIGNED_REQUEST = sign_request(_IDENTITY.secret, login_path("listMfa"), NOW)
_LOGIN = login_data()


@fuzz_settings
@given(byte_inputs([_SIGNED_TIME, _SIGNED_REQUEST, _IDENTITY.signature_only(_LOGIN.serialize())]))
def test_auth_verifiers_raise_only_auth_errors(data: bytes) -> None:
    for verify in (
        lambda d: verify_signed_time(d, _IDENTITY.public, 300, NOW),
        lambda d: verify_signed_request(d, _IDENTITY.public, login_path("listMfa"), 300, NOW),
        lambda d: verify_login_data_auth(_IDENTITY.public, _LOGIN, d),
    ):
        try:
            verify(data)
        except AuthError:
            pass


_HASHES = BackupCodes(b"\x01", ("abcdefghij", "aaaaaaaaaa")).hashes()
_TOTP = TotpKey.generate(DeterministicRng("fuzz-totp"))


@fuzz_settings
@given(
    text_inputs(
        [
            "2026-05-01",
            "+999999999-12-31",
            _TOTP.encode(),
            "1,2,3",
            "abcde-fghij",
            "alice",
            "/peergos/v0/core/getUsernamesGzip/al",
            "123456",
        ]
    )
)
def test_text_decoders_and_checks(text: str) -> None:
    for decode in (LocalDate.parse, TotpKey.from_string, parse_mfa_types, parse_core_path):
        try:
            decode(text)
        except DecodeError:
            pass
    try:
        validate_username(text)
    except InvalidUsername:
        pass
    try:
        _HASHES.redeem(text)
    except AuthError:
        pass
    assert isinstance(verify_totp(_TOTP.key, text, NOW), bool)


_GZIP = [encode_usernames_gzip(["alice", "bob"]), gzip.compress(b"[1,2]"), gzip.compress(b'["x"' * 50)]


@fuzz_settings
@given(byte_inputs(_GZIP, max_size=200), st.integers(1, 4096))
def test_usernames_gzip_decoder(data: bytes, max_size: int) -> None:
    try:
        names = decode_usernames_gzip(data, max_size)
    except DecodeError:
        return
    assert all(isinstance(n, str) for n in names)
    assert decode_usernames_gzip(encode_usernames_gzip(names)) == names


def test_samples_decode() -> None:
    """The fuzzing samples themselves are valid, so mutations start from real encodings."""
    assert dag_cbor.decode(OPLOG.serialize())
    for body, decode in _BODIES:
        decode(body)
