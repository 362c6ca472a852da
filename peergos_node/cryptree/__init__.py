"""Cryptree: capabilities and secret links (spec/peergos.md §6.1, §10).

Encryption itself lives in `peergos_node.crypto`; this package never imports a crypto library.
"""
