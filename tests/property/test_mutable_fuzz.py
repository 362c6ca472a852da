"""Every mutable/account decoder fed arbitrary bytes or mutated valid encodings raises only DecodeError."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.accounts.entry_points import EntryPoint, EntryPoints, UserStaticData
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import BadSignature, DecodeError
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import MultiWriterCommit, SignedPointerUpdate, verify_signed_pointer
from peergos_node.mutable.writer_data import WriterData
from tests.helpers.fuzz import fuzz_settings

KP = SigningKeyPair.random(DeterministicRng(b"fuzz"))
H = PublicKeyHash.of(KP.public)
WD = WriterData(
    controller=H, owned=Cid.for_block(CODEC_DAG_CBOR, b"o"), named={"pki": OwnerProof.build(KP, H)}
)
SAMPLES = [
    WD.serialize(),
    OwnerProof.build(KP, H).serialize(),
    PointerUpdate(None, Cid.for_block(0x71, b"x"), 1).serialize(),
]
DECODERS = [
    WriterData,
    OwnerProof,
    PointerUpdate,
    SignedPointerUpdate,
    MultiWriterCommit,
    EntryPoint,
    EntryPoints,
    UserStaticData,
]


@fuzz_settings
@given(st.binary(max_size=400), st.sampled_from(DECODERS))
def test_decoders_raise_only_decode_error(data: bytes, cls: type) -> None:
    try:
        cls.deserialize(data)  # type: ignore[attr-defined]
    except DecodeError:
        pass


@fuzz_settings
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=10_000),
    st.binary(max_size=4),
    st.sampled_from(DECODERS),
)
def test_mutated_encodings(sample: bytes, pos: int, junk: bytes, cls: type) -> None:
    b = bytearray(sample)
    i = pos % len(b)
    b[i : i + 1] = junk
    try:
        cls.deserialize(bytes(b))  # type: ignore[attr-defined]
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=200))
def test_signed_pointer_verification_raises_typed_errors(data: bytes) -> None:
    try:
        verify_signed_pointer(H, data)
    except (DecodeError, BadSignature):
        pass
