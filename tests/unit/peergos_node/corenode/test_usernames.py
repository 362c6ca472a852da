"""Username rules (UsernameValidator)."""

from __future__ import annotations

import pytest

from peergos_node.corenode.errors import InvalidUsername
from peergos_node.corenode.usernames import (
    BANNED_USERNAMES,
    LEGACY_UNDERSCORE,
    is_valid_username,
    matches_pattern,
    validate_username,
)


@pytest.mark.parametrize("name", ["a", "0", "alice", "bob-smith", "a1-b2-c3", "x" * 32, "peergos", "q-9"])
def test_valid(name: str) -> None:
    assert is_valid_username(name)
    validate_username(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot be empty"),
        ("x" * 33, "at most 32"),
        ("-alice", "start or end with a hyphen"),
        ("alice-", "start or end with a hyphen"),
        ("al--ice", "next to each other"),
        ("Alice", "only lowercase"),
        ("al_ice", "only lowercase"),
        ("al.ice", "only lowercase"),
        ("al ice", "only lowercase"),
        ("alicé", "only lowercase"),
        ("alice\n", "only lowercase"),  # Java's find() + `$` would accept this one
        ("alice\r", "only lowercase"),
        ("admin", "reserved"),
        ("friends", "reserved"),
        ("ipfs", "reserved"),
    ],
)
def test_invalid_with_a_clear_message(name: str, message: str) -> None:
    assert not is_valid_username(name)
    with pytest.raises(InvalidUsername, match=message):
        validate_username(name)


def test_banned_names_match_the_pattern_but_are_refused() -> None:
    assert all(matches_pattern(n) for n in BANNED_USERNAMES)
    assert not any(is_valid_username(n) for n in BANNED_USERNAMES)
    assert {"ipfs", "ipns", "root", "admin", "support", "email", "www", "friends", "username", "groups"} <= (
        BANNED_USERNAMES
    )


def test_grandfathered_underscore_names_stay_valid() -> None:
    assert len(LEGACY_UNDERSCORE) == 219
    assert all(is_valid_username(n) for n in LEGACY_UNDERSCORE)
    assert is_valid_username("computer_killer_9_million") and is_valid_username("femi-s_1986")
    assert not is_valid_username("new_name")


def test_non_strings_are_invalid() -> None:
    assert not is_valid_username(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidUsername):
        validate_username(b"alice")  # type: ignore[arg-type]
