"""cryptree.json: cryptree nodes of files and directories, chunk chaining and payload lengths.

Detected by cases carrying `cryptree_node_cbor_hex` (or a `stream_secret_chain` / length table).

Every node case is rebuilt from its inputs through the public API (`FileEncryptor.encrypt_chunk` for
files, `create_dir` / `create_directory` for directories) with the recorded random draws replayed in
Java's order, all of which must be consumed; the node CBOR and CID and every fragment block, CID and BAT
prefix must match byte for byte. The reference bytes are then parsed, re-serialised, and each encrypted
part (`b`, `p`, `d`) is opened with the named key and compared with the recorded nonce, ciphertext,
padded length, plaintext (or its sha256 and length when large) and zero padding. Finally the node is
read back through `CryptreeNode.read` and its properties, keys, links, children or data, signer and
next-chunk location are compared with the inputs.

A directory of more than 500 children is checked as its first chunk plus overflow chunks: overflow nodes
given inside the case (any nested object with `cryptree_node_cbor_hex`) or as separate cases named
`.subsequent-dir-chunk` must sit at the first chunk's next-chunk location with that BAT, hold the rest of
the children under the same keys, and re-encrypt to the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.bat import Bat, BatId, create_raw_block_prefix, remove_raw_block_prefix
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.crypto.symmetric import PaddedCipherText, SymmetricKey, SymmetricLink
from peergos_node.cryptree.builders import FileEncryptor, create_overflow_chunk
from peergos_node.cryptree.chunks import (
    MAX_CHILD_LINKS_PER_CHUNK,
    ChunkLocation,
    chunk_location,
    next_chunk_location,
    split_children,
)
from peergos_node.cryptree.fragments import (
    FragmentedPaddedCipherText,
    FragmentLayout,
    cbor_byte_string,
)
from peergos_node.cryptree.node import CryptreeNode, FromBase, FromParent, create_dir
from peergos_node.cryptree.properties import (
    CHUNK_SIZE,
    EMPTY,
    SUBSEQUENT_DIR_CHUNK_NAME,
    FileProperties,
    HashTree,
    Thumbnail,
    Timestamp,
)
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from peergos_node.vectors.checks._crypto_common import dict_cases, has_case_with, hexb, named_keypair
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "cryptree"
Obj = dict[str, Any]
_HEX = re.compile(r"[0-9a-f]{64,}")
_BYTE_RULE = re.compile(r"byte i = \(i \* (\d+) \+ (\d+)\) mod 256")
_CALC_KEY = re.compile(r"calculateMapKey_offset_(\d+)x5MiB_plus_(\d+)_equals_step_(\d+)")


def detect(doc: Obj) -> bool:
    return (
        has_case_with(doc, "cryptree_node_cbor_hex")
        or isinstance(doc.get("stream_secret_chain"), dict)
        or isinstance(doc.get("fragmented_padded_ciphertext_lengths"), dict)
    )


# ---- inputs -----------------------------------------------------------------------------------------------
def _obj(d: Obj, key: str) -> Obj:
    value = d.get(key)
    if not isinstance(value, dict):
        raise CheckFailed(f"vector field {key!r} is missing or not an object")
    return value


def _key(d: Obj, name: str) -> SymmetricKey:
    return SymmetricKey(hexb(d, f"{name}_hex"))


def _opt_bat(d: Obj, key: str) -> Bat | None:
    return Bat(hexb(d, key)) if d.get(key) is not None else None


def _time(value: Any) -> Timestamp:
    if isinstance(value, int):
        return Timestamp(value)
    return Timestamp.parse(str(value))


def _mirror(inputs: Obj) -> BatId | None:
    value = inputs.get("mirror_bat_id")
    if value is None:
        return None
    if isinstance(value, str):
        return BatId.decode(bytes.fromhex(value))
    mirror = BatId.decode(hexb(value, "cid_bytes_hex"))
    if value.get("mirror_bat_secret_hex") is not None:
        expect_equal("mirror BatId", mirror, BatId.sha256(Bat(hexb(value, "mirror_bat_secret_hex"))))
    return mirror


def _key_hash(ctx: Context, description: Any) -> PublicKeyHash | None:
    """A writer given as a key pair name ("identity2 public key hash ...") or as hex CID bytes."""
    if description is None:
        return None
    text = str(description)
    if re.fullmatch(r"[0-9a-f]+", text):
        return PublicKeyHash(Cid.decode(bytes.fromhex(text)))
    return PublicKeyHash.of(named_keypair(ctx, text.split()[0]).public)


def _signer(ctx: Context, description: Any) -> SigningPrivateKeyAndPublicHash | None:
    if description is None:
        return None
    signer = SigningPrivateKeyAndPublicHash.of(named_keypair(ctx, str(description).split()[0]))
    listed = _HEX.search(str(description))
    if listed is not None:
        expect_equal("signer CBOR", signer.serialize(), bytes.fromhex(listed.group(0)))
    return signer


def _file_data(inputs: Obj) -> bytes:
    """The file's bytes from `data_hex`, `data_utf8` or a `byte i = (i * a + b) mod 256` rule; every form
    given must agree, as must the size and sha256."""
    size = int(inputs["size"])
    forms: list[bytes] = []
    if inputs.get("data_hex") is not None:
        forms.append(hexb(inputs, "data_hex"))
    if inputs.get("data_utf8") is not None:
        forms.append(str(inputs["data_utf8"]).encode("utf-8"))
    rule = _BYTE_RULE.fullmatch(str(inputs.get("data_rule", "")))
    if rule is not None:
        mul, add = int(rule.group(1)), int(rule.group(2))
        forms.append((bytes((i * mul + add) % 256 for i in range(256)) * (size // 256 + 1))[:size])
    if not forms:
        raise CheckFailed(f"cannot rebuild the file data from rule {inputs.get('data_rule')!r}")
    data = forms[0]
    for other in forms[1:]:
        expect_equal("data forms agree", other, data)
    expect_equal("data length", len(data), size)
    if inputs.get("data_sha256_hex") is not None:
        expect_equal("data sha256", hashlib.sha256(data).digest(), hexb(inputs, "data_sha256_hex"))
    return data


def _draw_hex(entry: Any) -> bytes:
    return bytes.fromhex(entry["hex"] if isinstance(entry, dict) else str(entry))


def _file_draws(inputs: Obj) -> list[bytes]:
    """Java's order: FileUploader's unused base-key nonce, the payload nonce and fragment BATs, then the
    FromBase and FromParent nonces."""
    if isinstance(inputs.get("nonces_in_draw_order"), list):
        return [_draw_hex(e) for e in inputs["nonces_in_draw_order"]]
    draws = _obj(inputs, "random_draws_in_order")
    base = [_draw_hex(e) for e in draws.get("base_key_nonces", [])]
    data = [_draw_hex(e) for e in draws.get("data_key_nonces", [])]
    bats = [_draw_hex(e) for e in draws.get("fragment_bats", [])]
    if len(base) != 3:
        raise CheckFailed("a file chunk draws three base-key nonces")
    return [base[0], *data, *bats, *base[1:]]


def _fragment_blocks(case: Obj) -> list[bytes]:
    return [hexb(f, "block_hex") for f in case.get("fragments") or []]


# ---- comparisons ------------------------------------------------------------------------------------------
def _check_cid(what: str, cid: Cid, spec: Any) -> None:
    if isinstance(spec, dict):
        expect_equal(f"{what} CID bytes", cid.to_bytes(), hexb(spec, "bytes_hex"))
        if "string" in spec:
            expect_equal(f"{what} CID string", str(cid), spec["string"])
    else:
        expect_equal(f"{what} CID", str(cid), str(spec))


def _check_built(case: Obj, block: bytes, fragments: list[tuple[Cid, bytes]], mirror: BatId | None) -> None:
    """Our node and fragment blocks against the reference ones."""
    expect_equal("cryptree node CBOR", block, hexb(case, "cryptree_node_cbor_hex"))
    _check_cid("node", CryptreeNode.parse(block).cid(), case["cryptree_node_cid"])
    ref = case.get("fragments") or []
    expect_equal("fragment count", len(fragments), len(ref))
    node = CryptreeNode.parse(block)
    for i, ((cid, data), spec) in enumerate(zip(fragments, ref, strict=True)):
        expect_equal(f"fragment {i} block", data, hexb(spec, "block_hex"))
        _check_cid(f"fragment {i}", cid, spec["cid"])
        expect_equal(f"fragment {i} link in node", node.payload.fragments[i], cid)
        prefix = create_raw_block_prefix(node.payload.bats[i].bat, mirror)
        expect_equal(f"fragment {i} BAT prefix", prefix, hexb(spec, "bat_prefix_hex"))
        expect_equal(f"fragment {i} starts with its prefix", data[: len(prefix)], prefix)


def _check_padded_part(
    what: str, spec: Obj, cipher: PaddedCipherText, key: SymmetricKey, want: bytes
) -> None:
    expect_equal(f"{what} nonce", cipher.nonce, hexb(spec, "nonce_hex"))
    expect_equal(f"{what} ciphertext", cipher.ciphertext, hexb(spec, "ciphertext_hex"))
    padded = cipher.decrypt_bytes(key)
    _check_plaintext(what, spec, padded)
    expect_equal(f"{what} plaintext", padded[: len(want)], want)


def _check_plaintext(what: str, spec: Obj, padded: bytes) -> bytes:
    """Padded length, plaintext (hex, or sha256 + length) and zero padding; returns the plaintext."""
    expect_equal(f"{what} padded length", len(padded), int(spec["padded_plaintext_length"]))
    if spec.get("plaintext_cbor_hex") is not None:
        plaintext = hexb(spec, "plaintext_cbor_hex")
        expect_equal(f"{what} plaintext CBOR", padded[: len(plaintext)], plaintext)
    else:
        length = int(spec["plaintext_cbor_length"])
        plaintext = padded[:length]
        want = hexb(spec, "plaintext_cbor_sha256_hex")
        expect_equal(f"{what} plaintext sha256", hashlib.sha256(plaintext).digest(), want)
    if spec.get("plaintext_cbor_length") is not None:
        expect_equal(f"{what} plaintext length", len(plaintext), int(spec["plaintext_cbor_length"]))
    zeros = len(padded) - len(plaintext)
    expect_equal(f"{what} padding", padded[len(plaintext) :], bytes(zeros))
    if spec.get("padding_zero_bytes") is not None:
        expect_equal(f"{what} padding length", zeros, int(spec["padding_zero_bytes"]))
    expect_equal(
        f"{what} one CBOR item", dag_cbor.encode(dag_cbor.decode(padded, allow_zero_padding=True)), plaintext
    )
    return plaintext


def _check_payload(
    spec: Obj, node: CryptreeNode, key: SymmetricKey, blocks: list[bytes], want: bytes
) -> None:
    payload = node.payload
    expect_equal("d nonce", payload.nonce, hexb(spec, "nonce_hex"))
    expect_equal("d inline", payload.is_inline, bool(spec["inline"]))
    header = None if spec.get("header_hex") is None else hexb(spec, "header_hex")
    expect_equal("d header", payload.header, header)
    pieces = [payload.inline] if payload.inline is not None else [remove_raw_block_prefix(b) for b in blocks]
    stored = len(payload.header or b"") + sum(len(p) for p in pieces)
    if spec.get("full_ciphertext_length") is not None:
        expect_equal("d ciphertext length", stored, int(spec["full_ciphertext_length"]))
    padded = payload.decrypt_padded(key, blocks)
    plaintext = _check_plaintext("d", spec, padded)
    expect_equal("d plaintext", plaintext, want)


def _decrypted(case: Obj) -> Obj:
    return _obj(case, "decrypted")


def _part_key(inputs: Obj, spec: Obj) -> SymmetricKey:
    return _key(inputs, str(spec["key"]).split()[0])


# ---- file chunks ------------------------------------------------------------------------------------------
def _file_properties(inputs: Obj) -> FileProperties:
    thumbnail = None
    if inputs.get("thumbnail_data_hex") is not None:
        thumbnail = Thumbnail(
            str(inputs.get("thumbnail_mime") or "image/png"), hexb(inputs, "thumbnail_data_hex")
        )
    secret = hexb(inputs, "stream_secret_hex")
    return FileProperties.file(
        str(inputs["file_name"]),
        int(inputs["size"]),
        _time(inputs["modified"]),
        str(inputs["mime_type"]),
        secret,
        created=_time(inputs.get("created") or inputs["modified"]),
        is_hidden=bool(inputs.get("isHidden", False)),
        thumbnail=thumbnail,
    )


def _check_file(case: Obj, ctx: Context) -> None:
    inputs = _obj(case, "inputs")
    data = _file_data(inputs)
    index = int(inputs.get("chunk_index", 0))
    chunk = data[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
    tree = HashTree.of_data(data)
    if inputs.get("hash_tree_cbor_hex") is not None:
        expect_equal("hash tree CBOR", tree.serialize(), hexb(inputs, "hash_tree_cbor_hex"))
    if inputs.get("hash_tree_root_hex") is not None:
        expect_equal("hash tree root", tree.root.hash, hexb(inputs, "hash_tree_root_hex"))
    props = _file_properties(inputs)
    writer = _key_hash(ctx, inputs.get("writer"))
    parent_writer = _key_hash(ctx, inputs.get("parent_writer"))
    parent_link = RelativeCapability(
        hexb(inputs, "parent_map_key_hex"),
        _key(inputs, "parent_parent_key"),
        _opt_bat(inputs, "parent_bat_secret_hex"),
        None if parent_writer is None or parent_writer == writer else parent_writer,
    )
    mirror = _mirror(inputs)
    base_key, data_key = _key(inputs, "base_key"), _key(inputs, "data_key")
    first = ChunkLocation(hexb(inputs, "first_map_key_hex"), _opt_bat(inputs, "first_bat_secret_hex"))
    encryptor = FileEncryptor(base_key, data_key, props, first, parent_link, tree, mirror)
    rng = ScriptedRng(_file_draws(inputs))
    built = encryptor.encrypt_chunk(index, chunk, rng)
    expect_equal("unused random draws", rng.remaining, 0)
    _check_built(case, built.block, [(f.cid, f.block) for f in built.fragments], mirror)

    here = encryptor.location(index)
    nxt = next_chunk_location(encryptor.stream_secret, here)
    expect_equal("chunk map key", here.map_key, hexb(case, "chunk_map_key_hex"))
    expect_equal("chunk BAT", here.bat, _opt_bat(case, "chunk_bat_secret_hex"))
    expect_equal("next chunk map key", nxt.map_key, hexb(case, "next_chunk_map_key_hex"))
    expect_equal("next chunk BAT", nxt.bat, _opt_bat(case, "next_chunk_bat_secret_hex"))

    ref = hexb(case, "cryptree_node_cbor_hex")
    node = CryptreeNode.parse(ref)
    expect_equal("re-serialised node", node.serialize(), ref)
    blocks = _fragment_blocks(case)
    chunk_props = encryptor.chunk_properties(index)
    next_cap = RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, base_key)
    parts = _decrypted(case)
    spec_b, spec_p = _obj(parts, "b_from_base_key"), _obj(parts, "p_from_parent_key")
    want_b = FromBase(data_key, next_cap).serialize()
    _check_padded_part("b", spec_b, node.from_base, _part_key(inputs, spec_b), want_b)
    want_p = FromParent(chunk_props, parent_link).serialize()
    _check_padded_part("p", spec_p, node.from_parent, _part_key(inputs, spec_p), want_p)
    spec_d = _obj(parts, "d_children_or_data")
    _check_payload(spec_d, node, _part_key(inputs, spec_d), blocks, cbor_byte_string(chunk))

    read = node.read(base_key)
    expect_equal("is a file", read.is_directory, False)
    expect_equal("trial decryption", node.is_directory(base_key), False)
    expect_equal("properties", read.properties, chunk_props)
    expect_equal("data key", read.data_key, data_key)
    expect_equal("parent link", read.parent_link, parent_link)
    expect_equal("next chunk (FromBase)", read.next_chunk, next_cap)
    expect_equal("next chunk (stream secret)", read.next_chunk_location(here, props.stream_secret), nxt)
    expect_equal("chunk data", read.data(blocks), chunk)
    want_ids: tuple[BatId, ...] = ()
    if here.bat is not None:  # Java lists no BAT ids at all on a chunk without an inline BAT
        want_ids = (BatId.inline(here.bat), *((mirror,) if mirror is not None else ()))
    expect_equal("BAT ids", node.bats, want_ids)


# ---- directories ------------------------------------------------------------------------------------------
def _children(inputs: Obj, ctx: Context, write_key: SymmetricKey | None) -> list[NamedRelativeCapability]:
    children = []
    for i, child in enumerate(inputs.get("children") or []):
        link = None
        if child.get("write_link") is not None:
            if write_key is None:
                raise CheckFailed(f"child {i} has a write link but the directory has no write key")
            rng = ScriptedRng([hexb(child["write_link"], "nonce_hex")])
            link = SymmetricLink.from_pair(write_key, _key(child, "write_base_key"), rng)
        cap = RelativeCapability(
            hexb(child, "map_key_hex"),
            _key(child, "read_base_key"),
            _opt_bat(child, "bat_secret_hex"),
            _key_hash(ctx, child.get("writer")),
            link,
        )
        created = child.get("created_epoch_seconds")
        if created is None and child.get("created") is not None:
            created = _time(child["created"]).seconds
        named = NamedRelativeCapability(
            str(child["name"]), cap, child.get("isDir"), child.get("mimetype"), created
        )
        if child.get("named_relative_capability_cbor_hex") is not None:
            expect_equal(
                f"child {i} CBOR", named.serialize(), hexb(child, "named_relative_capability_cbor_hex")
            )
        children.append(named)
    return children


def _dir_properties(inputs: Obj) -> FileProperties:
    p = _obj(inputs, "props")
    return FileProperties(
        str(p["name"]),
        bool(p["isDirectory"]),
        int(p.get("size", 0)),
        _time(p["modified"]),
        _time(p.get("created") or p["modified"]),
        str(p.get("mimeType", "")),
        bool(p.get("isLink", False)),
        bool(p.get("isHidden", False)),
    )


def _check_dir(case: Obj, ctx: Context, doc: Obj) -> None:
    inputs = _obj(case, "inputs")
    props = _dir_properties(inputs)
    rkey, pkey = _key(inputs, "read_base_key"), _key(inputs, "parent_key")
    wkey = _key(inputs, "write_base_key") if inputs.get("write_base_key_hex") is not None else None
    parent_cap = inputs.get("parent_cap")
    parent_link = None
    if isinstance(parent_cap, dict):
        parent_link = RelativeCapability(
            hexb(parent_cap, "map_key_hex"),
            _key(inputs, str(parent_cap.get("read_key", "parent_parent_key"))),
            _opt_bat(parent_cap, "bat_secret_hex"),
            _key_hash(ctx, parent_cap.get("writer")),
        )
        if parent_cap.get("cbor_hex") is not None:
            expect_equal("parent link CBOR", parent_link.serialize(), hexb(parent_cap, "cbor_hex"))
    nc = _obj(inputs, "next_chunk")
    next_cap = RelativeCapability(
        hexb(nc, "map_key_hex"),
        _key(inputs, str(nc.get("read_key", "read_base_key"))),
        _opt_bat(nc, "bat_secret_hex"),
    )
    if nc.get("cbor_hex") is not None:
        expect_equal("next chunk CBOR", next_cap.serialize(), hexb(nc, "cbor_hex"))
    children = _children(inputs, ctx, wkey)
    groups = split_children(children, MAX_CHILD_LINKS_PER_CHUNK)
    first_links = ChildrenLinks.of(groups[0]).serialize()
    if inputs.get("children_links_cbor_hex") is not None:
        listed = hexb(inputs, "children_links_cbor_hex")
        if listed not in (ChildrenLinks.of(children).serialize(), first_links):
            raise CheckFailed("children_links_cbor_hex is neither all children nor the first chunk's")
    signer = _signer(ctx, inputs.get("signer"))
    mirror = _mirror(inputs)
    inline_bat = _opt_bat(inputs, "inline_bat_secret_hex")
    rng = ScriptedRng(_draw_hex(e) for e in inputs.get("nonces_in_draw_order") or [])
    built = create_dir(
        rbase_key=rkey,
        parent_key=pkey,
        properties=props,
        children=groups[0],
        next_chunk=next_cap,
        parent_link=parent_link,
        inline_bat=inline_bat,
        mirror_bat_id=mirror,
        wbase_key=wkey,
        signer=signer,
        rng=rng,
    )
    _check_built(case, built.block, [(f.cid, f.block) for f in built.fragments], mirror)

    ref = hexb(case, "cryptree_node_cbor_hex")
    node = CryptreeNode.parse(ref)
    expect_equal("re-serialised node", node.serialize(), ref)
    blocks = _fragment_blocks(case)
    parts = _decrypted(case)
    spec_b, spec_p = _obj(parts, "b_from_base_key"), _obj(parts, "p_from_parent_key")
    read = node.read(rkey)
    want_b = FromBase(pkey, next_cap, read.signer_link).serialize()
    _check_padded_part("b", spec_b, node.from_base, _part_key(inputs, spec_b), want_b)
    want_p = FromParent(props, parent_link).serialize()
    _check_padded_part("p", spec_p, node.from_parent, _part_key(inputs, spec_p), want_p)
    spec_d = _obj(parts, "d_children_or_data")
    _check_payload(spec_d, node, _part_key(inputs, spec_d), blocks, first_links)

    expect_equal("is a directory", read.is_directory, True)
    expect_equal("trial decryption", node.is_directory(rkey), True)
    expect_equal("properties", read.properties, props)
    expect_equal("properties via the parent key", node.properties(pkey), props)
    expect_equal("parent key", read.parent_key, pkey)
    expect_equal("parent link", read.parent_link, parent_link)
    expect_equal("next chunk", read.next_chunk, next_cap)
    expect_equal("children", read.children(blocks), ChildrenLinks.of(groups[0]))
    expect_equal("has a signer link", read.signer_link is not None, signer is not None)
    if signer is not None and wkey is not None:
        expect_equal("signer", read.signer(wkey), signer)
    for i, child in enumerate(groups[0]):
        if child.cap.wbase_key_link is not None and wkey is not None:
            want = _key(inputs["children"][i], "write_base_key")
            expect_equal(f"child {i} write key", child.cap.write_base_key(wkey), want)
    if len(groups) > 1 or any(True for _ in _nested_nodes(case)):
        _check_overflow(case, doc, node, rkey, pkey, parent_link, groups[1:], mirror, rng)
    expect_equal("unused random draws", rng.remaining, 0)


def _nested_nodes(value: Any, top: bool = True) -> Iterator[Obj]:
    """Objects inside a case that are themselves nodes (overflow chunks given inline)."""
    if isinstance(value, dict):
        if not top and "cryptree_node_cbor_hex" in value:
            yield value
            return
        for v in value.values():
            yield from _nested_nodes(v, False)
    elif isinstance(value, list):
        for v in value:
            yield from _nested_nodes(v, False)


def _sibling_overflow(doc: Obj, bat: Bat | None) -> Iterator[Obj]:
    want = bat.secret.hex() if bat else None
    for other in dict_cases(doc):
        inputs = other.get("inputs", {})
        props = inputs.get("props")
        named = isinstance(props, dict) and props.get("name") == SUBSEQUENT_DIR_CHUNK_NAME
        if named and inputs.get("inline_bat_secret_hex") == want:
            yield other


def _check_overflow(
    case: Obj,
    doc: Obj,
    first: CryptreeNode,
    rkey: SymmetricKey,
    pkey: SymmetricKey,
    parent_link: RelativeCapability | None,
    groups: list[list[NamedRelativeCapability]],
    mirror: BatId | None,
    rng: ScriptedRng,
) -> None:
    """Overflow chunks: each at its predecessor's next-chunk location, holding the next 500 children
    (`groups`, when the case lists all of the directory's children)."""
    nested = list(_nested_nodes(case))
    nxt = first.read(rkey).next_chunk
    here = ChunkLocation(nxt.map_key, nxt.bat)
    if not nested:
        siblings = list(_sibling_overflow(doc, here.bat))
        if not siblings:
            raise CheckFailed("a directory of more than 500 children needs its overflow chunk in the vectors")
        return  # the overflow chunk is a case of its own, checked as such; it sits at our next chunk
    if groups:
        expect_equal("overflow chunk count", len(nested), len(groups))
    for i, spec in enumerate(nested):
        group = groups[i] if groups else None
        ref = hexb(spec, "cryptree_node_cbor_hex")
        node = CryptreeNode.parse(ref)
        blocks = _fragment_blocks(spec)
        if rng.remaining and group is not None:  # the recorded draws go on through the overflow chunks
            rebuilt = create_overflow_chunk(
                rbase_key=rkey,
                parent_key=pkey,
                parent_link=parent_link,
                children=group,
                location=here,
                mirror_bat_id=mirror,
                rng=rng,
            )
            _check_built(spec, rebuilt.block, [(f.cid, f.block) for f in rebuilt.fragments], mirror)
        elif "cryptree_node_cid" in spec:
            _check_cid(f"overflow {i}", node.cid(), spec["cryptree_node_cid"])
        loc = spec.get("location") or spec.get("map_key") or {}
        if isinstance(loc, dict) and loc.get("map_key_hex") is not None:
            expect_equal(f"overflow {i} map key", hexb(loc, "map_key_hex"), here.map_key)
        expect_equal(f"overflow {i} BAT", node.inline_bat, here.bat)
        expect_equal(f"overflow {i} mirror", node.mirror_bat_id, mirror)
        read = node.read(rkey)
        expect_equal(f"overflow {i} is a directory", read.is_directory, True)
        expect_equal(f"overflow {i} properties", read.properties, EMPTY)
        expect_equal(f"overflow {i} parent key", read.parent_key, pkey)
        expect_equal(f"overflow {i} parent link", read.parent_link, parent_link)
        expect_equal(f"overflow {i} signer link", read.signer_link, None)
        listed = read.children(blocks)
        if group is not None:
            expect_equal(f"overflow {i} children", listed, ChildrenLinks.of(group))
        elif not 0 < len(listed.named) <= MAX_CHILD_LINKS_PER_CHUNK or listed.legacy:
            raise CheckFailed(f"overflow {i} must hold 1 to 500 named child links")
        _check_replay(f"overflow {i}", node, rkey, blocks, mirror)
        here = ChunkLocation(read.next_chunk.map_key, read.next_chunk.bat)


def _check_replay(
    what: str, node: CryptreeNode, rkey: SymmetricKey, blocks: list[bytes], mirror: BatId | None
) -> None:
    """Re-encrypting a directory chunk's decrypted contents with its own nonces gives its exact bytes."""
    read = node.read(rkey)
    if read.signer_link is not None:
        raise CheckFailed(f"{what}: overflow chunks have no writer link")
    draws = [node.from_base.nonce, node.from_parent.nonce, node.payload.nonce]
    draws += [b.bat.secret for b in node.payload.bats]
    again = create_dir(
        rbase_key=rkey,
        parent_key=read.parent_key,
        properties=read.properties,
        children=read.children(blocks).named,
        next_chunk=read.next_chunk,
        parent_link=read.parent_link,
        inline_bat=node.inline_bat,
        mirror_bat_id=mirror,
        rng=ScriptedRng(draws),
    )
    expect_equal(f"{what} re-encrypted", again.block, node.serialize())


def _check_case(case: Obj, ctx: Context, doc: Obj) -> None:
    inputs = _obj(case, "inputs")
    if "props" in inputs or "children" in inputs:
        _check_dir(case, ctx, doc)
    elif "file_name" in inputs:
        _check_file(case, ctx)
    else:
        raise CheckFailed("case is neither a file chunk nor a directory")


# ---- chunk chain and length table -------------------------------------------------------------------------
def _check_chain(chain: Obj) -> None:
    if chain.get("chunk_size") is not None:
        expect_equal("chunk size", int(chain["chunk_size"]), CHUNK_SIZE)
    secret = hexb(chain, "stream_secret_hex")
    first = ChunkLocation(hexb(chain, "first_map_key_hex"), _opt_bat(chain, "first_bat_secret_hex"))
    no_bat = ChunkLocation(first.map_key, None)
    location = first
    steps = [s for s in chain.get("steps") or [] if isinstance(s, dict)]
    if not steps:
        raise CheckFailed("stream_secret_chain has no steps")
    for i, step in enumerate(steps):
        index = int(step.get("chunk_index", i))
        expect_equal(f"step {i} index", index, i)
        expect_equal(f"step {i} map key", location.map_key, hexb(step, "map_key_hex"))
        expect_equal(f"step {i} BAT", location.bat, _opt_bat(step, "bat_secret_hex"))
        if step.get("map_key_when_no_bat_hex") is not None:
            expect_equal(
                f"step {i} map key without BAT", no_bat.map_key, hexb(step, "map_key_when_no_bat_hex")
            )
        expect_equal(f"step {i} by offset", chunk_location(secret, first, index * CHUNK_SIZE + 17), location)
        location = next_chunk_location(secret, location)
        no_bat = next_chunk_location(secret, no_bat)
        expect_equal(f"step {i} without BAT stays without", no_bat.bat, None)
    for key, value in chain.items():
        m = _CALC_KEY.fullmatch(key)
        if m is not None:
            chunks, extra, step_index = (int(g) for g in m.groups())
            got = chunk_location(secret, first, chunks * CHUNK_SIZE + extra)
            if step_index >= len(steps):
                raise CheckFailed(f"{key} names a step the chain does not list")
            want = steps[step_index]
            same = got.map_key == hexb(want, "map_key_hex") and got.bat == _opt_bat(want, "bat_secret_hex")
            expect_equal(key, same, bool(value))


def _check_row(row: Obj, index: int) -> None:
    data = bytes(int(row["data_length"]))
    plaintext = cbor_byte_string(data)
    expect_equal("plaintext CBOR length", len(plaintext), int(row["plaintext_cbor_length"]))
    layout = FragmentLayout.of(len(plaintext))
    expect_equal("padded length", layout.padded_length, int(row["padded_length"]))
    expect_equal("ciphertext length", layout.ciphertext_length, int(row["ciphertext_length"]))
    expect_equal("inline", layout.inline, bool(row["inline"]))
    expect_equal("header length", layout.header_length, int(row["header_length"]))
    expect_equal(
        "fragment lengths", list(layout.fragment_lengths), [int(x) for x in row["fragment_data_lengths"]]
    )
    rng = DeterministicRng(f"cryptree-lengths/{index}")
    key = SymmetricKey.random(rng)
    payload, fragments = FragmentedPaddedCipherText.build_data(key, data, rng=rng)
    expect_equal("built inline", payload.is_inline, layout.inline)
    expect_equal("built header", len(payload.header or b""), layout.header_length)
    expect_equal("built fragments", tuple(len(f.payload) for f in fragments), layout.fragment_lengths)
    expect_equal("decrypted", payload.decrypt_data(key, [f.block for f in fragments]), data)


def check(doc: Obj, ctx: Context, report: FileReport) -> None:
    for i, case in enumerate(dict_cases(doc)):
        with report.case(str(case.get("name", f"case{i}"))):
            _check_case(case, ctx, doc)
    chain = doc.get("stream_secret_chain")
    if isinstance(chain, dict):
        with report.case("stream_secret_chain"):
            _check_chain(chain)
    table = doc.get("fragmented_padded_ciphertext_lengths")
    if isinstance(table, dict):
        rows = table.get("rows")
        if not isinstance(rows, list) or not rows:
            with report.case("fragmented_padded_ciphertext_lengths"):
                raise CheckFailed("length table has no rows")
        else:
            for i, row in enumerate(rows):
                with report.case(
                    f"lengths data_length={row.get('data_length') if isinstance(row, dict) else i}"
                ):
                    _check_row(row, i)
