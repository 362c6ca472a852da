"""OpLog, its writes, and UserSnapshot: CBOR forms, strictness and the signup rules."""

from __future__ import annotations

import hashlib

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.corenode.errors import PkiError
from peergos_node.corenode.oplog import OpLog
from peergos_node.corenode.snapshot import BlindFollowRequest, LinkCounts, UserSnapshot
from peergos_node.corenode.writes import BlockWrite, PointerWrite, operation_from_cbor
from peergos_node.crypto.boxing import BoxingKeyPair
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.errors import BadSignature, DecodeError
from peergos_node.mutable.pointer_update import PointerUpdate
from tests.helpers.pki import keypair, login_data, mirror_bat


def _writes() -> tuple[BlockWrite, BlockWrite, BlockWrite, PointerWrite]:
    w = keypair("writer")
    b1 = BlockWrite.build(w, b"\xa0", False)
    b2 = BlockWrite.build(w, b"\x80", False)
    raw = BlockWrite.build(w, b"raw bytes", True)
    pw = PointerWrite(PublicKeyHash.of(w.public), w.sign(PointerUpdate(None, b1.verify(), 1).serialize()))
    return b1, b2, raw, pw


def test_block_write_cbor_and_verification() -> None:
    b1, _b2, raw, _pw = _writes()
    assert set(b1.to_cbor()) == {"w", "s", "b", "r"} and b1.to_cbor()["r"] is False
    assert len(b1.signature) == 96
    assert b1.verify() == Cid.v1(CODEC_DAG_CBOR, b"\x12\x20" + hashlib.sha256(b"\xa0").digest())
    assert raw.verify().codec == CODEC_RAW
    assert BlockWrite.deserialize(b1.serialize()) == b1
    wrong = BlockWrite(b1.writer, b1.signature, b"\xa1", False)
    with pytest.raises(BadSignature):
        wrong.verify()
    with pytest.raises(ValueError):
        BlockWrite(b1.writer, b1.signature, b"", False)
    with pytest.raises(DecodeError):
        BlockWrite.deserialize(dag_cbor.encode({**b1.to_cbor(), "b": b""}))


def test_operation_dispatch_by_r_key() -> None:
    b1, _b2, _raw, pw = _writes()
    assert operation_from_cbor(b1.to_cbor()) == b1
    assert operation_from_cbor(pw.to_cbor()) == pw
    with pytest.raises(DecodeError):
        operation_from_cbor({**pw.to_cbor(), "x": 1})


def test_oplog_round_trip_and_pairs() -> None:
    b1, b2, raw, pw = _writes()
    log = OpLog((b1, b2, raw, pw), (login_data(), b"\x01" * 64), (mirror_bat(), b"auth"))
    m = log.to_cbor()
    assert set(m) == {"ops", "login", "loginAuth", "b", "a"}
    assert OpLog.deserialize(log.serialize()) == log
    assert OpLog.deserialize(OpLog().serialize()) == OpLog()
    assert OpLog().serialize() == bytes.fromhex("a1636f707380")
    for missing in ("loginAuth", "login", "a", "b"):
        broken = dict(m)
        del broken[missing]
        with pytest.raises(DecodeError, match="together"):
            OpLog.deserialize(dag_cbor.encode(broken))


def test_oplog_batches_like_apply_oplog() -> None:
    b1, b2, raw, pw = _writes()
    log = OpLog((b1, b2, raw, pw, b1))
    assert log.batches() == ((b1, b2), (raw,), (pw,), (b1,))
    assert log.block_writes() == (b1, b2, raw, b1) and log.pointer_writes() == (pw,)


def test_signup_login_data_must_be_for_the_new_user() -> None:
    OpLog((), (login_data("alice"), b"")).check_for_signup("alice")
    with pytest.raises(PkiError, match="Invalid signup data!"):
        OpLog((), (login_data("bob"), b"")).check_for_signup("alice")


def _snapshot() -> UserSnapshot:
    owner = PublicKeyHash.of(keypair("owner").public)
    writers = [PublicKeyHash.of(keypair(f"w{i}").public) for i in range(6)]
    boxer = BoxingKeyPair.random_curve25519(DeterministicRng("boxer"))
    return UserSnapshot(
        "alice",
        owner,
        {w: bytes([i]) * 100 for i, w in enumerate(writers)},
        (BlindFollowRequest(boxer.public, b"\x00" * 600),),
        (mirror_bat(),),
        login_data(),
        LinkCounts({7: (3, 1_700_000_000), -2: (1, 5)}),
    )


def test_snapshot_round_trip() -> None:
    snap = _snapshot()
    assert UserSnapshot.deserialize(snap.serialize()) == snap
    bare = UserSnapshot("bob", snap.owner, {})
    assert set(bare.to_cbor()) == {"n", "o", "f", "p", "b", "lc"}
    assert UserSnapshot.deserialize(bare.serialize()) == bare


def test_snapshot_pointer_order_is_java_multihash_order() -> None:
    """Keys sorted by digest length, then digest bytes as signed Java bytes."""
    flat = _snapshot().to_cbor()["p"]
    keys = [k.digest for k in flat[0::2]]

    def signed(b: bytes) -> tuple[int, ...]:
        return tuple(x - 256 if x > 127 else x for x in b)

    assert keys == sorted(keys, key=lambda d: (len(d), signed(d)))
    assert keys != sorted(keys)  # the data has keys on both sides of 0x80, so the orders differ


def test_snapshot_strictness() -> None:
    m = _snapshot().to_cbor()
    for bad in (
        {**m, "p": m["p"][:-1]},
        {**m, "p": m["p"][:2] + m["p"][:2]},
        {**m, "extra": 1},
        {**m, "lc": {"d": [1, 2]}},
        {**m, "lc": {"d": [1, 2, 3, 1, 2, 3]}},
        {k: v for k, v in m.items() if k != "lc"},
    ):
        with pytest.raises(DecodeError):
            UserSnapshot.deserialize(dag_cbor.encode(bad))


def test_link_counts_are_written_in_label_order() -> None:
    lc = LinkCounts({9: (1, 2), -1: (3, 4), 2: (5, 6)})
    assert lc.to_cbor() == {"d": [-1, 3, 4, 2, 5, 6, 9, 1, 2]}
    assert LinkCounts.deserialize(lc.serialize()) == lc
