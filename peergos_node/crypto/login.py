"""Login key derivation with scrypt (spec/peergos.md §2.1, §10; §18 items 1-2, 18).

Theory of operation
-------------------
A user's login secrets come from their password alone, with public parameters stored in the identity
`WriterData` (`SecretGenerationAlgorithm`, CBOR `{type: 1, m, c, p, o, s}`):

    out = scrypt(P = sha256(utf8(password)), S = utf8(username + extraSalt),
                 N = 2^m, r = c, p = p, dkLen = o)

- `o == 64` (current): `out[0:32]` is the Ed25519 seed of the **login** key pair and `out[32:64]` the
  login **root** symmetric key (it decrypts `UserStaticData`); identity and boxing keys are random and
  kept inside the encrypted login data.
- `o == 96` (legacy): `out[0:32]` identity/login seed, `out[32:64]` the Curve25519 boxing secret,
  `out[64:96]` the root key.

The scrypt password is SHA-256 of the password (not the password) and the salt is plain text — both
easy to get wrong. The password must differ from the username. Secret-link keys use the same scrypt
with N = 2^15, r = 8, p = 1, 32 bytes, password `sha256(utf8(linkPassword + userPassword))` and the
decimal link label as salt (`EncryptedCapability.LINK_KEY_GENERATOR`).

Parameters read from outside are bounded (memory cost 17..22, scrypt memory at most 1 GiB) so a
hostile `WriterData` cannot make a client allocate unbounded memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_int, as_str, expect_map
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.boxing import BoxingKeyPair, Curve25519SecretKey
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.errors import DecodeError

TYPE_RANDOM = 0
TYPE_SCRYPT = 1

DEFAULT_MEMORY_COST = 17  # log2 N; also Peergos' minimum for login algorithms
DEFAULT_CPU_COST = 8  # r
DEFAULT_PARALLELISM = 1  # p
OUTPUT_BYTES = 64
LEGACY_OUTPUT_BYTES = 96
MAX_MEMORY_COST = 22
MAX_SCRYPT_MEMORY = 1 << 30
MAX_EXTRA_SALT = 1024

LINK_KEY_MEMORY_COST = 15
LINK_KEY_BYTES = 32


def scrypt(password: bytes, salt: bytes, log2_n: int, r: int, p: int, dklen: int) -> bytes:
    """Standard scrypt (RFC 7914) with enough `maxmem` for the parameters."""
    n = 1 << log2_n
    needed = 128 * r * (n + p + 2)
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=needed + (1 << 20))


@dataclass(frozen=True)
class SecretGenerationAlgorithm(CborMixin):
    """Peergos `ScryptGenerator`: scrypt parameters plus the public extra salt."""

    memory_cost: int = DEFAULT_MEMORY_COST
    cpu_cost: int = DEFAULT_CPU_COST
    parallelism: int = DEFAULT_PARALLELISM
    output_bytes: int = OUTPUT_BYTES
    extra_salt: str = ""

    def __post_init__(self) -> None:
        if not DEFAULT_MEMORY_COST <= self.memory_cost <= MAX_MEMORY_COST:
            raise ValueError(f"scrypt memory cost must be in [{DEFAULT_MEMORY_COST}, {MAX_MEMORY_COST}]")
        if not 1 <= self.cpu_cost <= 64 or not 1 <= self.parallelism <= 16:
            raise ValueError("scrypt r must be in [1, 64] and p in [1, 16]")
        if 128 * self.cpu_cost * (1 << self.memory_cost) > MAX_SCRYPT_MEMORY:
            raise ValueError("scrypt parameters need more than 1 GiB of memory")
        if self.output_bytes not in (OUTPUT_BYTES, LEGACY_OUTPUT_BYTES):
            raise ValueError("login derivation outputs 64 (current) or 96 (legacy) bytes")
        if len(self.extra_salt) > MAX_EXTRA_SALT:
            raise ValueError("extra salt too long")

    @classmethod
    def default(cls, rng: Rng = SYSTEM_RNG) -> SecretGenerationAlgorithm:
        """Peergos' default for new users: 2^17, r 8, p 1, 64 bytes, salt = hex of 32 random bytes."""
        return cls(extra_salt=rng.random_bytes(32).hex())

    @classmethod
    def legacy(cls, rng: Rng = SYSTEM_RNG) -> SecretGenerationAlgorithm:
        """The legacy 96-byte variant (identity and boxer derived from the password)."""
        return cls(output_bytes=LEGACY_OUTPUT_BYTES, extra_salt=rng.random_bytes(32).hex())

    def with_new_salt(self, rng: Rng = SYSTEM_RNG) -> SecretGenerationAlgorithm:
        """Same parameters, fresh salt (every password change)."""
        return SecretGenerationAlgorithm(
            self.memory_cost, self.cpu_cost, self.parallelism, self.output_bytes, rng.random_bytes(32).hex()
        )

    def without_boxer_or_identity(self) -> SecretGenerationAlgorithm:
        """The 64-byte form of these parameters (legacy accounts move to it on password change)."""
        return SecretGenerationAlgorithm(
            self.memory_cost, self.cpu_cost, self.parallelism, OUTPUT_BYTES, self.extra_salt
        )

    @property
    def generates_boxer_and_identity(self) -> bool:
        """True for the legacy 96-byte derivation."""
        return self.output_bytes == LEGACY_OUTPUT_BYTES

    def to_cbor(self) -> CborValue:
        return {
            "type": TYPE_SCRYPT,
            "m": self.memory_cost,
            "c": self.cpu_cost,
            "p": self.parallelism,
            "o": self.output_bytes,
            "s": self.extra_salt,
        }

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "SecretGenerationAlgorithm"
        m = expect_map(value, ctx)
        kind = as_int(cbor_field(m, "type", ctx), f"{ctx}.type", 0, 255)
        if kind != TYPE_SCRYPT:
            raise DecodeError(f"{ctx}: unsupported algorithm type {kind} (only scrypt, 1)")
        salt = as_str(m["s"], f"{ctx}.s", max_len=MAX_EXTRA_SALT) if "s" in m else ""
        try:
            return cls(
                as_int(cbor_field(m, "m", ctx), f"{ctx}.m", 0, 64),
                as_int(cbor_field(m, "c", ctx), f"{ctx}.c", 0, 1 << 16),
                as_int(cbor_field(m, "p", ctx), f"{ctx}.p", 0, 1 << 16),
                as_int(cbor_field(m, "o", ctx), f"{ctx}.o", 0, 1 << 16),
                salt,
            )
        except ValueError as e:
            raise DecodeError(f"{ctx}: {e}") from None


@dataclass(frozen=True)
class LoginKeys:
    """What a password derives: the login signing pair, the root key and (legacy only) the boxer."""

    signing: SigningKeyPair
    root_key: SymmetricKey
    boxing: BoxingKeyPair | None


def login_scrypt(username: str, password: str, alg: SecretGenerationAlgorithm) -> bytes:
    """The raw scrypt output for a login (`ScryptJava.hashToKeyBytes(username + salt, password, alg)`)."""
    if password == username:
        raise ValueError("the password must differ from the username")
    hashed_password = hashlib.sha256(password.encode("utf-8")).digest()
    salt = (username + alg.extra_salt).encode("utf-8")
    return scrypt(hashed_password, salt, alg.memory_cost, alg.cpu_cost, alg.parallelism, alg.output_bytes)


def login_keys_from_output(out: bytes) -> LoginKeys:
    """Split a 64-byte (seed, root key) or legacy 96-byte (seed, boxing secret, root key) output."""
    signing = SigningKeyPair.from_seed(out[:32])
    if len(out) == LEGACY_OUTPUT_BYTES:
        boxing = BoxingKeyPair.from_secret(Curve25519SecretKey(out[32:64]))
        return LoginKeys(signing, SymmetricKey(out[64:96]), boxing)
    if len(out) == OUTPUT_BYTES:
        return LoginKeys(signing, SymmetricKey(out[32:64]), None)
    raise ValueError("login derivation outputs 64 or 96 bytes")


def derive_login_keys(username: str, password: str, alg: SecretGenerationAlgorithm) -> LoginKeys:
    """`UserUtil.generateUser`: scrypt, then split the output into the login keys."""
    return login_keys_from_output(login_scrypt(username, password, alg))


def derive_link_key(label: int, link_password: str, user_password: str = "") -> SymmetricKey:
    """Secret-link key: scrypt(sha256(utf8(link + user password)), salt = decimal label, 2^15, 8, 1, 32)."""
    if label <= 0:
        raise ValueError("link labels are positive")
    hashed = hashlib.sha256((link_password + user_password).encode("utf-8")).digest()
    salt = str(label).encode("ascii")
    return SymmetricKey(scrypt(hashed, salt, LINK_KEY_MEMORY_COST, 8, 1, LINK_KEY_BYTES))


__all__ = [
    "LoginKeys",
    "SecretGenerationAlgorithm",
    "derive_link_key",
    "derive_login_keys",
    "login_keys_from_output",
    "login_scrypt",
    "scrypt",
]
