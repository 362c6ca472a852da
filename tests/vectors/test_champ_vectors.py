"""The champ.json checker handles other sizes and removal patterns, and fails when the bytes differ.

Variants are derived from Java's own data in ../shared/vectors/champ.json (so they stay Java-verified):
a case whose mappings are only the keys kept after removal (a different N, nothing removed), and a case
with its mappings reversed (the same keys removed at other indices).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from peergos_node.vectors.runner import FileReport, run_directory

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "champ.json").read_text())
    return data


def _run(tmp_path: Path, doc: dict[str, Any]) -> FileReport:
    (tmp_path / "champ.json").write_text(json.dumps(doc))
    (report,) = run_directory(tmp_path)
    assert report.format == "champ"
    return report


def _case(doc: dict[str, Any], hasher: str, n: int) -> dict[str, Any]:
    return copy.deepcopy(next(c for c in doc["cases"] if c["hasher"].startswith(hasher) and c["n"] == n))


def test_other_sizes_and_removal_patterns(tmp_path: Path, doc: dict[str, Any]) -> None:
    variants = []
    for hasher in ("identity", "blake2b"):
        full = _case(doc, hasher, 300)
        removed = set(full["removed_indices"])
        kept = _case(doc, hasher, 300)
        kept["mappings"] = [m for i, m in enumerate(full["mappings"]) if i not in removed]
        kept["n"] = len(kept["mappings"])
        kept["after_insert"] = full["after_remove"]
        kept["removed_indices"] = []
        variants.append(kept)

        rev = _case(doc, hasher, 40)
        n = len(rev["mappings"])
        rev["mappings"].reverse()
        rev["removed_indices"] = sorted(n - 1 - i for i in rev["removed_indices"])
        variants.append(rev)
    report = _run(tmp_path, {**doc, "cases": variants})
    assert report.failed == 0 and report.skipped == 0, report.failures
    assert report.passed == 4 * len(variants) + 1  # the update case still finds its n=40 tree


@pytest.mark.parametrize(
    "corrupt",
    [
        "root_block",
        "child_block",
        "removed_index",
        "kept_flag",
        "key_hash",
        "update_value",
        "hasher",
    ],
)
def test_a_wrong_vector_fails(tmp_path: Path, doc: dict[str, Any], corrupt: str) -> None:
    bad = copy.deepcopy(doc)
    case = next(c for c in bad["cases"] if c["n"] == 40 and c["hasher"].startswith("identity"))
    if corrupt == "root_block":
        h = case["after_insert"]["root_block_hex"]
        case["after_insert"]["root_block_hex"] = h[:-2] + ("00" if h[-2:] != "00" else "01")
    elif corrupt == "child_block":
        blocks = case["after_remove"]["blocks_by_cid_hex"]
        cid = next(c for c in blocks if c != case["after_remove"]["root_cid"]["bytes_hex"])
        blocks[cid] = blocks[cid][:8] + "ff" + blocks[cid][10:]
    elif corrupt == "removed_index":
        case["removed_indices"] = case["removed_indices"][:-1]
    elif corrupt == "kept_flag":
        case["building_with_only_kept_keys_gives_same_root"] = False
    elif corrupt == "key_hash":
        case["mappings"][3]["key_hash_hex"] = "00" * 32
    elif corrupt == "update_value":
        bad["update_case"]["updated_value_cid_hex"] = case["mappings"][1]["value_cid_hex"]
    elif corrupt == "hasher":
        case["hasher"] = "murmur3"
    report = _run(tmp_path, bad)
    assert report.failed >= 1, corrupt
