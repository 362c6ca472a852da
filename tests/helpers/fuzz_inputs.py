"""Fuzzing inputs that get past the first byte: arbitrary data or valid samples with random edits.

(The same scheme as tests/property/test_crypto_fuzz.py, shared here for the PKI and account fuzzers.)
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

_seeds = st.integers(0, 2**32 - 1)


def mutate_bytes(sample: bytes, seed: int) -> bytes:
    """1-4 random edits of a valid encoding: bit flip, insertion, deletion or truncation."""
    rnd = random.Random(seed)
    out = bytearray(sample)
    for _ in range(rnd.randint(1, 4)):
        op, pos = rnd.randrange(4), rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            out[pos:pos] = rnd.randbytes(rnd.randint(1, 4))
        elif op == 2:
            del out[pos : pos + rnd.randint(1, 8)]
        else:
            del out[pos:]
    return bytes(out)


def mutate_text(sample: str, seed: int) -> str:
    """1-4 random edits of a valid text form."""
    rnd = random.Random(seed)
    out = list(sample)
    for _ in range(rnd.randint(1, 4)):
        op, pos = rnd.randrange(4), rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] = rnd.choice("/#?z0OIl1aA-_.:+,\n \x00\u00e9\u0661")
        elif op == 1:
            out[pos:pos] = rnd.choices("/#?zZ09aA-:+ ", k=rnd.randint(1, 3))
        elif op == 2:
            del out[pos : pos + rnd.randint(1, 8)]
        else:
            del out[pos:]
    return "".join(out)


def byte_inputs(samples: list[bytes], max_size: int = 300) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or a valid sample with a few random edits."""
    mutated = st.tuples(st.sampled_from(samples), _seeds).map(lambda t: mutate_bytes(*t))
    return st.one_of(st.binary(max_size=max_size), mutated)


def text_inputs(samples: list[str]) -> st.SearchStrategy[str]:
    """Arbitrary text, or a valid sample with a few random edits."""
    mutated = st.tuples(st.sampled_from(samples), _seeds).map(lambda t: mutate_text(*t))
    return st.one_of(st.text(max_size=200), mutated)
