"""pow.json: proof of work (ScryptJava.generateProofOfWork, ProofOfWork.satisfiesDifficulty).

Detected by cases carrying `prefix_hex` and `difficulty`. Each case searches from counter 0 (so the
first satisfying counter must match), checks hash and CBOR both ways and verification; the
`satisfies_difficulty_table` rows pin down Java's low-bits quirk.
"""

from __future__ import annotations

from typing import Any

from peergos_node.crypto.pow import ProofOfWork, satisfies_difficulty
from peergos_node.errors import ProofOfWorkError
from peergos_node.vectors.checks._crypto_common import dict_cases, has_case_with, hexb
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "pow"


def detect(doc: dict[str, Any]) -> bool:
    return has_case_with(doc, "prefix_hex", "difficulty") or "satisfies_difficulty_table" in doc


def _check_case(case: dict[str, Any]) -> None:
    data, difficulty = hexb(case, "data_hex"), int(case["difficulty"])
    proof = ProofOfWork.find(data, difficulty)
    expect_equal("counter", proof.counter, int(case["counter"]))
    expect_equal("prefix", proof.prefix, hexb(case, "prefix_hex"))
    expect_equal("hash", proof.hash(data), hexb(case, "hash_hex"))
    expect_equal("proof CBOR", proof.serialize(), hexb(case, "proof_cbor_hex"))
    expect_equal("proof decoded", ProofOfWork.deserialize(hexb(case, "proof_cbor_hex")), proof)
    proof.verify(data, difficulty)
    if difficulty > 0 and proof.counter > 0:
        earlier = ProofOfWork.of_counter(proof.counter - 1)
        try:
            earlier.verify(data, difficulty)
        except ProofOfWorkError:
            return
        raise CheckFailed("the counter before the reference proof also satisfied the difficulty")


def _check_row(row: dict[str, Any]) -> None:
    digest = hexb(row, "hash_prefix_hex").ljust(32, b"\x00")
    expect_equal("satisfies", satisfies_difficulty(digest, int(row["difficulty"])), bool(row["satisfies"]))


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    for i, case in enumerate(dict_cases(doc)):
        with report.case(f"case{i} difficulty={case.get('difficulty')}"):
            _check_case(case)
    table = doc.get("satisfies_difficulty_table")
    rows = table.get("rows", []) if isinstance(table, dict) else []
    for row in rows:
        if isinstance(row, dict):
            with report.case(f"satisfies {row.get('hash_prefix_hex')} d={row.get('difficulty')}"):
                _check_row(row)
