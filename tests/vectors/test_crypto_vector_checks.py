"""The crypto vector checks detect their formats by structure and fail on wrong bytes.

Copies of the reference files are cut down (other case counts must work) and corrupted one field at a
time; a checker that still passed would be no checker.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peergos_node.vectors.runner import FileReport, run_directory

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return doc


def _flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def _run(tmp_path: Path, name: str, doc: dict[str, Any]) -> FileReport:
    (tmp_path / "cbor.json").write_text(json.dumps(_load("cbor.json")))  # shared key pairs
    (tmp_path / name).write_text(json.dumps(doc))
    return {r.path.name: r for r in run_directory(tmp_path)}[name]


def _first_case_only(doc: dict[str, Any], key: str = "cases") -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out[key] = out[key][:1]
    return out


Mutation = Callable[[dict[str, Any]], None]

CORRUPTIONS: list[tuple[str, str, Mutation]] = [
    (
        "nacl.json",
        "secretbox output",
        lambda d: d["secretbox"][1].update(output_hex=_flip_hex(d["secretbox"][1]["output_hex"])),
    ),
    ("nacl.json", "box nonce", lambda d: d["box"][0].update(nonce_hex=_flip_hex(d["box"][0]["nonce_hex"]))),
    (
        "nacl.json",
        "signature",
        lambda d: d["sign"][0].update(signature_only_hex=_flip_hex(d["sign"][0]["signature_only_hex"])),
    ),
    (
        "nacl.json",
        "keygen",
        lambda d: d["keygen"][2].update(public_key_hex=_flip_hex(d["keygen"][2]["public_key_hex"])),
    ),
    ("pow.json", "counter", lambda d: d["cases"][3].update(counter=d["cases"][3]["counter"] + 1)),
    ("pow.json", "quirk row", lambda d: d["satisfies_difficulty_table"]["rows"][5].update(satisfies=False)),
    (
        "s3_bat_auth.json",
        "signature",
        lambda d: d["cases"][0].update(signature_hex=_flip_hex(d["cases"][0]["signature_hex"])),
    ),
    (
        "s3_bat_auth.json",
        "canonical request",
        lambda d: d["cases"][1].update(canonical_request=d["cases"][1]["canonical_request"] + "\n"),
    ),
    (
        "secret_link.json",
        "link key",
        lambda d: d["cases"][2].update(link_key_hex=_flip_hex(d["cases"][2]["link_key_hex"])),
    ),
    ("secret_link.json", "create draws", lambda d: d["create"]["random_draws_hex_in_order"].append("00")),
]


@pytest.mark.parametrize(
    ("name", "what", "corrupt"), CORRUPTIONS, ids=[f"{n}:{w}" for n, w, _ in CORRUPTIONS]
)
def test_a_corrupted_field_fails_its_case(tmp_path: Path, name: str, what: str, corrupt: Mutation) -> None:
    doc = _load(name)
    corrupt(doc)
    report = _run(tmp_path, name, doc)
    assert report.failed == 1, (what, report.failures)


def test_login_checker_fails_on_wrong_root_key(tmp_path: Path) -> None:
    doc = _first_case_only(_load("login.json"))
    doc["cases"][0]["root_key_cbor_hex"] = _flip_hex(doc["cases"][0]["root_key_cbor_hex"])
    report = _run(tmp_path, "login.json", doc)
    assert report.format == "login" and report.failed == 1


@pytest.mark.parametrize("name", ["login.json", "s3_bat_auth.json", "secret_link.json", "pow.json"])
def test_fewer_cases_still_pass(tmp_path: Path, name: str) -> None:
    doc = _first_case_only(_load(name))
    report = _run(tmp_path, name, doc)
    assert report.failed == 0 and report.skipped == 0 and report.passed >= 1


def test_cbor_crypto_handler_fails_on_wrong_bytes(tmp_path: Path) -> None:
    doc = _load("cbor.json")
    for case in doc["cases"]:
        if case["name"] in ("BatWithId", "WritableAbsoluteCapability"):
            case["cbor_hex"] = case["cbor_hex"][:-2] + ("00" if case["cbor_hex"][-2:] != "00" else "01")
    (tmp_path / "cbor.json").write_text(json.dumps(doc))
    report = {r.path.name: r for r in run_directory(tmp_path)}["cbor.json"]
    failed = {name for name, _ in report.failures}
    # EntryPoint embeds the WritableAbsoluteCapability case's bytes, so it must fail with it
    assert failed == {"BatWithId", "WritableAbsoluteCapability", "EntryPoint"}


def test_formats_are_detected_by_structure_not_filename(tmp_path: Path) -> None:
    for name in ("nacl.json", "pow.json", "s3_bat_auth.json", "secret_link.json"):
        (tmp_path / f"renamed-{name}").write_text(
            json.dumps(_first_case_only(_load(name), "cases") if "cases" in _load(name) else _load(name))
        )
    (tmp_path / "cbor.json").write_text(json.dumps(_load("cbor.json")))
    formats = {r.path.name: r.format for r in run_directory(tmp_path)}
    assert formats["renamed-nacl.json"] == "nacl"
    assert formats["renamed-pow.json"] == "pow"
    assert formats["renamed-s3_bat_auth.json"] == "s3_bat_auth"
    assert formats["renamed-secret_link.json"] == "secret_link"
