"""Username claims and claim chains: the PKI's data (spec/peergos.md §3.2; Java `UserPublicKeyLink`).

Theory of operation
-------------------
A user owns a name through a **chain** of `UserPublicKeyLink`s, CBOR list `[link, ...]`:

- link: CBOR map `{owner: PublicKeyHash link, claim: Claim, keychange?: h'proof'}`;
- claim: CBOR array `[username, expiry "YYYY-MM-DD", [h'provider CID', ...], h'signed contents']`;
- signed contents: the owner's **attached** Ed25519 signature (`sig(64) || payload`) over the
  Java-DataOutputStream payload `str username ‖ str expiry ‖ int32 nProviders ‖ (bytes cid)*`
  (`java_io`: int32 big-endian lengths, string lengths in Java chars);
- keychange: the old key's attached signature over the CBOR of the next link's owner hash.

Every link but the last is a retired key: `createChain(old, new)` gives the old key a claim that never
expires (`LocalDate.MAX`, `+999999999-12-31`) with no storage providers, plus the key-change proof, and
the new key a normal claim. The last link names exactly one storage provider (the home server's libp2p
peer id as a CIDv1 `libp2p-key`). A first signup is a one-link chain (`create_initial`), and the
proof-of-work data at signup is the CBOR of that one-link list.

Decoding is strict and bounded: exact shapes, no unknown map keys, canonical date text, at most
`MAX_PROVIDERS` providers of at most 100 bytes each, `MAX_CHAIN_LINKS` links. A decoded claim is not yet
trusted: `chain.validate_chain` checks the signatures and that the signed payload says what the CBOR says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import Cid
from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_bytes,
    as_str,
    expect_list,
    expect_map,
    field,
    only_keys,
)
from peergos_node.corenode.dates import MAX_TEXT as MAX_DATE_TEXT
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.java_io import DataReader, DataWriter
from peergos_node.corenode.usernames import MAX_USERNAME_SIZE
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.signing import SIGNATURE_BYTES, SecretSigningKey
from peergos_node.errors import DecodeError

MAX_SIZE = 2 * 1024 * 1024
"""`UserPublicKeyLink.MAX_SIZE`; PKI bodies carry a chain of up to `2 * MAX_SIZE` bytes."""
MAX_CHAIN_LINKS = 1024
"""Decode bound on links per chain (each password change of a legacy account adds one)."""
MAX_PROVIDERS = 16
"""Decode bound on storage providers per claim (the rules allow at most one)."""
MAX_PROVIDER_BYTES = 100
"""Java reads each provider id of a signed payload with this bound."""
MAX_SIGNED_CLAIM = 4096
MAX_KEY_CHANGE_PROOF = 512

Chain = tuple["UserPublicKeyLink", ...]


def claim_payload(username: str, expiry: LocalDate, storage_providers: Sequence[Cid]) -> bytes:
    """The bytes an identity signs to claim a name (Java `Claim.build`)."""
    w = DataWriter().write_string(username).write_string(str(expiry))
    w.write_int(len(storage_providers))
    for provider in storage_providers:
        w.write_byte_array(provider.to_bytes())
    return w.to_bytes()


def parse_claim_payload(payload: bytes) -> tuple[str, LocalDate, tuple[Cid, ...]]:
    """Strictly parse a claim payload (Java `Claim.deserialize`, with trailing bytes refused)."""
    r = DataReader(payload, "claim payload")
    username = r.read_string(MAX_USERNAME_SIZE, "username")
    expiry = LocalDate.parse(r.read_string(MAX_DATE_TEXT, "expiry"))
    n = r.read_int("provider count")
    if not 0 <= n <= MAX_PROVIDERS:
        raise DecodeError(f"claim payload: provider count {n} outside [0, {MAX_PROVIDERS}]")
    providers = tuple(Cid.decode(r.read_byte_array(MAX_PROVIDER_BYTES, "provider")) for _ in range(n))
    r.expect_end()
    return username, expiry, providers


@dataclass(frozen=True)
class Claim(CborMixin):
    """A signed claim of a username until an expiry date, naming the user's storage providers."""

    username: str
    expiry: LocalDate
    storage_providers: tuple[Cid, ...]
    signed_contents: bytes

    def __post_init__(self) -> None:
        if type(self.storage_providers) is not tuple:
            raise TypeError("storage_providers must be a tuple of Cids")

    @classmethod
    def build(
        cls, username: str, signer: SecretSigningKey, expiry: LocalDate, storage_providers: Iterable[Cid]
    ) -> Claim:
        """Sign a claim (Java `Claim.build`)."""
        providers = tuple(storage_providers)
        signed = signer.sign(claim_payload(username, expiry, providers))
        return cls(username, expiry, providers, signed)

    @property
    def payload(self) -> bytes:
        """The signed payload (the signed contents without the 64-byte signature)."""
        return self.signed_contents[SIGNATURE_BYTES:]

    def to_cbor(self) -> CborValue:
        return [
            self.username,
            str(self.expiry),
            [p.to_bytes() for p in self.storage_providers],
            self.signed_contents,
        ]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "Claim"
        items = expect_list(value, ctx, length=4)
        username = as_str(items[0], f"{ctx}.username", max_len=MAX_USERNAME_SIZE)
        expiry = LocalDate.parse(as_str(items[1], f"{ctx}.expiry", max_len=MAX_DATE_TEXT))
        providers = expect_list(items[2], f"{ctx}.storageProviders", max_len=MAX_PROVIDERS)
        cids = tuple(
            Cid.decode(as_bytes(p, f"{ctx}.storageProviders", max_len=MAX_PROVIDER_BYTES)) for p in providers
        )
        signed = as_bytes(items[3], f"{ctx}.signedContents", max_len=MAX_SIGNED_CLAIM)
        return cls(username, expiry, cids, signed)


@dataclass(frozen=True)
class UserPublicKeyLink(CborMixin):
    """One link of a claim chain: an owner key, its claim and, for a retired key, the key-change proof."""

    owner: PublicKeyHash
    claim: Claim
    key_change_proof: bytes | None = None

    def with_claim(self, claim: Claim) -> UserPublicKeyLink:
        """The same owner and proof with another claim (Java `withClaim`)."""
        return UserPublicKeyLink(self.owner, claim, self.key_change_proof)

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"owner": self.owner.to_cbor(), "claim": self.claim.to_cbor()}
        if self.key_change_proof is not None:
            m["keychange"] = self.key_change_proof
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "UserPublicKeyLink"
        m = expect_map(value, ctx)
        only_keys(m, {"owner", "claim", "keychange"}, ctx)
        proof = (
            as_bytes(m["keychange"], f"{ctx}.keychange", max_len=MAX_KEY_CHANGE_PROOF)
            if "keychange" in m
            else None
        )
        return cls(
            PublicKeyHash.from_cbor(field(m, "owner", ctx)),
            Claim.from_cbor(field(m, "claim", ctx)),
            proof,
        )


def chain_to_cbor(chain: Sequence[UserPublicKeyLink]) -> CborValue:
    """The CBOR list of a chain."""
    return [link.to_cbor() for link in chain]


def chain_from_cbor(value: CborValue) -> Chain:
    """Decode a CBOR list of links (empty allowed: `getChain` of an unknown name)."""
    items = expect_list(value, "claim chain", max_len=MAX_CHAIN_LINKS)
    return tuple(UserPublicKeyLink.from_cbor(i) for i in items)


def serialize_chain(chain: Sequence[UserPublicKeyLink]) -> bytes:
    """Canonical CBOR bytes of a chain (also the proof-of-work data of a chain update)."""
    return dag_cbor.encode(chain_to_cbor(chain))


def deserialize_chain(data: bytes, max_size: int = 2 * MAX_SIZE) -> Chain:
    """Strictly parse chain bytes of at most `max_size`."""
    return chain_from_cbor(dag_cbor.decode(data, max_size=max_size))


def key_change_proof(old: SecretSigningKey, new_owner: PublicKeyHash) -> bytes:
    """The old key's attached signature over the CBOR of the new key's hash."""
    return old.sign(new_owner.serialize())


def create_initial(
    signer: SigningPrivateKeyAndPublicHash,
    username: str,
    expiry: LocalDate,
    storage_providers: Iterable[Cid],
) -> Chain:
    """A new user's one-link chain (Java `createInitial`); the expiry is normally
    `chain.initial_expiry(today)` and the provider this server's peer id."""
    claim = Claim.build(username, signer.secret, expiry, storage_providers)
    return (UserPublicKeyLink(signer.public_key_hash, claim),)


def create_chain(
    old: SigningPrivateKeyAndPublicHash,
    new: SigningPrivateKeyAndPublicHash,
    username: str,
    expiry: LocalDate,
    storage_providers: Iterable[Cid],
) -> tuple[UserPublicKeyLink, UserPublicKeyLink]:
    """Move a name from `old` to `new` (Java `createChain`): the old key's never-expiring, provider-less
    claim with the key-change proof, then the new key's claim. Append it after the current chain's earlier
    links (i.e. it replaces the current last link)."""
    new_claim = Claim.build(username, new.secret, expiry, storage_providers)
    proof = key_change_proof(old.secret, new.public_key_hash)
    old_claim = Claim.build(username, old.secret, LocalDate.MAX, ())
    return (
        UserPublicKeyLink(old.public_key_hash, old_claim, proof),
        UserPublicKeyLink(new.public_key_hash, new_claim),
    )


__all__ = [
    "MAX_CHAIN_LINKS",
    "MAX_KEY_CHANGE_PROOF",
    "MAX_PROVIDERS",
    "MAX_PROVIDER_BYTES",
    "MAX_SIGNED_CLAIM",
    "MAX_SIZE",
    "Chain",
    "Claim",
    "UserPublicKeyLink",
    "chain_from_cbor",
    "chain_to_cbor",
    "claim_payload",
    "create_chain",
    "create_initial",
    "deserialize_chain",
    "key_change_proof",
    "parse_claim_payload",
    "serialize_chain",
]
