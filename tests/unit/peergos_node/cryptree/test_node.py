"""Cryptree nodes: key schedule, trial decryption, reading, updates, strict parsing, tampering."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.public_key_hash import SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import CipherText, PaddedCipherText, SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability
from peergos_node.cryptree.chunks import ChunkLocation, next_chunk_location
from peergos_node.cryptree.node import (
    MAX_NODE_SIZE,
    CryptreeNode,
    FromBase,
    FromParent,
    SymmetricLinkToSigner,
    create_dir,
    create_file_chunk,
)
from peergos_node.cryptree.properties import Thumbnail
from peergos_node.cryptree.relative import ChildrenLinks, RelativeCapability
from peergos_node.errors import BadCiphertext, DecodeError
from tests.helpers.cryptree import MIRROR, OWNER, SIGNER, WRITER, keys, sample_dir, sample_file

RNG = DeterministicRng("node")


def test_file_key_schedule_and_read() -> None:
    s = sample_file(RNG, b"hello world")
    node = CryptreeNode.parse(s.built.block)
    assert node == s.built.node and node.cid() == Cid.for_block(CODEC_DAG_CBOR, s.built.block)
    assert node.bats == (BatId.inline(s.location.bat), MIRROR)  # type: ignore[arg-type]
    assert node.inline_bat == s.location.bat and node.mirror_bat_id == MIRROR
    # the base key opens both FromBase and FromParent of a file
    assert FromBase.from_cbor(node.from_base.decrypt(s.base_key)).key == s.data_key
    assert FromParent.from_cbor(node.from_parent.decrypt(s.base_key)).properties == s.props
    assert not node.is_directory(s.base_key)
    read = node.read(s.base_key)
    assert not read.is_directory and read.data_key == s.data_key and read.parent_key == s.base_key
    assert read.properties == s.props and read.parent_link == s.parent_link
    assert read.next_chunk == s.next_chunk and read.signer_link is None and not read.is_dirty
    assert read.data() == b"hello world" == node.data(s.data_key)
    assert node.properties(s.base_key) == s.props and node.parent_key(s.base_key) == s.base_key
    with pytest.raises(ValueError):
        read.children()
    with pytest.raises(BadCiphertext):
        node.data(s.base_key)
    with pytest.raises(BadCiphertext):
        node.read(s.data_key)


def test_directory_key_schedule_and_read() -> None:
    s = sample_dir(RNG, 7)
    node = CryptreeNode.parse(s.built.block)
    # the base key opens FromBase and the children; FromBase gives the parent key, which opens FromParent
    assert FromBase.from_cbor(node.from_base.decrypt(s.rbase_key)).key == s.parent_key
    with pytest.raises(BadCiphertext):
        node.from_parent.decrypt(s.rbase_key)
    assert FromParent.from_cbor(node.from_parent.decrypt(s.parent_key)).properties == s.props
    assert node.is_directory(s.rbase_key)
    read = node.read(s.rbase_key)
    assert read.is_directory and read.parent_key == s.parent_key and read.properties == s.props
    assert read.children(s.blocks) == ChildrenLinks.of(s.children)
    assert read.signer(s.wbase_key) == SIGNER
    with pytest.raises(BadCiphertext):
        read.signer(s.rbase_key)
    with pytest.raises(ValueError):
        _ = read.data_key
    # holders of the parent key (a child's parent link) read the properties, not the children
    assert node.is_directory(s.parent_key)
    assert node.properties(s.parent_key) == s.props and node.parent_link(s.parent_key) == s.parent_link
    with pytest.raises(BadCiphertext):
        node.read(s.parent_key)
    for child, want in zip(read.children(s.blocks).named, s.children, strict=True):
        assert child.cap.write_base_key(s.wbase_key) is not None and child == want


def test_signer_falls_back_to_the_entry_signer() -> None:
    s = sample_dir(RNG, 0, signer=None)
    read = s.built.node.read(s.rbase_key)
    assert read.signer_link is None
    assert read.signer(s.wbase_key, SIGNER) == SIGNER
    with pytest.raises(ValueError):
        read.signer(s.wbase_key)


def test_signer_link_must_match_its_key_hash() -> None:
    wbase = SymmetricKey.random(RNG)
    other = SigningKeyPair.random(RNG)
    forged = SigningPrivateKeyAndPublicHash(SIGNER.public_key_hash, other.secret)
    link = SymmetricLinkToSigner(CipherText.build(wbase, forged, RNG))
    with pytest.raises(DecodeError):
        link.target(wbase)
    good = SymmetricLinkToSigner.from_pair(wbase, SIGNER, RNG)
    assert SymmetricLinkToSigner.deserialize(good.serialize()).target(wbase) == SIGNER


def test_key_rules_enforced_on_create_and_read() -> None:
    base, other = keys(RNG, 2)
    nxt = RelativeCapability(RNG.random_bytes(32), base)
    with pytest.raises(ValueError):
        create_file_chunk(
            base_key=base,
            data_key=base,
            properties=sample_file(RNG, b"").props,
            data=b"",
            next_chunk=nxt,
            parent_link=None,
            inline_bat=None,
        )
    with pytest.raises(ValueError):
        create_dir(
            rbase_key=base,
            parent_key=base,
            properties=sample_dir(RNG, 0).props,
            children=[],
            next_chunk=nxt,
            parent_link=None,
            inline_bat=None,
        )
    with pytest.raises(ValueError):
        create_dir(
            rbase_key=base,
            parent_key=other,
            properties=sample_dir(RNG, 0).props,
            children=[],
            next_chunk=nxt,
            parent_link=None,
            inline_bat=None,
            signer=SIGNER,
        )
    # a hand-made directory whose FromBase names its own base key as parent key is malformed
    props = sample_dir(RNG, 0).props
    node = CryptreeNode(
        FromBase(base, nxt).encrypt(base, RNG),
        FromParent(props).encrypt(other, RNG),
        create_dir(
            rbase_key=base,
            parent_key=other,
            properties=props,
            children=[],
            next_chunk=nxt,
            parent_link=None,
            inline_bat=None,
            rng=RNG,
        ).node.payload,
    )
    with pytest.raises(DecodeError):
        node.read(base)


def test_legacy_file_without_bat_lists_no_bat_ids_even_with_a_mirror() -> None:
    base, data_key = keys(RNG, 2)
    s = sample_file(RNG, b"x")
    built = create_file_chunk(
        base_key=base,
        data_key=data_key,
        properties=s.props,
        data=b"x",
        next_chunk=s.next_chunk,
        parent_link=None,
        inline_bat=None,
        mirror_bat_id=MIRROR,
        rng=RNG,
    )
    assert built.node.bats == () and "bats" not in dag_cbor.decode(built.block)
    assert CryptreeNode.parse(built.block).read(base).parent_link is None


def test_directory_without_inline_bat_lists_only_the_mirror() -> None:
    """Java createDir lists [mirror] when there is no inline BAT (overflow chunks of legacy directories)."""
    s = sample_dir(RNG, 1)
    built = create_dir(
        rbase_key=s.rbase_key,
        parent_key=s.parent_key,
        properties=s.props,
        children=s.children,
        next_chunk=s.next_chunk,
        parent_link=None,
        inline_bat=None,
        mirror_bat_id=MIRROR,
        rng=RNG,
    )
    node = CryptreeNode.parse(built.block)
    assert node.bats == (MIRROR,) and node.inline_bat is None and node.mirror_bat_id is None
    assert node.read(s.rbase_key).children() == ChildrenLinks.of(s.children)


def test_updates() -> None:
    s = sample_dir(RNG, 3, mirror=None)
    node = s.built.node
    renamed = node.with_properties(s.rbase_key, s.props.renamed("Docs"), RNG)
    assert renamed.read(s.rbase_key).properties.name == "Docs"
    assert renamed.from_base == node.from_base and renamed.payload == node.payload
    moved = node.with_parent_link(s.parent_key, None, RNG)
    assert moved.read(s.rbase_key).parent_link is None and moved.properties(s.rbase_key) == s.props
    unlinked = node.with_signer_link(s.rbase_key, None, RNG)
    assert unlinked.read(s.rbase_key).signer_link is None
    mirrored = node.with_mirror_bat(MIRROR)
    assert mirrored.mirror_bat_id == MIRROR
    with pytest.raises(ValueError):
        mirrored.with_mirror_bat(MIRROR)
    more = mirrored.with_children(s.rbase_key, s.children * 20, RNG)
    assert more.fragments and more.node.read(s.rbase_key).children(
        [f.block for f in more.fragments]
    ).named == tuple(s.children * 20)
    assert all(f.block.startswith(bytes.fromhex("711d10cf3d322f2b")) for f in more.fragments)
    assert all(MIRROR.to_bytes() in f.block[:100] for f in more.fragments)
    f = sample_file(RNG, b"abc")
    thumb = f.props.with_thumbnail(Thumbnail("image/png", b"\x89PNG"))
    assert f.built.node.with_properties(f.base_key, thumb, RNG).properties(f.base_key) == thumb


def test_next_chunk_uses_the_stream_secret_when_there_is_one() -> None:
    s = sample_file(RNG, b"data")
    read = s.built.node.read(s.base_key)
    secret = s.props.stream_secret
    assert secret is not None
    here = s.location
    assert read.next_chunk_location(here, secret) == next_chunk_location(secret, here)
    # FromBase.n of this sample points elsewhere: only legacy readers (no secret) follow it
    assert read.next_chunk_location(here, secret).map_key != s.next_chunk.map_key
    assert read.next_chunk_location(here, None) == ChunkLocation(s.next_chunk.map_key, s.next_chunk.bat)
    cap = AbsoluteCapability(OWNER, WRITER, here.map_key, here.bat, s.base_key)
    moved = read.next_chunk_cap(cap, secret)
    nxt = next_chunk_location(secret, here)
    assert (moved.map_key, moved.bat, moved.rbase_key) == (nxt.map_key, nxt.bat, s.base_key)


def test_draw_order_matches_java() -> None:
    """Directories: signer link, FromBase, FromParent, payload nonce, fragment BATs; files: payload first."""
    base, parent, wbase, data_key = keys(RNG, 4)
    s = sample_dir(RNG, 40)
    nonces = [RNG.random_bytes(24) for _ in range(4)]
    bat = RNG.random_bytes(32)
    built = create_dir(
        rbase_key=base,
        parent_key=parent,
        properties=s.props,
        children=s.children,
        next_chunk=s.next_chunk,
        parent_link=None,
        inline_bat=None,
        wbase_key=wbase,
        signer=SIGNER,
        rng=ScriptedRng([*nonces, bat]),
    )
    node = built.node
    assert dag_cbor.decode(node.from_base.decrypt_bytes(base), allow_zero_padding=True)["w"][0] == nonces[0]
    assert (node.from_base.nonce, node.from_parent.nonce, node.payload.nonce) == tuple(nonces[1:])
    assert node.payload.bats[0].bat == Bat(bat)
    f = sample_file(RNG, b"")
    file_nonces = [RNG.random_bytes(24) for _ in range(3)]
    built = create_file_chunk(
        base_key=base,
        data_key=data_key,
        properties=f.props,
        data=bytes(9000),
        next_chunk=f.next_chunk,
        parent_link=None,
        inline_bat=None,
        rng=ScriptedRng([file_nonces[0], bat, *file_nonces[1:]]),
    )
    node = built.node
    assert (node.payload.nonce, node.from_base.nonce, node.from_parent.nonce) == tuple(file_nonces)


def _node_map() -> dict[str, object]:
    value: dict[str, object] = dag_cbor.decode(sample_dir(RNG, 1).built.block)
    return value


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"v": "1"},
        {"x": 1},
        {"bats": [BatId.inline(Bat(bytes(32))).to_bytes()] * 2},  # only the first may be inline
        {"bats": [BatId.inline(Bat(bytes(32))).to_bytes()] + [MIRROR.to_bytes()] * 4},
        {"bats": b"x"},
        {"b": [bytes(24)]},
        {"p": [bytes(23), bytes(32)]},
        {"d": {"n": bytes(24)}},
    ],
)
def test_parsing_is_strict(change: dict[str, object]) -> None:
    m = _node_map()
    m.update(change)
    with pytest.raises(DecodeError):
        CryptreeNode.parse(dag_cbor.encode(m))
    for missing in ("v", "b", "p", "d"):
        m = _node_map()
        del m[missing]
        with pytest.raises(DecodeError):
            CryptreeNode.parse(dag_cbor.encode(m))
    with pytest.raises(DecodeError):
        CryptreeNode.parse(bytes(MAX_NODE_SIZE + 1))


def test_every_tampered_node_byte_is_detected() -> None:
    """Flipping any byte of a node either fails (DecodeError/BadCiphertext) or changes only its BAT ids,
    which the block's CID (checked by every fetch) still catches; authenticated content never changes."""
    s = sample_file(RNG, b"tamper me")
    block = s.built.block
    original = s.built.node.read(s.base_key)
    cid = s.built.cid
    silent = 0
    for pos in range(len(block)):
        for bit in (0, 7):
            mutated = bytearray(block)
            mutated[pos] ^= 1 << bit
            with pytest.raises(Exception) as info:
                cid.verify(bytes(mutated))
            assert type(info.value).__name__ == "HashMismatch"
            try:
                node = CryptreeNode.parse(bytes(mutated))
                read = node.read(s.base_key)
                data = read.data()
            except (DecodeError, BadCiphertext):
                continue
            silent += 1
            assert node.bats != s.built.node.bats
            assert (read.properties, read.from_base, read.parent_link, data) == (
                original.properties,
                original.from_base,
                original.parent_link,
                b"tamper me",
            )
    assert silent < 2 * 72  # at most the bits of the two 36-byte BAT ids


def test_padded_blocks() -> None:
    s = sample_dir(RNG, 2)
    node = s.built.node
    assert len(node.from_base.decrypt_bytes(s.rbase_key)) % 64 == 0
    assert len(node.from_parent.decrypt_bytes(s.parent_key)) % 16 == 0
    # the type shows only in FromParent: a file-like FromParent under the base key reads as a file
    file_like = PaddedCipherText.build(s.rbase_key, FromParent(sample_file(RNG, b"").props), 16, RNG)
    assert CryptreeNode(node.from_base, file_like, node.payload, node.bats).is_directory(s.rbase_key) is False
