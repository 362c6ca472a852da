"""Vector runner core: format detection, per-case bookkeeping, the report.

Each format has a module in `peergos_node.vectors.checks` exposing `NAME`, `detect(doc) -> bool` and
`check(doc, ctx, report)`. A checker wraps each case in `report.case(name)`: the case passes when the
block finishes, fails on any exception (the message is kept), and is skipped only through
`report.skip(name, reason)`.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class CheckFailed(AssertionError):
    """A vector case produced different bytes or behaviour than the reference."""


def expect_equal(what: str, got: object, want: object) -> None:
    """Fail the current case unless got == want (hex-formats bytes in the message)."""
    if got != want:
        g = got.hex() if isinstance(got, bytes | bytearray) else got
        w = want.hex() if isinstance(want, bytes | bytearray) else want
        raise CheckFailed(f"{what}: got {g!r}, want {w!r}")


@dataclass
class FileReport:
    """Outcome of one vector file."""

    path: Path
    format: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    skips: list[tuple[str, str]] = field(default_factory=list)

    @contextmanager
    def case(self, name: str) -> Iterator[None]:
        """Run one case; any exception inside marks it failed."""
        try:
            yield
        except Exception as e:  # a vector case may fail in any way; record it and go on
            self.failed += 1
            detail = f"{type(e).__name__}: {e}"
            if not isinstance(e, CheckFailed):
                tb = traceback.extract_tb(e.__traceback__)
                if tb:
                    last = tb[-1]
                    detail += f" (at {Path(last.filename).name}:{last.lineno})"
            self.failures.append((name, detail))
        else:
            self.passed += 1

    def skip(self, name: str, reason: str) -> None:
        """Count a case as skipped, with the reason shown in the report."""
        self.skipped += 1
        self.skips.append((name, reason))


class Checker(Protocol):
    """A vector-format module."""

    NAME: str

    def detect(self, doc: dict[str, Any]) -> bool: ...

    def check(self, doc: dict[str, Any], ctx: Context, report: FileReport) -> None: ...


@dataclass
class Context:
    """Data shared across files of one directory (e.g. cbor.json's named key pairs)."""

    docs: dict[str, dict[str, Any]]

    def keypair(self, name: str) -> dict[str, Any] | None:
        """A named key pair (`identity`, `writer`, ...) from any cbor-format file in the directory."""
        for doc in self.docs.values():
            pairs = doc.get("keypairs")
            if isinstance(pairs, dict) and name in pairs:
                value = pairs[name]
                return value if isinstance(value, dict) else None
        return None


def _checkers() -> list[Any]:
    from peergos_node.vectors.checks import ALL

    return list(ALL)


def count_cases(doc: dict[str, Any]) -> int:
    """Number of cases in a document of unknown format (for reporting skips)."""
    n = 0
    for value in doc.values():
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            n += len(value)
    return max(n, 1)


def run_directory(directory: Path) -> list[FileReport]:
    """Check every *.json file in `directory`."""
    files = sorted(p for p in directory.iterdir() if p.suffix == ".json" and p.is_file())
    docs: dict[str, dict[str, Any]] = {}
    reports: list[FileReport] = []
    for p in files:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("top level is not a JSON object")
            docs[p.name] = doc
        except (OSError, ValueError) as e:
            rep = FileReport(p, "unreadable")
            rep.failed += 1
            rep.failures.append(("<file>", f"cannot read vector file: {e}"))
            reports.append(rep)
    ctx = Context(docs)
    checkers = _checkers()
    for name, doc in docs.items():
        path = directory / name
        chosen = next((c for c in checkers if c.detect(doc)), None)
        if chosen is None:
            rep = FileReport(path, "unknown")
            rep.skipped += count_cases(doc)
            rep.skips.append(("<file>", "format not recognised"))
        else:
            rep = FileReport(path, chosen.NAME)
            try:
                chosen.check(doc, ctx, rep)
            except Exception as e:  # a checker crashed on a malformed file: that is a failure
                rep.failed += 1
                rep.failures.append(("<file>", f"{type(e).__name__}: {e}"))
        reports.append(rep)
    reports.sort(key=lambda r: r.path.name)
    return reports


def format_reports(reports: list[FileReport], verbose: bool = False) -> tuple[str, int, int]:
    """Render the report; return (text, total passed, total failed)."""
    lines: list[str] = []
    tp = tf = 0
    for r in reports:
        lines.append(f"{r.path.name} [{r.format}]: {r.passed} passed, {r.failed} failed, {r.skipped} skipped")
        for case, detail in r.failures:
            lines.append(f"  FAIL {case}: {detail}")
        if verbose:
            for case, reason in r.skips:
                lines.append(f"  skip {case}: {reason}")
        tp += r.passed
        tf += r.failed
    lines.append(f"{tp} passed, {tf} failed")
    return "\n".join(lines), tp, tf
