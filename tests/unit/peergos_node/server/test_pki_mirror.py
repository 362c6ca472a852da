"""The PKI mirror follows a PKI node, verifying every pointer, block and chain; it refuses anything that
is not append-only (or is tampered with) and then keeps its state."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from nabu_py.blockstore import open_blockstore
from nabu_py.errors import BlockNotFound
from nabu_py.multiformats.cid import Cid
from peergos_node.champ import Champ, blake2b_hasher
from peergos_node.champ.hashers import pki_key
from peergos_node.corenode.chain import RequiredDifficulty, initial_expiry, proof_of_work_data
from peergos_node.corenode.claims import UserPublicKeyLink, create_initial, serialize_chain
from peergos_node.corenode.dates import LocalDate
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.server.db import Database
from peergos_node.server.home_storage import HomeStorage
from peergos_node.server.local_writer import LocalWriter
from peergos_node.server.pki import PkiKeys, PkiNode, init_pki
from peergos_node.server.pki_mirror import MirrorCoreNode, MirrorRejected
from peergos_node.server.stores.metadata import MemoryBlockMetadataStore
from peergos_node.server.stores.pointers import MemoryPointerStore
from peergos_node.server.stores.transactions import MemoryTransactionStore
from peergos_node.server.stores.usage import MemoryUsageStore

PEER = Cid.v1(0x72, bytes.fromhex("002408011220") + bytes(32))
TODAY = LocalDate.from_epoch_seconds(time.time())
RNG = DeterministicRng(b"mirror")


class LocalRemote:
    """The PKI node's server, reached in-process (the daemon uses HTTP over p2p)."""

    def __init__(self, storage: HomeStorage, node: PkiNode) -> None:
        self.storage = storage
        self.node = node
        self.flip = False
        self.stale_pointer: bytes | None = None

    def get_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> bytes | None:
        if self.stale_pointer is not None and writer == self.node.keys.pki_hash:
            return self.stale_pointer
        return self.storage.get_pointer(writer)

    def get_block(self, cid: Cid) -> bytes | None:
        try:
            data = self.storage.blocks.get(cid)
        except BlockNotFound:
            return None
        return data[:-1] + bytes([data[-1] ^ 1]) if self.flip else data

    def update_chain(
        self, username: str, chain: Sequence[UserPublicKeyLink], proof: ProofOfWork, token: str
    ) -> RequiredDifficulty | None:
        return self.node.update_chain(username, chain, proof, token)


@pytest.fixture
def pki() -> LocalRemote:
    storage = HomeStorage(
        PEER,
        open_blockstore("memory"),
        MemoryBlockMetadataStore(),
        MemoryTransactionStore(),
        MemoryPointerStore(),
        MemoryUsageStore(),
    )
    keys = PkiKeys(SigningKeyPair.random(RNG), SigningKeyPair.random(RNG))
    init_pki(storage, keys, PEER, 1 << 30, TODAY)
    return LocalRemote(storage, PkiNode(storage, keys, max_daily_signups=10**9))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.sqlite(tmp_path / "mirror.sqlite")
    yield d
    d.close()


def claim(name: str) -> tuple[SigningKeyPair, tuple[UserPublicKeyLink, ...], ProofOfWork]:
    pair = SigningKeyPair.random(RNG)
    chain = create_initial(SigningPrivateKeyAndPublicHash.of(pair), name, initial_expiry(TODAY), [PEER])
    return pair, chain, ProofOfWork.find(proof_of_work_data(chain), 0)


def test_mirror_follows_and_forwards(pki: LocalRemote, db: Database) -> None:
    _a, alice, proof = claim("alice")
    assert pki.node.update_chain("alice", alice, proof, "") is None
    mirror = MirrorCoreNode(db, pki, pki.node.keys.peergos_hash)
    assert mirror.sync() == 2  # peergos and alice
    assert mirror.get_chain("alice") == alice and mirror.get_public_key("alice") == alice[0].owner
    assert mirror.sync() == 0
    _b, bob, bproof = claim("bob")
    assert mirror.update_chain("bob", bob, bproof, "") is None, "writes are forwarded to the PKI node"
    assert mirror.get_chain("bob") == bob and pki.node.get_chain("bob") == bob
    # state survives a restart of the mirror
    again = MirrorCoreNode(db, pki, pki.node.keys.peergos_hash)
    assert again.get_usernames("") == ["alice", "bob", "peergos"]


def test_non_append_only_change_is_refused(pki: LocalRemote, db: Database) -> None:
    _a, alice, proof = claim("alice")
    pki.node.update_chain("alice", alice, proof, "")
    mirror = MirrorCoreNode(db, pki, pki.node.keys.peergos_hash)
    mirror.sync()
    before = mirror.state()
    # a malicious PKI node rewrites alice's chain to another key, bypassing the PKI's own rules
    _m, hijack, _p = claim("alice")
    writer = LocalWriter(pki.storage, pki.node.keys.peergos_hash, pki.node.keys.pki)
    wd, _cid, _seq = writer.current()
    assert wd is not None and wd.tree is not None
    champ = Champ(writer, blake2b_hasher)
    old = champ.get(wd.tree, pki_key("alice"))
    root = champ.put(wd.tree, pki_key("alice"), old, writer.put(serialize_chain(hijack)))
    writer.commit(wd.with_tree(root))
    with pytest.raises(MirrorRejected, match="User already exists"):
        mirror.sync()
    assert mirror.get_chain("alice") == alice and mirror.state() == before


def test_tampered_blocks_and_rollbacks_are_refused(pki: LocalRemote, db: Database) -> None:
    mirror = MirrorCoreNode(db, pki, pki.node.keys.peergos_hash)
    mirror.sync()
    old_pointer = pki.storage.get_pointer(pki.node.keys.pki_hash)
    _a, alice, proof = claim("alice")
    pki.node.update_chain("alice", alice, proof, "")
    pki.flip = True
    with pytest.raises(MirrorRejected):
        mirror.sync()
    assert mirror.get_chain("alice") == ()
    pki.flip = False
    mirror.sync()
    assert mirror.get_chain("alice") == alice
    pki.stale_pointer = old_pointer
    with pytest.raises(MirrorRejected, match="went back"):
        mirror.sync()
    assert mirror.get_chain("alice") == alice
