"""champ.json: merkle-CHAMP trees built by Java Peergos (vectors/README.md "champ.json", spec §5.2).

For every case the tree is rebuilt here from its mappings with the case's hasher, and compared byte for
byte with Java's: the empty root, the root and every reachable node after the inserts, the same root for
the reverse insertion order, the root and nodes after removing `removed_indices` (CAS on each key's
value), and a from-scratch build of the kept keys. Every block Java wrote must also decode strictly and
re-encode to the same bytes and hash to its CID, and lookups must find every value. `update_case`
re-maps one key of a tree from `cases` and compares the result. Sizes, removal patterns and case counts
are taken from the file.
"""

from __future__ import annotations

import re
from typing import Any

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ import (
    EMPTY_NODE_BYTES,
    Champ,
    KeyHasher,
    MemoryBlockStore,
    blake2b_hasher,
    decode_node,
    encode_node,
    identity_hasher,
    sha256_hasher,
)
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "champ"


def detect(doc: dict[str, Any]) -> bool:
    cases = doc.get("cases")
    return (
        isinstance(cases, list)
        and bool(cases)
        and all(isinstance(c, dict) and "mappings" in c and "after_insert" in c for c in cases)
    )


def _hasher(description: str) -> tuple[str, KeyHasher]:
    text = description.lower()
    if text.startswith("identity"):
        return "identity", identity_hasher
    if text.startswith("blake2b"):
        return "blake2b", blake2b_hasher
    if text.startswith("sha256") or text.startswith("sha2-256"):
        return "sha256", sha256_hasher
    raise CheckFailed(f"unknown CHAMP hasher {description!r}")


def _cid(obj: Any) -> Cid:
    if isinstance(obj, dict):
        return Cid.decode(bytes.fromhex(obj["bytes_hex"]))
    return Cid.decode(bytes.fromhex(obj))


def _tree_blocks(champ: Champ, store: MemoryBlockStore, root: Cid) -> dict[str, str]:
    out: dict[str, str] = {}
    for cid in champ.node_cids(root):
        data = store.get(cid)
        if data is None:
            raise CheckFailed(f"node {cid} missing from our store")
        out[cid.to_bytes().hex()] = data.hex()
    return out


def _check_java_blocks(snapshot: dict[str, Any], what: str) -> None:
    """Java's blocks: each hashes to its CID and decodes strictly to a node that re-encodes identically."""
    for cid_hex, block_hex in snapshot["blocks_by_cid_hex"].items():
        cid = Cid.decode(bytes.fromhex(cid_hex))
        data = bytes.fromhex(block_hex)
        expect_equal(f"{what}: CID of block", cid, Cid.for_block(CODEC_DAG_CBOR, data))
        expect_equal(f"{what}: re-encoding of block {cid}", encode_node(decode_node(data)), data)


def _compare_tree(
    champ: Champ, store: MemoryBlockStore, root: Cid, snapshot: dict[str, Any], what: str
) -> None:
    want_root = _cid(snapshot["root_cid"])
    expect_equal(f"{what}: root CID", str(root), str(want_root))
    root_block = store.get(root)
    expect_equal(f"{what}: root block", root_block, bytes.fromhex(snapshot["root_block_hex"]))
    ours = _tree_blocks(champ, store, root)
    if "n_blocks" in snapshot:
        expect_equal(f"{what}: number of nodes", len(ours), snapshot["n_blocks"])
    want = snapshot["blocks_by_cid_hex"]
    missing = sorted(set(want) - set(ours))
    extra = sorted(set(ours) - set(want))
    if missing or extra:
        raise CheckFailed(f"{what}: node sets differ (missing {missing[:3]}, extra {extra[:3]})")
    for cid_hex, block_hex in want.items():
        expect_equal(f"{what}: block {cid_hex}", ours[cid_hex], block_hex)
    _check_java_blocks(snapshot, what)


def _check_case(case: dict[str, Any], name: str, report: FileReport) -> dict[str, Any] | None:
    """Check one case; return what `update_case` may need (root, store, mappings, hasher)."""
    state: dict[str, Any] = {}
    with report.case(f"{name}/after_insert"):
        _hname, hasher = _hasher(str(case["hasher"]))
        mappings = [
            (bytes.fromhex(m["key_hex"]), _cid(m["value_cid_hex"]), bytes.fromhex(m["key_hash_hex"]))
            for m in case["mappings"]
        ]
        for key, _value, key_hash in mappings:
            expect_equal(f"hash of key {key.hex()}", hasher(key), key_hash)
        store = MemoryBlockStore()
        champ = Champ(store, hasher)
        empty = champ.create_empty()
        expect_equal("empty root block", store.get(empty), EMPTY_NODE_BYTES)
        if "empty_root_cid" in case:
            expect_equal("empty root CID", str(empty), str(_cid(case["empty_root_cid"])))
        root = empty
        for key, value, _h in mappings:
            root = champ.put(root, key, None, value)
        _compare_tree(champ, store, root, case["after_insert"], "after insert")
        for key, value, _h in mappings:
            expect_equal(f"lookup of {key.hex()}", champ.get(root, key), value)
        expect_equal("validate() key count", champ.validate(root), len({k for k, _v, _h in mappings}))
        state = {"root": root, "store": store, "champ": champ, "mappings": mappings}
    if not state:
        return None
    champ, store, root, mappings = state["champ"], state["store"], state["root"], state["mappings"]
    if "reverse_insertion_order_gives_same_root" in case:
        with report.case(f"{name}/reverse_insertion_order"):
            rev = champ.create_empty()
            for key, value, _h in reversed(mappings):
                rev = champ.put(rev, key, None, value)
            expect_equal(
                "reverse order gives the same root",
                rev == root,
                case["reverse_insertion_order_gives_same_root"],
            )
    if "after_remove" in case:
        removed = [int(i) for i in case.get("removed_indices", [])]
        gone = {mappings[i][0] for i in removed}
        with report.case(f"{name}/after_remove"):
            after = root
            for i in removed:
                key, value, _h = mappings[i]
                after = champ.remove(after, key, value)
            _compare_tree(champ, store, after, case["after_remove"], "after remove")
            for key, value, _h in mappings:
                expect_equal(
                    f"lookup of {key.hex()} after remove",
                    champ.get(after, key),
                    None if key in gone else value,
                )
        if "building_with_only_kept_keys_gives_same_root" in case:
            with report.case(f"{name}/only_kept_keys"):
                kept_root = champ.create_empty()
                for key, value, _h in mappings:
                    if key not in gone:
                        kept_root = champ.put(kept_root, key, None, value)
                bulk = champ.build({k: v for k, v, _h in mappings if k not in gone})
                expect_equal("bulk build equals incremental build", bulk, kept_root)
                want = case["building_with_only_kept_keys_gives_same_root"]
                expect_equal("kept keys give the after_remove root", kept_root == after, want)
    return state


def _check_update(update: dict[str, Any], trees: list[dict[str, Any]], report: FileReport) -> None:
    with report.case("update_case"):
        before = _cid(update["root_before"])
        state = next((t for t in trees if t["root"] == before), None)
        if state is None:
            raise CheckFailed(f"update_case root_before {before} is none of the cases' trees")
        champ, store, mappings = state["champ"], state["store"], state["mappings"]
        new_value = _cid(update["updated_value_cid_hex"])
        index = _updated_index(update, mappings, champ, new_value)
        key, old, _h = mappings[index]
        after = champ.put(before, key, old, new_value)
        _compare_tree(champ, store, after, update["after_update"], "after update")
        expect_equal("lookup of the updated key", champ.get(after, key), new_value)


def _updated_index(
    update: dict[str, Any], mappings: list[tuple[bytes, Cid, bytes]], champ: Champ, new_value: Cid
) -> int:
    """Which mapping `update_case` re-maps: "key i" of the description, found by its value (the value
    rule is sha256("champ-value/" + i)), else the one key whose value differs in Java's result."""
    m = re.search(r"key (\d+)", str(update.get("description", "")))
    if m is not None:
        old_value = Cid.for_block(CODEC_DAG_CBOR, f"champ-value/{m.group(1)}".encode())
        for i, (_k, v, _h) in enumerate(mappings):
            if v == old_value:
                return i
    after_store = MemoryBlockStore()
    for block_hex in update["after_update"]["blocks_by_cid_hex"].values():
        after_store.put(bytes.fromhex(block_hex))
    java = Champ(after_store, champ.hasher)
    changed = {k for k, v in java.items(_cid(update["after_update"]["root_cid"])) if v == new_value}
    for i, (k, _v, _h) in enumerate(mappings):
        if k in changed:
            return i
    raise CheckFailed("update_case: cannot tell which key was re-mapped")


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    trees: list[dict[str, Any]] = []
    for i, case in enumerate(doc["cases"]):
        name = (
            f"{str(case.get('hasher', '?')).split()[0]}/n={case.get('n', len(case.get('mappings', [])))}#{i}"
        )
        state = _check_case(case, name, report)
        if state is not None:
            trees.append(state)
    update = doc.get("update_case")
    if isinstance(update, dict):
        _check_update(update, trees, report)
