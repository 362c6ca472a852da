"""Every crypto/cryptree decoder and verifier fed arbitrary and mutated input raises only our typed errors.

Inputs mix arbitrary bytes (or text) with random mutations (bit flips, insertions, deletions,
truncations) of valid encodings, so the fuzzing gets past the first CBOR byte into each parser.
Whatever decodes must re-encode and decode to an equal value.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_LIBP2P_KEY, CODEC_RAW, Cid
from peergos_node.crypto.bat import (
    RAW_BLOCK_MAGIC_PREFIX,
    Bat,
    BatId,
    BatWithId,
    block_bat_ids,
    create_raw_block_prefix,
    parse_raw_block_prefix,
)
from peergos_node.crypto.block_auth import BlockAuth, allow_read, generate_auth
from peergos_node.crypto.boxing import (
    BoxingKeyPair,
    HybridCipherText,
    public_boxing_key_from_cbor,
    secret_boxing_key_from_cbor,
)
from peergos_node.crypto.login import SecretGenerationAlgorithm
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey, SigningKeyPair
from peergos_node.crypto.symmetric import (
    CipherText,
    PaddedCipherText,
    SymmetricKey,
    SymmetricLink,
    secretbox_decrypt,
)
from peergos_node.cryptree.capabilities import AbsoluteCapability, capability_from_cbor
from peergos_node.cryptree.secret_link import EncryptedCapability, SecretLink, SecretLinkTarget
from peergos_node.errors import AuthError, BadCiphertext, BadSignature, DecodeError, ProofOfWorkError
from tests.helpers.fuzz import fuzz_settings

TYPED = (DecodeError, BadSignature, BadCiphertext, AuthError, ProofOfWorkError)

RNG = DeterministicRng("fuzz")
PAIR = SigningKeyPair.random(RNG)
KEY = SymmetricKey.random(RNG)
BAT = Bat.random(RNG)
MIRROR = Bat.random(RNG)
CURVE = BoxingKeyPair.random_curve25519(RNG)
CURVE_SENDER = BoxingKeyPair.random_curve25519(RNG)
HYBRID = BoxingKeyPair.random_hybrid(RNG)
HYBRID_SENDER = BoxingKeyPair.random_hybrid(RNG)
OWNER = PublicKeyHash.of(PAIR.public)
PEER = Cid.v1(CODEC_LIBP2P_KEY, b"\x00\x24\x08\x01\x12\x20" + bytes(32))
BLOCK = Cid.for_block(CODEC_RAW, b"block")
CAP = AbsoluteCapability(OWNER, OWNER, bytes(32), BAT, KEY).with_write_key(SymmetricKey.random(RNG))
AUTH = generate_auth(BAT, BLOCK, PEER, 1735787045, BatId.sha256(BAT))
ENCRYPTED_CAP = EncryptedCapability(CipherText.build(KEY, CAP, RNG), True)


def _mutate_bytes(sample: bytes, seed: int) -> bytes:
    """1-4 random edits of a valid encoding: bit flip, insertion, deletion or truncation."""
    rnd = random.Random(seed)
    out = bytearray(sample)
    for _ in range(rnd.randint(1, 4)):
        op, pos = rnd.randrange(4), rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            out[pos:pos] = rnd.randbytes(rnd.randint(1, 4))
        elif op == 2:
            del out[pos : pos + rnd.randint(1, 8)]
        else:
            del out[pos:]
    return bytes(out)


def _mutate_text(sample: str, seed: int) -> str:
    rnd = random.Random(seed)
    out = list(sample)
    for _ in range(rnd.randint(1, 4)):
        op, pos = rnd.randrange(4), rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] = rnd.choice("/#?z0OIl1aA-_.\x00\u00e9")
        elif op == 1:
            out[pos:pos] = rnd.choices("/#?zZ09aA ", k=rnd.randint(1, 3))
        elif op == 2:
            del out[pos : pos + rnd.randint(1, 8)]
        else:
            del out[pos:]
    return "".join(out)


_seeds = st.integers(0, 2**32 - 1)


def byte_inputs(samples: list[bytes], max_size: int = 300) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or a valid sample with a few random mutations."""
    mutated = st.tuples(st.sampled_from(samples), _seeds).map(lambda t: _mutate_bytes(*t))
    return st.one_of(st.binary(max_size=max_size), mutated)


def text_inputs(samples: list[str]) -> st.SearchStrategy[str]:
    """Arbitrary text, or a valid sample with a few random mutations."""
    mutated = st.tuples(st.sampled_from(samples), _seeds).map(lambda t: _mutate_text(*t))
    return st.one_of(st.text(max_size=200), mutated)


def _decode_each(data: Any, decoders: Sequence[Callable[[Any], Any]]) -> None:
    for decode in decoders:
        try:
            value = decode(data)
        except TYPED:
            continue
        if hasattr(value, "serialize"):
            again = value.serialize()
            assert type(value).deserialize(again) == value


@fuzz_settings
@given(
    byte_inputs(
        [
            KEY.serialize(),
            CipherText.build(KEY, KEY, RNG).serialize(),
            SymmetricLink.from_pair(KEY, KEY, RNG).serialize(),
        ]
    )
)
def test_symmetric_decoders(data: bytes) -> None:
    _decode_each(
        data,
        [
            SymmetricKey.deserialize,
            CipherText.deserialize,
            PaddedCipherText.deserialize,
            SymmetricLink.deserialize,
        ],
    )


@fuzz_settings
@given(
    byte_inputs(
        [
            PAIR.public.serialize(),
            PAIR.secret.serialize(),
            PAIR.serialize(),
            OWNER.serialize(),
            SigningPrivateKeyAndPublicHash.of(PAIR).serialize(),
        ]
    )
)
def test_signing_decoders(data: bytes) -> None:
    _decode_each(
        data,
        [
            PublicSigningKey.deserialize,
            SecretSigningKey.deserialize,
            SigningKeyPair.deserialize,
            PublicKeyHash.deserialize,
            SigningPrivateKeyAndPublicHash.deserialize,
        ],
    )


@fuzz_settings
@given(
    byte_inputs(
        [
            CURVE.serialize(),
            CURVE.public.serialize(),
            HYBRID.public.serialize(),
            HYBRID.serialize(),
            HybridCipherText(b"c" * 72, bytes(1568), b"i" * 20, bytes(24)).serialize(),
        ],
        max_size=200,
    )
)
def test_boxing_decoders(data: bytes) -> None:
    for decode in (
        lambda d: public_boxing_key_from_cbor(dag_cbor.decode(d)),
        lambda d: secret_boxing_key_from_cbor(dag_cbor.decode(d)),
    ):
        try:
            decode(data)
        except TYPED:
            pass
    _decode_each(data, [BoxingKeyPair.deserialize, HybridCipherText.deserialize])


@fuzz_settings
@given(
    byte_inputs(
        [SecretGenerationAlgorithm(extra_salt="ab").serialize(), ProofOfWork.of_counter(7).serialize()]
    )
)
def test_login_and_pow_decoders(data: bytes) -> None:
    _decode_each(data, [SecretGenerationAlgorithm.deserialize, ProofOfWork.deserialize])


@fuzz_settings
@given(
    byte_inputs(
        [
            BAT.serialize(),
            BatId.inline(BAT).serialize(),
            BatId.sha256(BAT).serialize(),
            BatWithId(BAT, BAT.calculate_id()).serialize(),
            AUTH.serialize(),
        ]
    )
)
def test_bat_decoders(data: bytes) -> None:
    _decode_each(data, [Bat.deserialize, BatId.deserialize, BatWithId.deserialize, BlockAuth.deserialize])


_PREFIXES = [create_raw_block_prefix(BAT)[8:], create_raw_block_prefix(BAT, BatId.sha256(MIRROR))[8:]]
_CBOR_BLOCKS = [
    dag_cbor.encode({"v": 1, "bats": [BatId.inline(BAT).to_bytes(), BatId.sha256(MIRROR).to_bytes()]})
]


@fuzz_settings
@given(byte_inputs(_PREFIXES + _CBOR_BLOCKS, max_size=120))
def test_block_bat_id_extraction(data: bytes) -> None:
    raw_block = RAW_BLOCK_MAGIC_PREFIX + data
    for cid, block in (
        (Cid.for_block(CODEC_RAW, raw_block), raw_block),
        (Cid.for_block(CODEC_DAG_CBOR, data), data),
    ):
        try:
            ids = block_bat_ids(cid, block)
        except DecodeError:
            continue
        assert all(isinstance(i, BatId) for i in ids)
    try:
        ids, offset = parse_raw_block_prefix(raw_block)
    except DecodeError:
        return
    assert len(RAW_BLOCK_MAGIC_PREFIX) < offset <= 100


@fuzz_settings
@given(
    byte_inputs(
        [
            CAP.serialize(),
            CAP.readonly().serialize(),
            ENCRYPTED_CAP.serialize(),
            SecretLinkTarget(ENCRYPTED_CAP, 5, 6).serialize(),
        ],
        max_size=400,
    )
)
def test_capability_decoders(data: bytes) -> None:
    try:
        cap = capability_from_cbor(dag_cbor.decode(data))
    except DecodeError:
        pass
    else:
        assert capability_from_cbor(dag_cbor.decode(cap.serialize())) == cap
    _decode_each(data, [EncryptedCapability.deserialize, SecretLinkTarget.deserialize])


_TEXTS = [
    PAIR.to_string(),
    str(OWNER),
    BAT.encode_secret(),
    BatWithId(BAT, BatId.sha256(BAT)).encode(),
    AUTH.encode(),
    CAP.to_link(),
    SecretLink(OWNER, 12345, "abcDEF123456").to_link(),
]


@fuzz_settings
@given(text_inputs(_TEXTS))
def test_text_decoders(text: str) -> None:
    for decode in (
        SigningKeyPair.from_string,
        PublicKeyHash.parse,
        Bat.from_string,
        BatWithId.decode,
        BlockAuth.decode,
        AbsoluteCapability.from_link,
        SecretLink.from_link,
    ):
        try:
            decode(text)
        except TYPED:
            pass


_SIGNED = PAIR.sign(b"message")
_BOXED = CURVE.public.encrypt_message_for(b"message", CURVE_SENDER.secret, RNG)
_SEALED = KEY.encrypt(b"message", bytes(24))
_HYBRID_BOXED = HYBRID.public.encrypt_message_for(b"message", HYBRID_SENDER.secret, RNG)


@fuzz_settings
@given(byte_inputs([_SIGNED, _BOXED, _SEALED, _HYBRID_BOXED, bytes(8)]))
def test_verifiers(data: bytes) -> None:
    for verify in (
        PAIR.public.unsign,
        lambda d: PAIR.public.verify_detached(d[:64], d[64:]),
        lambda d: secretbox_decrypt(d, bytes(24), KEY.key),
        lambda d: CURVE.secret.decrypt_message(d, CURVE_SENDER.public),
        lambda d: HYBRID.secret.decrypt_message(d, HYBRID_SENDER.public),
        lambda d: ProofOfWork(d[:8].ljust(8, b"\0")).verify(d[8:], 12),
    ):
        try:
            verify(data)
        except TYPED:
            pass


@fuzz_settings
@given(byte_inputs([AUTH.serialize()]), st.sampled_from([[], [BatId.inline(BAT)], [BatId.sha256(BAT)]]))
def test_block_auth_hook_never_raises(data: bytes, ids: list[BatId]) -> None:
    allowed = allow_read(BLOCK, ids, PEER, data.hex(), 1735787045, [BAT])
    assert isinstance(allowed, bool)
    assert allowed == (not ids or data == AUTH.serialize() or _verifies(data, ids))


def _verifies(data: bytes, ids: list[BatId]) -> bool:
    """Independent oracle for mutated auths: unchanged signature and time, unexpired, usable BAT id."""
    try:
        auth = BlockAuth.deserialize(data)
    except DecodeError:
        return False
    usable = BatId.inline(BAT) in ids or auth.bat_id in ids
    return usable and (auth.datetime, auth.signature) == (AUTH.datetime, AUTH.signature)
