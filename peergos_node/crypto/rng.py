"""Injectable randomness (design.md §4.2; spec/peergos.md §1.6).

Every Peergos value that is normally random — symmetric keys, nonces, BATs, map keys, stream secrets,
link labels and passwords, key pairs, ML-KEM seeds — is drawn through an `Rng`, so tests can replay the
exact draws the Java code made (the reference vectors list them in order) and everything else can run
deterministically from a seed.

- `SystemRng` reads the operating system CSPRNG (`os.urandom`); it is the default everywhere.
- `DeterministicRng(seed)` is a reproducible stream: SHA-256 in counter mode over the seed. Tests only.
- `ScriptedRng(draws)` hands out a fixed list of byte strings and insists that every request asks for
  exactly the length of the next one, which proves the draw order as well as the values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Rng(Protocol):
    """A source of random bytes."""

    def random_bytes(self, n: int) -> bytes:
        """Return `n` random bytes."""
        ...


class SystemRng:
    """The operating system's CSPRNG."""

    __slots__ = ()

    def random_bytes(self, n: int) -> bytes:
        """`n` bytes from `os.urandom`."""
        if n < 0:
            raise ValueError("cannot draw a negative number of bytes")
        return os.urandom(n)

    def __repr__(self) -> str:
        return "SystemRng()"


SYSTEM_RNG = SystemRng()
"""The shared default instance."""


class DeterministicRng:
    """A reproducible byte stream for tests: block i = SHA-256(seed || uint64be(i))."""

    __slots__ = ("_buffer", "_counter", "_seed")

    def __init__(self, seed: bytes | str | int) -> None:
        if isinstance(seed, int):
            seed = seed.to_bytes(8, "big", signed=True)
        elif isinstance(seed, str):
            seed = seed.encode("utf-8")
        self._seed = bytes(seed)
        self._counter = 0
        self._buffer = b""

    def random_bytes(self, n: int) -> bytes:
        """The next `n` bytes of the stream."""
        if n < 0:
            raise ValueError("cannot draw a negative number of bytes")
        while len(self._buffer) < n:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._buffer += block
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def __repr__(self) -> str:
        return f"DeterministicRng(seed={self._seed.hex()})"


class ScriptedRngError(AssertionError):
    """A ScriptedRng was asked for something other than its next scripted draw."""


class ScriptedRng:
    """Replays recorded draws in order; each request must ask for exactly the next draw's length."""

    __slots__ = ("_draws", "_next")

    def __init__(self, draws: Iterable[bytes]) -> None:
        self._draws = [bytes(d) for d in draws]
        self._next = 0

    def random_bytes(self, n: int) -> bytes:
        """The next scripted draw, which must be `n` bytes long."""
        if self._next >= len(self._draws):
            raise ScriptedRngError(f"asked for {n} bytes after all {len(self._draws)} draws were used")
        draw = self._draws[self._next]
        if len(draw) != n:
            raise ScriptedRngError(f"draw {self._next} has {len(draw)} bytes but {n} were asked for")
        self._next += 1
        return draw

    @property
    def remaining(self) -> int:
        """How many scripted draws are still unused."""
        return len(self._draws) - self._next

    def __repr__(self) -> str:
        return f"ScriptedRng({self._next}/{len(self._draws)} used)"


__all__ = ["SYSTEM_RNG", "DeterministicRng", "Rng", "ScriptedRng", "ScriptedRngError", "SystemRng"]
