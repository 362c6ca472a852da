"""The PKI mirror every non-PKI server runs (spec/peergos.md §3.4; Java `MirrorCoreNode`).

Lookups (chains, keys, names) are answered from a local copy, so a server never reveals who is being
looked up. The copy follows the PKI node: every period (and right after a write this server forwarded),
`sync()` fetches the `peergos` identity pointer from the PKI node, verifies its signature with the
identity key (inline in the configured `peergos.identity.hash`), reads the identity WriterData, checks
the OwnerProof of its named `pki` key, fetches and verifies the `pki` pointer, and diffs the old PKI tree
root against the new one (`Champ.diff`, walking both trees by hash prefix and skipping equal subtrees).
Every block is fetched by CID and hash-verified; every changed chain is validated: a new name must be a
valid chain for that name, a known name may only be extended append-only (`chain.merge(old, new) == new`).
If any change fails, the whole update is rejected and the mirror keeps its state (and logs why).

Writes (`update_chain`, used by signup and renewals) are forwarded to the PKI node, then synced.

State lives in the server database: `pki_mirror_blocks` (the PKI tree's nodes and chain blocks, so the
next diff reads the old side locally), `pki_mirror_chains` (name → chain) and `pki_mirror_state` (the
root and pointer sequences followed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nabu_py.multiformats.cid import Cid
from peergos_node.champ import Champ, blake2b_hasher
from peergos_node.corenode.chain import RequiredDifficulty, merge, validate_chain
from peergos_node.corenode.claims import UserPublicKeyLink, deserialize_chain, serialize_chain
from peergos_node.corenode.errors import InvalidChain
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import BadSignature, DecodeError, PeergosError
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import verify_signed_pointer
from peergos_node.mutable.writer_data import WriterData
from peergos_node.server.db import Database
from peergos_node.server.pki import PKI_KEY_NAME, PkiIndex

log = logging.getLogger(__name__)

MAX_MIRROR_BLOCK = 1024 * 1024 + 100


class RemotePki(Protocol):
    """What the mirror needs from the PKI node (over p2p in production)."""

    def get_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> bytes | None:
        """The writer's signed pointer as the PKI node holds it."""
        ...

    def get_block(self, cid: Cid) -> bytes | None:
        """A block of the PKI node (unverified: the mirror hashes it)."""
        ...

    def update_chain(
        self, username: str, chain: Sequence[UserPublicKeyLink], proof: ProofOfWork, token: str
    ) -> RequiredDifficulty | None:
        """Forward a chain update to the PKI node."""
        ...


class MirrorRejected(PeergosError):
    """The PKI node served an update the mirror refuses (bad signature, non-append-only change, ...)."""


@dataclass(frozen=True)
class MirrorState:
    """Where the mirror is: the PKI tree root and the two pointer sequences it has followed."""

    root: Cid | None
    identity_seq: int | None
    pki_seq: int | None


class _MirrorBlocks:
    """CHAMP block getter: local copy first, then the PKI node (hash-verified, then kept)."""

    def __init__(self, db: Database, remote: RemotePki) -> None:
        self._db = db
        self._remote = remote
        self.fetched: dict[Cid, bytes] = {}

    def get(self, cid: Cid) -> bytes | None:
        if cid in self.fetched:
            return self.fetched[cid]
        row = self._db.query_one("SELECT data FROM pki_mirror_blocks WHERE cid = ?", (cid.to_bytes(),))
        if row is not None:
            return bytes(row[0])
        data = self._remote.get_block(cid)
        if data is None:
            return None
        if len(data) > MAX_MIRROR_BLOCK:
            raise MirrorRejected(f"PKI block {cid} too large")
        try:
            cid.verify(data)
        except DecodeError as e:
            raise MirrorRejected(f"PKI node served a block that does not match {cid}: {e}") from None
        self.fetched[cid] = data
        return data


class MirrorCoreNode:
    """A CoreNode answering from a verified local copy of a remote PKI."""

    def __init__(self, db: Database, remote: RemotePki, peergos_identity: PublicKeyHash) -> None:
        self.db = db
        self.remote = remote
        self.peergos_identity = peergos_identity
        self.index = PkiIndex()
        self._sync_lock = threading.Lock()
        t = db.types
        db.execute(
            f"CREATE TABLE IF NOT EXISTS pki_mirror_blocks (cid {t.blob} PRIMARY KEY, data {t.blob} NOT NULL)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS pki_mirror_chains (username TEXT PRIMARY KEY,"
            f" chain {t.blob} NOT NULL)"
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS pki_mirror_state (id {t.bigint} PRIMARY KEY, root {t.blob},"
            f" identity_seq {t.bigint}, pki_seq {t.bigint})"
        )
        for name, data in db.query("SELECT username, chain FROM pki_mirror_chains"):
            self.index.set(str(name), deserialize_chain(bytes(data)))

    # ---- state ------------------------------------------------------------------------------------
    def state(self) -> MirrorState:
        """What the mirror has followed so far."""
        row = self.db.query_one("SELECT root, identity_seq, pki_seq FROM pki_mirror_state WHERE id = 1")
        if row is None:
            return MirrorState(None, None, None)
        root = None if row[0] is None else Cid.decode(bytes(row[0]))
        return MirrorState(
            root, None if row[1] is None else int(row[1]), None if row[2] is None else int(row[2])
        )

    # ---- syncing ----------------------------------------------------------------------------------
    def _verified_pointer(
        self, writer: PublicKeyHash, owner: PublicKeyHash, last_seq: int | None
    ) -> PointerUpdate:
        signed = self.remote.get_pointer(owner, writer)
        if signed is None:
            raise MirrorRejected(f"the PKI node has no pointer for {writer}")
        try:
            update = verify_signed_pointer(writer, signed)
        except (BadSignature, DecodeError) as e:
            raise MirrorRejected(f"PKI pointer of {writer} does not verify: {e}") from None
        if last_seq is not None and (update.sequence is None or update.sequence < last_seq):
            raise MirrorRejected(
                f"PKI pointer of {writer} went back from sequence {last_seq} to {update.sequence}"
            )
        return update

    def sync(self) -> int:
        """Follow the PKI node once; return how many names changed. MirrorRejected leaves the state."""
        with self._sync_lock:
            return self._sync()

    def _sync(self) -> int:
        state = self.state()
        blocks = _MirrorBlocks(self.db, self.remote)
        ident_ptr = self._verified_pointer(self.peergos_identity, self.peergos_identity, state.identity_seq)
        ident_wd = self._writer_data(blocks, ident_ptr.updated, self.peergos_identity)
        proof = ident_wd.named.get(PKI_KEY_NAME)
        if proof is None:
            raise MirrorRejected("the peergos identity names no pki key")
        try:
            proof.verify(self.peergos_identity)
        except (BadSignature, DecodeError) as e:
            raise MirrorRejected(f"pki key ownership proof invalid: {e}") from None
        pki_key_hash = proof.owned
        pki_ptr = self._verified_pointer(pki_key_hash, self.peergos_identity, state.pki_seq)
        pki_wd = self._writer_data(blocks, pki_ptr.updated, pki_key_hash)
        new_root = pki_wd.tree
        if new_root is None:
            raise MirrorRejected("the pki writer has no tree")
        if new_root == state.root:
            self._save_state(MirrorState(new_root, ident_ptr.sequence, pki_ptr.sequence), {}, blocks)
            return 0
        champ = Champ(blocks, blake2b_hasher)
        updates: dict[str, tuple[UserPublicKeyLink, ...]] = {}
        try:
            for change in champ.diff(state.root, new_root):
                if type(change.new) is not Cid:
                    raise MirrorRejected("a name was removed from the PKI")
                data = blocks.get(change.new)
                if data is None:
                    raise MirrorRejected(f"chain block {change.new} missing on the PKI node")
                chain = deserialize_chain(data)
                if not chain:
                    raise MirrorRejected("empty chain in the PKI")
                name = chain[-1].claim.username
                old = self.index.get(name)
                if old:
                    if merge(old, chain, name) != chain:
                        raise MirrorRejected(f"the chain of {name} changed in a way that is not append-only")
                else:
                    validate_chain(chain, name)
                updates[name] = chain
            champ.validate(new_root)
        except (InvalidChain, DecodeError) as e:
            raise MirrorRejected(f"invalid PKI update: {e}") from None
        self._save_state(MirrorState(new_root, ident_ptr.sequence, pki_ptr.sequence), updates, blocks)
        for name, chain in updates.items():
            self.index.set(name, chain)
        if updates:
            log.info("PKI mirror: %d name(s) updated, root %s", len(updates), new_root)
        return len(updates)

    def _writer_data(
        self, blocks: _MirrorBlocks, target: Cid | None, controller: PublicKeyHash
    ) -> WriterData:
        if target is None:
            raise MirrorRejected(f"pointer of {controller} is empty")
        data = blocks.get(target)
        if data is None:
            raise MirrorRejected(f"WriterData {target} missing on the PKI node")
        try:
            wd = WriterData.deserialize(data)
        except DecodeError as e:
            raise MirrorRejected(f"bad WriterData {target}: {e}") from None
        if wd.controller != controller:
            raise MirrorRejected(f"WriterData {target} belongs to another writer")
        return wd

    def _save_state(
        self, state: MirrorState, updates: dict[str, tuple[UserPublicKeyLink, ...]], blocks: _MirrorBlocks
    ) -> None:
        with self.db.transaction() as tx:
            for cid, data in blocks.fetched.items():
                tx.execute(
                    "INSERT INTO pki_mirror_blocks (cid, data) VALUES (?, ?) ON CONFLICT (cid) DO NOTHING",
                    (cid.to_bytes(), data),
                )
            for name, chain in updates.items():
                tx.execute(
                    "INSERT INTO pki_mirror_chains (username, chain) VALUES (?, ?) ON CONFLICT (username)"
                    " DO UPDATE SET chain = excluded.chain",
                    (name, serialize_chain(chain)),
                )
            tx.execute(
                "INSERT INTO pki_mirror_state (id, root, identity_seq, pki_seq) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET root = excluded.root, identity_seq = excluded.identity_seq,"
                " pki_seq = excluded.pki_seq",
                (None if state.root is None else state.root.to_bytes(), state.identity_seq, state.pki_seq),
            )

    # ---- CoreNode ---------------------------------------------------------------------------------
    def get_chain(self, username: str) -> tuple[UserPublicKeyLink, ...]:
        return self.index.get(username)

    def get_public_key(self, username: str) -> PublicKeyHash | None:
        return self.index.public_key(username)

    def get_username(self, key: PublicKeyHash) -> str | None:
        return self.index.username(key)

    def get_usernames(self, prefix: str) -> list[str]:
        return self.index.usernames(prefix)

    def update_chain(
        self, username: str, chain: Sequence[UserPublicKeyLink], proof: ProofOfWork, token: str
    ) -> RequiredDifficulty | None:
        result = self.remote.update_chain(username, chain, proof, token)
        if result is None:
            try:
                self.sync()
            except MirrorRejected:
                log.exception("PKI mirror refused the PKI node's state after a forwarded write")
        return result
