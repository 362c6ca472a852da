"""Entry points and the encrypted UserStaticData kept for login (spec/peergos.md §2.2).

`EntryPoint` `{c: AbsoluteCapability, n: ownerName}`; `EntryPoints` `{v: 2, e: [EntryPoint],
b: BoxingKeyPair, i: identity SigningKeyPair}`; `UserStaticData` is a PaddedCipherText (4096-byte
blocks) of the EntryPoints CBOR under the login root key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_int, as_str, expect_list, expect_map, field
from peergos_node.crypto.boxing import BoxingKeyPair
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import PaddedCipherText, SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability, capability_from_cbor
from peergos_node.errors import DecodeError

STATIC_DATA_PADDING = 4096
ENTRY_POINTS_VERSION = 2
MAX_ENTRY_POINTS = 10_000
MAX_USERNAME_CHARS = 64


@dataclass(frozen=True)
class EntryPoint(CborMixin):
    """A capability into someone's filesystem plus the name of its owner."""

    cap: AbsoluteCapability
    owner_name: str

    def to_cbor(self) -> CborValue:
        return {"c": self.cap.to_cbor(), "n": self.owner_name}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "EntryPoint")
        return cls(
            capability_from_cbor(field(m, "c", "EntryPoint")),
            as_str(field(m, "n", "EntryPoint"), "EntryPoint.n", max_len=MAX_USERNAME_CHARS),
        )


@dataclass(frozen=True)
class EntryPoints(CborMixin):
    """What login decrypts: the user's entry points, boxing key pair and identity key pair."""

    entries: tuple[EntryPoint, ...]
    boxer: BoxingKeyPair
    identity: SigningKeyPair

    def to_cbor(self) -> CborValue:
        return {
            "v": ENTRY_POINTS_VERSION,
            "e": [e.to_cbor() for e in self.entries],
            "b": self.boxer.to_cbor(),
            "i": self.identity.to_cbor(),
        }

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "EntryPoints")
        version = as_int(field(m, "v", "EntryPoints"), "EntryPoints.v")
        if version != ENTRY_POINTS_VERSION:
            raise DecodeError(f"EntryPoints: unsupported version {version}")
        entries = expect_list(field(m, "e", "EntryPoints"), "EntryPoints.e", max_len=MAX_ENTRY_POINTS)
        return cls(
            tuple(EntryPoint.from_cbor(e) for e in entries),
            BoxingKeyPair.from_cbor(field(m, "b", "EntryPoints")),
            SigningKeyPair.from_cbor(field(m, "i", "EntryPoints")),
        )

    def encrypt(self, root_key: SymmetricKey, rng: Rng = SYSTEM_RNG) -> UserStaticData:
        """Encrypt under the login root key, padded to 4096-byte blocks."""
        return UserStaticData(PaddedCipherText.build(root_key, self, STATIC_DATA_PADDING, rng))


@dataclass(frozen=True)
class UserStaticData(CborMixin):
    """Encrypted EntryPoints (CBOR: the PaddedCipherText itself)."""

    cipher: PaddedCipherText

    def decrypt(self, root_key: SymmetricKey) -> EntryPoints:
        """Open with the login root key (BadCiphertext for a wrong password)."""
        return EntryPoints.from_cbor(self.cipher.decrypt(root_key))

    def to_cbor(self) -> CborValue:
        return self.cipher.to_cbor()

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(PaddedCipherText.from_cbor(value))
