"""Mutable pointers: the signed CAS records that move each writer's root (spec/peergos.md §4)."""
