"""cbor.json cases for cryptree links and properties (handlers for `checks.cbor`).

`RelativeCapability_*`, `NamedRelativeCapability_*` and `FileProperties_*` are encoded from their inputs
and compared with the reference bytes, then the reference bytes are decoded and compared with the object.
Inputs may point at other cases: a RelativeCapability's write link is the `SymmetricLink` case, a
NamedRelativeCapability's `cap` names a RelativeCapability case, and writers name shared key pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.crypto.symmetric import SymmetricKey, SymmetricLink
from peergos_node.cryptree.properties import (
    ChunkHashList,
    FileProperties,
    HashBranch,
    RootHash,
    Thumbnail,
    Timestamp,
)
from peergos_node.cryptree.relative import NamedRelativeCapability, RelativeCapability
from peergos_node.vectors.checks._crypto_common import hexb, named_key_hash
from peergos_node.vectors.runner import CheckFailed, Context, expect_equal

Case = dict[str, Any]


def _inputs(case: Case) -> dict[str, Any]:
    value = case.get("inputs")
    if not isinstance(value, dict):
        raise CheckFailed("case has no inputs")
    return value


def _case_named(doc: Case, name: str) -> Case:
    for case in doc.get("cases") or []:
        if isinstance(case, dict) and case.get("name") == name:
            return case
    raise CheckFailed(f"referenced case {name!r} not found")


def _writer(ctx: Context, description: Any) -> PublicKeyHash | None:
    if description is None:
        return None
    return named_key_hash(ctx, str(description).split()[0])


def _symmetric_link(doc: Case, spec: Any) -> SymmetricLink | None:
    """A write link given as the name of a SymmetricLink case ("SymmetricLink case") or inline inputs."""
    if spec is None:
        return None
    inputs = spec if isinstance(spec, dict) else _inputs(_case_named(doc, str(spec).split()[0]))
    source, target = SymmetricKey(hexb(inputs, "from_key_hex")), SymmetricKey(hexb(inputs, "to_key_hex"))
    return SymmetricLink.from_pair(source, target, ScriptedRng([hexb(inputs, "nonce_hex")]))


def _relative_cap(case: Case, doc: Case, ctx: Context) -> RelativeCapability:
    inputs = _inputs(case)
    bat = Bat(hexb(inputs, "bat_secret_hex")) if inputs.get("bat_secret_hex") is not None else None
    return RelativeCapability(
        hexb(inputs, "map_key_hex"),
        SymmetricKey(hexb(inputs, "read_base_key_hex")),
        bat,
        _writer(ctx, inputs.get("writer")),
        _symmetric_link(doc, inputs.get("link")),
    )


def _relative_capability(case: Case, doc: Case, ctx: Context) -> None:
    cap = _relative_cap(case, doc, ctx)
    expect_equal("CBOR", cap.serialize(), hexb(case, "cbor_hex"))
    decoded = RelativeCapability.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, cap)
    if cap.wbase_key_link is not None:
        link_inputs = _inputs(_case_named(doc, str(_inputs(case)["link"]).split()[0]))
        target = SymmetricKey(hexb(link_inputs, "to_key_hex"))
        expect_equal(
            "write key", decoded.write_base_key(SymmetricKey(hexb(link_inputs, "from_key_hex"))), target
        )


def _named_relative_capability(case: Case, doc: Case, ctx: Context) -> None:
    inputs = _inputs(case)
    ref = inputs.get("cap")
    cap_case = {"inputs": ref} if isinstance(ref, dict) else _case_named(doc, str(ref))
    cap = _relative_cap(cap_case, doc, ctx)
    created = inputs.get("created_epoch_seconds")
    if created is None and inputs.get("created") is not None:
        created = Timestamp.parse(str(inputs["created"])).seconds
    if inputs.get("created") is not None:
        expect_equal("created seconds", Timestamp.parse(str(inputs["created"])).seconds, created)
    named = NamedRelativeCapability(
        str(inputs["name"]), cap, inputs.get("isDir"), inputs.get("mimetype"), created
    )
    expect_equal("CBOR", named.serialize(), hexb(case, "cbor_hex"))
    decoded = NamedRelativeCapability.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, named)
    expect_equal("decoded link", decoded.cap, cap)


def _time(inputs: dict[str, Any], name: str) -> Timestamp:
    t = Timestamp.parse(str(inputs[name]))
    if inputs.get(f"{name}_epoch_seconds") is not None:
        expect_equal(f"{name} epoch seconds", t.seconds, int(inputs[f"{name}_epoch_seconds"]))
    if inputs.get(f"{name}_nanos") is not None:
        expect_equal(f"{name} nanos", t.nanos, int(inputs[f"{name}_nanos"]))
    return t


def _file_properties(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    thumbnail = None
    if inputs.get("thumbnail_data_hex") is not None:
        thumbnail = Thumbnail(
            str(inputs.get("thumbnail_mime") or "image/png"), hexb(inputs, "thumbnail_data_hex")
        )
    secret = hexb(inputs, "stream_secret_hex") if inputs.get("stream_secret_hex") is not None else None
    tree = None
    if isinstance(inputs.get("tree_hash"), dict):
        spec = inputs["tree_hash"]
        levels = [
            ChunkHashList(hexb(spec, f"level{i}_chunk_hashes_hex"))
            if spec.get(f"level{i}_chunk_hashes_hex") is not None
            else None
            for i in (1, 2, 3)
        ]
        tree = HashBranch(RootHash(hexb(spec, "root_hash_hex")), *levels)
    props = FileProperties(
        str(inputs["name"]),
        bool(inputs["isDirectory"]),
        int(inputs["size"]),
        _time(inputs, "modified"),
        _time(inputs, "created"),
        str(inputs["mimeType"]),
        bool(inputs.get("isLink", False)),
        bool(inputs.get("isHidden", False)),
        thumbnail,
        secret,
        tree,
    )
    expect_equal("CBOR", props.serialize(), hexb(case, "cbor_hex"))
    decoded = FileProperties.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, props)
    if case.get("hash_branch_cbor_hex") is not None:
        if tree is None:
            raise CheckFailed("hash_branch_cbor_hex given without tree_hash inputs")
        expect_equal("HashBranch CBOR", tree.serialize(), hexb(case, "hash_branch_cbor_hex"))
        expect_equal("HashBranch decoded", HashBranch.deserialize(hexb(case, "hash_branch_cbor_hex")), tree)


CASES: dict[str, Callable[[Case, Case, Context], None]] = {
    "RelativeCapability": _relative_capability,
    "NamedRelativeCapability": _named_relative_capability,
    "FileProperties": _file_properties,
}

__all__ = ["CASES"]
