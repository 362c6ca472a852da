"""`nabu` command line entry point."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Dispatch `nabu <sub-command>`."""
    print("nabu: usage: nabu init | daemon")
    return 0
