"""peergos_node: a Peergos-compatible home server and client (spec/peergos.md)."""

__version__ = "0.1.0"
