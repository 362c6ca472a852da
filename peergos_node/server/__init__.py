"""The Peergos home server: persistence, verification of every write, HTTP API (spec/peergos.md §8, §12)."""
