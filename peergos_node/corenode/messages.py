"""Request and response bodies of the PKI HTTP API `/peergos/v0/core/*` (spec/peergos.md §12.2; Java
`CoreNodeHandler` (server side) and `HTTPCoreNode` (client side)).

Theory of operation
-------------------
Every call is a POST whose body is a Java DataOutputStream stream (`java_io`); responses are either such
a stream or raw CBOR. Field by field, with the bound the Java server reads it with:

- `getChain`: str username (1024) -> CBOR list of links (empty for an unknown name);
- `signup`: str username, bytes CBOR(one link) (4 MiB), bytes CBOR(OpLog) (64 KiB),
  bytes CBOR(ProofOfWork) (100), str token (1024) -> bool ok [, int32 required difficulty];
- `updateChain`: str username, bytes CBOR(list of links) (4 MiB), bytes PoW (100), str token
  -> bool ok [, int32];
- `getPublicKey`: str username -> bool present [, int32 len, CBOR PublicKeyHash];
- `getUsername`: bytes CBOR(PublicKeyHash) -> str username (the client reads at most 64 bytes);
- `getUsernamesGzip/<prefix>`: empty -> gzip(JSON list of names), sent with `Content-Encoding: gzip`;
- `migrateUser`: str username, bytes CBOR(new chain) (4096), bytes storage id CID (128), bool hasBat
  [, bytes BatWithId (128)], int64 link-count epoch seconds, int64 usage, bool commitToPki
  -> CBOR UserSnapshot;
- `getUserSnapshots`: str cursor, bytes BatWithId (100), int64 last link-count epoch seconds
  -> CBOR list of UserSnapshot;
- `mirror`: str username, bytes BatWithId (100), bytes auth (4096), bytes PoW (100) -> bool.

The paid-signup and paid-mirror bodies (`startPaidSignup`, `completePaidSignup`, `startPaidMirror`,
`completePaidMirror`) carry `PaymentProperties` and are not implemented here.

Decoders are strict: each body must be consumed exactly (no trailing bytes), every length is bounded as
above, and the embedded CBOR is parsed with the structure's own strict decoder, so a malformed body is
always a `DecodeError`. (Strings in these bodies carry Java's char-count length, see `java_io`.) The
`getUsernamesGzip` decoder bounds the decompressed size.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import Cid
from peergos_node.cbor import expect_list
from peergos_node.corenode.claims import (
    MAX_SIZE,
    Chain,
    UserPublicKeyLink,
    deserialize_chain,
    serialize_chain,
)
from peergos_node.corenode.java_io import DataReader, DataWriter
from peergos_node.corenode.oplog import MAX_OPLOG_SIZE, OpLog
from peergos_node.corenode.snapshot import UserSnapshot
from peergos_node.corenode.usernames import MAX_USERNAME_SIZE
from peergos_node.crypto.bat import BatWithId
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import DecodeError

CORE_URL = "peergos/v0/core/"
MAX_STRING = 1024
"""`CoreNodeUtils.deserializeString` bound (usernames, tokens, cursors)."""
MAX_CHAIN_BYTES = 2 * MAX_SIZE
MAX_PROOF_BYTES = 100
MAX_KEY_HASH_BYTES = 1024
MAX_MIGRATE_CHAIN_BYTES = 4096
MAX_STORAGE_ID_BYTES = 128
MAX_MIGRATE_BAT_BYTES = 128
MAX_BAT_BYTES = 100
MAX_MIRROR_AUTH_BYTES = 4096
MAX_USERNAMES_JSON = 64 * 1024 * 1024
MAX_SNAPSHOTS = 1024

METHODS = (
    "getChain",
    "signup",
    "startPaidSignup",
    "completePaidSignup",
    "mirror",
    "startPaidMirror",
    "completePaidMirror",
    "getUserSnapshots",
    "updateChain",
    "getPublicKey",
    "getUsername",
    "getUsernamesGzip",
    "migrateUser",
)


def parse_core_path(path: str) -> tuple[str, str]:
    """`(method, argument)` of a request path, e.g. `/peergos/v0/core/getUsernamesGzip/al` ->
    `("getUsernamesGzip", "al")` (the argument is "" when absent), as `CoreNodeHandler` splits it."""
    p = path[1:] if path.startswith("/") else path
    if not p.startswith(CORE_URL):
        raise DecodeError(f"not a PKI path: {path!r}")
    parts = p[len(CORE_URL) :].split("/")
    return parts[0], parts[1] if len(parts) > 1 else ""


def _proof(r: DataReader) -> ProofOfWork:
    return ProofOfWork.deserialize(r.read_byte_array(MAX_PROOF_BYTES, "proof of work"))


@dataclass(frozen=True)
class UsernameRequest:
    """A body that is just `str username` (`getChain`, `getPublicKey`)."""

    username: str

    def encode(self) -> bytes:
        return DataWriter().write_string(self.username).to_bytes()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "PKI request")
        username = r.read_string(MAX_STRING, "username")
        r.expect_end()
        return cls(username)


GetChainRequest = UsernameRequest
GetPublicKeyRequest = UsernameRequest


def encode_chain_response(chain: Sequence[UserPublicKeyLink]) -> bytes:
    """`getChain`'s response: the CBOR list of links (empty list for an unknown name)."""
    return serialize_chain(chain)


def decode_chain_response(body: bytes) -> Chain:
    """Parse a `getChain` response."""
    return deserialize_chain(body, MAX_CHAIN_BYTES)


@dataclass(frozen=True)
class SignupRequest:
    """`signup`: claim a name with a one-link chain and replay the recorded account setup."""

    username: str
    link: UserPublicKeyLink
    oplog: OpLog
    proof: ProofOfWork
    token: str = ""

    def encode(self) -> bytes:
        return (
            DataWriter()
            .write_string(self.username)
            .write_byte_array(self.link.serialize())
            .write_byte_array(self.oplog.serialize())
            .write_byte_array(self.proof.serialize())
            .write_string(self.token)
            .to_bytes()
        )

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "signup request")
        username = r.read_string(MAX_STRING, "username")
        link = UserPublicKeyLink.deserialize(r.read_byte_array(MAX_CHAIN_BYTES, "claim"))
        oplog = OpLog.deserialize(r.read_byte_array(MAX_OPLOG_SIZE, "oplog"))
        proof = _proof(r)
        token = r.read_string(MAX_STRING, "token")
        r.expect_end()
        return cls(username, link, oplog, proof, token)

    def pow_data(self) -> bytes:
        """What the proof of work covers: the CBOR of the one-link chain."""
        return serialize_chain((self.link,))


@dataclass(frozen=True)
class UpdateChainRequest:
    """`updateChain`: renew, change keys, change host or commit a migration."""

    username: str
    chain: Chain
    proof: ProofOfWork
    token: str = ""

    def encode(self) -> bytes:
        return (
            DataWriter()
            .write_string(self.username)
            .write_byte_array(serialize_chain(self.chain))
            .write_byte_array(self.proof.serialize())
            .write_string(self.token)
            .to_bytes()
        )

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "updateChain request")
        username = r.read_string(MAX_STRING, "username")
        chain = deserialize_chain(r.read_byte_array(MAX_CHAIN_BYTES, "chain"), MAX_CHAIN_BYTES)
        proof = _proof(r)
        token = r.read_string(MAX_STRING, "token")
        r.expect_end()
        return cls(username, chain, proof, token)

    def pow_data(self) -> bytes:
        """What the proof of work covers: the CBOR list of the links sent."""
        return serialize_chain(self.chain)


@dataclass(frozen=True)
class DifficultyResponse:
    """`signup`/`updateChain` result: accepted (`required is None`) or the difficulty to retry with."""

    required: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the write was accepted."""
        return self.required is None

    def encode(self) -> bytes:
        w = DataWriter().write_boolean(self.required is None)
        if self.required is not None:
            w.write_int(self.required)
        return w.to_bytes()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "PKI response")
        ok = r.read_boolean("success")
        required = None if ok else r.read_int("required difficulty")
        r.expect_end()
        return cls(required)


@dataclass(frozen=True)
class GetPublicKeyResponse:
    """`getPublicKey`: the current identity key hash of a name, if claimed."""

    owner: PublicKeyHash | None

    def encode(self) -> bytes:
        w = DataWriter().write_boolean(self.owner is not None)
        if self.owner is not None:
            w.write_byte_array(self.owner.serialize())
        return w.to_bytes()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "getPublicKey response")
        owner = None
        if r.read_boolean("present"):
            owner = PublicKeyHash.deserialize(r.read_byte_array(MAX_KEY_HASH_BYTES, "key hash"))
        r.expect_end()
        return cls(owner)


@dataclass(frozen=True)
class GetUsernameRequest:
    """`getUsername`: the name an identity key holds."""

    owner: PublicKeyHash

    def encode(self) -> bytes:
        return DataWriter().write_byte_array(self.owner.serialize()).to_bytes()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "getUsername request")
        owner = PublicKeyHash.deserialize(r.read_byte_array(MAX_KEY_HASH_BYTES, "key hash"))
        r.expect_end()
        return cls(owner)


@dataclass(frozen=True)
class GetUsernameResponse:
    """`getUsername`'s answer (an unknown key is an HTTP error, not a body)."""

    username: str

    def encode(self) -> bytes:
        return DataWriter().write_string(self.username).to_bytes()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "getUsername response")
        username = r.read_string(MAX_USERNAME_SIZE, "username")
        r.expect_end()
        return cls(username)


def encode_usernames_gzip(usernames: Iterable[str]) -> bytes:
    """`getUsernamesGzip`'s body: gzip of the compact JSON list (serve with `Content-Encoding: gzip`)."""
    text = json.dumps(list(usernames), separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def decode_usernames_gzip(body: bytes, max_size: int = MAX_USERNAMES_JSON) -> list[str]:
    """Parse a `getUsernamesGzip` body (decompressing at most `max_size` bytes)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = d.decompress(body, max_size)
    except zlib.error as e:
        raise DecodeError(f"usernames: not gzip: {e}") from None
    if d.unconsumed_tail:
        raise DecodeError(f"usernames: more than {max_size} bytes of JSON")
    if not d.eof or d.unused_data:
        raise DecodeError("usernames: truncated or trailing gzip data")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DecodeError(f"usernames: not JSON: {e}") from None
    if type(value) is not list or not all(type(u) is str for u in value):
        raise DecodeError("usernames: expected a JSON list of strings")
    return value


@dataclass(frozen=True)
class MigrateUserRequest:
    """`migrateUser`: move a user to the server named in the new chain."""

    username: str
    new_chain: Chain
    current_storage_id: Cid
    mirror_bat: BatWithId | None
    latest_link_count_update: int
    """UTC epoch seconds of the newest secret-link count the caller has."""
    usage: int
    commit_to_pki: bool

    def encode(self) -> bytes:
        w = (
            DataWriter()
            .write_string(self.username)
            .write_byte_array(serialize_chain(self.new_chain))
            .write_byte_array(self.current_storage_id.to_bytes())
            .write_boolean(self.mirror_bat is not None)
        )
        if self.mirror_bat is not None:
            w.write_byte_array(self.mirror_bat.serialize())
        return (
            w.write_long(self.latest_link_count_update)
            .write_long(self.usage)
            .write_boolean(self.commit_to_pki)
            .to_bytes()
        )

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "migrateUser request")
        username = r.read_string(MAX_STRING, "username")
        chain = deserialize_chain(r.read_byte_array(MAX_MIGRATE_CHAIN_BYTES, "chain"))
        storage = Cid.decode(r.read_byte_array(MAX_STORAGE_ID_BYTES, "storage id"))
        bat = (
            BatWithId.deserialize(r.read_byte_array(MAX_MIGRATE_BAT_BYTES, "mirror BAT"))
            if r.read_boolean("has BAT")
            else None
        )
        link_counts = r.read_long("link count time")
        usage = r.read_long("usage")
        commit = r.read_boolean("commit to PKI")
        r.expect_end()
        return cls(username, chain, storage, bat, link_counts, usage, commit)


@dataclass(frozen=True)
class GetUserSnapshotsRequest:
    """`getUserSnapshots`: a page of user snapshots for whole-server mirroring (instance BAT required)."""

    cursor: str
    instance_bat: BatWithId
    last_link_counts_update: int

    def encode(self) -> bytes:
        return (
            DataWriter()
            .write_string(self.cursor)
            .write_byte_array(self.instance_bat.serialize())
            .write_long(self.last_link_counts_update)
            .to_bytes()
        )

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "getUserSnapshots request")
        cursor = r.read_string(MAX_STRING, "cursor")
        bat = BatWithId.deserialize(r.read_byte_array(MAX_BAT_BYTES, "instance BAT"))
        since = r.read_long("link count time")
        r.expect_end()
        return cls(cursor, bat, since)


def encode_snapshots(snapshots: Sequence[UserSnapshot]) -> bytes:
    """`getUserSnapshots`' response: a CBOR list of snapshots."""
    return dag_cbor.encode([s.to_cbor() for s in snapshots])


def decode_snapshots(body: bytes) -> tuple[UserSnapshot, ...]:
    """Parse a `getUserSnapshots` response."""
    items = expect_list(dag_cbor.decode(body), "user snapshots", max_len=MAX_SNAPSHOTS)
    return tuple(UserSnapshot.from_cbor(i) for i in items)


@dataclass(frozen=True)
class StartMirrorRequest:
    """`mirror`: ask this server to mirror a user (auth = identity-signed time, 10 minutes)."""

    username: str
    mirror_bat: BatWithId
    auth: bytes
    proof: ProofOfWork

    def encode(self) -> bytes:
        return (
            DataWriter()
            .write_string(self.username)
            .write_byte_array(self.mirror_bat.serialize())
            .write_byte_array(self.auth)
            .write_byte_array(self.proof.serialize())
            .to_bytes()
        )

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = DataReader(body, "mirror request")
        username = r.read_string(MAX_STRING, "username")
        bat = BatWithId.deserialize(r.read_byte_array(MAX_BAT_BYTES, "mirror BAT"))
        auth = r.read_byte_array(MAX_MIRROR_AUTH_BYTES, "auth")
        proof = _proof(r)
        r.expect_end()
        return cls(username, bat, auth, proof)

    def pow_data(self) -> bytes:
        """What the proof of work covers: the UTF-8 username."""
        return self.username.encode("utf-8")


def encode_bool(value: bool) -> bytes:
    """A `writeBoolean` response body (`mirror`)."""
    return DataWriter().write_boolean(value).to_bytes()


def decode_bool(body: bytes) -> bool:
    """Parse a one-boolean response body."""
    r = DataReader(body, "boolean response")
    value = r.read_boolean("result")
    r.expect_end()
    return value


__all__ = [
    "CORE_URL",
    "METHODS",
    "DifficultyResponse",
    "GetChainRequest",
    "GetPublicKeyRequest",
    "GetPublicKeyResponse",
    "GetUserSnapshotsRequest",
    "GetUsernameRequest",
    "GetUsernameResponse",
    "MigrateUserRequest",
    "SignupRequest",
    "StartMirrorRequest",
    "UpdateChainRequest",
    "UsernameRequest",
    "decode_bool",
    "decode_chain_response",
    "decode_snapshots",
    "decode_usernames_gzip",
    "encode_bool",
    "encode_chain_response",
    "encode_snapshots",
    "encode_usernames_gzip",
    "parse_core_path",
]
