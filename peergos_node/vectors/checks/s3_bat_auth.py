"""s3_bat_auth.json: S3 V4 block auth from a BAT (Bat.generateAuth, S3Request, BlockAuth).

Detected by cases carrying `canonical_request` and `string_to_sign`. Every intermediate is compared
(ids and base58 forms, host, key, canonical request, string to sign, the signing-key chain, the
signature), the BlockAuth CBOR/hex both ways, and then verification: the auth verifies for its block
via the mirror BAT and via an inline id, and fails once expired, for another requester or another block.
"""

from __future__ import annotations

from typing import Any

from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.block_auth import (
    REGION,
    BlockAuth,
    allow_read,
    block_key,
    canonical_request,
    generate_auth,
    parse_aws_datetime,
    requester_host,
    signing_key_chain,
    string_to_sign,
    verify_block_auth,
)
from peergos_node.errors import AuthError
from peergos_node.vectors.checks._crypto_common import dict_cases, has_case_with, hexb
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "s3_bat_auth"


def detect(doc: dict[str, Any]) -> bool:
    return has_case_with(doc, "canonical_request", "string_to_sign")


def _check_case(case: dict[str, Any]) -> None:
    inputs, request = case["inputs"], case["s3_request"]
    bat = Bat(hexb(inputs, "bat_secret_hex"))
    expect_equal("encoded secret", bat.encode_secret(), inputs["bat_encoded_secret"])
    bat_id = BatId.decode(hexb(inputs, "bat_id_cid_bytes_hex"))
    if bat_id not in (BatId.sha256(bat), bat.calculate_id()):
        raise CheckFailed("the BAT id is neither BatId.sha256 nor Bat.calculateId of the BAT")
    expect_equal("bat id base58", bat_id.to_base58(), inputs["bat_id_base58"])
    block = Cid.decode(hexb(inputs, "block_cid_bytes_hex"))
    expect_equal("block base58", block.to_base58(), inputs["block_base58"])
    peer = inputs["source_node_peer_id"]
    requester = Cid.decode(hexb(peer, "cid_bytes_hex"))
    expect_equal("peer multihash", requester.multihash, hexb(peer, "bare_multihash_hex"))
    host = requester_host(requester)
    expect_equal("host", host, peer["peer_id_base58"])
    expect_equal("host (request)", host, request["host"])
    expect_equal("host from bare multihash", requester_host(requester.multihash), host)
    expect_equal("region", REGION, inputs["region"])
    expect_equal("verb", request["verb"], "GET")
    expect_equal("key", block_key(block), request["key"])
    expect_equal("access key id", bat_id.to_base58(), request["access_key_id"])
    datetime = inputs["datetime"]
    canonical = canonical_request(host, block_key(block), datetime)
    expect_equal("canonical request", canonical, case["canonical_request"])
    to_sign = string_to_sign(canonical, datetime)
    expect_equal("string to sign", to_sign, case["string_to_sign"])
    chain = case["signing_key_chain"]
    names = ("date_key_hex", "date_region_key_hex", "date_region_service_key_hex", "signing_key_hex")
    for name, got in zip(names, signing_key_chain(bat.encode_secret(), datetime[:8]), strict=True):
        expect_equal(name, got, hexb(chain, name))

    now = parse_aws_datetime(datetime)
    expiry = int(inputs["expiry_seconds"])
    auth = generate_auth(bat, block, requester, now, bat_id, expiry)
    expect_equal("signature", auth.signature, hexb(case, "signature_hex"))
    expect_equal("BlockAuth CBOR", auth.serialize(), hexb(case, "block_auth_cbor_hex"))
    expect_equal("BlockAuth encoded", auth.encode(), case["block_auth_encoded"])
    expect_equal("BlockAuth decoded", BlockAuth.decode(case["block_auth_encoded"]), auth)

    # The reference auth must verify: via the mirror BAT and via an inline id of the same BAT.
    verify_block_auth(auth, block, [bat_id], requester, now, mirror_bats=[bat])
    verify_block_auth(auth, block, [BatId.inline(bat)], requester, now + expiry)
    if not allow_read(block, [BatId.inline(bat), bat_id], requester, case["block_auth_encoded"], now):
        raise CheckFailed("allow_read refused a valid auth")
    other_block = Cid.for_block(block.codec, b"another block")
    stranger = b"\x00\x24\x08\x01\x12\x20" + bytes(32)
    refusals: list[tuple[str, Cid, bytes | Cid, int, list[Bat]]] = [
        ("without the mirror BAT", block, requester, now, []),
        ("after expiry", block, requester, now + expiry + 1, [bat]),
        ("for another block", other_block, requester, now, [bat]),
        ("from another requester", block, stranger, now, [bat]),
    ]
    for what, cid, who, when, mirrors in refusals:
        try:
            verify_block_auth(auth, cid, [bat_id], who, when, mirrors)
        except AuthError:
            continue
        raise CheckFailed(f"block auth accepted {what}")


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    for i, case in enumerate(dict_cases(doc)):
        with report.case(str(case.get("name", f"case{i}"))):
            _check_case(case)
