"""Layering rules (design.md §4.13), checked by parsing every module's imports.

- nabu_py never imports peergos_node.
- Sans-IO protocol cores (messages.py, engine.py, routing_table.py, query.py, records.py, wants.py, and
  everything under simulations/) import no trio, sockets, libp2p, web frameworks or HTTP clients.
- Only peergos_node/crypto and nabu_py's identity module import nacl or cryptography.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANS_IO_NAMES = {"messages.py", "engine.py", "routing_table.py", "query.py", "records.py", "wants.py"}
IO_MODULES = {
    "trio",
    "socket",
    "asyncio",
    "libp2p",
    "starlette",
    "hypercorn",
    "httpx",
    "h11",
    "anyio",
    "select",
}
CRYPTO_MODULES = {"nacl", "cryptography"}
CRYPTO_ALLOWED = ("peergos_node/crypto/", "nabu_py/p2p/identity.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _py_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_sources_exist() -> None:
    assert _py_files("nabu_py"), "layering test found no nabu_py sources"
    assert _py_files("peergos_node"), "layering test found no peergos_node sources"


def test_nabu_py_does_not_import_peergos_node() -> None:
    bad = [str(p.relative_to(ROOT)) for p in _py_files("nabu_py") if "peergos_node" in _imports(p)]
    assert bad == []


def test_sans_io_cores_import_no_io() -> None:
    bad: list[str] = []
    for p in _py_files("nabu_py", "peergos_node", "simulations"):
        rel = p.relative_to(ROOT).as_posix()
        if p.name in SANS_IO_NAMES or rel.startswith("simulations/"):
            hits = _imports(p) & IO_MODULES
            if hits:
                bad.append(f"{rel}: {sorted(hits)}")
    assert bad == []


def test_only_crypto_package_imports_crypto_libraries() -> None:
    bad: list[str] = []
    for p in _py_files("nabu_py", "peergos_node"):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith(CRYPTO_ALLOWED):
            continue
        hits = _imports(p) & CRYPTO_MODULES
        if hits:
            bad.append(f"{rel}: {sorted(hits)}")
    assert bad == []
