"""Deterministic keys, peer ids and chains for PKI and account tests."""

from __future__ import annotations

import functools

from nabu_py.multiformats import multihash
from nabu_py.multiformats.cid import CODEC_LIBP2P_KEY, Cid
from peergos_node.accounts.entry_points import UserStaticData
from peergos_node.accounts.login_data import LoginData
from peergos_node.corenode.claims import Chain, create_chain, create_initial
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.writes import BlockWrite, PointerWrite
from peergos_node.crypto.bat import Bat, BatId, BatWithId
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import PaddedCipherText, SymmetricKey
from peergos_node.mutable.pointer_update import PointerUpdate

TODAY = LocalDate(2026, 3, 1)
EXPIRY = LocalDate(2026, 5, 1)


@functools.lru_cache(maxsize=256)
def keypair(name: str) -> SigningKeyPair:
    """A key pair derived from a name."""
    return SigningKeyPair.random(DeterministicRng(f"pki-test/{name}"))


def signer(name: str) -> SigningPrivateKeyAndPublicHash:
    """A signer (secret key and public key hash) derived from a name."""
    return SigningPrivateKeyAndPublicHash.of(keypair(name))


def peer(name: str) -> Cid:
    """A libp2p Ed25519 peer id (CIDv1 libp2p-key, identity multihash of the protobuf key)."""
    pk = keypair(f"peer/{name}").public.key
    return Cid.v1(CODEC_LIBP2P_KEY, multihash.wrap(multihash.IDENTITY, b"\x08\x01\x12\x20" + pk))


def initial(
    who: str = "alice", username: str = "alice", expiry: LocalDate = EXPIRY, host: str = "home"
) -> Chain:
    """A signup chain of `who` for `username`."""
    return create_initial(signer(who), username, expiry, (peer(host),))


def key_change(
    existing: Chain,
    old: str,
    new: str,
    username: str = "alice",
    expiry: LocalDate = EXPIRY,
    host: str = "home",
) -> Chain:
    """`existing` with its last link replaced by a key change from `old` to `new`."""
    return existing[:-1] + create_chain(signer(old), signer(new), username, expiry, (peer(host),))


def static_data(seed: str = "static") -> UserStaticData:
    """An encrypted (dummy) login blob."""
    rng = DeterministicRng(f"pki-test/static/{seed}")
    key = SymmetricKey.random(rng)
    return UserStaticData(PaddedCipherText.encrypt(key, b"\xa0", 4096, rng))


def login_data(username: str = "alice", with_update: bool = False) -> LoginData:
    """Login data read by `username`'s derived login key; optionally with a password-change update."""
    update = None
    if with_update:
        writer = keypair(f"{username}/identity")
        block = BlockWrite.build(writer, b"\xa1ay\x01", False)
        target = block.verify()
        update = (
            block,
            PointerWrite(
                PublicKeyHash.of(writer.public), writer.sign(PointerUpdate(None, target, 2).serialize())
            ),
        )
    return LoginData(username, static_data(username), keypair(f"{username}/login").public, update)


def mirror_bat(seed: str = "bat") -> BatWithId:
    """A mirror BAT with its sha256 id."""
    bat = Bat.random(DeterministicRng(f"pki-test/bat/{seed}"))
    return BatWithId(bat, BatId.sha256(bat))
