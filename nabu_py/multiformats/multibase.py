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
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_PAIRS = [bytes((_ALPHABET[i // 58], _ALPHABET[i % 58])) for i in range(58 * 58)]
_DIGIT_VALUES = bytes(_INDEX.get(c, 255) for c in range(256))
"""Byte -> base58 digit value (255: not a base58 character), for `bytes.translate`."""
_LIMB = 10
"""Base58 digits per limb when encoding (58**10 < 2**64)."""
_LIMB_POWERS = [58**_LIMB]
"""58**(10 * 2**i) at index i (grown on demand)."""
_LANE_MASKS: dict[tuple[int, int], int] = {}
_LOG2_58 = 5.857980995127572
"""Base58 conversion without per-digit big-integer arithmetic (which is quadratic in Python), several
times faster than a digit loop on the kilobyte-long texts Peergos puts in URLs (`champ/get/bulk` caps);
output is identical.

Encoding splits the number top-down by squared powers of 58**10 (the big divisions run in C) into
10-digit limbs, each printed with four divmods by 58**2 and a table of digit pairs. Decoding maps the
characters to digit values with `bytes.translate` and reads them as one integer of 8-bit lanes; each
round combines neighbouring lanes into lanes twice as wide (`high * 58**k + low`, for every lane at once
with a shift, a mask, a multiplication and an addition: 58**(2k) < 2**(16k) so lanes never overflow),
until one lane is left."""


def _limbs(n: int, limbs: int) -> list[int]:
    """`n` (< 58**(10 * limbs), limbs a power of two) as base-58**10 limbs, most significant first."""
    parts = [n]
    global _LIMB_POWERS
    level = limbs.bit_length() - 1
    powers = _LIMB_POWERS
    if len(powers) < level:  # grow a copy, then publish it (no other thread sees a half-built list)
        powers = list(powers)
        while len(powers) < level:
            powers.append(powers[-1] ** 2)
        _LIMB_POWERS = powers
    while level > 0:
        level -= 1
        power = powers[level]
        split: list[int] = []
        for x in parts:
            split.extend(divmod(x, power))
        parts = split
    return parts


def b58encode(data: bytes) -> str:
    """Plain base58btc with no multibase prefix (Peergos `toBase58()`, libp2p peer ids)."""
    body = data.lstrip(b"\0")
    digits = int(len(body) * 8 / _LOG2_58) + 2  # an upper bound on the digit count
    limbs = 1
    while limbs * _LIMB < digits:
        limbs *= 2
    pairs = _PAIRS
    out: list[bytes] = []
    for x in _limbs(int.from_bytes(body, "big"), limbs):
        x, p5 = divmod(x, 3364)
        x, p4 = divmod(x, 3364)
        x, p3 = divmod(x, 3364)
        x, p2 = divmod(x, 3364)
        out += (pairs[x], pairs[p2], pairs[p3], pairs[p4], pairs[p5])
    text = b"".join(out).lstrip(b"1")  # drop the leading zero digits of the padding
    return "1" * (len(data) - len(body)) + text.decode("ascii")


def _lane_mask(size: int, width: int) -> int:
    """Ones in the low `width` bits of every 2*`width`-bit lane of a `size`-byte integer."""
    key = (size, width)
    mask = _LANE_MASKS.get(key)
    if mask is None:
        lane = width // 8
        mask = _LANE_MASKS[key] = int.from_bytes(
            (b"\0" * lane + b"\xff" * lane) * (size // (2 * lane)), "big"
        )
    return mask


def b58decode(text: str, max_len: int = MAX_TEXT_LEN) -> bytes:
    """Decode plain base58btc text; raise DecodeError on bad characters or excessive length."""
    if len(text) > max_len:
        raise DecodeError(f"base58 text longer than {max_len} characters")
    if not text.isascii():
        raise DecodeError("invalid base58btc text")
    raw = text.encode("ascii")
    body = raw.lstrip(b"1")
    values = body.translate(_DIGIT_VALUES)
    if 255 in values:
        raise DecodeError("invalid base58btc text")
    size = 1
    while size < len(values):
        size *= 2
    n = int.from_bytes(values, "big")  # one digit per 8-bit lane (zero lanes in front up to `size`)
    width, power = 8, 58
    while width < 8 * size:
        mask = _lane_mask(size, width)
        n = ((n >> width) & mask) * power + (n & mask)
        width, power = 2 * width, power * power
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
