"""The cryptree.json checker fails on wrong bytes and accepts every variation the README lists.

Copies of the reference file are corrupted one field at a time (each must fail exactly its case), cut
down (other case counts), and extended with generated cases for the variations a runner must accept:
large plaintexts given by sha256 and length, missing optional values, directory overflow chunks.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peergos_node.crypto.bat import Bat, BatId
from peergos_node.vectors.runner import FileReport, run_directory
from tests.helpers.cryptree_vectors import dir_case, file_case

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
Doc = dict[str, Any]


def _load(name: str) -> Doc:
    doc: Doc = json.loads((VECTORS / name).read_text())
    return doc


CBOR = _load("cbor.json")
CRYPTREE = _load("cryptree.json")
MIRROR = BatId.sha256(Bat(bytes.fromhex("4c8e5fe90834f07eafbdfd9c245d090cc8b3946e65cec13ffec647ca0d389458")))


def _flip(value: str, at: int = -1) -> str:
    i = at % len(value)
    return value[:i] + ("1" if value[i] == "0" else "0") + value[i + 1 :]


def _run(tmp_path: Path, doc: Doc, name: str = "cryptree.json") -> FileReport:
    (tmp_path / "cbor.json").write_text(json.dumps(CBOR))  # shared key pairs
    (tmp_path / name).write_text(json.dumps(doc))
    return {r.path.name: r for r in run_directory(tmp_path)}[name]


def _case(doc: Doc, name: str) -> Doc:
    found: Doc = next(c for c in doc["cases"] if c["name"] == name)
    return found


Mutation = Callable[[Doc], None]


def _set(path: str, change: Callable[[Any], Any]) -> Mutation:
    """Change the field at `case/key/key...` (or a top-level section) of a document."""

    def mutate(doc: Doc) -> None:
        head, *keys = path.split("/")
        target: Any = _case(doc, head) if head not in doc else doc[head]
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = change(target[int(last)])
        else:
            target[last] = change(target[last])

    return mutate


CORRUPTIONS: list[tuple[str, Mutation]] = [
    ("small/cryptree_node_cbor_hex", _set("small/cryptree_node_cbor_hex", _flip)),
    ("small/node CID string", _set("small/cryptree_node_cid/string", lambda s: s[:-1] + "x")),
    (
        "small/extra random draw",
        _set("small/inputs/random_draws_in_order/fragment_bats", lambda b: [*b, "00" * 32]),
    ),
    ("small/data", _set("small/inputs/data_utf8", lambda s: s.replace("Hello", "Jello"))),
    ("small/padding count", _set("small/decrypted/d_children_or_data/padding_zero_bytes", lambda n: n + 1)),
    ("10KiB/fragment block", _set("10KiB/fragments/0/block_hex", _flip)),
    ("10KiB/fragment CID", _set("10KiB/fragments/0/cid/bytes_hex", _flip)),
    ("10KiB/BAT prefix", _set("10KiB/fragments/0/bat_prefix_hex", _flip)),
    ("10KiB/header", _set("10KiB/decrypted/d_children_or_data/header_hex", _flip)),
    ("10KiB/data rule", _set("10KiB/inputs/data_rule", lambda s: s.replace("31", "33"))),
    ("10KiB/next map key", _set("10KiB/next_chunk_map_key_hex", _flip)),
    ("10KiB/mirror", _set("10KiB/inputs/mirror_bat_id/cid_bytes_hex", _flip)),
    ("10KiB/hash tree", _set("10KiB/inputs/hash_tree_root_hex", _flip)),
    (
        "dir3/FromBase plaintext",
        _set("dir3/decrypted/b_from_base_key/plaintext_cbor_hex", lambda h: _flip(h, 12)),
    ),
    ("dir3/FromParent nonce", _set("dir3/decrypted/p_from_parent_key/nonce_hex", _flip)),
    ("dir3/child CBOR", _set("dir3/inputs/children/1/named_relative_capability_cbor_hex", _flip)),
    ("dir3/child writer", _set("dir3/inputs/children/2/writer", lambda _: "identity public key hash")),
    ("dir3/signer", _set("dir3/inputs/signer", lambda _: "identity")),
    ("emptydir/hidden", _set("emptydir/inputs/props/isHidden", lambda _: True)),
    ("emptydir/no mirror", _set("emptydir/inputs/mirror_bat_id", lambda _: None)),
    ("dir40/fragment BAT draw", _set("dir40/inputs/nonces_in_draw_order/3/hex", _flip)),
    (
        "dir40/padded length",
        _set("dir40/decrypted/d_children_or_data/padded_plaintext_length", lambda n: n + 4096),
    ),
    ("chain step", _set("stream_secret_chain/steps/2/bat_secret_hex", _flip)),
    (
        "chain seek",
        _set("stream_secret_chain/calculateMapKey_offset_3x5MiB_plus_17_equals_step_3", lambda _: False),
    ),
    ("length row", _set("fragmented_padded_ciphertext_lengths/rows/9/header_length", lambda n: n + 1)),
]


@pytest.mark.parametrize("corrupt", [c for _, c in CORRUPTIONS], ids=[n for n, _ in CORRUPTIONS])
def test_a_corrupted_field_fails_its_case(tmp_path: Path, corrupt: Mutation) -> None:
    doc = copy.deepcopy(CRYPTREE)
    corrupt(doc)
    report = _run(tmp_path, doc)
    assert report.format == "cryptree"
    assert report.failed == 1, report.failures


def test_the_reference_file_passes_in_full(tmp_path: Path) -> None:
    report = _run(tmp_path, copy.deepcopy(CRYPTREE))
    assert report.failed == 0 and report.skipped == 0
    assert report.passed == len(CRYPTREE["cases"]) + 1 + len(
        CRYPTREE["fragmented_padded_ciphertext_lengths"]["rows"]
    )


@pytest.mark.parametrize("keep", ["cases", "stream_secret_chain", "fragmented_padded_ciphertext_lengths"])
def test_any_case_counts(tmp_path: Path, keep: str) -> None:
    doc = {k: v for k, v in CRYPTREE.items() if k in ("generated_by", "description", keep)}
    if keep == "cases":
        doc["cases"] = doc["cases"][3:4]
    report = _run(tmp_path, doc, "renamed.json")
    assert report.format == "cryptree" and report.failed == 0 and report.passed >= 1


def test_large_plaintexts_given_by_sha256_and_length(tmp_path: Path) -> None:
    doc = copy.deepcopy(CRYPTREE)
    for name in ("10KiB", "dir40"):
        d = _case(doc, name)["decrypted"]["d_children_or_data"]
        plaintext = bytes.fromhex(d.pop("plaintext_cbor_hex"))
        d["plaintext_cbor_sha256_hex"] = hashlib.sha256(plaintext).hexdigest()
        assert d["plaintext_cbor_length"] == len(plaintext)
    assert _run(tmp_path, doc).failed == 0
    _case(doc, "dir40")["decrypted"]["d_children_or_data"]["plaintext_cbor_sha256_hex"] = "00" * 32
    assert _run(tmp_path, doc).failed == 1


def _doc(cases: list[Doc]) -> Doc:
    return {"generated_by": "test", "description": "generated variations", "cases": cases}


def test_generated_cases_with_missing_optional_values(tmp_path: Path) -> None:
    cases = [
        file_case("no-mirror.bin", 30_000, "v1", mirror=None),
        file_case("mirror.bin", 10, "v2", mirror=MIRROR),
        *dir_case(CBOR, "plain", 12, "v3", mirror=None, signer_name=None),
        *dir_case(CBOR, "signed", 2, "v4", mirror=MIRROR, signer_name="writer"),
    ]
    big = cases[0]["decrypted"]["d_children_or_data"]
    assert "plaintext_cbor_sha256_hex" in big and "plaintext_cbor_hex" not in big
    assert any(c["created"] is None for c in cases[2]["inputs"]["children"])
    report = _run(tmp_path, _doc(cases))
    assert report.failed == 0 and report.passed == 4, report.failures
    cases[2]["inputs"]["children"][1]["created_epoch_seconds"] = 5
    assert _run(tmp_path, _doc(cases)).failed == 1


@pytest.mark.parametrize("layout", ["nested", "nested-no-draws", "sibling"])
def test_directory_overflow_chunks(tmp_path: Path, layout: str) -> None:
    cases = dir_case(
        CBOR, "overflow", 1003, f"overflow-{layout}", mirror=MIRROR, signer_name="writer", overflow=layout
    )
    report = _run(tmp_path, _doc(cases))
    assert report.failed == 0 and report.passed == len(cases), report.failures
    if layout == "sibling":
        assert len(cases) == 3
        broken = copy.deepcopy(cases)
        broken[2]["inputs"]["inline_bat_secret_hex"] = "00" * 32
        assert _run(tmp_path, _doc(broken)).failed >= 1
        assert _run(tmp_path, _doc(cases[:1])).failed == 1  # the overflow chunks are missing
    else:
        assert len(cases) == 1 and len(cases[0]["overflow_chunks"]) == 2
        broken = copy.deepcopy(cases)
        broken[0]["overflow_chunks"][1]["cryptree_node_cbor_hex"] = broken[0]["overflow_chunks"][0][
            "cryptree_node_cbor_hex"
        ]
        assert _run(tmp_path, _doc(broken)).failed == 1
        missing = copy.deepcopy(cases)
        del missing[0]["overflow_chunks"]
        assert _run(tmp_path, _doc(missing)).failed == 1


def test_cbor_cryptree_handlers_fail_on_wrong_bytes(tmp_path: Path) -> None:
    doc = copy.deepcopy(CBOR)
    for case in doc["cases"]:
        if case["name"] in ("RelativeCapability_with_writer", "FileProperties_small"):
            case["cbor_hex"] = _flip(case["cbor_hex"])
        if case["name"] == "NamedRelativeCapability_file":
            case["inputs"]["mimetype"] = "image/png"
        if case["name"] == "FileProperties_file":
            case["inputs"]["modified_nanos"] += 1
    (tmp_path / "cbor.json").write_text(json.dumps(doc))
    report = {r.path.name: r for r in run_directory(tmp_path)}["cbor.json"]
    failed = {name for name, _ in report.failures}
    assert failed == {
        "RelativeCapability_with_writer",
        "FileProperties_small",
        "NamedRelativeCapability_file",
        "FileProperties_file",
    }
