"""Peer ids: parse and print every textual form in use (libp2p specs, peer-ids/peer-ids.md).

A peer id is the multihash of the peer's protobuf-encoded public key: the *identity* multihash when
that encoding is at most 42 bytes (Ed25519 and secp256k1 keys: `12D3KooW...`, `16Uiu2...`), otherwise
sha2-256 (RSA and ECDSA keys: `Qm...`). Text forms accepted by `PeerId.parse`:

* bare base58btc of the multihash (the legacy and most common form, starts with `1` or `Qm`);
* a multibase CIDv1 with the `libp2p-key` codec (0x72): base32 `b...`/`B...` (`bafzaa...`),
  base36 `k...`/`K...` (kubo's `k51qzi5uqu5...`), base58btc `z...`, base16 `f...`/`F...`.

`str(peer_id)` is base58btc (what Nabu, Peergos and kubo print); `to_cid_string()` gives the CIDv1 form.
Everything malformed raises `DecodeError`: wrong alphabet, over-long text, a multihash other than
identity (<= 42 bytes) or sha2-256, a CID with another codec, trailing bytes.
"""

from __future__ import annotations

import hashlib
from typing import Final

from nabu_py.errors import DecodeError
from nabu_py.multiformats import multibase, multihash, varint

__all__ = ["MAX_PEER_ID_TEXT", "PeerId"]

MAX_PEER_ID_TEXT: Final = 256
"""Longest peer id text accepted (the longest legal form, base16 CID of a sha2-256 id, is 75)."""

CODEC_LIBP2P_KEY: Final = 0x72
MAX_INLINE_KEY_LEN: Final = 42
_B36_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_B36_INDEX: Final = {c: i for i, c in enumerate(_B36_ALPHABET)}


def _b36decode(text: str) -> bytes:
    """Decode multibase base36 (lower-case alphabet; leading '0' digits are leading zero bytes)."""
    if not text:
        raise DecodeError("empty base36 text")
    value = 0
    for ch in text:
        digit = _B36_INDEX.get(ch)
        if digit is None:
            raise DecodeError("invalid base36 text")
        value = value * 36 + digit
    zeros = len(text) - len(text.lstrip("0"))
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return b"\x00" * zeros + body


def _b36encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\x00"))
    value = int.from_bytes(data, "big")
    digits = []
    while value:
        value, rem = divmod(value, 36)
        digits.append(_B36_ALPHABET[rem])
    return "0" * zeros + "".join(reversed(digits))


def _check_multihash(mh: bytes) -> None:
    code, digest, end = multihash.decode_from(mh, 0)
    if end != len(mh):
        raise DecodeError("trailing bytes after peer id multihash")
    if code == multihash.IDENTITY:
        if not 0 < len(digest) <= MAX_INLINE_KEY_LEN:
            raise DecodeError(f"identity peer id must inline 1..{MAX_INLINE_KEY_LEN} bytes of key")
    elif code != multihash.SHA2_256:
        raise DecodeError(f"peer id multihash must be identity or sha2-256, not 0x{code:x}")


class PeerId:
    """An immutable, hashable peer id; `bytes(peer_id)` is its multihash."""

    __slots__ = ("_mh",)

    _mh: bytes

    def __init__(self, mh: bytes) -> None:
        """Wrap multihash bytes (validated: identity <= 42 bytes or sha2-256); DecodeError otherwise."""
        raw = bytes(mh)
        _check_multihash(raw)
        object.__setattr__(self, "_mh", raw)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PeerId is immutable")

    # ---- constructors -------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, mh: bytes | bytearray | memoryview) -> PeerId:
        """Parse binary peer id (multihash) bytes as found in protocol messages."""
        return cls(bytes(mh))

    @classmethod
    def from_public_key(cls, public_key_proto: bytes) -> PeerId:
        """The peer id of a protobuf-encoded libp2p `PublicKey` (identity if <= 42 bytes, else sha2-256)."""
        if len(public_key_proto) <= MAX_INLINE_KEY_LEN:
            return cls(multihash.wrap(multihash.IDENTITY, public_key_proto))
        return cls(b"\x12\x20" + hashlib.sha256(public_key_proto).digest())

    @classmethod
    def parse(cls, text: str) -> PeerId:
        """Parse any textual form (base58btc multihash or libp2p-key CIDv1 in any supported multibase)."""
        if not isinstance(text, str):
            raise TypeError("peer id text must be str")
        text = text.strip()
        if not text:
            raise DecodeError("empty peer id")
        if len(text) > MAX_PEER_ID_TEXT:
            raise DecodeError(f"peer id text longer than {MAX_PEER_ID_TEXT} characters")
        if text[0] == "1" or text.startswith("Qm"):
            return cls(multibase.b58decode(text))
        prefix, body = text[0], text[1:]
        if prefix in ("k", "K"):
            if body != (body.lower() if prefix == "k" else body.upper()):
                raise DecodeError("mixed-case base36 text")
            raw = _b36decode(body.lower())
        else:
            raw = multibase.decode(text)
        return cls._from_cid_bytes(raw)

    @classmethod
    def _from_cid_bytes(cls, raw: bytes) -> PeerId:
        version, i = varint.decode_from(raw, 0)
        if version != 1:
            raise DecodeError(f"peer id CID must be version 1, not {version}")
        codec, i = varint.decode_from(raw, i)
        if codec != CODEC_LIBP2P_KEY:
            raise DecodeError(f"peer id CID must use the libp2p-key codec (0x72), not 0x{codec:x}")
        return cls(raw[i:])

    # ---- accessors ----------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        return self._mh

    def to_bytes(self) -> bytes:
        """The multihash bytes (binary form used in protocol messages)."""
        return self._mh

    def to_base58(self) -> str:
        """Legacy/bare base58btc text (`12D3KooW...` / `Qm...`), as Nabu, kubo and Peergos print ids."""
        return multibase.b58encode(self._mh)

    def to_cid_bytes(self) -> bytes:
        """Binary CIDv1 (libp2p-key codec) of this peer id."""
        return b"\x01" + varint.encode(CODEC_LIBP2P_KEY) + self._mh

    def to_cid_string(self, base: str = "base32") -> str:
        """CIDv1 text: `base32` (`bafzaa...`, the spec's recommendation) or `base36` (`k51...`, kubo)."""
        raw = self.to_cid_bytes()
        if base == "base36":
            return "k" + _b36encode(raw)
        return multibase.encode(raw, base)

    def public_key_proto(self) -> bytes | None:
        """The inlined protobuf public key of an identity-multihash id, or None for sha2-256 ids."""
        if self._mh[0] == multihash.IDENTITY:
            _code, digest, _end = multihash.decode_from(self._mh, 0)
            return digest
        return None

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({self.to_base58()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerId) and other._mh == self._mh

    def __hash__(self) -> int:
        return hash(self._mh)

    def __lt__(self, other: PeerId) -> bool:
        return self._mh < other._mh

    def __reduce__(self) -> tuple[object, ...]:
        return (PeerId, (self._mh,))
