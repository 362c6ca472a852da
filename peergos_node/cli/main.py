"""`peergos` command line entry point."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch `peergos <sub-command>`."""
    parser = argparse.ArgumentParser(prog="peergos", description="Peergos-compatible node (peergos-py)")
    parser.add_argument("command", nargs="?", help="sub-command")
    args, _rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    print(f"unknown command {args.command!r}", file=sys.stderr)
    return 2
