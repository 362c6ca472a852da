"""Claim-chain rules: validity, the merge accept/reject matrix, renewal, host change and migration."""

from __future__ import annotations

import dataclasses
import math

import pytest

from nabu_py.multiformats.cid import CODEC_LIBP2P_KEY, Cid
from peergos_node.corenode.chain import (
    MAX_FREE_IDENTITY_CHANGES,
    RequiredDifficulty,
    build_migration_chain,
    check_migration,
    check_signup_host,
    current_owner,
    ensure_renewed,
    home_server,
    initial_expiry,
    is_expired,
    is_valid_chain,
    merge,
    needs_renewal,
    proof_of_work_data,
    renew,
    requires_proof_of_work,
    update_chain,
    update_host,
    validate_chain,
)
from peergos_node.corenode.claims import Chain, Claim, UserPublicKeyLink, create_chain, serialize_chain
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.difficulty import DifficultyGenerator
from peergos_node.corenode.errors import (
    ExpiryMovedBack,
    InvalidChain,
    InvalidUsername,
    KeyReuse,
    PkiError,
    UserAlreadyExists,
)
from peergos_node.crypto.pow import ProofOfWork
from tests.helpers.pki import EXPIRY, TODAY, initial, key_change, peer, signer

LATER = LocalDate(2026, 7, 1)
EARLIER = LocalDate(2026, 4, 1)


def _relink(link: UserPublicKeyLink, **changes: object) -> UserPublicKeyLink:
    return dataclasses.replace(link, **changes)  # type: ignore[arg-type]


def _reclaim(link: UserPublicKeyLink, **changes: object) -> UserPublicKeyLink:
    return link.with_claim(dataclasses.replace(link.claim, **changes))  # type: ignore[arg-type]


# ---- validity ------------------------------------------------------------------------------------


def test_valid_chains() -> None:
    one = initial()
    validate_chain(one, "alice")
    two = key_change(one, "alice", "alice2")
    validate_chain(two, "alice")
    three = key_change(two, "alice2", "alice3")
    validate_chain(three, "alice")
    assert len(three) == 3 and is_valid_chain(three, "alice")


def _signed(
    who: str, username: str = "alice", expiry: LocalDate = EXPIRY, providers: tuple[Cid, ...] = ()
) -> Claim:
    return Claim.build(username, signer(who).secret, expiry, providers)


INVALID: list[tuple[str, Chain, str]] = [
    ("empty chain", (), "Empty"),
    ("last claim without provider", (_relink(initial()[0], claim=_signed("alice")),), "exactly 1"),
    (
        "last claim with two providers",
        (_relink(initial()[0], claim=_signed("alice", providers=(peer("a"), peer("b")))),),
        "exactly 1",
    ),
    (
        "retired link names a provider",
        (
            _relink(
                key_change(initial(), "alice", "alice2")[0],
                claim=_signed("alice", expiry=LocalDate.MAX, providers=(peer("home"),)),
            ),
            key_change(initial(), "alice", "alice2")[1],
        ),
        "Non empty storage providers",
    ),
    (
        "retired link expires",
        (
            _relink(key_change(initial(), "alice", "alice2")[0], claim=_signed("alice", expiry=LATER)),
            key_change(initial(), "alice", "alice2")[1],
        ),
        "never expire",
    ),
    (
        "missing key change proof",
        (
            _relink(key_change(initial(), "alice", "alice2")[0], key_change_proof=None),
            key_change(initial(), "alice", "alice2")[1],
        ),
        "Missing key change proof",
    ),
    (
        "key change proof names another key",
        key_change(initial(), "alice", "alice2")[:1] + initial("alice3"),
        "different next key",
    ),
    (
        "key change proof signed by another key",
        (
            _relink(
                key_change(initial(), "alice", "alice2")[0],
                key_change_proof=signer("mallory").secret.sign(signer("alice2").public_key_hash.serialize()),
            ),
            key_change(initial(), "alice", "alice2")[1],
        ),
        "Invalid key change proof",
    ),
    (
        "claim signed by a key that is not the owner",
        (_relink(initial()[0], owner=signer("mallory").public_key_hash),),
        "signature",
    ),
    ("claim for another name", initial(username="bob"), "not 'alice'"),
    ("CBOR username differs from the signed one", (_reclaim(initial()[0], username="alicf"),), "not 'alice'"),
    ("CBOR expiry differs from the signed one", (_reclaim(initial()[0], expiry=LATER),), "does not match"),
    (
        "CBOR provider differs from the signed one",
        (_reclaim(initial()[0], storage_providers=(peer("evil"),)),),
        "does not match",
    ),
    (
        "signed contents truncated",
        (_reclaim(initial()[0], signed_contents=initial()[0].claim.signed_contents[:-1]),),
        "signature",
    ),
    (
        "signed payload with trailing bytes",
        (
            _reclaim(
                initial()[0],
                signed_contents=signer("alice").secret.sign(initial()[0].claim.payload + b"\x00"),
            ),
        ),
        "payload",
    ),
]


@pytest.mark.parametrize(("what", "chain", "message"), INVALID, ids=[w for w, _, _ in INVALID])
def test_invalid_chains(what: str, chain: Chain, message: str) -> None:
    with pytest.raises(InvalidChain, match=message):
        validate_chain(chain, "alice")
    assert not is_valid_chain(chain, "alice")


@pytest.mark.parametrize("name", ["al ice", "al\tice", "al\nice", "a" * 65])
def test_names_java_never_validates(name: str) -> None:
    chain = initial(username=name)
    with pytest.raises(InvalidChain, match="Invalid username"):
        validate_chain(chain, name)


# ---- merge: accepted -----------------------------------------------------------------------------


def test_first_signup_is_validated_and_accepted() -> None:
    chain = initial()
    assert merge((), chain, "alice") == chain
    forged = (_reclaim(chain[0], expiry=LATER),)
    with pytest.raises(InvalidChain):
        merge((), forged, "alice")
    with pytest.raises(InvalidChain):
        merge((), chain, "bob")
    with pytest.raises(InvalidChain, match="Empty"):
        merge(chain, (), "alice")


def test_same_chain_is_a_no_op() -> None:
    chain = initial()
    assert merge(chain, chain, "alice") == chain


def test_renewal_moves_expiry_forward() -> None:
    chain = initial()
    renewed = renew(chain, signer("alice"), LATER)
    assert merge(chain, renewed, "alice") == renewed
    same_day = renew(chain, signer("alice"), EXPIRY)  # re-signed, same expiry: allowed
    assert merge(chain, same_day, "alice") == same_day


def test_key_changes_full_chain_or_tail_only() -> None:
    one = initial()
    two = key_change(one, "alice", "alice2")
    assert merge(one, two, "alice") == two
    three = key_change(two, "alice2", "alice3")
    assert merge(two, three, "alice") == three
    assert merge(two, three[1:], "alice") == three  # only the links from the current last one on
    renewed = renew(three, signer("alice3"), LATER)
    assert merge(three, renewed, "alice") == renewed
    assert merge(three, renewed[-1:], "alice") == renewed


# ---- merge: refused ------------------------------------------------------------------------------


def test_expiry_moving_back_is_refused() -> None:
    chain = renew(initial(), signer("alice"), LATER)
    older = renew(chain, signer("alice"), EARLIER)
    with pytest.raises(ExpiryMovedBack, match="New claim chain expiry before existing!"):
        merge(chain, older, "alice")


def test_replaying_an_older_renewal_is_refused() -> None:
    first = initial()
    renewed = renew(first, signer("alice"), LATER)
    with pytest.raises(ExpiryMovedBack):
        merge(renewed, first, "alice")


def test_replaying_the_signup_chain_after_a_key_change_is_refused() -> None:
    signup = initial(expiry=LATER)
    changed = key_change(signup, "alice", "alice2", expiry=EXPIRY)
    with pytest.raises(UserAlreadyExists, match="User already exists"):
        merge(changed, signup, "alice")


def test_replaying_an_older_chain_prefix_is_refused() -> None:
    changed = key_change(initial(), "alice", "alice2")
    with pytest.raises(InvalidChain, match="older prefix"):
        merge(changed, changed[:1], "alice")


def test_someone_else_claiming_a_taken_name() -> None:
    alice = initial()
    with pytest.raises(UserAlreadyExists, match="User already exists: Invalid key change attempt!"):
        merge(alice, initial("mallory", expiry=LATER), "alice")
    hijack = create_chain(signer("mallory"), signer("mallory2"), "alice", LATER, (peer("home"),))
    with pytest.raises(UserAlreadyExists, match="Different keys"):
        merge(alice, hijack, "alice")


def test_key_change_signed_by_someone_else_is_refused() -> None:
    alice = initial()
    forged_link0, link1 = create_chain(signer("alice"), signer("mallory"), "alice", LATER, (peer("home"),))
    forged = (
        _relink(forged_link0, key_change_proof=signer("mallory").secret.sign(link1.owner.serialize())),
        link1,
    )
    with pytest.raises(InvalidChain, match="key change proof"):
        merge(alice, forged, "alice")


def test_reusing_a_previous_key_is_refused() -> None:
    two = key_change(initial(), "alice", "alice2")
    back = key_change(two, "alice2", "alice")
    with pytest.raises(KeyReuse, match="You cannot reuse a previous password!"):
        merge(two, back, "alice")
    three = key_change(two, "alice2", "alice3")
    via = three[:-1] + create_chain(signer("alice3"), signer("alice"), "alice", EXPIRY, ())[:1]
    via = via + create_chain(signer("alice"), signer("alice4"), "alice", EXPIRY, (peer("home"),))
    with pytest.raises(KeyReuse):
        merge(two, via[1:], "alice")  # alice3 -> alice (reused in the middle) -> alice4
    to_self = key_change(two, "alice2", "alice2")
    with pytest.raises(KeyReuse):
        merge(two, to_self, "alice")


def test_update_filed_under_another_name_is_refused() -> None:
    alice = initial()
    with pytest.raises(InvalidChain):
        merge(alice, renew(alice, signer("alice"), LATER), "bob")


def test_update_with_invalid_signature_is_refused() -> None:
    alice = initial()
    renewed = renew(alice, signer("alice"), LATER)
    tampered = (_reclaim(renewed[0], storage_providers=(peer("evil"),)),)
    with pytest.raises(InvalidChain):
        merge(alice, tampered, "alice")


# ---- dates ---------------------------------------------------------------------------------------


def test_expiry_renewal_rules() -> None:
    assert initial_expiry(TODAY) == LocalDate(2026, 5, 1)
    chain = initial(expiry=LocalDate(2026, 4, 1))
    assert not needs_renewal(chain, TODAY)  # exactly one month left
    assert needs_renewal(chain, LocalDate(2026, 3, 2))
    assert ensure_renewed(chain, signer("alice"), TODAY) is None
    renewed = ensure_renewed(chain, signer("alice"), LocalDate(2026, 3, 2))
    assert renewed is not None and renewed[-1].claim.expiry == LocalDate(2026, 5, 2)
    assert renewed[-1].claim.storage_providers == chain[-1].claim.storage_providers
    assert merge(chain, renewed, "alice") == renewed
    assert not is_expired(chain, LocalDate(2026, 4, 1)) and is_expired(chain, LocalDate(2026, 4, 2))


def test_update_host_rewrites_the_provider_as_libp2p_key_cid() -> None:
    chain = key_change(initial(), "alice", "alice2")
    new_host = Cid.v1(0x70, peer("new").multihash)  # any codec: only the multihash counts
    updated = update_host(chain, signer("alice2"), new_host, TODAY)
    (provider,) = updated[-1].claim.storage_providers
    assert provider.codec == CODEC_LIBP2P_KEY and provider.multihash == peer("new").multihash
    assert updated[-1].claim.expiry == initial_expiry(TODAY)
    assert updated[:-1] == chain[:-1]
    assert merge(chain, updated, "alice") == updated


def test_migration_chain() -> None:
    chain = key_change(initial(), "alice", "alice2")
    moved = build_migration_chain(chain, peer("new"), signer("alice2").secret)
    assert moved[-1].claim.expiry == EXPIRY.plus_days(1)
    assert moved[-1].claim.storage_providers == (peer("new"),)
    assert moved[-1].owner == chain[-1].owner and moved[:-1] == chain[:-1]
    assert check_migration(chain, moved, "alice") == moved
    assert merge(chain, moved, "alice") == moved
    # the old chain can never be replayed over the migration (that is why it adds a day)
    with pytest.raises(ExpiryMovedBack):
        merge(moved, chain, "alice")
    back = build_migration_chain(moved, peer("home"), signer("alice2").secret)
    assert merge(moved, back, "alice") == back
    with pytest.raises(ExpiryMovedBack, match="Migration claim has earlier expiry"):
        check_migration(moved, chain, "alice")
    with pytest.raises(InvalidChain):
        build_migration_chain(initial(expiry=LocalDate.MAX), peer("new"), signer("alice").secret)


# ---- reading chains, signup host, proof of work ----------------------------------------------------


def test_chain_accessors() -> None:
    chain = key_change(initial(), "alice", "alice2")
    assert current_owner(chain) == signer("alice2").public_key_hash
    assert home_server(chain) == peer("home")
    assert current_owner(()) is None and home_server(()) is None


def test_signup_only_on_the_named_host() -> None:
    (link,) = initial()
    check_signup_host(link, [peer("other"), Cid.v1(0x55, peer("home").multihash)])
    with pytest.raises(PkiError, match="Trying to signup to wrong host!"):
        check_signup_host(link, [peer("other")])


def test_proof_of_work_rules() -> None:
    chain = initial()
    assert proof_of_work_data(chain) == serialize_chain(chain)
    assert requires_proof_of_work(())
    long_chain = tuple(chain * MAX_FREE_IDENTITY_CHANGES)
    assert not requires_proof_of_work(long_chain)
    assert requires_proof_of_work(long_chain + chain)


def test_cbor_username_must_match_the_signed_one() -> None:
    renamed = (_reclaim(initial()[0], username="alicf"),)
    with pytest.raises(InvalidChain, match="does not match"):
        validate_chain(renamed, "alicf")


# ---- the PKI node's decision ----------------------------------------------------------------------

NOW = 1_777_593_600_000


def test_update_chain_charges_work_for_new_names() -> None:
    gen = DifficultyGenerator(NOW, 1000)
    chain = initial()
    weak = ProofOfWork.of_counter(0)
    assert update_chain("alice", (), chain, weak, gen, NOW) == chain  # difficulty 0 while idle
    assert gen.current_difficulty == 0
    # the accepted signup raised the difficulty: the next new name must do real work
    bob = initial("bob", "bob")
    refused = update_chain("bob", (), bob, weak, gen, NOW + 1)
    assert refused == RequiredDifficulty(25)


def test_update_chain_accepts_enough_work_and_skips_it_for_key_changes() -> None:
    gen = DifficultyGenerator(NOW, 1000)
    gen.add_event()
    alice = initial()
    gen_low = DifficultyGenerator(NOW, 864_000)  # one signup per 0.1 s allowed; two in one tick is over
    gen_low.add_event()
    gen_low.add_event()
    gen_low.update_time(NOW)
    required = gen_low.current_difficulty
    assert required == int(2 * math.log(2 * 2 / 1.0) + 11) == 13
    weak = next(
        p
        for p in map(ProofOfWork.of_counter, range(100))
        if not p.satisfies(proof_of_work_data(alice), required)
    )
    assert update_chain("alice", (), alice, weak, gen_low, NOW) == RequiredDifficulty(required)
    proof = ProofOfWork.find(proof_of_work_data(alice), required)
    assert update_chain("alice", (), alice, proof, gen_low, NOW) == alice
    changed = key_change(alice, "alice", "alice2")
    # key changes of short chains are free, even while new names are expensive
    assert update_chain("alice", alice, changed, ProofOfWork.of_counter(0), gen, NOW) == changed


def test_update_chain_checks_the_name_first() -> None:
    gen = DifficultyGenerator(NOW, 1000)
    with pytest.raises(InvalidUsername, match="reserved"):
        update_chain("admin", (), initial(username="admin"), ProofOfWork.of_counter(0), gen, NOW)
    with pytest.raises(UserAlreadyExists):
        update_chain("alice", initial(), initial("mallory"), ProofOfWork.of_counter(0), gen, NOW)


def test_admit_counts_only_accepted_proofs() -> None:
    gen = DifficultyGenerator(NOW, 1000)
    data = b"chain"
    assert gen.admit(ProofOfWork.of_counter(0), data, NOW) is None
    assert gen.current_difficulty == 0  # computed before the event was counted
    gen.update_time(NOW)
    assert gen.current_difficulty == 25
    assert gen.admit(ProofOfWork.of_counter(0), data, NOW) == 25
    gen.update_time(NOW)
    assert gen.current_difficulty == 25  # the refused attempt was not counted
