"""Accounts: encrypted login data, entry points, login and signup (spec/peergos.md §2)."""
