"""Writes cryptree.json-format cases with our own implementation, for the variations a vector runner must
accept (README "Variations a runner must accept"): large plaintexts given by sha256 and length, missing
optional values, directory overflow chunks. The layout follows the reference cryptree.json; the bytes come
from peergos_node.cryptree, whose output matches the reference vectors byte for byte.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from nabu_py.codec import dag_cbor
from peergos_node.crypto.bat import Bat, BatId, create_raw_block_prefix, remove_raw_block_prefix
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import PaddedCipherText, SymmetricKey, SymmetricLink
from peergos_node.cryptree.builders import FileEncryptor, LocatedNode, create_directory
from peergos_node.cryptree.chunks import ChunkLocation, next_chunk_location
from peergos_node.cryptree.fragments import Fragment, cbor_byte_string
from peergos_node.cryptree.node import CryptreeNode
from peergos_node.cryptree.properties import FileProperties, HashTree, Timestamp
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from tests.helpers.cryptree import RecordingRng

LARGE = 20_000
Obj = dict[str, Any]


def keypair(cbor_doc: Obj, name: str) -> SigningKeyPair:
    """A shared key pair of cbor.json."""
    return SigningKeyPair.from_seed(bytes.fromhex(cbor_doc["keypairs"][name]["seed_hex"]))


def _cid(cid: Any) -> Obj:
    return {"bytes_hex": cid.to_bytes().hex(), "string": str(cid)}


def _fragments(fragments: tuple[Fragment, ...], mirror: BatId | None) -> list[Obj]:
    return [
        {
            "cid": _cid(f.cid),
            "block_hex": f.block.hex(),
            "bat_prefix_hex": create_raw_block_prefix(f.bat.bat, mirror).hex(),
        }
        for f in fragments
    ]


def _padded(cipher: PaddedCipherText, key: SymmetricKey, key_name: str) -> Obj:
    padded = cipher.decrypt_bytes(key)
    plaintext = dag_cbor.encode(dag_cbor.decode(padded, allow_zero_padding=True))
    return {
        "key": key_name,
        "nonce_hex": cipher.nonce.hex(),
        "ciphertext_hex": cipher.ciphertext.hex(),
        "padded_plaintext_length": len(padded),
        "plaintext_cbor_hex": plaintext.hex(),
        "padding_zero_bytes": len(padded) - len(plaintext),
    }


def _payload(
    node: CryptreeNode, key: SymmetricKey, key_name: str, blocks: list[bytes], plaintext: bytes
) -> Obj:
    payload = node.payload
    padded = payload.decrypt_padded(key, blocks)
    stored = [payload.inline] if payload.inline is not None else [remove_raw_block_prefix(b) for b in blocks]
    pieces = sum(len(p) for p in stored)
    out: Obj = {
        "key": key_name,
        "nonce_hex": payload.nonce.hex(),
        "inline": payload.is_inline,
        "header_hex": None if payload.header is None else payload.header.hex(),
        "full_ciphertext_length": len(payload.header or b"") + pieces,
        "padded_plaintext_length": len(padded),
        "plaintext_cbor_length": len(plaintext),
        "padding_zero_bytes": len(padded) - len(plaintext),
    }
    if len(plaintext) >= LARGE:
        out["plaintext_cbor_sha256_hex"] = hashlib.sha256(plaintext).hexdigest()
    else:
        out["plaintext_cbor_hex"] = plaintext.hex()
    return out


def _node_fields(located: LocatedNode, mirror: BatId | None) -> Obj:
    return {
        "cryptree_node_cbor_hex": located.block.hex(),
        "cryptree_node_cid": _cid(located.cid),
        "fragments": _fragments(located.fragments, mirror),
    }


def file_case(name: str, size: int, seed: str, mirror: BatId | None) -> Obj:
    """A first file chunk of `size` bytes with the reference layout (data by rule, no data_hex)."""
    rng = RecordingRng(seed)
    base, data_key, pp = (SymmetricKey.random(rng) for _ in range(3))
    parent_map_key, parent_bat = rng.random_bytes(32), Bat.random(rng)
    first = ChunkLocation(rng.random_bytes(32), Bat.random(rng))
    secret = rng.random_bytes(32)
    data = bytes((i * 31 + 7) % 256 for i in range(size))
    tree = HashTree.of_data(data)
    modified, created = "2024-03-04T05:06:07.123456789", "2023-01-02T03:04:05"
    props = FileProperties.file(
        name,
        size,
        Timestamp.parse(modified),
        "application/octet-stream",
        secret,
        created=Timestamp.parse(created),
    )
    parent_link = RelativeCapability(parent_map_key, pp, parent_bat)
    encryptor = FileEncryptor(base, data_key, props, first, parent_link, tree, mirror)
    start = len(rng.draws)
    located = encryptor.encrypt_chunk(0, data[: 5 * 1024 * 1024], rng)
    draws = rng.draws[start:]
    n_bats = len(located.fragments)
    node = located.node
    nxt = next_chunk_location(secret, first)
    blocks = [f.block for f in located.fragments]
    inputs: Obj = {
        "owner": "identity public key hash",
        "writer": "writer public key hash",
        "file_name": name,
        "mime_type": "application/octet-stream",
        "size": size,
        "data_rule": "byte i = (i * 31 + 7) mod 256",
        "data_hex": None,
        "data_utf8": None,
        "data_sha256_hex": hashlib.sha256(data).hexdigest(),
        "modified": modified,
        "created": created,
        "isHidden": False,
        "stream_secret_hex": secret.hex(),
        "base_key_hex": base.key.hex(),
        "data_key_hex": data_key.key.hex(),
        "parent_parent_key_hex": pp.key.hex(),
        "parent_map_key_hex": parent_map_key.hex(),
        "parent_bat_secret_hex": parent_bat.secret.hex(),
        "first_map_key_hex": first.map_key.hex(),
        "first_bat_secret_hex": first.bat.secret.hex() if first.bat else None,
        "mirror_bat_id": None if mirror is None else {"cid_bytes_hex": mirror.to_bytes().hex()},
        "hash_tree_root_hex": tree.root.hash.hex(),
        "hash_tree_cbor_hex": tree.serialize().hex(),
        "random_draws_in_order": {
            "base_key_nonces": [{"use": "unused", "hex": draws[0].hex()}]
            + [
                {"use": use, "hex": d.hex()}
                for use, d in zip(("FromBase", "FromParent"), draws[-2:], strict=True)
            ],
            "data_key_nonces": [{"use": "file data", "hex": draws[1].hex()}],
            "fragment_bats": [d.hex() for d in draws[2 : 2 + n_bats]],
        },
    }
    return {
        "name": name,
        "reference": "generated by tests/helpers/cryptree_vectors.py",
        "inputs": inputs,
        "chunk_map_key_hex": first.map_key.hex(),
        "chunk_bat_secret_hex": first.bat.secret.hex() if first.bat else None,
        "next_chunk_map_key_hex": nxt.map_key.hex(),
        "next_chunk_bat_secret_hex": nxt.bat.secret.hex() if nxt.bat else None,
        **_node_fields(located, mirror),
        "decrypted": {
            "b_from_base_key": _padded(node.from_base, base, "base_key"),
            "p_from_parent_key": _padded(node.from_parent, base, "base_key"),
            "d_children_or_data": _payload(node, data_key, "data_key", blocks, cbor_byte_string(data)),
        },
    }


@dataclass(frozen=True)
class _DirKeys:
    rbase: SymmetricKey
    wbase: SymmetricKey
    parent_key: SymmetricKey
    pp: SymmetricKey
    parent_loc: ChunkLocation
    parent_link: RelativeCapability
    mirror: BatId | None


def _dir_case(
    located: LocatedNode,
    case_name: str,
    case_props: FileProperties,
    kids_here: list[NamedRelativeCapability],
    specs: list[Obj],
    nxt_cap: RelativeCapability,
    draws_here: list[bytes],
    case_signer: str | None,
    k: _DirKeys,
) -> Obj:
    node = located.node
    blocks = [f.block for f in located.fragments]
    links = ChildrenLinks.of(kids_here).serialize()
    return {
        "name": case_name,
        "reference": "generated by tests/helpers/cryptree_vectors.py",
        "inputs": {
            "props": {
                "name": case_props.name,
                "isDirectory": True,
                "isLink": False,
                "mimeType": "",
                "size": 0,
                "modified": str(case_props.modified),
                "created": str(case_props.created),
                "isHidden": False,
            },
            "read_base_key_hex": k.rbase.key.hex(),
            "write_base_key_hex": k.wbase.key.hex(),
            "parent_key_hex": k.parent_key.key.hex(),
            "parent_parent_key_hex": k.pp.key.hex(),
            "parent_cap": {
                "map_key_hex": k.parent_loc.map_key.hex(),
                "bat_secret_hex": k.parent_loc.bat.secret.hex() if k.parent_loc.bat else None,
                "read_key": "parent_parent_key",
                "cbor_hex": k.parent_link.serialize().hex(),
            },
            "next_chunk": {
                "map_key_hex": nxt_cap.map_key.hex(),
                "bat_secret_hex": nxt_cap.bat.secret.hex() if nxt_cap.bat else None,
                "read_key": "read_base_key",
                "cbor_hex": nxt_cap.serialize().hex(),
            },
            "inline_bat_secret_hex": located.location.bat.secret.hex() if located.location.bat else None,
            "mirror_bat_id": None if k.mirror is None else {"cid_bytes_hex": k.mirror.to_bytes().hex()},
            "signer": case_signer,
            "children": specs,
            "children_links_cbor_hex": links.hex(),
            "nonces_in_draw_order": [{"key": "?", "use": "?", "hex": d.hex()} for d in draws_here],
        },
        **_node_fields(located, k.mirror),
        "decrypted": {
            "b_from_base_key": _padded(node.from_base, k.rbase, "read_base_key"),
            "p_from_parent_key": _padded(node.from_parent, k.parent_key, "parent_key"),
            "d_children_or_data": _payload(node, k.rbase, "read_base_key", blocks, links),
        },
    }


def dir_case(
    cbor_doc: Obj,
    name: str,
    count: int,
    seed: str,
    *,
    mirror: BatId | None,
    signer_name: str | None,
    overflow: str = "nested",
) -> list[Obj]:
    """A directory of `count` children (some in identity2's space, some without a creation time).

    With more than 500 children, `overflow` says where the overflow chunks go: "nested" (inside the case,
    with the draws for them recorded), "nested-no-draws" (inside, draws not recorded) or "sibling" (cases of
    their own). Returns the cases to put in the file.
    """
    rng = RecordingRng(seed)
    rbase, wbase, parent_key, pp = (SymmetricKey.random(rng) for _ in range(4))
    parent_loc = ChunkLocation(rng.random_bytes(32), Bat.random(rng))
    here = ChunkLocation(rng.random_bytes(32), Bat.random(rng))
    nxt = ChunkLocation(rng.random_bytes(32), Bat.random(rng))
    other = PublicKeyHash.of(keypair(cbor_doc, "identity2").public)
    child_specs: list[Obj] = []
    kids: list[NamedRelativeCapability] = []
    for i in range(count):
        child_read, child_write = SymmetricKey.random(rng), SymmetricKey.random(rng)
        loc = ChunkLocation(rng.random_bytes(32), Bat.random(rng))
        nonce = rng.random_bytes(24)
        link = SymmetricLink.from_pair(wbase, child_write, ScriptedRng([nonce]))
        writer = other if i % 5 == 4 else None
        created = None if i % 3 == 1 else 1672628645 + i
        is_dir = i % 4 == 0
        cap = RelativeCapability(loc.map_key, child_read, loc.bat, writer, link)
        named = NamedRelativeCapability(
            f"entry-{i:04d}", cap, is_dir, "" if is_dir else "text/plain", created
        )
        kids.append(named)
        child_specs.append(
            {
                "name": named.name,
                "isDir": is_dir,
                "mimetype": named.mime_type,
                "created": None if created is None else str(Timestamp(created)),
                "created_epoch_seconds": created,
                "writer": None if writer is None else "identity2 public key hash",
                "map_key_hex": loc.map_key.hex(),
                "bat_secret_hex": loc.bat.secret.hex() if loc.bat else None,
                "read_base_key_hex": child_read.key.hex(),
                "write_base_key_hex": child_write.key.hex(),
                "write_link": {"nonce_hex": nonce.hex()},
                "named_relative_capability_cbor_hex": named.serialize().hex(),
            }
        )
    props = FileProperties.directory("Big Folder", Timestamp.parse("2024-03-04T05:06:07.123456789"))
    parent_link = RelativeCapability(parent_loc.map_key, pp, parent_loc.bat)
    signer = (
        None if signer_name is None else SigningPrivateKeyAndPublicHash.of(keypair(cbor_doc, signer_name))
    )
    start = len(rng.draws)
    chunks = create_directory(
        rbase_key=rbase,
        parent_key=parent_key,
        properties=props,
        children=kids,
        location=here,
        next_chunk=nxt,
        parent_link=parent_link,
        mirror_bat_id=mirror,
        wbase_key=wbase,
        signer=signer,
        rng=rng,
    )
    draws = rng.draws[start:]
    first_draws = 3 + (1 if signer else 0) + len(chunks[0].fragments)
    recorded = draws if overflow == "nested" else draws[:first_draws]
    next_cap = RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, rbase)
    first_kids = kids[:500]

    k = _DirKeys(rbase, wbase, parent_key, pp, parent_loc, parent_link, mirror)
    # the first case lists every child as an input; its node holds the first 500
    first = _dir_case(chunks[0], name, props, first_kids, child_specs, next_cap, recorded, signer_name, k)
    if len(chunks) == 1:
        return [first]
    if overflow in ("nested", "nested-no-draws"):
        first["overflow_chunks"] = [
            {"location": {"map_key_hex": c.location.map_key.hex()}, **_node_fields(c, mirror)}
            for c in chunks[1:]
        ]
        return [first]
    cases = [first]
    for i, located in enumerate(chunks[1:], start=1):
        node = located.node
        read = node.read(rbase)
        own = [node.from_base.nonce, node.from_parent.nonce, node.payload.nonce]
        own += [b.bat.secret for b in node.payload.bats]
        group = slice(500 * i, 500 * (i + 1))
        cases.append(
            _dir_case(
                located,
                f"{name}-overflow-{i}",
                read.properties,
                kids[group],
                child_specs[group],
                read.next_chunk,
                own,
                None,
                k,
            )
        )
    return cases
