#!/usr/bin/env python3
"""Developer entry point: needs only python3 (>= 3.11) on a fresh machine.

    python3 dev.py daemon [peergos daemon args...]   run the Peergos home server with embedded defaults
    python3 dev.py test [--slow] [pytest args...]    run the whole test suite
    python3 dev.py lint                              ruff check, ruff format --check, mypy strict
    python3 dev.py run CMD [args...]                 run a command from the virtualenv's bin/

Every sub-command first creates or refreshes the virtualenv at ./.venv: it is (re)built when missing or
broken, and `pip install -e .[dev]` runs again whenever pyproject.toml or this file changed (a stamp in
.venv records the hash). Node.js interop fixtures under tests/interop/js are installed with `npm ci` when
npm is available and their lock file changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".peergos-py-stamp"
JS_DIR = ROOT / "tests" / "interop" / "js"


def _log(msg: str) -> None:
    print(f"[dev.py] {msg}", file=sys.stderr, flush=True)


def _stamp() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "dev.py"):
        h.update((ROOT / name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def _venv_ok() -> bool:
    if not PY.exists():
        return False
    try:
        subprocess.run([str(PY), "-c", "import sys"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on any python3
        sys.exit(f"python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not _venv_ok():
        if VENV.exists():
            _log("virtualenv is broken, rebuilding .venv")
            shutil.rmtree(VENV)
        _log("creating virtualenv .venv")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    want = _stamp()
    have = STAMP.read_text().strip() if STAMP.exists() else ""
    if have != want:
        _log("installing the project and its dependencies into .venv (pip install -e .[dev])")
        subprocess.run(
            [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", f"{ROOT}[dev]"],
            check=True,
        )
        STAMP.write_text(want + "\n")
    ensure_js()


def ensure_js() -> None:
    lock = JS_DIR / "package-lock.json"
    npm = shutil.which("npm")
    if not lock.exists() or npm is None:
        return
    stamp = JS_DIR / "node_modules" / ".peergos-py-stamp"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == want:
        return
    _log("installing js-libp2p interop fixtures (npm ci)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR, check=True)
    stamp.write_text(want + "\n")


def _exec(argv: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    return subprocess.run(argv, cwd=ROOT, env=env).returncode


def cmd_test(args: list[str]) -> int:
    extra = list(args)
    if "--slow" in extra:
        extra.remove("--slow")
        extra = ["-m", "slow or not slow", *extra]
    rc = _exec([str(PY), "-m", "pytest", *extra])
    if rc == 5:  # pytest: no tests collected. A suite that collects nothing is a failure here.
        _log("pytest collected no tests")
        return 1
    return rc


def cmd_lint(_args: list[str]) -> int:
    rc = 0
    for argv in (
        [str(PY), "-m", "ruff", "check", "."],
        [str(PY), "-m", "ruff", "format", "--check", "."],
        [str(PY), "-m", "mypy"],
    ):
        _log(" ".join(argv[1:]))
        rc |= _exec(argv)
    return rc


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    cmd, args = argv[0], argv[1:]
    ensure_venv()
    if cmd == "test":
        return cmd_test(args)
    if cmd == "lint":
        return cmd_lint(args)
    if cmd == "daemon":
        return _exec([str(BIN / "peergos"), "daemon", *args])
    if cmd == "run":
        if not args:
            sys.exit("usage: python3 dev.py run CMD [args...]")
        exe = BIN / args[0]
        return _exec([str(exe) if exe.exists() else args[0], *args[1:]])
    sys.exit(f"unknown command {cmd!r}; see python3 dev.py --help")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
