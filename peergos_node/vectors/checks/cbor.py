"""cbor.json: CBOR of core Peergos structures. Cases are dispatched by name to handler tables that the
packages owning each structure contribute (keys and BATs, pointers and WriterData, capabilities, claims).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peergos_node.vectors.runner import Context, FileReport

NAME = "cbor"
CaseHandler = Callable[[dict[str, Any], dict[str, Any], Context], None]


# Modules contributing `CASES: dict[str, CaseHandler]`; an exact case name wins over its prefix
# before the first underscore (e.g. "PointerUpdate" handles "PointerUpdate_to_empty").
HANDLER_MODULES: list[str] = [
    "peergos_node.vectors.checks.cbor_crypto",
    "peergos_node.vectors.checks.cbor_cryptree",
    "peergos_node.vectors.checks.cbor_mutable",
    "peergos_node.vectors.checks.cbor_pki",
]


def _handlers() -> dict[str, CaseHandler]:
    import importlib

    table: dict[str, CaseHandler] = {}
    for module in HANDLER_MODULES:
        table.update(importlib.import_module(module).CASES)
    return table


def detect(doc: dict[str, Any]) -> bool:
    cases = doc.get("cases")
    return (
        "keypairs" in doc
        and isinstance(cases, list)
        and all(isinstance(c, dict) and "name" in c for c in cases)
    )


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    handlers = _handlers()
    for i, case in enumerate(doc["cases"]):
        name = str(case.get("name", f"case{i}"))
        handler = handlers.get(name) or handlers.get(name.split("_")[0])
        if handler is None:
            report.skip(name, "structure not implemented yet")
            continue
        with report.case(name):
            handler(case, doc, ctx)
