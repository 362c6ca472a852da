"""cbor.json cases for username claims and claim chains (`UserPublicKeyLink_Claim`, `UserPublicKeyLink`,
`UserPublicKeyLink_chain`; spec/peergos.md §3.2).

Each case is checked in both directions: building from the inputs must give the reference bytes (signed
payload, signed contents, claim CBOR, link CBOR, chain CBOR, key-change proof), and decoding the
reference bytes must give back the same objects, whose signatures must verify under the right key and
fail under another. Where pow.json has proofs over the signup chain, they must verify against the proof
data the PKI derives from the decoded signup request.
"""

from __future__ import annotations

from typing import Any

from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import Cid
from peergos_node.corenode.chain import merge, validate_chain, validate_key_change, verify_claim
from peergos_node.corenode.claims import (
    Claim,
    UserPublicKeyLink,
    claim_payload,
    create_chain,
    create_initial,
    deserialize_chain,
    parse_claim_payload,
    serialize_chain,
)
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.errors import InvalidChain
from peergos_node.corenode.messages import SignupRequest
from peergos_node.corenode.oplog import OpLog
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.vectors.checks._crypto_common import dict_cases, hexb, named_keypair
from peergos_node.vectors.runner import CheckFailed, Context, expect_equal

Case = dict[str, Any]


def _signer(ctx: Context, name: str) -> SigningPrivateKeyAndPublicHash:
    return SigningPrivateKeyAndPublicHash.of(named_keypair(ctx, name))


def _provider(p: Case) -> Cid:
    cid = Cid.decode(hexb(p, "cid_bytes_hex"))
    if "cid_string" in p:
        expect_equal("provider CID string", str(cid), p["cid_string"])
        expect_equal("provider parsed", Cid.parse(p["cid_string"]), cid)
    if "bare_multihash_hex" in p:
        expect_equal("provider multihash", cid.multihash, hexb(p, "bare_multihash_hex"))
    if "peer_id_base58" in p:
        expect_equal("peer id", multibase.b58encode(cid.multihash), p["peer_id_base58"])
    return cid


def _peer(doc: Case) -> Cid:
    peer = doc.get("peer")
    if not isinstance(peer, dict):
        raise CheckFailed("cbor.json has no 'peer'")
    return _provider(peer)


def _case(doc: Case, name: str) -> Case:
    for c in dict_cases(doc):
        if c.get("name") == name:
            return c
    raise CheckFailed(f"referenced case {name!r} not found")


def _other_key(ctx: Context, name: str) -> PublicKeyHash:
    other = "identity2" if name != "identity2" else "identity"
    return PublicKeyHash.of(named_keypair(ctx, other).public)


def _expect_invalid(what: str, check: Any) -> None:
    try:
        check()
    except InvalidChain:
        return
    raise CheckFailed(f"{what} was accepted")


def _claim(case: Case, doc: Case, ctx: Context) -> None:
    inputs = case["inputs"]
    signer = _signer(ctx, inputs["signer_keypair"])
    username = inputs["username"]
    expiry = LocalDate.parse(inputs["expiry"])
    providers = tuple(_provider(p) for p in inputs["storage_providers"])
    payload = claim_payload(username, expiry, providers)
    expect_equal("payload", payload, hexb(case, "payload_hex"))
    expect_equal(
        "payload decoded", parse_claim_payload(hexb(case, "payload_hex")), (username, expiry, providers)
    )
    claim = Claim.build(username, signer.secret, expiry, providers)
    expect_equal("signed contents", claim.signed_contents, hexb(case, "signed_contents_hex"))
    expect_equal("claim CBOR", claim.serialize(), hexb(case, "claim_cbor_hex"))
    decoded = Claim.deserialize(hexb(case, "claim_cbor_hex"))
    expect_equal("claim decoded", decoded, claim)
    verify_claim(decoded, signer.public_key_hash)
    other = _other_key(ctx, inputs["signer_keypair"])
    _expect_invalid("the claim under another key", lambda: verify_claim(decoded, other))


def _link(case: Case, doc: Case, ctx: Context) -> None:
    inputs = case["inputs"]
    claim_case = _case(doc, inputs["claim"])
    ci = claim_case["inputs"]
    owner_ref = inputs["owner"]
    if not owner_ref.endswith(" public key hash"):
        raise CheckFailed(f"unsupported owner reference {owner_ref!r}")
    signer = _signer(ctx, owner_ref.removesuffix(" public key hash"))
    providers = tuple(_provider(p) for p in ci["storage_providers"])
    chain = create_initial(signer, ci["username"], LocalDate.parse(ci["expiry"]), providers)
    expect_equal("link CBOR", chain[0].serialize(), hexb(case, "cbor_hex"))
    expect_equal("signup chain CBOR", serialize_chain(chain), hexb(case, "signup_chain_cbor_hex"))
    decoded_link = UserPublicKeyLink.deserialize(hexb(case, "cbor_hex"))
    expect_equal("link decoded", decoded_link, chain[0])
    expect_equal("link claim", decoded_link.claim, Claim.deserialize(hexb(claim_case, "claim_cbor_hex")))
    decoded = deserialize_chain(hexb(case, "signup_chain_cbor_hex"))
    expect_equal("signup chain decoded", decoded, chain)
    validate_chain(decoded, ci["username"])
    expect_equal("merge into an empty PKI", merge((), decoded, ci["username"]), chain)
    _expect_invalid("the signup chain under another name", lambda: validate_chain(decoded, "bob"))
    _check_signup_proofs(ctx, decoded_link, hexb(case, "signup_chain_cbor_hex"))


def _check_signup_proofs(ctx: Context, link: UserPublicKeyLink, chain_cbor: bytes) -> None:
    """pow.json's proofs over the signup chain verify against a decoded signup request's proof data."""
    for doc in ctx.docs.values():
        for c in dict_cases(doc):
            if "prefix_hex" not in c or c.get("data_hex") != chain_cbor.hex():
                continue
            proof = ProofOfWork.deserialize(hexb(c, "proof_cbor_hex"))
            request = SignupRequest(link.claim.username, link, OpLog(), proof, "")
            decoded = SignupRequest.decode(request.encode())
            expect_equal("signup request", decoded, request)
            expect_equal("proof data", decoded.pow_data(), chain_cbor)
            decoded.proof.verify(decoded.pow_data(), int(c["difficulty"]))


def _chain(case: Case, doc: Case, ctx: Context) -> None:
    inputs = case["inputs"]
    old = _signer(ctx, inputs["old_keypair"])
    new = _signer(ctx, inputs["new_keypair"])
    username = inputs["username"]
    expiry = LocalDate.parse(inputs["expiry"])
    link0, link1 = create_chain(old, new, username, expiry, (_peer(doc),))
    expect_equal("old link expiry", link0.claim.expiry, LocalDate.MAX)
    expect_equal("key change proof", link0.key_change_proof, hexb(case, "keychange_proof_hex"))
    expect_equal("link0 CBOR", link0.serialize(), hexb(case, "link0_cbor_hex"))
    expect_equal("link1 CBOR", link1.serialize(), hexb(case, "link1_cbor_hex"))
    expect_equal("chain CBOR", serialize_chain((link0, link1)), hexb(case, "chain_cbor_hex"))
    decoded = deserialize_chain(hexb(case, "chain_cbor_hex"))
    expect_equal("chain decoded", decoded, (link0, link1))
    expect_equal("link0 decoded", UserPublicKeyLink.deserialize(hexb(case, "link0_cbor_hex")), link0)
    expect_equal("link1 decoded", UserPublicKeyLink.deserialize(hexb(case, "link1_cbor_hex")), link1)
    validate_chain(decoded, username)
    validate_key_change(decoded[0], new.public_key_hash)
    proof_message = old.public_key_hash.inlined_signing_key().unsign(hexb(case, "keychange_proof_hex"))
    expect_equal("key change proof message", proof_message, new.public_key_hash.serialize())
    _expect_invalid(
        "the proof naming another key", lambda: validate_key_change(decoded[0], old.public_key_hash)
    )
    signup = create_initial(old, username, expiry, (_peer(doc),))
    expect_equal("key change merged onto the signup chain", merge(signup, decoded, username), decoded)


CASES = {
    "UserPublicKeyLink_Claim": _claim,
    "UserPublicKeyLink": _link,
    "UserPublicKeyLink_chain": _chain,
}
