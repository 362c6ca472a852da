"""The reference vectors in ../shared/vectors, run through `peergos vectors check`'s engine and CLI.

No case may fail. Files listed in FULLY_PASSING must also have nothing skipped; cbor.json cases listed
in CBOR_CASES_REQUIRED must pass. Those sets grow as structures are implemented.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from peergos_node.vectors.runner import FileReport, format_reports, run_directory

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT.parent / "shared" / "vectors"

FULLY_PASSING: set[str] = {
    "cbor.json",
    "champ.json",
    "cryptree.json",
    "login.json",
    "nacl.json",
    "pow.json",
    "s3_bat_auth.json",
    "secret_link.json",
}
CBOR_CASES_REQUIRED: set[str] = {
    # keys, signatures, key hashes (peergos_node.crypto)
    "SymmetricKey",
    "SymmetricKey_dirty",
    "PublicSigningKey",
    "SecretSigningKey",
    "SigningKeyPair",
    "SigningPrivateKeyAndPublicHash",
    "PublicKeyHash",
    "PublicKeyHash_boxer",
    "PublicBoxingKey",
    "BoxingKeyPair",
    # BATs
    "Bat",
    "BatId_inline",
    "BatId_sha256",
    "BatId_calculateId",
    "BatWithId",
    "RawBlockPrefix_no_mirror",
    "RawBlockPrefix_with_mirror",
    # cipher texts and capabilities (peergos_node.crypto.symmetric, peergos_node.cryptree.capabilities)
    "SymmetricLink",
    "CipherText",
    "PaddedCipherText_16",
    "PaddedCipherText_4096",
    "AbsoluteCapability",
    "AbsoluteCapability_no_bat",
    "WritableAbsoluteCapability",
    # relative capabilities and file properties (peergos_node.cryptree)
    "RelativeCapability_with_link",
    "RelativeCapability_with_writer",
    "NamedRelativeCapability_dir",
    "NamedRelativeCapability_file",
    "FileProperties_file",
    "FileProperties_dir",
    "FileProperties_small",
    # pointers, ownership, writer roots, login entry points (peergos_node.mutable, peergos_node.accounts)
    "PointerUpdate_no_sequence",
    "PointerUpdate_with_sequence",
    "PointerUpdate_to_empty",
    "SignedPointerUpdate_no_sequence",
    "SignedPointerUpdate_with_sequence",
    "OwnerProof",
    "WriterData_writer",
    "WriterData_full",
    "EntryPoint",
    "UserStaticData",
    # username claims and claim chains (peergos_node.corenode)
    "UserPublicKeyLink_Claim",
    "UserPublicKeyLink",
    "UserPublicKeyLink_chain",
}


@pytest.fixture(scope="module")
def reports() -> dict[str, FileReport]:
    assert VECTORS.is_dir(), f"reference vectors not found at {VECTORS}"
    return {r.path.name: r for r in run_directory(VECTORS)}


def test_no_vector_case_fails(reports: dict[str, FileReport]) -> None:
    text, _passed, failed = format_reports(list(reports.values()))
    assert failed == 0, text


@pytest.mark.parametrize("name", sorted(FULLY_PASSING))
def test_file_fully_passes(reports: dict[str, FileReport], name: str) -> None:
    rep = reports[name]
    assert rep.failed == 0 and rep.skipped == 0 and rep.passed > 0, (rep.failures, rep.skips)


def test_required_cbor_cases_pass(reports: dict[str, FileReport]) -> None:
    rep = reports["cbor.json"]
    skipped = {name for name, _ in rep.skips}
    failed = {name for name, _ in rep.failures}
    assert not (CBOR_CASES_REQUIRED & (skipped | failed)), (CBOR_CASES_REQUIRED & skipped, rep.failures)


def test_cli_reports_totals_and_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "peergos_node.cli.main", "vectors", "check", str(VECTORS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    last = proc.stdout.strip().splitlines()[-1]
    assert last.endswith("failed") and " passed, " in last, proc.stdout
    assert proc.returncode == (0 if last.endswith(" 0 failed") else 1)


def test_cli_fails_on_a_failing_case(tmp_path: Path) -> None:
    """A runner that cannot fail is no runner: corrupt a copy of a vector file and expect exit 1."""
    (tmp_path / "broken.json").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "peergos_node.cli.main", "vectors", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"
