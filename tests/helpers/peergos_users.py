"""Build Peergos users the way a client does (keys, owned-key CHAMP, WriterData, signed blocks and
pointers) against a HomeStorage, for server tests. Mirrors what signup does (spec/peergos.md §2.4)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ import Champ, MemoryBlockStore, identity_hasher
from peergos_node.champ.hashers import owned_key_map_key
from peergos_node.crypto.bat import BatId
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import sign_pointer
from peergos_node.mutable.writer_data import WriterData
from peergos_node.server.home_storage import HomeStorage


def sign_block(pair: SigningKeyPair, data: bytes) -> bytes:
    """A writer's block signature: attached Ed25519 over sha256(block)."""
    return pair.sign(hashlib.sha256(data).digest())


@dataclass
class WriterState:
    """A writer key with its current pointer state."""

    pair: SigningKeyPair
    target: Cid | None = None
    sequence: int | None = None

    @property
    def hash(self) -> PublicKeyHash:
        return PublicKeyHash.of(self.pair.public)

    def next_update(self, new_target: Cid | None) -> bytes:
        update = PointerUpdate(self.target, new_target, PointerUpdate.next_sequence(self.sequence))
        return sign_pointer(self.pair, update)

    def committed(self, new_target: Cid | None) -> None:
        self.sequence = PointerUpdate.next_sequence(self.sequence)
        self.target = new_target


class RecordingBlockStore(MemoryBlockStore):
    """A client's local block buffer: remembers every block written since the last upload, because a
    client must upload (and so register in its transaction) every block of a commit, even one whose
    bytes the server may already hold from an earlier, since-unreachable state."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[Cid, bytes] = {}

    def put(self, data: bytes) -> Cid:
        cid = super().put(data)
        self.written[cid] = bytes(data)
        return cid


@dataclass
class PeergosUser:
    """An identity key owning one filesystem writer."""

    username: str
    identity: WriterState
    writer: WriterState
    blocks: RecordingBlockStore = field(default_factory=RecordingBlockStore)

    @classmethod
    def create(cls, username: str, rng: Rng | None = None) -> PeergosUser:
        rng = rng or DeterministicRng(username.encode())
        return cls(username, WriterState(SigningKeyPair.random(rng)), WriterState(SigningKeyPair.random(rng)))

    @property
    def owner(self) -> PublicKeyHash:
        return self.identity.hash

    def put_dag(self, storage: HomeStorage, signer: WriterState, tid: str, blocks: list[bytes]) -> list[Cid]:
        return storage.put_blocks(
            self.owner, signer.hash, [sign_block(signer.pair, b) for b in blocks], blocks, tid, raw=False
        )

    def signup(self, storage: HomeStorage, quota: int = 10 * 1024 * 1024) -> None:
        """Register, write identity WriterData (owning the writer) and an empty writer tree."""
        storage.register_user(self.username, self.owner, quota)
        tid = storage.start_transaction(self.owner)
        champ = Champ(self.blocks, identity_hasher)
        proof = OwnerProof.build(self.writer.pair, self.owner)
        proof_cid = self.blocks.put(proof.serialize())
        owned_root = champ.put(champ.create_empty(), owned_key_map_key(self.writer.hash.cid), None, proof_cid)
        wd = WriterData(controller=self.owner, owned=owned_root)
        wd_cid = self.blocks.put(wd.serialize())
        self.upload_new(storage, self.identity, tid)
        storage.set_pointer(self.owner, self.identity.hash, self.identity.next_update(wd_cid))
        self.identity.committed(wd_cid)
        tree = champ.create_empty()
        self.commit_writer(storage, tid, WriterData(controller=self.writer.hash, tree=tree))
        storage.close_transaction(self.owner, tid)

    def upload_new(self, storage: HomeStorage, signer: WriterState, tid: str) -> list[Cid]:
        """Upload every block written locally since the last upload."""
        pending = list(self.blocks.written.values())
        self.blocks.written.clear()
        return self.put_dag(storage, signer, tid, pending) if pending else []

    def commit_writer(self, storage: HomeStorage, tid: str, wd: WriterData) -> Cid:
        wd_cid = self.blocks.put(wd.serialize())
        self.upload_new(storage, self.writer, tid)
        storage.set_pointer(self.owner, self.writer.hash, self.writer.next_update(wd_cid))
        self.writer.committed(wd_cid)
        return wd_cid

    def writer_data(self) -> WriterData:
        assert self.writer.target is not None
        data = self.blocks.get(self.writer.target)
        assert data is not None
        return WriterData.deserialize(data)

    def add_file(
        self,
        storage: HomeStorage,
        key: bytes,
        payload: bytes,
        tid: str | None = None,
        bats: Sequence[BatId] = (),
    ) -> Cid:
        """Put a value block under `key` in the writer's tree (guarded by `bats`, if any) and commit."""
        own_tid = tid is None
        tid = tid or storage.start_transaction(self.owner)
        value = self.blocks.put(_value_block(payload, bats))
        champ = Champ(self.blocks, identity_hasher)
        wd = self.writer_data()
        assert wd.tree is not None
        root = champ.put(wd.tree, key, None, value)
        self.commit_writer(storage, tid, wd.with_tree(root))
        if own_tid:
            storage.close_transaction(self.owner, tid)
        return value

    def remove_file(self, storage: HomeStorage, key: bytes, value: Cid) -> None:
        tid = storage.start_transaction(self.owner)
        champ = Champ(self.blocks, identity_hasher)
        wd = self.writer_data()
        assert wd.tree is not None
        self.commit_writer(storage, tid, wd.with_tree(champ.remove(wd.tree, key, value)))
        storage.close_transaction(self.owner, tid)


def _value_block(payload: bytes, bats: Sequence[BatId] = ()) -> bytes:
    from nabu_py.codec import dag_cbor

    if not bats:
        return dag_cbor.encode({"d": payload})
    return dag_cbor.encode({"d": payload, "bats": [b.to_cbor() for b in bats]})


__all__ = ["CODEC_DAG_CBOR", "PeergosUser", "WriterState", "sign_block"]
