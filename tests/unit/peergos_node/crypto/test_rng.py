"""Injectable randomness: system, deterministic and scripted sources."""

from __future__ import annotations

import pytest

from peergos_node.crypto.rng import SYSTEM_RNG, DeterministicRng, Rng, ScriptedRng, ScriptedRngError


def test_system_rng_draws_fresh_bytes() -> None:
    a, b = SYSTEM_RNG.random_bytes(32), SYSTEM_RNG.random_bytes(32)
    assert len(a) == 32 and a != b
    assert SYSTEM_RNG.random_bytes(0) == b""
    assert isinstance(SYSTEM_RNG, Rng)


def test_deterministic_rng_is_reproducible_and_chunking_independent() -> None:
    one = DeterministicRng(b"seed")
    two = DeterministicRng(b"seed")
    whole = one.random_bytes(100)
    parts = two.random_bytes(5) + two.random_bytes(27) + two.random_bytes(68)
    assert whole == parts
    assert DeterministicRng(b"other").random_bytes(100) != whole
    assert DeterministicRng("seed").random_bytes(100) == whole
    assert DeterministicRng(7).random_bytes(8) == DeterministicRng(7).random_bytes(8)


@pytest.mark.parametrize("rng", [SYSTEM_RNG, DeterministicRng(1)])
def test_negative_draws_are_refused(rng: Rng) -> None:
    with pytest.raises(ValueError):
        rng.random_bytes(-1)


def test_scripted_rng_replays_in_order_and_checks_sizes() -> None:
    rng = ScriptedRng([b"\x01\x02", b"\x03"])
    assert rng.remaining == 2
    assert rng.random_bytes(2) == b"\x01\x02"
    with pytest.raises(ScriptedRngError):
        rng.random_bytes(2)  # the next draw is 1 byte long
    assert rng.random_bytes(1) == b"\x03"
    assert rng.remaining == 0
    with pytest.raises(ScriptedRngError):
        rng.random_bytes(1)
