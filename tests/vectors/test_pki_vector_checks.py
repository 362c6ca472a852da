"""The claim and claim-chain vector checks pass on the reference file and fail on each corrupted field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peergos_node.vectors.runner import FileReport, run_directory

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
PKI_CASES = ("UserPublicKeyLink_Claim", "UserPublicKeyLink", "UserPublicKeyLink_chain")


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return doc


def _flip_hex(value: str, at: int = 0) -> str:
    c = value[at]
    return value[:at] + ("1" if c == "0" else "0") + value[at + 1 :]


def _case(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for c in doc["cases"]:
        if c["name"] == name:
            return dict(c)
    raise KeyError(name)


def _cheap_pow() -> dict[str, Any]:
    """pow.json without the slow high-difficulty cases (the pow checker searches each proof again)."""
    doc = _load("pow.json")
    doc["cases"] = [c for c in doc["cases"] if c["difficulty"] <= 11]
    return doc


def _run(tmp_path: Path, doc: dict[str, Any]) -> FileReport:
    (tmp_path / "cbor.json").write_text(json.dumps(doc))
    (tmp_path / "pow.json").write_text(json.dumps(_cheap_pow()))
    return {r.path.name: r for r in run_directory(tmp_path)}["cbor.json"]


def _only_pki(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["cases"] = [c for c in out["cases"] if c["name"] in PKI_CASES]
    return out


def test_reference_pki_cases_pass(tmp_path: Path) -> None:
    rep = _run(tmp_path, _only_pki(_load("cbor.json")))
    assert rep.failed == 0 and rep.skipped == 0 and rep.passed == 3, rep.failures


Mutation = Callable[[dict[str, Any]], None]


def _mutate(case: str, key: str, at: int = 0) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        for c in doc["cases"]:
            if c["name"] == case:
                c[key] = _flip_hex(c[key], at)

    return apply


def _mutate_input(case: str, key: str, value: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        for c in doc["cases"]:
            if c["name"] == case:
                c["inputs"][key] = value

    return apply


CORRUPTIONS: list[tuple[str, str, Mutation]] = [
    ("UserPublicKeyLink_Claim", "payload", _mutate("UserPublicKeyLink_Claim", "payload_hex", 7)),
    ("UserPublicKeyLink_Claim", "signature", _mutate("UserPublicKeyLink_Claim", "signed_contents_hex", 3)),
    ("UserPublicKeyLink_Claim", "claim CBOR", _mutate("UserPublicKeyLink_Claim", "claim_cbor_hex", 20)),
    ("UserPublicKeyLink_Claim", "expiry", _mutate_input("UserPublicKeyLink_Claim", "expiry", "2026-05-02")),
    ("UserPublicKeyLink", "link CBOR", _mutate("UserPublicKeyLink", "cbor_hex", 300)),
    ("UserPublicKeyLink", "signup chain", _mutate("UserPublicKeyLink", "signup_chain_cbor_hex", 1)),
    ("UserPublicKeyLink_chain", "key change", _mutate("UserPublicKeyLink_chain", "keychange_proof_hex", 5)),
    ("UserPublicKeyLink_chain", "link0", _mutate("UserPublicKeyLink_chain", "link0_cbor_hex", 400)),
    ("UserPublicKeyLink_chain", "link1", _mutate("UserPublicKeyLink_chain", "link1_cbor_hex", 400)),
    ("UserPublicKeyLink_chain", "chain", _mutate("UserPublicKeyLink_chain", "chain_cbor_hex", 1)),
    ("UserPublicKeyLink_chain", "new key", _mutate_input("UserPublicKeyLink_chain", "new_keypair", "writer")),
]


@pytest.mark.parametrize(
    ("case", "what", "mutation"), CORRUPTIONS, ids=[f"{c}-{w}" for c, w, _ in CORRUPTIONS]
)
def test_corrupted_field_fails(tmp_path: Path, case: str, what: str, mutation: Mutation) -> None:
    doc = _only_pki(_load("cbor.json"))
    mutation(doc)
    rep = _run(tmp_path, doc)
    assert case in {name for name, _ in rep.failures}, (what, rep.failures)


def test_corrupted_pow_proof_fails(tmp_path: Path) -> None:
    """The signup chain's proofs are re-verified through a decoded signup request."""
    pow_doc = _cheap_pow()
    chain_hex = _case(_load("cbor.json"), "UserPublicKeyLink")["signup_chain_cbor_hex"]
    target = next(c for c in pow_doc["cases"] if c["data_hex"] == chain_hex and c["difficulty"] == 11)
    target["proof_cbor_hex"] = target["proof_cbor_hex"][:-2] + (
        "00" if target["proof_cbor_hex"][-2:] != "00" else "01"
    )
    (tmp_path / "cbor.json").write_text(json.dumps(_only_pki(_load("cbor.json"))))
    (tmp_path / "pow.json").write_text(json.dumps(pow_doc))
    rep = {r.path.name: r for r in run_directory(tmp_path)}["cbor.json"]
    assert "UserPublicKeyLink" in {name for name, _ in rep.failures}, rep.failures
