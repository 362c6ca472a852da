"""Proof of work, including Java's low-bits difficulty quirk."""

from __future__ import annotations

import hashlib

import pytest

from peergos_node.crypto.pow import ProofOfWork, satisfies_difficulty
from peergos_node.errors import DecodeError, ProofOfWorkError


def _naive_first(data: bytes, difficulty: int) -> int:
    counter = 0
    while True:
        digest = hashlib.sha256(counter.to_bytes(8, "little") + data).digest()
        whole, rem = divmod(difficulty, 8)
        if all(b == 0 for b in digest[:whole]) and (rem == 0 or (digest[whole] << (8 - rem)) & 0xFF == 0):
            return counter
        counter += 1


@pytest.mark.parametrize(
    ("digest_hex", "difficulty", "ok"),
    [
        ("00e0", 11, True),
        ("0007", 11, False),
        ("0007", 8, True),
        ("8000", 4, True),
        ("8000", 8, False),
        ("0100", 1, False),
        ("0000", 16, True),
        ("0001", 9, False),
    ],
)
def test_quirky_difficulty(digest_hex: str, difficulty: int, ok: bool) -> None:
    assert satisfies_difficulty(bytes.fromhex(digest_hex).ljust(32, b"\0"), difficulty) is ok


@pytest.mark.parametrize("difficulty", [0, 1, 3, 7, 8, 9, 12])
def test_find_returns_the_first_counter(difficulty: int) -> None:
    data = b"signup chain " + bytes([difficulty])
    proof = ProofOfWork.find(data, difficulty)
    assert proof.counter == _naive_first(data, difficulty)
    assert proof.prefix == proof.counter.to_bytes(8, "little")
    proof.verify(data, difficulty)


def test_weak_proofs_are_rejected() -> None:
    data = b"alice"
    proof = ProofOfWork.find(data, 12)
    assert proof.counter > 0
    with pytest.raises(ProofOfWorkError):
        ProofOfWork.of_counter(proof.counter - 1).verify(data, 12)
    with pytest.raises(ProofOfWorkError):
        ProofOfWork.find(data, 40, max_attempts=10)
    with pytest.raises(ProofOfWorkError):
        satisfies_difficulty(bytes(32), 257)


def test_cbor_form() -> None:
    proof = ProofOfWork.of_counter(2724)
    assert proof.serialize().hex() == "a26474797065126670726566697848a40a000000000000"
    assert ProofOfWork.deserialize(proof.serialize()) == proof


@pytest.mark.parametrize(
    "value", [{"type": 19, "prefix": bytes(8)}, {"type": 18, "prefix": bytes(7)}, {"prefix": bytes(8)}, [18]]
)
def test_cbor_rejects_other_shapes(value: object) -> None:
    with pytest.raises(DecodeError):
        ProofOfWork.from_cbor(value)
