"""cbor.json cases for pointers, owner proofs, WriterData and the encrypted login entry points."""

from __future__ import annotations

from typing import Any

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import Cid
from peergos_node.accounts.entry_points import EntryPoint, EntryPoints, UserStaticData
from peergos_node.crypto.login import SecretGenerationAlgorithm
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.crypto.symmetric import PaddedCipherText, SymmetricKey
from peergos_node.cryptree.capabilities import capability_from_cbor
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import SignedPointerUpdate, sign_pointer, verify_signed_pointer
from peergos_node.mutable.writer_data import WriterData
from peergos_node.vectors.checks._crypto_common import hexb, named_key_hash, named_keypair
from peergos_node.vectors.runner import CheckFailed, Context, expect_equal

Case = dict[str, Any]


def _named_cid(doc: Case, name: str | None) -> Cid | None:
    if name is None:
        return None
    cids = doc.get("cids", {})
    if name not in cids:
        raise CheckFailed(f"unknown CID name {name!r}")
    return Cid.decode(bytes.fromhex(cids[name]["bytes_hex"]))


def _case(doc: Case, name: str) -> Case:
    for c in doc.get("cases", []):
        if isinstance(c, dict) and c.get("name") == name:
            return c
    raise CheckFailed(f"referenced case {name!r} not found")


def _key_hash_ref(ctx: Context, doc: Case, ref: str) -> PublicKeyHash:
    """'writer public key hash' → the named key pair's hash; a case name → that case's CID."""
    if ref.endswith(" public key hash"):
        return named_key_hash(ctx, ref.removesuffix(" public key hash"))
    return PublicKeyHash.deserialize(hexb(_case(doc, ref), "cbor_hex"))


def _link(value: Any) -> Cid:
    return Cid.decode(bytes.fromhex(value["bytes_hex"]))


def _pointer_update(case: Case, doc: Case, _ctx: Context) -> None:
    inputs = case["inputs"]
    update = PointerUpdate(
        _named_cid(doc, inputs["original"]), _named_cid(doc, inputs["updated"]), inputs["sequence"]
    )
    expect_equal("CBOR", update.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", PointerUpdate.deserialize(hexb(case, "cbor_hex")), update)


def _signed_pointer_update(case: Case, _doc: Case, ctx: Context) -> None:
    inputs = case["inputs"]
    pair = named_keypair(ctx, inputs["writer_keypair"])
    writer = PublicKeyHash.of(pair.public)
    update = PointerUpdate.deserialize(hexb(inputs, "pointer_update_cbor_hex"))
    signed = sign_pointer(pair, update)
    expect_equal("signed", signed, hexb(case, "signed_hex"))
    expect_equal("signature", signed[:64], hexb(case, "signature_hex"))
    expect_equal("verified", verify_signed_pointer(writer, hexb(case, "signed_hex")), update)
    spu = SignedPointerUpdate(writer, signed)
    expect_equal("CBOR", spu.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", SignedPointerUpdate.deserialize(hexb(case, "cbor_hex")), spu)


def _owner_proof(case: Case, _doc: Case, ctx: Context) -> None:
    inputs = case["inputs"]
    owned = named_keypair(ctx, inputs["owned_keypair"])
    owner = named_key_hash(ctx, inputs["owner_keypair"])
    expect_equal("signed message", owner.serialize(), hexb(inputs, "signed_message_hex"))
    proof = OwnerProof.build(owned, owner)
    expect_equal("signed owner", proof.signed_owner, hexb(case, "signed_owner_hex"))
    expect_equal("CBOR", proof.serialize(), hexb(case, "cbor_hex"))
    decoded = OwnerProof.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, proof)
    expect_equal("owner", decoded.owner(), owner)


def _writer_data(case: Case, doc: Case, ctx: Context) -> None:
    inputs = case["inputs"]
    wd = WriterData(
        controller=_key_hash_ref(ctx, doc, inputs["controller"]),
        algorithm=SecretGenerationAlgorithm.deserialize(hexb(inputs, "algorithm_cbor_hex"))
        if "algorithm_cbor_hex" in inputs
        else None,
        public=_link(inputs["public"]) if "public" in inputs else None,
        inbound=_key_hash_ref(ctx, doc, inputs["inbound"]) if "inbound" in inputs else None,
        owned=_link(inputs["owned"]) if "owned" in inputs else None,
        named={
            k: OwnerProof.deserialize(hexb(_case(doc, v), "cbor_hex"))
            for k, v in inputs.get("named", {}).items()
        },
        static=PaddedCipherText.deserialize(hexb(_case(doc, inputs["static"]), "cbor_hex"))
        if "static" in inputs
        else None,
        tree=_link(inputs["tree"]) if "tree" in inputs else None,
        links=_link(inputs["links"]) if "links" in inputs else None,
    )
    expect_equal("CBOR", wd.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", WriterData.deserialize(hexb(case, "cbor_hex")), wd)


def _entry_point(case: Case, doc: Case, _ctx: Context) -> None:
    inputs = case["inputs"]
    cap = capability_from_cbor(dag_cbor.decode(hexb(_case(doc, inputs["cap"]), "cbor_hex")))
    ep = EntryPoint(cap, inputs["owner_name"])
    expect_equal("CBOR", ep.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", EntryPoint.deserialize(hexb(case, "cbor_hex")), ep)


def _user_static_data(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = case["inputs"]
    root = SymmetricKey(hexb(inputs, "root_key_hex"))
    entries = EntryPoints.deserialize(hexb(inputs, "entry_points_cbor_hex"))
    expect_equal("entry points CBOR", entries.serialize(), hexb(inputs, "entry_points_cbor_hex"))
    usd = entries.encrypt(root, ScriptedRng([hexb(inputs, "nonce_hex")]))
    expect_equal("CBOR", usd.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decrypted", UserStaticData.deserialize(hexb(case, "cbor_hex")).decrypt(root), entries)


CASES = {
    "PointerUpdate": _pointer_update,
    "SignedPointerUpdate": _signed_pointer_update,
    "OwnerProof": _owner_proof,
    "WriterData": _writer_data,
    "EntryPoint": _entry_point,
    "UserStaticData": _user_static_data,
}
