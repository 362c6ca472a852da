"""Relative and named relative capabilities, child lists."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.symmetric import SymmetricKey, SymmetricLink
from peergos_node.cryptree.capabilities import AbsoluteCapability, WritableAbsoluteCapability
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from peergos_node.errors import BadCiphertext, DecodeError
from tests.helpers.cryptree import CREATED, OTHER, OWNER, WRITER, file_props

RNG = DeterministicRng("relative")
READ, WRITE, CHILD_READ, CHILD_WRITE = (SymmetricKey.random(RNG) for _ in range(4))
BAT = Bat.random(RNG)
MAP_KEY = RNG.random_bytes(32)


def test_cbor_keys_in_canonical_order() -> None:
    link = SymmetricLink.from_pair(WRITE, CHILD_WRITE, RNG)
    cap = RelativeCapability(MAP_KEY, CHILD_READ, BAT, OTHER, link)
    assert list(dag_cbor.decode(cap.serialize())) == ["a", "k", "l", "m", "w"]
    assert RelativeCapability.deserialize(cap.serialize()) == cap
    bare = RelativeCapability(MAP_KEY, CHILD_READ)
    assert dag_cbor.decode(bare.serialize()) == {"m": MAP_KEY, "k": [1, CHILD_READ.key, False]}


def test_relativise_and_back() -> None:
    parent = AbsoluteCapability(OWNER, WRITER, RNG.random_bytes(32), Bat.random(RNG), READ).with_write_key(
        WRITE
    )
    child = AbsoluteCapability(OWNER, WRITER, MAP_KEY, BAT, CHILD_READ).with_write_key(CHILD_WRITE)
    rel = RelativeCapability.relativise(parent, child, RNG)
    assert rel.writer is None and rel.wbase_key_link is not None
    back = rel.to_absolute(parent)
    assert isinstance(back, WritableAbsoluteCapability) and back == child
    assert rel.to_absolute(parent.readonly()) == child.readonly()
    assert rel.write_base_key(WRITE) == CHILD_WRITE
    with pytest.raises(BadCiphertext):
        rel.write_base_key(READ)

    other_writer = AbsoluteCapability(OWNER, OTHER, MAP_KEY, BAT, CHILD_READ)
    rel2 = RelativeCapability.relativise(parent, other_writer, RNG)
    assert rel2.writer == OTHER and rel2.wbase_key_link is None
    assert rel2.to_absolute(parent) == other_writer

    same_write_key = child.readonly().with_write_key(WRITE)
    assert RelativeCapability.relativise(parent, same_write_key, RNG).wbase_key_link is None
    with pytest.raises(ValueError):
        RelativeCapability.relativise(parent, AbsoluteCapability(OTHER, WRITER, MAP_KEY, BAT, READ), RNG)


def test_parent_link_names_the_writer_only_when_it_differs() -> None:
    parent = AbsoluteCapability(OWNER, WRITER, MAP_KEY, BAT, READ)
    assert RelativeCapability.to_parent(parent, CHILD_READ, WRITER).writer is None
    link = RelativeCapability.to_parent(parent, CHILD_READ, OTHER)
    assert link.writer == WRITER and link.rbase_key == CHILD_READ and link.bat == BAT


def test_named_capability() -> None:
    cap = RelativeCapability(MAP_KEY, CHILD_READ, BAT)
    named = NamedRelativeCapability.for_child(cap, file_props(3, bytes(32), "notes.txt"))
    assert named.created == CREATED.seconds and named.is_dir is False and named.mime_type
    m = dag_cbor.decode(named.serialize())
    assert set(m) == {"a", "k", "m", "n", "d", "t", "c"} and m["n"] == "notes.txt"
    assert NamedRelativeCapability.deserialize(named.serialize()) == named
    minimal = NamedRelativeCapability("x", cap)
    assert set(dag_cbor.decode(minimal.serialize())) == {"a", "k", "m", "n"}
    assert not minimal.is_directory
    assert NamedRelativeCapability.deserialize(minimal.serialize()) == minimal
    # Old readers see a RelativeCapability in the same map
    assert RelativeCapability.from_cbor({k: v for k, v in m.items() if k not in "ndtc"}) == cap


@pytest.mark.parametrize(
    "change",
    [
        {"n": "a/b"},
        {"n": 5},
        {"d": 1},
        {"t": b"x"},
        {"c": 2**63},
        {"m": bytes(31)},
        {"q": 1},
        {"k": [1, bytes(32)]},
    ],
)
def test_named_capability_decoding_is_strict(change: dict[str, object]) -> None:
    m = dag_cbor.decode(
        NamedRelativeCapability("x", RelativeCapability(MAP_KEY, CHILD_READ, BAT)).serialize()
    )
    m.update(change)
    with pytest.raises(DecodeError):
        NamedRelativeCapability.from_cbor(m)


def test_relative_capability_rejects_named_keys() -> None:
    named = NamedRelativeCapability("x", RelativeCapability(MAP_KEY, CHILD_READ))
    with pytest.raises(DecodeError):
        RelativeCapability.deserialize(named.serialize())


def test_children_links_named_and_legacy() -> None:
    caps = [RelativeCapability(RNG.random_bytes(32), SymmetricKey.random(RNG)) for _ in range(3)]
    named = ChildrenLinks.of([NamedRelativeCapability(f"c{i}", c) for i, c in enumerate(caps)])
    assert ChildrenLinks.deserialize(named.serialize()) == named and len(named) == 3
    legacy = ChildrenLinks(legacy=tuple(caps))
    assert ChildrenLinks.deserialize(legacy.serialize()) == legacy
    assert ChildrenLinks.deserialize(dag_cbor.encode([])) == ChildrenLinks()
    mixed = [named.to_cbor()[0], legacy.to_cbor()[1]]
    with pytest.raises(DecodeError):
        ChildrenLinks.from_cbor(mixed)
    with pytest.raises(DecodeError):
        ChildrenLinks.from_cbor([legacy.to_cbor()[0], named.to_cbor()[1]])
    with pytest.raises(ValueError):
        ChildrenLinks(named.named, legacy.legacy)
