"""Multibase text encodings (https://github.com/multiformats/multibase) used by IPFS and Peergos.

Peergos writes CIDs and BATs as base58btc (`z...`); Nabu/kubo APIs print CIDv1 as base32 (`b...`).
Supported prefixes: `z` base58btc, `b` base32 lower, `B` base32 upper, `f` base16 lower, `F` base16
upper. Decoding is bounded (base58 is quadratic in the input length) and every failure is a DecodeError.
"""

from __future__ import annotations

import base64
import binascii

import base58

from nabu_py.errors import DecodeError

MAX_TEXT_LEN = 8192
_ALPHABET = base58.BITCOIN_ALPHABET
_B58_ALPHABET = frozenset(_ALPHABET.decode())
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_PAIRS = [bytes((_ALPHABET[i // 58], _ALPHABET[i % 58])) for i in range(58 * 58)]
_GROUP = 10
_POWERS: dict[int, int] = {}
_LOG2_58 = 5.857980995127572
"""Base58 conversion without the `base58` package's one big-integer division per digit (quadratic in
Python): encoding splits the number recursively by powers of 58 (divisions by big divisors run in C),
decoding folds ten digits per multiplication. Several times faster on the kilobyte-long texts Peergos
puts in URLs (`champ/get/bulk` caps); output is identical."""


def _power(k: int) -> int:
    p = _POWERS.get(k)
    if p is None:
        p = _POWERS[k] = 58**k
    return p


def _digits(n: int, k: int, out: list[bytes]) -> None:
    """Append exactly `k` base58 digits of `n` (< 58**k), most significant first."""
    if k <= _GROUP:
        group: list[bytes] = []
        for _ in range(k // 2):
            n, pair = divmod(n, 58 * 58)
            group.append(_PAIRS[pair])
        if k % 2:
            group.append(_ALPHABET[n : n + 1])
        group.reverse()
        out.extend(group)
        return
    half = k // 2
    high, low = divmod(n, _power(half))
    _digits(high, k - half, out)
    _digits(low, half, out)


def b58encode(data: bytes) -> str:
    """Plain base58btc with no multibase prefix (Peergos `toBase58()`, libp2p peer ids)."""
    body = data.lstrip(b"\0")
    out: list[bytes] = []
    _digits(int.from_bytes(body, "big"), int(len(body) * 8 / _LOG2_58) + 2, out)
    text = b"".join(out).lstrip(b"1")  # the digit count is an upper bound: drop leading zero digits
    return "1" * (len(data) - len(body)) + text.decode("ascii")


def b58decode(text: str, max_len: int = MAX_TEXT_LEN) -> bytes:
    """Decode plain base58btc text; raise DecodeError on bad characters or excessive length."""
    if len(text) > max_len:
        raise DecodeError(f"base58 text longer than {max_len} characters")
    if not _B58_ALPHABET.issuperset(text):
        raise DecodeError("invalid base58btc text")
    raw = text.encode("ascii")
    body = raw.lstrip(b"1")
    index = _INDEX
    n = 0
    end = len(body) % _GROUP or _GROUP  # a short first group, then groups of ten digits
    start = 0
    while start < len(body):
        v = 0
        for c in body[start:end]:
            v = v * 58 + index[c]
        n = n * _power(end - start) + v
        start, end = end, end + _GROUP
    return bytes(len(raw) - len(body)) + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


def b32encode(data: bytes, upper: bool = False) -> str:
    """RFC 4648 base32 without padding; lower case unless `upper`."""
    s = base64.b32encode(data).decode("ascii").rstrip("=")
    return s if upper else s.lower()


def b32decode(text: str, max_len: int = MAX_TEXT_LEN) -> bytes:
    """Decode RFC 4648 base32 without padding (either case)."""
    if len(text) > max_len:
        raise DecodeError(f"base32 text longer than {max_len} characters")
    if len(text) % 8 in (1, 3, 6):
        raise DecodeError("invalid base32 length")
    pad = (-len(text)) % 8
    try:
        return base64.b32decode(text.upper() + "=" * pad)
    except (binascii.Error, ValueError) as e:
        raise DecodeError(f"invalid base32 text: {e}") from None


def encode(data: bytes, base: str = "base58btc") -> str:
    """Multibase-encode `data` with the named base."""
    if base == "base58btc":
        return "z" + b58encode(data)
    if base == "base32":
        return "b" + b32encode(data)
    if base == "base32upper":
        return "B" + b32encode(data, upper=True)
    if base == "base16":
        return "f" + data.hex()
    raise ValueError(f"unsupported multibase {base!r}")


def decode(text: str, max_len: int = MAX_TEXT_LEN) -> bytes:
    """Decode multibase text by its prefix character."""
    if not text:
        raise DecodeError("empty multibase text")
    prefix, body = text[0], text[1:]
    if prefix == "z":
        return b58decode(body, max_len)
    if prefix in ("b", "B"):
        if (prefix == "b" and body != body.lower()) or (prefix == "B" and body != body.upper()):
            raise DecodeError("mixed-case base32 text")
        return b32decode(body, max_len)
    if prefix in ("f", "F"):
        if len(body) > max_len:
            raise DecodeError("base16 text too long")
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise DecodeError("invalid base16 text") from None
    raise DecodeError(f"unsupported multibase prefix {prefix!r}")
