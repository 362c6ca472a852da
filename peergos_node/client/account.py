"""Account flows of a Peergos client: signup, login, password change (spec/peergos.md §2.1-2.5;
Java `UserContext.signUpGeneral`, `signIn`, `changePassword`).

**Signup** builds every write of a new account locally and sends them in one OpLog: a random identity
key, a random hybrid (Curve25519 + ML-KEM-1024) boxing key stored as a block signed by the identity,
the identity's WriterData (public login `algorithm` with a fresh salt, `inbound` boxer, an owned-key
CHAMP proving it owns the filesystem writer), the writer's WriterData with its filesystem CHAMP, the
two pointer updates, and the login data (EntryPoints encrypted under the password-derived root key,
readable by the password-derived login key, signed by the identity). A `filesystem` hook adds the
user's root directory (the cryptree layer plugs in here). Proof of work is found at the difficulty the
server asks for (retrying once with the difficulty it answers).

**Login** needs only username and password: PKI chain → identity → its pointer (signature verified) →
WriterData (hash verified) → `algorithm` → scrypt → login key signs the time → `getLogin` (second factor
via a callback when the server challenges) → decrypt the EntryPoints with the root key.

**Password change** keeps the identity: new salt, new login keys, the same EntryPoints re-encrypted, a
new identity WriterData with the new algorithm and the pointer update that publishes it, all in one
`setLogin` (the server makes the pointer update the commit point).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_LIBP2P_KEY, Cid
from peergos_node.accounts.entry_points import EntryPoint, EntryPoints, UserStaticData
from peergos_node.accounts.login_data import LoginData, login_data_auth
from peergos_node.accounts.mfa import MultiFactorAuthRequest, MultiFactorAuthResponse
from peergos_node.accounts.time_limited import sign_time
from peergos_node.champ import Champ, MemoryBlockStore, identity_hasher
from peergos_node.champ.hashers import owned_key_map_key
from peergos_node.client.http import HttpAccount, HttpCoreNode, HttpMutablePointers, HttpStorage, RemoteError
from peergos_node.corenode.chain import initial_expiry, proof_of_work_data
from peergos_node.corenode.claims import create_initial
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.messages import SignupRequest
from peergos_node.corenode.oplog import OpLog
from peergos_node.corenode.writes import BlockWrite, PointerWrite
from peergos_node.crypto.boxing import BoxingKeyPair
from peergos_node.crypto.login import LoginKeys, SecretGenerationAlgorithm, derive_login_keys
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import AuthError, DecodeError, PeergosError
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import sign_pointer, verify_signed_pointer
from peergos_node.mutable.writer_data import WriterData

MfaCallback = Callable[[MultiFactorAuthRequest], Awaitable[MultiFactorAuthResponse]]


class LoginFailed(PeergosError):
    """Wrong username or password, unknown user, or a second factor refused."""


@dataclass
class Network:
    """What the account flows talk to: one server's storage, pointers, PKI and login endpoints."""

    storage: HttpStorage
    pointers: HttpMutablePointers
    core: HttpCoreNode
    account: HttpAccount


@dataclass
class SignupBuilder:
    """Collects a new account's signed writes in order (the OpLog)."""

    identity: SigningKeyPair
    ops: list[BlockWrite | PointerWrite] = field(default_factory=list)
    blocks: MemoryBlockStore = field(default_factory=MemoryBlockStore)
    _uploaded: set[Cid] = field(default_factory=set)

    @property
    def owner(self) -> PublicKeyHash:
        return PublicKeyHash.of(self.identity.public)

    def flush(self, writer: SigningKeyPair, raw_blocks: Sequence[bytes] = ()) -> None:
        """Record every dag-cbor block built since the last flush (and raw blocks) as signed writes."""
        for cid, data in self.blocks.blocks.items():
            if cid not in self._uploaded:
                self._uploaded.add(cid)
                self.ops.append(BlockWrite.build(writer, data, False))
        for data in raw_blocks:
            self.ops.append(BlockWrite.build(writer, data, True))

    def commit(self, writer: SigningKeyPair, wd: WriterData) -> Cid:
        """Record a new writer's WriterData and its first pointer update."""
        cid = self.blocks.put(wd.serialize())
        self.flush(writer)
        signed = sign_pointer(writer, PointerUpdate(None, cid, 1))
        self.ops.append(PointerWrite(PublicKeyHash.of(writer.public), signed))
        return cid


FilesystemHook = Callable[[SignupBuilder, SigningKeyPair, Rng], list[EntryPoint]]
"""Adds the new user's filesystem (root directory) to a signup, returning its entry points."""


@dataclass
class Session:
    """What login yields: the user's keys and entry points."""

    username: str
    identity: SigningKeyPair
    boxer: BoxingKeyPair
    entries: tuple[EntryPoint, ...]
    login_keys: LoginKeys
    algorithm: SecretGenerationAlgorithm
    identity_writer_data: WriterData
    identity_pointer: PointerUpdate

    @property
    def owner(self) -> PublicKeyHash:
        return PublicKeyHash.of(self.identity.public)


async def _run_scrypt(username: str, password: str, alg: SecretGenerationAlgorithm) -> LoginKeys:
    return await trio.to_thread.run_sync(derive_login_keys, username, password, alg)


async def signup(
    net: Network,
    username: str,
    password: str,
    token: str,
    *,
    rng: Rng = SYSTEM_RNG,
    filesystem: FilesystemHook | None = None,
    algorithm: SecretGenerationAlgorithm | None = None,
    today: LocalDate | None = None,
) -> Session:
    """Create an account on the server (see the module docstring); returns the logged-in session."""
    if await net.core.get_chain(username):
        raise PeergosError("User already exists!")
    alg = algorithm or SecretGenerationAlgorithm.default(rng)
    login = await _run_scrypt(username, password, alg)
    identity = SigningKeyPair.random(rng)
    boxer = BoxingKeyPair.random_hybrid(rng)
    writer = SigningKeyPair.random(rng)
    b = SignupBuilder(identity)
    owner = b.owner
    boxer_hash = PublicKeyHash.of(boxer.public)
    if not boxer_hash.is_identity:
        b.blocks.put(boxer.public.serialize())
    champ = Champ(b.blocks, identity_hasher)
    proof_cid = b.blocks.put(OwnerProof.build(writer, owner).serialize())
    owned = champ.put(
        champ.create_empty(), owned_key_map_key(PublicKeyHash.of(writer.public).cid), None, proof_cid
    )
    b.commit(identity, WriterData(controller=owner, algorithm=alg, inbound=boxer_hash, owned=owned))
    entries = filesystem(b, writer, rng) if filesystem is not None else []
    if filesystem is None:
        b.commit(writer, WriterData(controller=PublicKeyHash.of(writer.public), tree=champ.create_empty()))
    static = EntryPoints(tuple(entries), boxer, identity).encrypt(login.root_key, rng)
    login_data = LoginData(username, static, login.signing.public)
    server_id = Cid.v1(CODEC_LIBP2P_KEY, multibase.b58decode(await net.storage.id()))
    day = today or LocalDate.from_epoch_seconds(time.time())
    chain = create_initial(
        SigningPrivateKeyAndPublicHash.of(identity), username, initial_expiry(day), [server_id]
    )
    oplog = OpLog(tuple(b.ops), (login_data, login_data_auth(identity.secret, login_data)))
    data = proof_of_work_data(chain)
    difficulty = 0
    for _attempt in range(3):
        proof = await trio.to_thread.run_sync(ProofOfWork.find, data, difficulty)
        resp = await net.core.signup(SignupRequest(username, chain[0], oplog, proof, token))
        if resp.required is None:
            break
        difficulty = resp.required
    else:
        raise PeergosError("Server is under load please try again later")
    return await login_with_keys(net, username, login, alg)


async def _identity_state(net: Network, username: str) -> tuple[PublicKeyHash, PointerUpdate, WriterData]:
    chain = await net.core.get_chain(username)
    if not chain:
        raise LoginFailed("Unknown username. Did you enter it correctly?")
    owner = chain[-1].owner
    signed = await net.pointers.get_pointer(owner, owner)
    if signed is None:
        raise LoginFailed("User has been deleted. Did you mean a different username?")
    pointer = verify_signed_pointer(owner, signed)
    if pointer.updated is None:
        raise LoginFailed("User has been deleted. Did you mean a different username?")
    raw = await net.storage.get_block(owner, pointer.updated)
    if raw is None:
        raise LoginFailed("identity data missing on the server")
    wd = WriterData.deserialize(raw)
    if wd.controller != owner:
        raise LoginFailed("identity data does not belong to this user")
    return owner, pointer, wd


async def login(net: Network, username: str, password: str, mfa: MfaCallback | None = None) -> Session:
    """Log in with username and password (and a second factor when the account has one)."""
    _owner, _pointer, wd = await _identity_state(net, username)
    if wd.algorithm is None:
        raise LoginFailed("No login algorithm specified in user data!")
    try:
        keys = await _run_scrypt(username, password, wd.algorithm)
    except ValueError as e:
        raise LoginFailed(str(e)) from None
    return await login_with_keys(net, username, keys, wd.algorithm, mfa)


async def login_with_keys(
    net: Network,
    username: str,
    keys: LoginKeys,
    alg: SecretGenerationAlgorithm,
    mfa: MfaCallback | None = None,
) -> Session:
    """The part of login after scrypt."""
    owner, pointer, wd = await _identity_state(net, username)
    reader = keys.signing.public
    auth = sign_time(keys.signing.secret, int(time.time() * 1000))
    try:
        resp = await net.account.get_login(username, reader, auth)
        if not resp.is_login_data:
            if mfa is None:
                raise LoginFailed("a second factor is required")
            assert isinstance(resp.result, MultiFactorAuthRequest)
            answer = await mfa(resp.result)
            auth = sign_time(keys.signing.secret, int(time.time() * 1000))
            resp = await net.account.get_login(username, reader, auth, answer)
    except RemoteError as e:
        raise LoginFailed(e.message or "Incorrect username or password") from None
    if not isinstance(resp.result, UserStaticData):
        raise LoginFailed("second factor refused")
    try:
        entries = resp.result.decrypt(keys.root_key)
    except (DecodeError, AuthError, ValueError) as e:
        raise LoginFailed(f"Incorrect username or password ({type(e).__name__})") from None
    if PublicKeyHash.of(entries.identity.public) != owner:
        raise LoginFailed("login data names another identity than the PKI")
    return Session(username, entries.identity, entries.boxer, entries.entries, keys, alg, wd, pointer)


async def change_password(
    net: Network, session: Session, new_password: str, rng: Rng = SYSTEM_RNG
) -> Session:
    """Change the password (identity unchanged); the server commits it atomically at the pointer update."""
    if new_password == session.username:
        raise PeergosError("the password must differ from the username")
    owner, pointer, wd = await _identity_state(net, session.username)
    new_alg = (wd.algorithm or session.algorithm).with_new_salt(rng).without_boxer_or_identity()
    keys = await _run_scrypt(session.username, new_password, new_alg)
    new_wd = wd.with_algorithm(new_alg)
    wd_bytes = new_wd.serialize()
    wd_cid = Cid.for_block(CODEC_DAG_CBOR, wd_bytes)
    block = BlockWrite(owner, session.identity.sign(hashlib.sha256(wd_bytes).digest()), wd_bytes, False)
    update = PointerUpdate(pointer.updated, wd_cid, PointerUpdate.next_sequence(pointer.sequence))
    pw = PointerWrite(owner, sign_pointer(session.identity, update))
    static = EntryPoints(session.entries, session.boxer, session.identity).encrypt(keys.root_key, rng)
    data = LoginData(session.username, static, keys.signing.public, (block, pw))
    if not await net.account.set_login(data, login_data_auth(session.identity.secret, data)):
        raise PeergosError("the server refused the password change")
    return await login_with_keys(net, session.username, keys, new_alg)
