"""`peergos` command line: `peergos <command> [args]`.

Commands are modules under peergos_node.cli exposing `run(argv: list[str]) -> int`. Server-style
commands take Peergos' `-key value` / `--key value` arguments (spec/peergos.md §16).
"""

from __future__ import annotations

import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "daemon": ("peergos_node.cli.daemon", "run the home server (-port 8000, -PEERGOS_PATH ~/.peergos, ...)"),
    "pki": ("peergos_node.cli.pki", "run this server as its network's PKI node (after pki-init)"),
    "pki-init": ("peergos_node.cli.pki:run_init", "bootstrap a new network's PKI on this server"),
    "quota": ("peergos_node.cli.quota", "signup tokens and quotas: quota token create|list, quota show|set"),
    "shell": ("peergos_node.cli.shell", "interactive client of your files: ls, cd, put, get, cat, rm, ..."),
    "vectors": ("peergos_node.cli.vectors", "check reference test vectors: vectors check DIR"),
}

HELP_FLAGS = ("-h", "-help", "--help")


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = "\n".join(f"  {name.ljust(width)}  {desc}" for name, (_, desc) in sorted(COMMANDS.items()))
    return f"usage: peergos <command> [args]\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command; return the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # the reader went away (`peergos quota token list | head`): stop quietly, as Python's docs advise,
        # pointing stdout at /dev/null so the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(), end="")
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"peergos: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr, end="")
        return 2
    module_name, _, func = entry[0].partition(":")
    module = importlib.import_module(module_name)
    if any(a in HELP_FLAGS for a in args[1:]):
        # a sub-command's help is its module docstring (never start a server because of `--help`)
        print((module.__doc__ or entry[1]).strip())
        return 0
    code: int = getattr(module, func or "run")(args[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
