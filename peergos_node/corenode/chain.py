"""Claim-chain rules: validity, merging updates, renewal, host updates, migration (spec/peergos.md §3.2-3.4,
§14.2; Java `UserPublicKeyLink.validChain/merge`, `UserContext.renewUsernameClaim/updateHostInPki`,
`Migrate.buildMigrationChain`, `IpfsCoreNode.updateChain`, `MirrorCoreNode.signup/migrateUser`).

Theory of operation
-------------------
**Validity** (`validate_chain`, Java `validChain`): for a chain claiming `username`,

- the name has no space, tab or newline and is at most 64 characters;
- every link's claim is for `username`, names at most one provider, and its signed contents verify under
  the link's owner key (an Ed25519 key inlined in the owner hash) and decode to exactly the claim's
  username, expiry and providers;
- every link but the last has no providers, never expires (`LocalDate.MAX`, as `createChain` makes them)
  and carries a key-change proof: the owner's signature over the next link's owner hash;
- the last link names exactly one storage provider.

**Updates** (`merge`, Java `merge`), applied by the PKI node under its single-writer lock and by every
mirror when it sees a chain change: skip the links the update shares with the current chain; the rest (the
tail) must not move the expiry back (this refuses replayed older chains: renewals only ever move the
expiry forward and migrations add a day), must start with the current owner (else "User already exists"),
and must not make an earlier key current again. The result is the current chain's retired links followed
by the tail, and it must be valid as a whole.

Deliberate differences from Java, all refusing only chains Java clients never produce:
- Java's `merge` returns a **first** chain (no existing chain) unvalidated; here it is validated.
- The chain is validated against the `username` it is filed under (Java uses the tail's claim name).
- A retired link must have expiry `LocalDate.MAX` (Java's validity check does not look at it).
- Besides Java's "last key was used before" check, no key the update introduces may repeat.

**Dates** are parameters (`today`): a new claim runs `today + 2 months`; a client renews when fewer than one
month is left (`needs_renewal`), again to `today + 2 months`; a migration claim is the last claim re-signed
with the new server and expiry + 1 day, so the old chain can never be replayed over it.

**Proof of work**: a chain update costs a proof over `serialize_chain(update)` unless it is a key change
of a user with at most `MAX_FREE_IDENTITY_CHANGES` links (`requires_proof_of_work`). `update_chain` puts
the PKI node's whole decision together: username rules, proof of work against the signup-rate
difficulty (`difficulty.DifficultyGenerator`), then `merge`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nabu_py.multiformats.cid import CODEC_LIBP2P_KEY, Cid
from peergos_node.corenode.claims import (
    MAX_CHAIN_LINKS,
    Chain,
    Claim,
    UserPublicKeyLink,
    parse_claim_payload,
    serialize_chain,
)
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.difficulty import DifficultyGenerator
from peergos_node.corenode.errors import (
    ExpiryMovedBack,
    InvalidChain,
    KeyReuse,
    PkiError,
    UserAlreadyExists,
)
from peergos_node.corenode.usernames import MAX_USERNAME_SIZE, validate_username
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey
from peergos_node.errors import BadSignature, DecodeError

INITIAL_EXPIRY_MONTHS = 2
RENEW_WHEN_MONTHS_LEFT = 1
MIGRATION_EXTRA_DAYS = 1
MAX_FREE_IDENTITY_CHANGES = 10
"""`IpfsCoreNode.MAX_FREE_IDENTITY_CHANGES`."""


def _owner_key(owner: PublicKeyHash, username: str) -> PublicSigningKey:
    try:
        return owner.inlined_signing_key()
    except DecodeError as e:
        raise InvalidChain(f"Claim owner for {username} is not an inline Ed25519 key: {e}") from None


def verify_claim(claim: Claim, owner: PublicKeyHash) -> None:
    """The claim's signed contents verify under `owner` and say what the claim says (InvalidChain)."""
    key = _owner_key(owner, claim.username)
    try:
        payload = key.unsign(claim.signed_contents)
    except BadSignature:
        raise InvalidChain(f"Invalid signature on the claim for {claim.username}") from None
    try:
        decoded = parse_claim_payload(payload)
    except DecodeError as e:
        raise InvalidChain(f"Invalid signed claim payload for {claim.username}: {e}") from None
    if decoded != (claim.username, claim.expiry, claim.storage_providers):
        raise InvalidChain(f"Signed claim payload does not match the claim for {claim.username}")


def validate_claim(link: UserPublicKeyLink, username: str) -> None:
    """Java `validClaim`: name checks, at most one provider, and `verify_claim`."""
    if any(c in username for c in " \t\n") or len(username) > MAX_USERNAME_SIZE:
        raise InvalidChain(f"Invalid username in claim: {username!r}")
    if link.claim.username != username:
        raise InvalidChain(f"Claim is for {link.claim.username!r}, not {username!r}")
    if len(link.claim.storage_providers) > 1:
        raise InvalidChain(f"More than 1 storage provider in claim for {username}")
    verify_claim(link.claim, link.owner)


def validate_key_change(link: UserPublicKeyLink, next_owner: PublicKeyHash) -> None:
    """The link's key-change proof is its owner's signature over `next_owner`'s CBOR (InvalidChain)."""
    if link.key_change_proof is None:
        raise InvalidChain(f"Missing key change proof in claim chain for {link.claim.username}")
    key = _owner_key(link.owner, link.claim.username)
    try:
        target = PublicKeyHash.deserialize(key.unsign(link.key_change_proof))
    except (BadSignature, DecodeError):
        raise InvalidChain(f"Invalid key change proof in claim chain for {link.claim.username}") from None
    if target != next_owner:
        raise InvalidChain(f"Key change proof for {link.claim.username} names a different next key")


def validate_chain(chain: Sequence[UserPublicKeyLink], username: str) -> None:
    """Raise InvalidChain unless `chain` is a valid claim chain for `username` (see module docstring)."""
    n = len(chain)
    if n == 0:
        raise InvalidChain(f"Empty claim chain for {username}")
    if n > MAX_CHAIN_LINKS:
        raise InvalidChain(f"Claim chain for {username} has more than {MAX_CHAIN_LINKS} links")
    for i, link in enumerate(chain):
        providers = link.claim.storage_providers
        if i == n - 1:
            if len(providers) != 1:
                raise InvalidChain(f"The last claim for {username} must name exactly 1 storage provider")
        else:
            if providers:
                raise InvalidChain(f"Non empty storage providers in old claim for {username}")
            if link.claim.expiry != LocalDate.MAX:
                raise InvalidChain(f"Superseded claim for {username} must never expire")
    for i, link in enumerate(chain):
        validate_claim(link, username)
        if i < n - 1:
            validate_key_change(link, chain[i + 1].owner)


def is_valid_chain(chain: Sequence[UserPublicKeyLink], username: str) -> bool:
    """Boolean form of `validate_chain` (Java `validChain`)."""
    try:
        validate_chain(chain, username)
    except InvalidChain:
        return False
    return True


def merge(
    existing: Sequence[UserPublicKeyLink], updated: Sequence[UserPublicKeyLink], username: str
) -> Chain:
    """The chain after applying `updated` to `existing` (Java `merge`), or InvalidChain and subclasses.

    `existing` is the stored chain (empty for a new name), `updated` what a client sent: its full new
    chain, or just the links from the current last one on.
    """
    old = tuple(existing)
    new = tuple(updated)
    if not new:
        raise InvalidChain(f"Empty claim chain for {username}")
    if not old:
        validate_chain(new, username)
        return new
    if new == old:
        return old
    shared = 0
    for a, b in zip(new, old, strict=False):
        if a != b:
            break
        shared += 1
    tail = new[shared:]
    if not tail:
        raise InvalidChain(f"Claim chain update for {username} is an older prefix of the current chain")
    current_last = old[-1]
    if tail[0].claim.expiry < current_last.claim.expiry:
        raise ExpiryMovedBack("New claim chain expiry before existing!")
    if tail[0].owner != current_last.owner:
        if len(tail) == 1:
            raise UserAlreadyExists("User already exists: Invalid key change attempt!")
        raise UserAlreadyExists("Different keys in merge chains intersection!")
    previous = {link.owner for link in old[:-1]}
    if tail[-1].owner in previous:
        raise KeyReuse("You cannot reuse a previous password!")
    seen = previous | {current_last.owner}
    for link in tail[1:]:
        if link.owner in seen:
            raise KeyReuse("You cannot reuse a previous password!")
        seen.add(link.owner)
    result = old[:-1] + tail
    validate_chain(result, username)
    return result


@dataclass(frozen=True)
class RequiredDifficulty:
    """A PKI write refused for too little proof of work; the client retries at this difficulty."""

    difficulty: int


def update_chain(
    username: str,
    existing: Sequence[UserPublicKeyLink],
    update: Sequence[UserPublicKeyLink],
    proof: ProofOfWork,
    difficulty: DifficultyGenerator,
    now_millis: int,
    *,
    rate_limit: bool = True,
) -> Chain | RequiredDifficulty:
    """The PKI node's `updateChain` decision, in Java's order (`IpfsCoreNode.updateChain`): the name must
    be claimable (InvalidUsername); new names and chains of more than 10 links pay proof of work over
    the update as sent (an accepted proof counts towards the signup rate even if the merge then fails);
    then `merge`. Returns the chain to store (then CAS it into the PKI CHAMP and commit), or the
    difficulty to retry with. `signup` is this with the one-link update, after `check_signup_host`.
    """
    validate_username(username)
    if rate_limit and requires_proof_of_work(existing):
        required = difficulty.admit(proof, proof_of_work_data(update), now_millis)
        if required is not None:
            return RequiredDifficulty(required)
    return merge(existing, update, username)


# ---- reading a chain ------------------------------------------------------------------------------


def current_owner(chain: Sequence[UserPublicKeyLink]) -> PublicKeyHash | None:
    """The identity key that holds the name now (`getPublicKeyHash`), None for no chain."""
    return chain[-1].owner if chain else None


def home_server(chain: Sequence[UserPublicKeyLink]) -> Cid | None:
    """The current storage provider (`getHomeServer`), None for no chain or no provider."""
    if not chain or not chain[-1].claim.storage_providers:
        return None
    return chain[-1].claim.storage_providers[0]


def expiry(chain: Sequence[UserPublicKeyLink]) -> LocalDate:
    """The current claim's expiry (`getUsernameClaimExpiry`)."""
    if not chain:
        raise ValueError("an empty chain has no expiry")
    return chain[-1].claim.expiry


def is_expired(chain: Sequence[UserPublicKeyLink], today: LocalDate) -> bool:
    """Java `isExpiredClaim` of the last link: its expiry is before today."""
    return expiry(chain) < today


def same_peer(a: Cid, b: Cid) -> bool:
    """Whether two peer ids name the same peer (Java compares `bareMultihash()`)."""
    return a.multihash == b.multihash


def check_signup_host(link: UserPublicKeyLink, our_ids: Iterable[Cid]) -> None:
    """A home server only accepts signups that name it (MirrorCoreNode: "Trying to signup to wrong host!")."""
    providers = link.claim.storage_providers
    if not providers:
        raise InvalidChain(f"The claim for {link.claim.username} names no storage provider")
    if not any(same_peer(providers[0], ours) for ours in our_ids):
        raise PkiError(f"Trying to signup to wrong host! {providers[0]}")


# ---- proof of work --------------------------------------------------------------------------------


def proof_of_work_data(update: Sequence[UserPublicKeyLink]) -> bytes:
    """What a chain update's proof of work is computed over: the CBOR list of the update as sent."""
    return serialize_chain(update)


def requires_proof_of_work(existing: Sequence[UserPublicKeyLink]) -> bool:
    """New names always cost work; later updates only once a chain has more than 10 links."""
    return not existing or len(existing) > MAX_FREE_IDENTITY_CHANGES


# ---- dates: creation and renewal ------------------------------------------------------------------


def initial_expiry(today: LocalDate) -> LocalDate:
    """Expiry of a new or renewed claim: today + 2 months."""
    return today.plus_months(INITIAL_EXPIRY_MONTHS)


def needs_renewal(chain: Sequence[UserPublicKeyLink], today: LocalDate) -> bool:
    """`ensureUsernameClaimRenewed`: renew when the claim expires within a month."""
    return expiry(chain) < today.plus_months(RENEW_WHEN_MONTHS_LEFT)


def renew(
    chain: Sequence[UserPublicKeyLink], signer: SigningPrivateKeyAndPublicHash, new_expiry: LocalDate
) -> Chain:
    """`renewUsernameClaim`: re-sign the last claim (same providers) with a later expiry; send the result
    to `updateChain`."""
    if not chain:
        raise ValueError("cannot renew an empty chain")
    last = chain[-1]
    claim = Claim.build(last.claim.username, signer.secret, new_expiry, last.claim.storage_providers)
    return (*tuple(chain[:-1]), UserPublicKeyLink(signer.public_key_hash, claim))


def ensure_renewed(
    chain: Sequence[UserPublicKeyLink], signer: SigningPrivateKeyAndPublicHash, today: LocalDate
) -> Chain | None:
    """The renewed chain to send if the claim needs renewal (expiry today + 2 months), else None."""
    if not needs_renewal(chain, today):
        return None
    return renew(chain, signer, initial_expiry(today))


def update_host(
    chain: Sequence[UserPublicKeyLink],
    signer: SigningPrivateKeyAndPublicHash,
    new_host: Cid,
    today: LocalDate,
) -> Chain:
    """`updateHostInPki`: re-sign the last claim naming `new_host` (as a CIDv1 libp2p-key over its
    multihash), expiry today + 2 months."""
    if not chain:
        raise ValueError("cannot update the host of an empty chain")
    host = Cid.v1(CODEC_LIBP2P_KEY, new_host.multihash)
    claim = Claim.build(chain[-1].claim.username, signer.secret, initial_expiry(today), (host,))
    return (*tuple(chain[:-1]), UserPublicKeyLink(signer.public_key_hash, claim))


# ---- migration ------------------------------------------------------------------------------------


def build_migration_chain(
    existing: Sequence[UserPublicKeyLink], new_storage_id: Cid, signer: SecretSigningKey
) -> Chain:
    """`Migrate.buildMigrationChain`: the last claim re-signed naming the new server, expiry + 1 day."""
    if not existing:
        raise ValueError("cannot migrate an empty chain")
    last = existing[-1]
    try:
        new_expiry = last.claim.expiry.plus_days(MIGRATION_EXTRA_DAYS)
    except ValueError:
        raise InvalidChain("The current claim's expiry cannot be extended for a migration") from None
    claim = Claim.build(last.claim.username, signer, new_expiry, (new_storage_id,))
    return (*tuple(existing[:-1]), last.with_claim(claim))


def check_migration(
    existing: Sequence[UserPublicKeyLink], new_chain: Sequence[UserPublicKeyLink], username: str
) -> Chain:
    """A server's checks before a migration (`MirrorCoreNode.migrateUser`): the new claim's expiry is not
    earlier and the new chain merges; returns the merged chain."""
    if not existing:
        raise InvalidChain(f"No existing claim chain for {username}")
    if not new_chain:
        raise InvalidChain(f"Empty migration chain for {username}")
    if existing[-1].claim.expiry > new_chain[-1].claim.expiry:
        raise ExpiryMovedBack("Migration claim has earlier expiry than current one!")
    return merge(existing, new_chain, username)


__all__ = [
    "INITIAL_EXPIRY_MONTHS",
    "MAX_FREE_IDENTITY_CHANGES",
    "MIGRATION_EXTRA_DAYS",
    "RENEW_WHEN_MONTHS_LEFT",
    "RequiredDifficulty",
    "build_migration_chain",
    "check_migration",
    "check_signup_host",
    "current_owner",
    "ensure_renewed",
    "expiry",
    "home_server",
    "initial_expiry",
    "is_expired",
    "is_valid_chain",
    "merge",
    "needs_renewal",
    "proof_of_work_data",
    "renew",
    "requires_proof_of_work",
    "same_peer",
    "update_chain",
    "update_host",
    "validate_chain",
    "validate_claim",
    "validate_key_change",
    "verify_claim",
]
