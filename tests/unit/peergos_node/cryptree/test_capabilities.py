"""Absolute capabilities: CBOR, link strings, read-only views."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.capabilities import (
    AbsoluteCapability,
    WritableAbsoluteCapability,
    capability_from_cbor,
)
from peergos_node.errors import DecodeError

OWNER = PublicKeyHash.of(SigningKeyPair.random(DeterministicRng("owner")).public)
WRITER = PublicKeyHash.of(SigningKeyPair.random(DeterministicRng("writer")).public)
MAP_KEY = bytes(range(32))
BAT = Bat(bytes(range(1, 33)))
READ = SymmetricKey(bytes(range(2, 34)))
WRITE = SymmetricKey(bytes(range(3, 35)))


def test_read_capability_cbor_and_link() -> None:
    cap = AbsoluteCapability(OWNER, WRITER, MAP_KEY, BAT, READ)
    assert not cap.is_writable
    assert dag_cbor.decode(cap.serialize()) == {
        "o": OWNER.cid,
        "w": WRITER.cid,
        "m": MAP_KEY,
        "a": {"s": BAT.secret},
        "k": [1, READ.key, False],
    }
    assert capability_from_cbor(dag_cbor.decode(cap.serialize())) == cap
    assert AbsoluteCapability.deserialize(cap.serialize()) == cap
    link = cap.to_link()
    assert link.startswith("#") and link.count("/") == 3
    assert AbsoluteCapability.from_link(link) == cap
    assert AbsoluteCapability.from_link(link[1:]) == cap


def test_writable_capability() -> None:
    cap = AbsoluteCapability(OWNER, WRITER, MAP_KEY, None, READ).with_write_key(WRITE)
    assert isinstance(cap, WritableAbsoluteCapability) and cap.is_writable
    decoded = capability_from_cbor(dag_cbor.decode(cap.serialize()))
    assert decoded == cap and isinstance(decoded, WritableAbsoluteCapability)
    assert WritableAbsoluteCapability.deserialize(cap.serialize()) == cap
    assert AbsoluteCapability.from_link(cap.to_link()) == cap
    assert cap.to_link().count("/") == 4
    read_only = cap.readonly()
    assert type(read_only) is AbsoluteCapability and read_only != cap
    assert "b" not in dag_cbor.decode(read_only.serialize())
    with pytest.raises(DecodeError):
        WritableAbsoluteCapability.deserialize(read_only.serialize())


@pytest.mark.parametrize(
    "change",
    [{"m": MAP_KEY[:31]}, {"x": 1}, {"o": b"not a link"}, {"k": [1, READ.key]}, {"a": {"s": b"x"}}],
)
def test_capability_rejects_bad_fields(change: dict[str, object]) -> None:
    good = AbsoluteCapability(OWNER, WRITER, MAP_KEY, BAT, READ).to_cbor()
    with pytest.raises(DecodeError):
        capability_from_cbor({**good, **change})


def test_capability_requires_fields() -> None:
    good = AbsoluteCapability(OWNER, WRITER, MAP_KEY, BAT, READ).to_cbor()
    for key in ("o", "w", "m", "k"):
        partial = {k: v for k, v in good.items() if k != key}
        with pytest.raises(DecodeError):
            capability_from_cbor(partial)


@pytest.mark.parametrize("link", ["#a/b/c", "#a/b/c/d/e/f", "#0OIl/a/b/c", "", "#" + "1" * 2000])
def test_bad_links(link: str) -> None:
    with pytest.raises(DecodeError):
        AbsoluteCapability.from_link(link)


def test_map_key_length_is_enforced() -> None:
    with pytest.raises(ValueError):
        AbsoluteCapability(OWNER, WRITER, b"short", None, READ)
