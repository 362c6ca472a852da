"""`peergos vectors check DIR [-v]`: run the reference-vector checks on every JSON file in DIR."""

from __future__ import annotations

import argparse
from pathlib import Path

from peergos_node.vectors.runner import format_reports, run_directory


def run(argv: list[str]) -> int:
    """Entry point; exit 0 only if no case failed."""
    parser = argparse.ArgumentParser(prog="peergos vectors")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="check every vector file in a directory")
    check.add_argument("directory", type=Path)
    check.add_argument("-v", "--verbose", action="store_true", help="list skipped cases with reasons")
    args = parser.parse_args(argv)
    directory: Path = args.directory
    if not directory.is_dir():
        parser.error(f"{directory} is not a directory")
    reports = run_directory(directory)
    text, _passed, failed = format_reports(reports, verbose=args.verbose)
    print(text)
    return 1 if failed or not reports else 0
