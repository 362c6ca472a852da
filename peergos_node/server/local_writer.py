"""Server-side writers: the home server editing data it owns keys for (the PKI tree, spec/peergos.md
§3.3) through exactly the same verified path clients use.

A `LocalWriter` buffers the blocks a change creates (CHAMP nodes, chain blocks, the new WriterData),
then commits like a client: open a transaction, put every buffered block signed by the writer, move the
pointer with a signed CAS from the last committed target, close the transaction. Reads fall through the
buffer to the block store.
"""

from __future__ import annotations

import hashlib

from nabu_py.errors import BlockNotFound
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import sign_pointer
from peergos_node.mutable.writer_data import WriterData
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage


class LocalWriter:
    """One writer key held by this server, editing its WriterData and trees."""

    def __init__(self, storage: HomeStorage, owner: PublicKeyHash, pair: SigningKeyPair) -> None:
        self.storage = storage
        self.owner = owner
        self.pair = pair
        self.writer = PublicKeyHash.of(pair.public)
        self._buffer: dict[Cid, bytes] = {}

    # ---- the BlockStore interface the CHAMP needs --------------------------------------------------
    def get(self, cid: Cid) -> bytes | None:
        """A buffered or stored block."""
        data = self._buffer.get(cid)
        if data is not None:
            return data
        try:
            return self.storage.blocks.get(cid)
        except BlockNotFound:
            return None

    def put(self, data: bytes) -> Cid:
        """Buffer a dag-cbor block for the next commit."""
        cid = Cid.for_block(CODEC_DAG_CBOR, data)
        self._buffer[cid] = bytes(data)
        return cid

    # ---- state ------------------------------------------------------------------------------------
    def current(self) -> tuple[WriterData | None, Cid | None, int | None]:
        """(WriterData, its CID, pointer sequence) as committed now."""
        signed = self.storage.get_pointer(self.writer)
        if signed is None:
            return None, None, None
        update = PointerUpdate.from_signed_unverified(signed)
        if update.updated is None:
            return None, None, update.sequence
        data = self.get(update.updated)
        if data is None:
            raise BlockNotFound(f"WriterData {update.updated} of {self.writer} is missing")
        return WriterData.deserialize(data), update.updated, update.sequence

    def commit(self, wd: WriterData) -> Cid:
        """Upload buffered blocks and move the pointer to `wd` (CAS from the current target)."""
        _old, old_cid, seq = self.current()
        new_cid = self.put(wd.serialize())
        blocks = list(self._buffer.values())
        tid = self.storage.start_transaction(self.owner)
        try:
            group: list[bytes] = []
            size = 0
            for block in blocks:
                if group and size + len(block) > MAX_BLOCK_SIZE:
                    self._upload(group, tid)
                    group, size = [], 0
                group.append(block)
                size += len(block)
            if group:
                self._upload(group, tid)
            if new_cid != old_cid:
                update = PointerUpdate(old_cid, new_cid, PointerUpdate.next_sequence(seq))
                self.storage.set_pointer(self.owner, self.writer, sign_pointer(self.pair, update))
        finally:
            self.storage.close_transaction(self.owner, tid)
        self._buffer.clear()
        return new_cid

    def discard(self) -> None:
        """Drop buffered, uncommitted blocks."""
        self._buffer.clear()

    def _upload(self, group: list[bytes], tid: str) -> None:
        sigs = [self.pair.sign(hashlib.sha256(b).digest()) for b in group]
        self.storage.put_blocks(self.owner, self.writer, sigs, group, tid, raw=False)
