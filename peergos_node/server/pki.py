"""The PKI ("core node"): username → claim chain, the global append-only name registry (spec/peergos.md
§3.3, Java `IpfsCoreNode`).

`CoreNode` is what the rest of the server asks: chains, the identity key of a name, the name of a key,
the list of names, and `update_chain` (signup, renewal, key change, migration). Implementations:

- `PkiNode` — the authoritative PKI of a network. The user `peergos` owns a named key `pki` (an
  OwnerProof in its identity WriterData); the `pki` writer's WriterData `tree` is a CHAMP keyed by
  Blake2b-512(username) whose values link to a dag-cbor block holding the whole chain. Only this node
  writes it, one update at a time (a lock), so names are first come, first served: each update is
  validated (`chain.update_chain`: username rules, proof of work at a difficulty that rises with the
  signup rate, append-only merge), the chain block and CHAMP nodes are written and signed by the `pki`
  key, and the pki pointer is moved with a signed CAS — through the same verified storage path as any
  client write. In-memory indices (name → chain, identity → name) are rebuilt from the tree at start.
- `MirrorCoreNode` (peergos_node.server.pki_mirror) — every other server: answers from a local copy
  kept in step with the PKI node, forwards writes to it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import Cid
from peergos_node.champ import Champ, blake2b_hasher, identity_hasher
from peergos_node.champ.hashers import pki_key
from peergos_node.corenode.chain import RequiredDifficulty, current_owner, update_chain
from peergos_node.corenode.claims import UserPublicKeyLink, create_initial, deserialize_chain, serialize_chain
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.difficulty import DifficultyGenerator
from peergos_node.crypto.password_box import open_with_password, seal_with_password
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import PeergosError
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.writer_data import WriterData
from peergos_node.server.home_storage import HomeStorage
from peergos_node.server.local_writer import LocalWriter

log = logging.getLogger(__name__)

PKI_KEY_NAME = "pki"
PEERGOS_USERNAME = "peergos"
MAX_USERNAMES_LISTED = 100_000
DEFAULT_MAX_DAILY_SIGNUPS = 1000


class CoreNode(Protocol):
    """PKI lookups and updates (synchronous; the HTTP layer runs them in worker threads)."""

    def get_chain(self, username: str) -> tuple[UserPublicKeyLink, ...]:
        """The claim chain of a name (empty if unclaimed)."""
        ...

    def update_chain(
        self, username: str, chain: Sequence[UserPublicKeyLink], proof: ProofOfWork, token: str
    ) -> RequiredDifficulty | None:
        """Apply a chain update; None when accepted, else the difficulty to retry with."""
        ...

    def get_public_key(self, username: str) -> PublicKeyHash | None:
        """The identity key hash that holds a name now."""
        ...

    def get_username(self, key: PublicKeyHash) -> str | None:
        """The name an identity key holds (or held)."""
        ...

    def get_usernames(self, prefix: str) -> list[str]:
        """Names starting with `prefix` (autocomplete)."""
        ...


class PkiIndex:
    """In-memory indices over the chains of the PKI tree."""

    def __init__(self) -> None:
        self.chains: dict[str, tuple[UserPublicKeyLink, ...]] = {}
        self.reverse: dict[PublicKeyHash, str] = {}
        self.lock = threading.RLock()

    def set(self, username: str, chain: tuple[UserPublicKeyLink, ...]) -> None:
        with self.lock:
            self.chains[username] = chain
            for link in chain:
                self.reverse[link.owner] = username

    def get(self, username: str) -> tuple[UserPublicKeyLink, ...]:
        with self.lock:
            return self.chains.get(username, ())

    def public_key(self, username: str) -> PublicKeyHash | None:
        return current_owner(self.get(username))

    def username(self, key: PublicKeyHash) -> str | None:
        with self.lock:
            return self.reverse.get(key)

    def usernames(self, prefix: str) -> list[str]:
        with self.lock:
            return sorted(u for u in self.chains if u.startswith(prefix))[:MAX_USERNAMES_LISTED]


def load_chains(
    champ: Champ, root: Cid | None, get: Callable[[Cid], bytes | None]
) -> dict[str, tuple[UserPublicKeyLink, ...]]:
    """Every chain in a PKI tree (keys are hashes, so names come from the chains themselves)."""
    out: dict[str, tuple[UserPublicKeyLink, ...]] = {}
    if root is None:
        return out
    for _key, value in champ.items(root):
        if type(value) is not Cid:
            continue
        data = get(value)
        if data is None:
            log.warning("PKI chain block %s missing", value)
            continue
        chain = deserialize_chain(data)
        if chain:
            out[chain[-1].claim.username] = chain
    return out


@dataclass(frozen=True)
class PkiKeys:
    """The two keys of a PKI node: the `peergos` identity and its named `pki` writer."""

    peergos: SigningKeyPair
    pki: SigningKeyPair

    @property
    def peergos_hash(self) -> PublicKeyHash:
        return PublicKeyHash.of(self.peergos.public)

    @property
    def pki_hash(self) -> PublicKeyHash:
        return PublicKeyHash.of(self.pki.public)

    def save(self, path: Path, password: str, rng: Rng = SYSTEM_RNG) -> None:
        """Write both secret keys, encrypted under `password`, plus the public hashes (mode 0600)."""
        doc = {
            "peergos": seal_with_password(password, self.peergos.serialize(), rng).hex(),
            "pki": seal_with_password(password, self.pki.serialize(), rng).hex(),
            "peergos.identity.hash": str(self.peergos_hash),
            "pki.public.hash": str(self.pki_hash),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, password: str) -> PkiKeys:
        """Read keys written by `save` (PeergosError for a wrong password or a damaged file)."""
        try:
            doc = json.loads(path.read_text())
            peergos = SigningKeyPair.deserialize(open_with_password(password, bytes.fromhex(doc["peergos"])))
            pki = SigningKeyPair.deserialize(open_with_password(password, bytes.fromhex(doc["pki"])))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PeergosError(f"cannot read PKI keys from {path}: {e}") from None
        return cls(peergos, pki)


class PkiNode:
    """The authoritative PKI of a network (single writer)."""

    def __init__(
        self,
        storage: HomeStorage,
        keys: PkiKeys,
        max_daily_signups: int = DEFAULT_MAX_DAILY_SIGNUPS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.clock = clock
        self.index = PkiIndex()
        self.difficulty = DifficultyGenerator(int(clock() * 1000), max_daily_signups)
        self._writer = LocalWriter(storage, keys.peergos_hash, keys.pki)
        self._champ = Champ(self._writer, blake2b_hasher)
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        wd, _cid, _seq = self._writer.current()
        if wd is None:
            raise PeergosError("the PKI is not initialised on this server (run `peergos pki-init`)")
        for name, chain in load_chains(self._champ, wd.tree, self._writer.get).items():
            self.index.set(name, chain)

    @property
    def root(self) -> Cid | None:
        """The current PKI tree root."""
        wd, _c, _s = self._writer.current()
        return None if wd is None else wd.tree

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
        with self._lock:
            existing = self.index.get(username)
            result = update_chain(username, existing, chain, proof, self.difficulty, int(self.clock() * 1000))
            if isinstance(result, RequiredDifficulty):
                return result
            if result == existing:
                return None
            self._write_chain(username, existing, result)
            self.index.set(username, result)
            return None

    def _write_chain(
        self, username: str, existing: tuple[UserPublicKeyLink, ...], chain: tuple[UserPublicKeyLink, ...]
    ) -> None:
        wd, _cid, _seq = self._writer.current()
        if wd is None or wd.tree is None:
            raise PeergosError("PKI tree missing")
        key = pki_key(username)
        expected = self._champ.get(wd.tree, key)
        if existing and expected is None:
            raise PeergosError(f"PKI index and tree disagree for {username}")
        block = self._writer.put(serialize_chain(chain))
        try:
            if expected is None:
                new_root = self._champ.put(wd.tree, key, None, block)
            else:
                new_root = self._champ.put(wd.tree, key, expected, block)
            self._writer.commit(wd.with_tree(new_root))
        except BaseException:
            self._writer.discard()
            raise


def init_pki(
    storage: HomeStorage,
    keys: PkiKeys,
    server_peer_id: Cid,
    quota: int,
    today: LocalDate,
) -> None:
    """Bootstrap a new network's PKI on this server (`peergos pki-init`): register `peergos`, give its
    identity a named `pki` key, create the empty PKI tree and claim the name `peergos` in it."""
    if storage.usage.user_of_identity(keys.peergos_hash.to_bytes()) is not None:
        raise PeergosError("this server already has a PKI")
    storage.register_user(PEERGOS_USERNAME, keys.peergos_hash, quota)
    identity = LocalWriter(storage, keys.peergos_hash, keys.peergos)
    owned = Champ(identity, identity_hasher).create_empty()
    proof = OwnerProof.build(keys.pki, keys.peergos_hash)
    identity.commit(WriterData(controller=keys.peergos_hash, owned=owned, named={PKI_KEY_NAME: proof}))
    pki = LocalWriter(storage, keys.peergos_hash, keys.pki)
    tree = Champ(pki, blake2b_hasher).create_empty()
    pki.commit(WriterData(controller=keys.pki_hash, tree=tree))
    node = PkiNode(storage, keys)
    signer = SigningPrivateKeyAndPublicHash.of(keys.peergos)
    chain = create_initial(signer, PEERGOS_USERNAME, today.plus_months(120), [server_peer_id])
    node._write_chain(PEERGOS_USERNAME, (), chain)


def chain_cbor(chain: Sequence[UserPublicKeyLink]) -> bytes:
    """The CBOR list of links (the `getChain` answer)."""
    return dag_cbor.encode([link.to_cbor() for link in chain])
