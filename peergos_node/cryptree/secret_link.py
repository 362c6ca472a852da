"""Secret links v2 (spec/peergos.md §10; vectors README "secret_link.json").

Theory of operation
-------------------
A secret link `secret/z<owner identity hash>/<label>#<linkPassword>` lets anyone holding it open one
capability. The label is a random positive uint32 (little-endian of 4 random bytes); the link password
is 12 characters of `A-Za-z0-9`, each from one random byte `b` used only if `b < 62` (otherwise another
byte is drawn). The part after `#` never reaches a server.

The owner stores a `SecretLinkTarget` `{cap: EncryptedCapability, expiry?: UTC epoch seconds,
max?: retrievals}` in the identity's link CHAMP; the server enforces expiry and retrieval counts and
hands out only the `EncryptedCapability` `{c: CipherText(AbsoluteCapability CBOR), p?: true}`, where `p`
says that an extra user password is needed. The key is
`scrypt(sha256(utf8(linkPassword + userPassword)), salt = decimal label, 2^15, 8, 1, 32)`
(`crypto.login.derive_link_key`). A wrong password shows up as `BadCiphertext`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_bool, as_int, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.login import derive_link_key
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import CipherText, SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability, capability_from_cbor
from peergos_node.errors import DecodeError

LINK_PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
LINK_PASSWORD_LENGTH = 12
MAX_LINK_PASSWORD = 64
MAX_LABEL = (1 << 63) - 1
MAX_LINK_TEXT = 512
_LABEL_RE = re.compile(r"[1-9][0-9]{0,18}")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9]{1,64}")


def create_link_password(rng: Rng = SYSTEM_RNG) -> str:
    """12 characters of `A-Za-z0-9`, one random byte each, rejecting bytes >= 62 (`createLinkPassword`)."""
    chars: list[str] = []
    while len(chars) < LINK_PASSWORD_LENGTH:
        b = rng.random_bytes(1)[0]
        if b < len(LINK_PASSWORD_ALPHABET):
            chars.append(LINK_PASSWORD_ALPHABET[b])
    return "".join(chars)


@dataclass(frozen=True)
class EncryptedCapability(CborMixin):
    """A capability encrypted under a link key (CBOR `{c: CipherText, p?: true}`)."""

    cipher: CipherText
    has_user_password: bool = False

    @classmethod
    def create(
        cls,
        cap: AbsoluteCapability,
        label: int,
        link_password: str,
        user_password: str = "",
        rng: Rng = SYSTEM_RNG,
    ) -> EncryptedCapability:
        """Encrypt `cap` under the key derived from the label and passwords."""
        key = derive_link_key(label, link_password, user_password)
        return cls(CipherText.build(key, cap, rng), bool(user_password))

    def decrypt_with_key(self, key: SymmetricKey) -> AbsoluteCapability:
        """Open with an already derived link key."""
        return capability_from_cbor(self.cipher.decrypt(key))

    def decrypt(self, label: int, link_password: str, user_password: str = "") -> AbsoluteCapability:
        """Derive the link key (scrypt 2^15) and open; BadCiphertext for wrong passwords."""
        return self.decrypt_with_key(derive_link_key(label, link_password, user_password))

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"c": self.cipher.to_cbor()}
        if self.has_user_password:
            m["p"] = True
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "EncryptedCapability")
        only_keys(m, {"c", "p"}, "EncryptedCapability")
        cipher = CipherText.from_cbor(cbor_field(m, "c", "EncryptedCapability"))
        has_password = as_bool(m["p"], "EncryptedCapability.p") if "p" in m else False
        return cls(cipher, has_password)


@dataclass(frozen=True)
class SecretLinkTarget(CborMixin):
    """What the owner stores per link: `{cap, expiry?: epoch seconds (UTC), max?: retrievals}`."""

    cap: EncryptedCapability
    expiry: int | None = None
    max_retrievals: int | None = None

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"cap": self.cap.to_cbor()}
        if self.expiry is not None:
            m["expiry"] = self.expiry
        if self.max_retrievals is not None:
            m["max"] = self.max_retrievals
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "SecretLinkTarget"
        m = expect_map(value, ctx)
        only_keys(m, {"cap", "expiry", "max"}, ctx)
        cap = EncryptedCapability.from_cbor(cbor_field(m, "cap", ctx))
        expiry = as_int(m["expiry"], f"{ctx}.expiry") if "expiry" in m else None
        max_retrievals = as_int(m["max"], f"{ctx}.max", 0, (1 << 31) - 1) if "max" in m else None
        return cls(cap, expiry, max_retrievals)


@dataclass(frozen=True)
class SecretLink:
    """`secret/z<owner>/<label>#<linkPassword>`: owner identity hash, positive label, link password."""

    owner: PublicKeyHash
    label: int
    link_password: str

    def __post_init__(self) -> None:
        if type(self.label) is not int or not 0 < self.label <= MAX_LABEL:
            raise ValueError("link labels are positive 63-bit integers")
        if not _PASSWORD_RE.fullmatch(self.link_password):
            raise ValueError("a link password is 1 to 64 characters of A-Za-z0-9")

    @classmethod
    def create(cls, owner: PublicKeyHash, rng: Rng = SYSTEM_RNG) -> SecretLink:
        """Peergos `SecretLink.create`: label from 4 bytes (LE uint32, redrawn if 0), then the password."""
        label = 0
        while label == 0:  # Java throws on 0; we draw again (probability 2^-32)
            label = int.from_bytes(rng.random_bytes(4), "little")
        return cls(owner, label, create_link_password(rng))

    def to_link(self) -> str:
        """The link text (the URL path after the host)."""
        return f"secret/z{self.owner.to_base58()}/{self.label}#{self.link_password}"

    @classmethod
    def from_link(cls, text: str) -> SecretLink:
        """Parse `to_link` output; a leading `/` and a `?query` after the password are ignored."""
        if type(text) is not str or len(text) > MAX_LINK_TEXT:
            raise DecodeError("secret link must be a string of bounded length")
        if text.startswith("/"):
            text = text[1:]
        path, sep, fragment = text.partition("#")
        if not sep:
            raise DecodeError("secret link has no #password")
        fragment = fragment.split("?", 1)[0]
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "secret":
            raise DecodeError("secret link must look like secret/<owner>/<label>#<password>")
        if not _LABEL_RE.fullmatch(parts[2]) or int(parts[2]) > MAX_LABEL:
            raise DecodeError("secret link label must be a positive decimal integer")
        if not _PASSWORD_RE.fullmatch(fragment):
            raise DecodeError("secret link password must be 1 to 64 characters of A-Za-z0-9")
        return cls(PublicKeyHash.parse(parts[1]), int(parts[2]), fragment)

    def link_key(self, user_password: str = "") -> SymmetricKey:
        """The key that opens this link's `EncryptedCapability`."""
        return derive_link_key(self.label, self.link_password, user_password)


__all__ = [
    "LINK_PASSWORD_ALPHABET",
    "EncryptedCapability",
    "SecretLink",
    "SecretLinkTarget",
    "create_link_password",
]
