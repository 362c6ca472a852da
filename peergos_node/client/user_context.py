"""The user's encrypted filesystem: signup, login and every file operation by path (spec/peergos.md §2.3,
§2.4, §4.4, §6, §8, §11.5, §13; Java `UserContext`, `FileWrapper`).

Theory of operation
-------------------
`UserContext.signup` creates the account with `client.account.signup`, whose filesystem hook
(`home_directory_hook`) builds the user's root directory `/<username>` — a directory node with a writer
link to a fresh filesystem writer, in that writer's CHAMP — and its system folders `shared`,
`.transactions` and `.capabilitycache` (hidden, like Java's signup), all inside the one atomic signup
OpLog; the root's writable capability becomes the login entry point. `UserContext.login` derives the
keys, answers a second-factor challenge through a callback when the account has one, and decrypts the
entry points.

Paths are `/<owner>/a/b` (a path without a leading `/` is taken relative to `/<username>`). A path is
resolved from the entry point one name at a time (`nodes.find_entry`); every node read is verified
(`network.py`) and decrypted with the capability from its parent's listing. Read operations use one
`Snapshot` (each writer's signed pointer read once); write operations run inside the per-writer
`WriteSynchronizer` and re-read what they modify under its lock, so a change built on stale state is
never committed: it is merged with the newer state or refused with `ConcurrentModificationError`.

Operations: `stat`, `ls` (hidden entries — names starting with `.` or system folders — only on
request), `mkdir`, `upload` (any size, from bytes or a local file, in bounded memory; files over one
5 MiB chunk go through a resumable upload transaction, see `uploads.py`), `open` (a seekable
`FileReader`), `read`, `download`, `write_at`/`append`/`truncate`, `rename`, `move` (never into itself
or a descendant), `copy` (files re-encrypted under fresh keys, folders recursively), `delete` (recursive,
removing every chunk and fragment from the tree so usage drops and GC frees them), `usage`/`quota`,
`pending_uploads`, `resume_uploads` and `cleanup_failed_uploads`; `change_password` (after checking the
current one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, TypeVar

import httpx
import trio

from peergos_node.accounts.entry_points import EntryPoint
from peergos_node.accounts.time_limited import sign_time
from peergos_node.champ import Champ, identity_hasher
from peergos_node.client import account
from peergos_node.client.account import (
    FilesystemHook,
    LoginFailed,
    MfaCallback,
    Network,
    Session,
    SignupBuilder,
)
from peergos_node.client.errors import (
    AlreadyExists,
    IllegalName,
    InvalidMove,
    IsADirectory,
    NotADirectory,
    PathNotFound,
    TamperedData,
    UploadNotResumable,
)
from peergos_node.client.files import (
    DataSource,
    FileEditor,
    FileReader,
    Source,
    ZeroSource,
    hash_tree,
    open_source,
    read_chunk,
    resized,
)
from peergos_node.client.http import (
    HttpAccount,
    HttpCoreNode,
    HttpMutablePointers,
    HttpStorage,
    PeergosHttp,
)
from peergos_node.client.mime import HEAD_BYTES, guess_mime_type
from peergos_node.client.network import MAX_CHAMP_KEYS_PER_REQUEST, NetworkAccess
from peergos_node.client.nodes import (
    DirEntry,
    Node,
    add_children,
    child_cap,
    chunk_children,
    delete_keys,
    dir_chunks,
    entry_for,
    find_entry,
    list_entries,
    load_node,
    load_nodes,
    new_directory,
    now,
    parent_link_for,
    present_locations,
    remove_and_delete,
    remove_child,
    replace_child,
)
from peergos_node.client.synchronizer import DirHint, Snapshot, WriteBatch, WriteSynchronizer
from peergos_node.client.tasks import task_group
from peergos_node.client.uploads import (
    TRANSACTIONS_DIR,
    ChunkUploader,
    FileUploadTransaction,
    ProgressCallback,
    first_absent_chunk,
    transaction_name,
)
from peergos_node.crypto.login import derive_login_keys
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.builders import FileEncryptor, random_location
from peergos_node.cryptree.capabilities import AbsoluteCapability, WritableAbsoluteCapability
from peergos_node.cryptree.chunks import ChunkLocation
from peergos_node.cryptree.node import create_dir
from peergos_node.cryptree.properties import (
    CHUNK_SIZE,
    STREAM_SECRET_BYTES,
    FileProperties,
    HashTree,
    Timestamp,
    check_file_name,
    chunk_count,
)
from peergos_node.cryptree.relative import NamedRelativeCapability, RelativeCapability
from peergos_node.errors import DecodeError, PeergosError
from peergos_node.mutable.writer_data import WriterData

T = TypeVar("T")

SHARED_DIR = "shared"
CAPABILITY_CACHE_DIR = ".capabilitycache"
SYSTEM_DIRS = (SHARED_DIR, TRANSACTIONS_DIR, CAPABILITY_CACHE_DIR)
"""Folders every account gets at signup (Java `UserContext.signUpGeneral`)."""
MAX_TRANSACTION_RECORD = 1024 * 1024
LIST_BATCH = MAX_CHAMP_KEYS_PER_REQUEST
"""Children looked up together when listing (one `champ/get/bulk` request)."""
LIST_PARALLEL = 4
"""Listing lookups in flight at once (client and server work overlap on separate cores)."""


def check_name(name: str) -> None:
    """Peergos name rules: not empty, `.` or `..`, no `/`, at most 255 UTF-16 units (IllegalName)."""
    try:
        check_file_name(name)
    except ValueError:
        raise IllegalName(f"Illegal file name: {name[:60]!r}") from None


@dataclass(frozen=True)
class FileInfo:
    """What `stat` and `ls` report about a file or directory."""

    path: str
    name: str
    is_dir: bool
    size: int
    modified: Timestamp
    created: Timestamp
    mime_type: str
    is_hidden: bool
    is_writable: bool

    @classmethod
    def of(cls, path: str, node: Node) -> FileInfo:
        """Info from a retrieved node at `path`."""
        p = node.props
        hidden = p.is_hidden or p.name.startswith(".")
        writable = isinstance(node.cap, WritableAbsoluteCapability) and node.signer is not None
        return cls(path, p.name, p.is_directory, p.size, p.modified, p.created, p.mime_type, hidden, writable)

    @classmethod
    def written(cls, path: str, p: FileProperties) -> FileInfo:
        """Info about something this client has just written with properties `p`."""
        hidden = p.is_hidden or p.name.startswith(".")
        return cls(path, p.name, p.is_directory, p.size, p.modified, p.created, p.mime_type, hidden, True)

    @property
    def modified_ms(self) -> int:
        """Modification time in UTC epoch milliseconds."""
        return self.modified.seconds * 1000 + self.modified.nanos // 1_000_000


@dataclass(frozen=True)
class _Content:
    """What a file is made of: its size, a chunk reader, its hash tree and first bytes."""

    size: int
    read_chunk: Callable[[int], Awaitable[bytes]]
    tree: HashTree | None
    head: bytes


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def home_directory_hook(username: str) -> FilesystemHook:
    """The signup hook that creates `/<username>` and its system folders (module docstring)."""

    def hook(b: SignupBuilder, writer: SigningKeyPair, rng: Rng) -> list[EntryPoint]:
        owner = b.owner
        signer = SigningPrivateKeyAndPublicHash.of(writer)
        writer_hash = signer.public_key_hash
        ts = now()
        here, nxt = random_location(rng), random_location(rng)
        rkey, wkey, parent_key = SymmetricKey.random(rng), SymmetricKey.random(rng), SymmetricKey.random(rng)
        root_cap = WritableAbsoluteCapability(owner, writer_hash, here.map_key, here.bat, rkey, wkey)
        champ = Champ(b.blocks, identity_hasher)
        entries: dict[bytes, object] = {}
        children: list[NamedRelativeCapability] = []
        raw: list[bytes] = []
        for name in SYSTEM_DIRS:
            c_here, c_next = random_location(rng), random_location(rng)
            c_r, c_w, c_p = SymmetricKey.random(rng), SymmetricKey.random(rng), SymmetricKey.random(rng)
            built = create_dir(
                rbase_key=c_r,
                parent_key=c_p,
                properties=FileProperties.directory(name, ts, is_hidden=True),
                children=[],
                next_chunk=RelativeCapability.subsequent_chunk(c_next.map_key, c_next.bat, c_r),
                parent_link=RelativeCapability.to_parent(root_cap, parent_key, writer_hash),
                inline_bat=c_here.bat,
                rng=rng,
            )
            raw.extend(f.block for f in built.fragments)
            entries[c_here.map_key] = b.blocks.put(built.block)
            cap = WritableAbsoluteCapability(owner, writer_hash, c_here.map_key, c_here.bat, c_r, c_w)
            rel = RelativeCapability.relativise(root_cap, cap, rng)
            children.append(NamedRelativeCapability(name, rel, True, "", ts.seconds))
        root = create_dir(
            rbase_key=rkey,
            parent_key=parent_key,
            properties=FileProperties.directory(username, ts),
            children=children,
            next_chunk=RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, rkey),
            parent_link=None,
            inline_bat=here.bat,
            wbase_key=wkey,
            signer=signer,
            rng=rng,
        )
        raw.extend(f.block for f in root.fragments)
        entries[here.map_key] = b.blocks.put(root.block)
        tree = champ.build(entries)
        b.flush(writer, raw)
        b.commit(writer, WriterData(controller=writer_hash, owned=champ.create_empty(), tree=tree))
        return [EntryPoint(root_cap, username)]

    return hook


def http_network(url: str, client: httpx.AsyncClient) -> Network:
    """The account and storage endpoints of the server at `url` over an httpx client."""
    http = PeergosHttp(url.rstrip("/"), client)
    return Network(HttpStorage(http), HttpMutablePointers(http), HttpCoreNode(http), HttpAccount(http))


class UserContext:
    """A logged-in user and their filesystem (see the module docstring). Create with `signup` or
    `login`; close with `aclose()` (or `async with`) when it opened its own HTTP client."""

    def __init__(
        self,
        network: Network,
        session: Session,
        *,
        rng: Rng = SYSTEM_RNG,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.session = session
        self.username = session.username
        self.rng = rng
        self.net = NetworkAccess(network)
        self.sync = WriteSynchronizer(self.net, rng)
        self._client = client
        self._roots: dict[str, AbsoluteCapability] = {}
        for e in session.entries:
            self._roots.setdefault(e.owner_name, e.cap)
        if self.username not in self._roots:
            raise PeergosError("the login data holds no entry point for the user's own folder")

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    async def _connect(
        cls, network: Network | str, transport: httpx.AsyncBaseTransport | None
    ) -> tuple[Network, httpx.AsyncClient | None]:
        if isinstance(network, Network):
            return network, None
        client = httpx.AsyncClient(transport=transport) if transport is not None else httpx.AsyncClient()
        return http_network(network, client), client

    @classmethod
    async def signup(
        cls,
        network: Network | str,
        username: str,
        password: str,
        token: str = "",
        *,
        rng: Rng = SYSTEM_RNG,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> UserContext:
        """Create an account (with its root folder and system folders) and log in to it."""
        net, client = await cls._connect(network, transport)
        try:
            session = await account.signup(
                net, username, password, token, rng=rng, filesystem=home_directory_hook(username)
            )
        except BaseException:
            if client is not None:
                await client.aclose()
            raise
        return cls(net, session, rng=rng, client=client)

    @classmethod
    async def login(
        cls,
        network: Network | str,
        username: str,
        password: str,
        *,
        mfa: MfaCallback | None = None,
        rng: Rng = SYSTEM_RNG,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> UserContext:
        """Log in (a second factor is asked through `mfa` when the account has one)."""
        net, client = await cls._connect(network, transport)
        try:
            session = await account.login(net, username, password, mfa)
        except BaseException:
            if client is not None:
                await client.aclose()
            raise
        return cls(net, session, rng=rng, client=client)

    async def aclose(self) -> None:
        """Close the HTTP client this context opened (if any)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def change_password(self, old_password: str, new_password: str) -> None:
        """Change the account's password after checking the current one (LoginFailed if it is wrong);
        this session stays logged in with the new login keys."""
        current = self.session
        try:
            keys = await trio.to_thread.run_sync(
                derive_login_keys, current.username, old_password, current.algorithm
            )
        except ValueError as e:
            raise LoginFailed(str(e)) from None
        if keys.signing.public != current.login_keys.signing.public:
            raise LoginFailed("the current password is incorrect")
        self.session = await account.change_password(self.net.net, current, new_password, self.rng)

    @property
    def owner(self) -> PublicKeyHash:
        """The user's identity key hash."""
        return self.session.owner

    @property
    def home(self) -> str:
        """The user's root folder path, `/<username>`."""
        return f"/{self.username}"

    # ---- paths -------------------------------------------------------------------------------------
    def normalize(self, path: str) -> str:
        """An absolute path without duplicate or trailing slashes (relative paths start at the home)."""
        if not path.startswith("/"):
            path = f"{self.home}/{path}"
        parts = [p for p in path.split("/") if p]
        return "/" + "/".join(parts)

    def _parts(self, path: str) -> list[str]:
        parts = [p for p in self.normalize(path).split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise IllegalName(f"paths cannot contain '.' or '..': {path[:200]!r}")
        if not parts:
            raise PathNotFound("/ is not a folder of any user; paths start with /<username>")
        return parts

    async def _chain(self, snap: Snapshot, path: str) -> list[Node]:
        """The nodes from the owner's root to `path`."""
        parts = self._parts(path)
        cap = self._roots.get(parts[0])
        if cap is None:
            raise PathNotFound(f"no access to /{parts[0]}")
        root = await load_node(snap, cap)
        if root is None:
            raise PathNotFound(f"/{parts[0]} does not exist")
        chain = [root]
        for i, name in enumerate(parts[1:], start=2):
            node = chain[-1]
            if not node.is_dir:
                raise NotADirectory(f"/{'/'.join(parts[: i - 1])} is not a folder")
            entry = await find_entry(snap, node, name)
            child = (
                None
                if entry is None
                else await load_node(snap, child_cap(entry, self.net.decoded), node.signer)
            )
            if child is None:
                raise PathNotFound(f"/{'/'.join(parts[:i])} does not exist")
            chain.append(child)
        return chain

    async def _node(self, snap: Snapshot, path: str) -> Node:
        return (await self._chain(snap, path))[-1]

    async def _dir(self, snap: Snapshot, path: str) -> Node:
        node = await self._node(snap, path)
        if not node.is_dir:
            raise NotADirectory(f"{self.normalize(path)} is not a folder")
        return node

    def _split(self, path: str) -> tuple[str, str]:
        full = self.normalize(path)
        parent, _, name = full.rpartition("/")
        if not parent:
            raise InvalidMove(f"{full} is a user's root folder")
        return parent, name

    async def _write(
        self,
        owner: PublicKeyHash,
        signers: Sequence[SigningPrivateKeyAndPublicHash],
        fn: Callable[[dict[PublicKeyHash, WriteBatch], Snapshot], Awaitable[T]],
    ) -> T:
        """Run a write over the given writers (one commit; `setPointers` when several)."""
        distinct = list({s.public_key_hash: s for s in signers}.values())
        if len(distinct) == 1:

            async def single(batch: WriteBatch, snap: Snapshot) -> T:
                return await fn({batch.writer: batch}, snap)

            return await self.sync.apply(owner, distinct[0], single)
        return await self.sync.apply_multi(owner, distinct, fn)

    async def _fresh(self, snap: Snapshot, node: Node) -> Node:
        """`node` re-read inside a write (PathNotFound if it has gone)."""
        got = await load_node(snap, node.cap, node.signer)
        if got is None:
            raise PathNotFound(f"{node.name!r} was removed concurrently")
        return got

    # ---- reading -----------------------------------------------------------------------------------
    async def stat(self, path: str) -> FileInfo:
        """Properties of a file or folder."""
        return FileInfo.of(self.normalize(path), await self._node(Snapshot(self.net), path))

    async def exists(self, path: str) -> bool:
        """Whether something exists at the path."""
        try:
            await self._node(Snapshot(self.net), path)
        except (PathNotFound, NotADirectory):
            return False
        return True

    async def ls(self, path: str, *, include_hidden: bool = False) -> list[FileInfo]:
        """The children of a folder, sorted by name (hidden ones only with `include_hidden`)."""
        snap = Snapshot(self.net)
        full = self.normalize(path)
        folder = await self._dir(snap, full)
        out: list[FileInfo] = []
        limit = trio.CapacityLimiter(LIST_PARALLEL)

        async def load(part: list[DirEntry]) -> None:
            async with limit:
                nodes = await load_nodes(snap, [child_cap(e, self.net.decoded) for e in part], folder.signer)
            for e, n in zip(part, nodes, strict=True):
                if n is not None:
                    info = FileInfo.of(_join(full, e.name), n)
                    if include_hidden or not info.is_hidden:
                        out.append(info)

        async with task_group() as nursery:
            # Each chunk's children are loaded (one CHAMP request per part, a few in flight) while the
            # chunk chain is still being followed: a chunk names its successor, so the chain is serial.
            async def children_of(chunk: Node) -> None:
                entries = [DirEntry(link, chunk) for link in await chunk_children(snap, chunk)]
                if not include_hidden:
                    entries = [e for e in entries if not e.name.startswith(".")]
                for start in range(0, len(entries), LIST_BATCH):
                    nursery.start_soon(load, entries[start : start + LIST_BATCH])

            await dir_chunks(snap, folder, lambda chunk: nursery.start_soon(children_of, chunk))
        return sorted(out, key=lambda i: i.name)

    async def open(self, path: str) -> FileReader:
        """A seekable reader of a file (reads the version current now)."""
        snap = Snapshot(self.net)
        return FileReader(snap, await self._node(snap, path))

    async def read(self, path: str, offset: int = 0, length: int = -1) -> bytes:
        """Bytes of a file (all of it by default: use `open`/`download` for large files)."""
        reader = await self.open(path)
        await reader.seek(offset)
        return await reader.read(length)

    async def download(self, path: str, dest: str | os.PathLike[str] | BinaryIO) -> int:
        """Stream a file into a local file (path or binary file object); returns the bytes written."""
        reader = await self.open(path)
        if isinstance(dest, str | os.PathLike):
            f: BinaryIO = await trio.to_thread.run_sync(_open_for_writing, Path(dest))
            try:
                return await _stream_to(reader, f)
            finally:
                f.close()
        return await _stream_to(reader, dest)

    async def usage(self) -> int:
        """Bytes the user's data takes on the server."""
        auth = sign_time(self.session.identity.secret, int(time.time() * 1000))
        return await self.net.space.usage(self.owner, auth)

    async def quota(self) -> int:
        """The user's storage quota in bytes."""
        auth = sign_time(self.session.identity.secret, int(time.time() * 1000))
        return await self.net.space.quota(self.owner, auth)

    # ---- folders -----------------------------------------------------------------------------------
    async def mkdir(self, path: str, *, parents: bool = False, hidden: bool = False) -> FileInfo:
        """Create a folder (with `parents`, also missing ancestors; an existing folder is then fine).
        Names are checked before anything is created, so an illegal one leaves no folders behind."""
        full = self.normalize(path)
        parent_path, name = self._split(full)
        check_name(name)
        if parents:
            parts = self._parts(parent_path)
            for part in parts[1:]:
                check_name(part)
            for i in range(2, len(parts) + 1):
                sub = "/" + "/".join(parts[:i])
                if not await self.exists(sub):
                    try:
                        await self.mkdir(sub)
                    except AlreadyExists:
                        pass
            try:
                return await self.mkdir(full, hidden=hidden)
            except AlreadyExists:
                info = await self.stat(full)
                if not info.is_dir:
                    raise
                return info
        parent = await self._dir(Snapshot(self.net), parent_path)
        _, signer = parent.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            p = await self._fresh(snap, parent)
            batch = batches[p.writer]
            link, _cap = new_directory(batch, p, name, hidden=hidden, rng=self.rng)
            await add_children(batch, snap, p, [link])

        await self._write(parent.owner, [signer], op)
        ts = now()
        return FileInfo(full, name, True, 0, ts, ts, "", hidden or name.startswith("."), True)

    # ---- uploads -----------------------------------------------------------------------------------
    async def upload(
        self,
        path: str,
        data: Source,
        *,
        overwrite: bool = False,
        mime_type: str | None = None,
        modified: Timestamp | None = None,
        progress: ProgressCallback | None = None,
    ) -> FileInfo:
        """Upload a file from bytes or a local file (any size, bounded memory).

        With `overwrite`, an existing file of that name is replaced (atomically, once the new content is
        stored). Files bigger than one 5 MiB chunk are uploaded through an upload transaction: if an
        earlier upload of the same path with the same content was interrupted, it is resumed from its
        first missing chunk. `progress` is awaited after every committed chunk.
        """
        source = open_source(data)
        try:
            return await self._upload_source(path, source, overwrite, mime_type, modified, progress)
        finally:
            source.close()

    async def _upload_source(
        self,
        path: str,
        source: DataSource,
        overwrite: bool,
        mime_type: str | None,
        modified: Timestamp | None,
        progress: ProgressCallback | None,
        tree: HashTree | None = None,
    ) -> FileInfo:
        tree = tree if tree is not None else await hash_tree(source)
        head = await trio.to_thread.run_sync(source.read_at, 0, HEAD_BYTES)

        async def reader(i: int) -> bytes:
            return await read_chunk(source, i)

        return await self._upload_content(
            path, _Content(source.size, reader, tree, head), overwrite, mime_type, modified, progress
        )

    async def _upload_content(
        self,
        path: str,
        content: _Content,
        overwrite: bool,
        mime_type: str | None,
        modified: Timestamp | None,
        progress: ProgressCallback | None,
    ) -> FileInfo:
        full = self.normalize(path)
        parent_path, name = self._split(full)
        check_name(name)
        snap = Snapshot(self.net)
        parent = await self._dir(snap, parent_path)
        parent.writable()
        existing = await find_entry(snap, parent, name)
        if existing is not None:
            if not overwrite:
                raise AlreadyExists(f"{full} already exists")
            if existing.link.is_directory:
                raise IsADirectory(f"{full} is a folder")
        mime = mime_type or guess_mime_type(name, content.head)
        if content.size <= CHUNK_SIZE:
            return await self._upload_small(full, parent, name, content, overwrite, mime, modified)
        return await self._upload_large(full, parent, name, content, overwrite, mime, modified, progress)

    def _new_props(self, name: str, size: int, mime: str, modified: Timestamp | None) -> FileProperties:
        ts = now()
        secret = self.rng.random_bytes(STREAM_SECRET_BYTES)
        return FileProperties.file(name, size, modified or ts, mime, secret, created=ts)

    async def _link_files(
        self,
        batch: WriteBatch,
        snap: Snapshot,
        parent: Node,
        links: Sequence[NamedRelativeCapability],
        overwrite: bool,
    ) -> None:
        """Add new files' entries to their folder, replacing (and deleting) existing files if allowed."""
        p = await self._fresh(snap, parent)
        existing = {e.name: e for e in await list_entries(snap, p)}
        fresh: list[NamedRelativeCapability] = []
        for link in links:
            old = existing.get(link.name)
            if old is None:
                fresh.append(link)
                continue
            if not overwrite:
                raise AlreadyExists(f"{link.name!r} already exists")
            old_node = await load_node(snap, child_cap(old), p.signer)
            if old_node is not None and old_node.is_dir:
                raise IsADirectory(f"{link.name!r} is a folder")
            await replace_child(batch, snap, p, link.name, link)
            if old_node is not None and old_node.writer == batch.writer:
                for key in await delete_keys(snap, old_node):
                    batch.remove(key)
            # the folder's chunks just changed in the batch: the next edit must start from them, not
            # from the node read before (else it would write back the replaced entry)
            p = await self._fresh(snap, p)
        if fresh:
            await add_children(batch, snap, p, fresh)

    async def _store_small(
        self, batch: WriteBatch, p: Node, props: FileProperties, data: bytes, tree: HashTree | None
    ) -> NamedRelativeCapability:
        """Encrypt a one-chunk file into the batch; returns its entry for the folder `p`."""
        p_cap, _ = p.writable()
        first = random_location(self.rng)
        base_key, data_key, write_key = (SymmetricKey.random(self.rng) for _ in range(3))
        enc = FileEncryptor(base_key, data_key, props, first, parent_link_for(p), tree, p.node.mirror_bat_id)
        located = await trio.to_thread.run_sync(enc.encrypt_chunk, 0, data, self.rng, first)
        batch.put_node(first.map_key, located.node, located.fragments)
        cap = WritableAbsoluteCapability(
            p_cap.owner, p_cap.writer, first.map_key, first.bat, base_key, write_key
        )
        return entry_for(p_cap, cap, props, self.rng)

    async def _upload_small(
        self,
        full: str,
        parent: Node,
        name: str,
        content: _Content,
        overwrite: bool,
        mime: str,
        modified: Timestamp | None,
    ) -> FileInfo:
        data = await content.read_chunk(0) if content.size else b""
        props = self._new_props(name, content.size, mime, modified)
        _, signer = parent.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            p = await self._fresh(snap, parent)
            batch = batches[p.writer]
            link = await self._store_small(batch, p, props, data, content.tree)
            await self._link_files(batch, snap, p, [link], overwrite)

        await self._write(parent.owner, [signer], op)
        return FileInfo.written(full, props)

    async def upload_files(
        self,
        folder: str,
        files: Mapping[str, Source] | Sequence[tuple[str, Source]],
        *,
        overwrite: bool = False,
    ) -> list[FileInfo]:
        """Upload several files into one folder. Files of at most one chunk (5 MiB) are stored with a
        single commit (all of them are read into memory first); bigger ones are uploaded one by one."""
        full = self.normalize(folder)
        items = list(files.items()) if isinstance(files, Mapping) else list(files)
        names = [n for n, _ in items]
        for n in names:
            check_name(n)
        if len(set(names)) != len(names):
            raise AlreadyExists("the same name is given twice")
        small: list[tuple[FileProperties, bytes, HashTree]] = []
        out: list[FileInfo] = []
        for name, data in items:
            source = open_source(data)
            try:
                if source.size > CHUNK_SIZE:
                    out.append(
                        await self._upload_source(_join(full, name), source, overwrite, None, None, None)
                    )
                    continue
                body = await trio.to_thread.run_sync(source.read_at, 0, source.size)
            finally:
                source.close()
            mime = guess_mime_type(name, body[:HEAD_BYTES])
            small.append((self._new_props(name, len(body), mime, None), body, HashTree.of_data(body)))
        if not small:
            return out
        parent = await self._dir(Snapshot(self.net), full)
        _, signer = parent.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            p = await self._fresh(snap, parent)
            batch = batches[p.writer]
            links = [await self._store_small(batch, p, props, body, tree) for props, body, tree in small]
            await self._link_files(batch, snap, p, links, overwrite)

        await self._write(parent.owner, [signer], op)
        out.extend(FileInfo.written(_join(full, props.name), props) for props, _, _ in small)
        return out

    async def _transactions_dir(self, snap: Snapshot) -> Node:
        """`/<user>/.transactions`, created if an older account lacks it."""
        path = _join(self.home, TRANSACTIONS_DIR)
        try:
            return await self._dir(snap, path)
        except PathNotFound:
            await self.mkdir(path, hidden=True)
            return await self._dir(Snapshot(self.net), path)

    async def _read_record(
        self, snap: Snapshot, entry: DirEntry, folder: Node
    ) -> FileUploadTransaction | None:
        node = await load_node(snap, child_cap(entry), folder.signer)
        if node is None or node.is_dir or node.props.size > MAX_TRANSACTION_RECORD:
            return None
        data = await FileReader(snap, node).read()
        try:
            return FileUploadTransaction.deserialize(data)
        except (DecodeError, ValueError):
            return None

    async def pending_uploads(self) -> list[FileUploadTransaction]:
        """Upload transactions that were started and never finished (from any device)."""
        snap = Snapshot(self.net)
        folder = await self._transactions_dir(snap)
        out = []
        for entry in await list_entries(snap, folder):
            record = await self._read_record(snap, entry, folder)
            if record is not None and record.owner == self.owner:
                out.append(record)
        return sorted(out, key=lambda r: (r.start_time_ms, r.path))

    async def uploaded_chunks(self, record: FileUploadTransaction) -> int:
        """How many chunks of a pending upload are stored (8-ary search, O(log8 n) requests)."""
        snap = Snapshot(self.net)
        owner, writer = record.owner, record.writer.public_key_hash

        async def present(locs: Sequence[ChunkLocation]) -> list[bool]:
            return await present_locations(snap, [(owner, writer, loc) for loc in locs])

        return await first_absent_chunk(record.stream_secret, record.first, record.chunk_count, present)

    async def _write_record(self, record: FileUploadTransaction) -> None:
        data = record.serialize()
        content = _Content(len(data), lambda _i: _const(data), None, b"")
        path = _join(_join(self.home, TRANSACTIONS_DIR), record.name)
        await self._transactions_dir(Snapshot(self.net))
        parent = await self._dir(Snapshot(self.net), _join(self.home, TRANSACTIONS_DIR))
        await self._upload_small(path, parent, record.name, content, False, "application/cbor", None)

    async def _finish_record_removal(
        self, batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot, folder: Node, name: str
    ) -> None:
        """Remove a record's file from the transactions folder, if there (inside a write)."""
        f = await self._fresh(snap, folder)
        if await find_entry(snap, f, name) is not None:
            await remove_and_delete(batches, snap, f, name)

    async def _cleanup(self, record: FileUploadTransaction) -> None:
        """Delete every chunk a pending upload may have stored, and its record."""
        snap = Snapshot(self.net)
        folder = await self._transactions_dir(snap)
        _, folder_signer = folder.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], s: Snapshot) -> None:
            chunks = batches[record.writer.public_key_hash]
            for loc in record.locations():
                chunks.remove(loc.map_key)
            await self._finish_record_removal(batches, s, folder, record.name)

        await self._write(record.owner, [record.writer, folder_signer], op)

    def _resumable(self, record: FileUploadTransaction, name: str, content: _Content, parent: Node) -> bool:
        return (
            not record.is_legacy
            and record.size == content.size
            and record.hash is not None
            and content.tree is not None
            and record.hash.root == content.tree.root
            and record.props is not None
            and record.props.name == name
            and record.writer.public_key_hash == parent.writer
        )

    async def _upload_large(
        self,
        full: str,
        parent: Node,
        name: str,
        content: _Content,
        overwrite: bool,
        mime: str,
        modified: Timestamp | None,
        progress: ProgressCallback | None,
    ) -> FileInfo:
        _, signer = parent.writable()
        snap = Snapshot(self.net)
        folder = await self._transactions_dir(snap)
        entry = await find_entry(snap, folder, transaction_name(full))
        record = None if entry is None else await self._read_record(snap, entry, folder)
        start = 0
        if record is not None and self._resumable(record, name, content, parent):
            start = await self.uploaded_chunks(record)
        else:
            if record is not None:
                await self._cleanup(record)
            elif entry is not None:  # an unreadable record: drop it
                await self._drop_record_entry(folder, entry.name)
            props = self._new_props(name, content.size, mime, modified)
            if content.tree is not None:
                props = props.with_hash(content.tree.branch(0))
            base_key, data_key, write_key = (SymmetricKey.random(self.rng) for _ in range(3))
            record = FileUploadTransaction(
                start_time_ms=int(time.time() * 1000),
                path=full,
                owner=parent.owner,
                writer=signer,
                first=random_location(self.rng),
                size=content.size,
                stream_secret=props.stream_secret or b"",
                props=props,
                hash=content.tree,
                base_key=base_key,
                data_key=data_key,
                write_key=write_key,
            )
            await self._write_record(record)
        assert record.props is not None and record.base_key is not None and record.data_key is not None
        props = record.props.with_hash(None)
        encryptor = FileEncryptor(
            record.base_key, record.data_key, props, record.first, parent_link_for(parent), content.tree,
            parent.node.mirror_bat_id,
        )  # fmt: skip
        await ChunkUploader(self.net, self.sync, parent.owner, signer, encryptor, content.read_chunk).run(
            start, full, progress
        )
        final_record = record
        _, folder_signer = folder.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], s: Snapshot) -> None:
            p = await self._fresh(s, parent)
            p_cap, _ = p.writable()
            link = entry_for(p_cap, final_record.write_cap(), props, self.rng)
            await self._link_files(batches[p.writer], s, p, [link], overwrite)
            await self._finish_record_removal(batches, s, folder, final_record.name)

        await self._write(parent.owner, [signer, folder_signer], op)
        return FileInfo.written(full, props)

    async def _drop_record_entry(self, folder: Node, entry_name: str) -> None:
        _, signer = folder.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], s: Snapshot) -> None:
            await self._finish_record_removal(batches, s, folder, entry_name)

        await self._write(folder.owner, [signer], op)

    async def resume_uploads(
        self,
        source_for: Callable[[FileUploadTransaction], Source | None],
        *,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> list[FileInfo]:
        """Finish pending uploads: `source_for(record)` gives the data for `record.path` (or None to skip
        it). Raises UploadNotResumable if the data given is not what was being uploaded."""
        done = []
        for record in await self.pending_uploads():
            data = source_for(record)
            if data is None:
                continue
            source = open_source(data)
            try:
                if source.size != record.size:
                    raise UploadNotResumable(
                        f"{record.path}: expected {record.size} bytes, got {source.size}"
                    )
                tree = await hash_tree(source)
                if record.hash is not None and record.hash.root != tree.root:
                    raise UploadNotResumable(f"{record.path}: the data differs from what was being uploaded")
                mime = record.props.mime_type if record.props is not None else None
                done.append(
                    await self._upload_source(record.path, source, overwrite, mime, None, progress, tree)
                )
            finally:
                source.close()
        return done

    async def cleanup_failed_uploads(
        self, keep: Callable[[FileUploadTransaction], bool] | None = None
    ) -> list[str]:
        """Delete the stored chunks and records of pending uploads (except those `keep` selects);
        returns their target paths."""
        cleaned = []
        for record in await self.pending_uploads():
            if keep is not None and keep(record):
                continue
            await self._cleanup(record)
            cleaned.append(record.path)
        return cleaned

    # ---- editing files -----------------------------------------------------------------------------
    async def _file_for_write(self, path: str) -> Node:
        node = await self._node(Snapshot(self.net), path)
        if node.is_dir:
            raise IsADirectory(f"{self.normalize(path)} is a folder")
        node.writable()
        if node.props.stream_secret is None:
            raise TamperedData(
                f"{self.normalize(path)} is a legacy file without a stream secret; read-only here"
            )
        return node

    async def write_at(self, path: str, offset: int, data: Source) -> FileInfo:
        """Overwrite part of a file (extending it, zero-filling any gap, if the data goes past the end)."""
        if offset < 0:
            raise ValueError("offset must be non-negative")
        source = open_source(data)
        try:
            return await self._write_source(path, offset, source)
        finally:
            source.close()

    async def _write_source(self, path: str, offset: int, source: DataSource) -> FileInfo:
        file = await self._file_for_write(path)
        _, signer = file.writable()
        end = offset + source.size
        old_size = file.props.size
        final_size = max(old_size, end)
        if source.size == 0:
            return FileInfo.of(self.normalize(path), file)
        indices = range(min(offset, old_size) // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1)
        for index in indices:
            lo = max(offset, index * CHUNK_SIZE)
            hi = min(end, (index + 1) * CHUNK_SIZE)
            piece = await trio.to_thread.run_sync(source.read_at, lo - offset, hi - lo) if hi > lo else b""

            async def op(
                batches: dict[PublicKeyHash, WriteBatch],
                snap: Snapshot,
                i: int = index,
                at: int = lo,
                data: bytes = piece,
            ) -> None:
                f = await self._fresh(snap, file)
                current = f.props.size
                size_now = max(current, min(final_size, (i + 1) * CHUNK_SIZE))
                props = resized(f.props, size_now)
                editor = FileEditor(f)

                def patch(buf: bytearray) -> None:
                    start = at - i * CHUNK_SIZE
                    buf[start : start + len(data)] = data

                await editor.write_chunk(batches[f.writer], snap, i, props, patch, current)
                if i != 0:
                    await editor.set_properties(batches[f.writer], snap, props)

            await self._write(file.owner, [signer], op)
        return await self.stat(path)

    async def append(self, path: str, data: Source) -> FileInfo:
        """Add bytes at the end of a file."""
        file = await self._file_for_write(path)
        return await self.write_at(path, file.props.size, data)

    async def truncate(self, path: str, size: int) -> FileInfo:
        """Cut a file to `size` bytes (or extend it with zeros)."""
        if size < 0:
            raise ValueError("size must be non-negative")
        file = await self._file_for_write(path)
        old = file.props.size
        if size > old:
            source = ZeroSource(size - old)
            return await self._write_source(path, old, source)
        if size == old:
            return FileInfo.of(self.normalize(path), file)
        _, signer = file.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            f = await self._fresh(snap, file)
            batch = batches[f.writer]
            current = f.props.size
            props = resized(f.props, size)
            editor = FileEditor(f)
            keep = chunk_count(size)
            await editor.write_chunk(batch, snap, keep - 1, props, lambda _b: None, current)
            if keep - 1 != 0:
                await editor.set_properties(batch, snap, props)
            for i in range(keep, chunk_count(current)):
                batch.remove(editor.location(i).map_key)

        await self._write(file.owner, [signer], op)
        return await self.stat(path)

    # ---- moving things around ----------------------------------------------------------------------
    async def rename(self, path: str, new_name: str) -> FileInfo:
        """Give a file or folder a new name in the same folder."""
        check_name(new_name)
        full = self.normalize(path)
        parent_path, name = self._split(full)
        if name == new_name:
            return await self.stat(full)
        chain = await self._chain(Snapshot(self.net), full)
        parent, target = chain[-2], chain[-1]
        _, p_signer = parent.writable()
        _, t_signer = target.writable()

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            p = await self._fresh(snap, parent)
            entry = await find_entry(snap, p, name)
            if entry is None:
                raise PathNotFound(f"{full} does not exist")
            t = await self._fresh(snap, target)
            node = t.node.with_properties(t.cap.rbase_key, t.props.renamed(new_name), self.rng)
            hint = DirHint(t.cap.bat, t.cap.rbase_key) if t.is_dir else None
            batches[t.writer].put_node(t.cap.map_key, node, dir_hint=hint)
            await replace_child(batches[p.writer], snap, p, name, entry.link.renamed(new_name))

        await self._write(parent.owner, [p_signer, t_signer], op)
        return await self.stat(_join(parent_path, new_name))

    async def move(self, path: str, target_dir: str) -> FileInfo:
        """Move a file or folder into another folder (not into itself or one of its descendants)."""
        full = self.normalize(path)
        target_path = self.normalize(target_dir)
        parent_path, name = self._split(full)
        if target_path == full or target_path.startswith(full + "/"):
            raise InvalidMove("You cannot move a folder to itself or a descendant folder")
        if target_path == parent_path:
            return await self.stat(full)
        snap = Snapshot(self.net)
        chain = await self._chain(snap, full)
        parent, node = chain[-2], chain[-1]
        target = await self._dir(snap, target_path)
        _, p_signer = parent.writable()
        _, t_signer = target.writable()
        _, n_signer = node.writable()
        if await find_entry(snap, target, name) is not None:
            raise AlreadyExists(f"Child already exists with name {name} in destination folder.")
        if len({parent.writer, target.writer, node.writer}) != 1:
            info = await self.copy(full, target_path)
            await self.delete(full)
            return info

        async def op(batches: dict[PublicKeyHash, WriteBatch], s: Snapshot) -> None:
            batch = batches[node.writer]
            p = await self._fresh(s, parent)
            t = await self._fresh(s, target)
            entry = await remove_child(batch, s, p, name)
            n = await self._fresh(s, node)
            moved = n.node.with_parent_link(n.cap.rbase_key, parent_link_for(t), self.rng)
            hint = DirHint(n.cap.bat, n.cap.rbase_key) if n.is_dir else None
            batch.put_node(n.cap.map_key, moved, dir_hint=hint)
            t_cap, _ = t.writable()
            rel = RelativeCapability.relativise(t_cap, n.cap, self.rng)
            link = NamedRelativeCapability(
                name, rel, entry.link.is_dir, entry.link.mime_type, entry.link.created
            )
            await add_children(batch, s, t, [link])

        await self._write(node.owner, [p_signer, t_signer, n_signer], op)
        return await self.stat(_join(target_path, name))

    async def copy(self, path: str, target_dir: str, new_name: str | None = None) -> FileInfo:
        """Copy a file or folder (recursively) into a folder, under fresh keys."""
        full = self.normalize(path)
        target_path = self.normalize(target_dir)
        if target_path == full or target_path.startswith(full + "/"):
            raise InvalidMove("You cannot copy a folder into itself or a descendant folder")
        snap = Snapshot(self.net)
        source = await self._node(snap, full)
        name = new_name if new_name is not None else source.name
        check_name(name)
        dest = _join(target_path, name)
        if not source.is_dir:
            return await self._copy_file(snap, source, dest)
        info = await self.mkdir(dest, hidden=source.props.is_hidden)
        for entry in await list_entries(snap, source):
            await self.copy(_join(full, entry.name), dest)
        return info

    async def _copy_file(self, snap: Snapshot, source: Node, dest: str) -> FileInfo:
        reader = FileReader(snap, source)
        head = (await reader.fetch_chunk(0))[:HEAD_BYTES] if source.props.size else b""
        content = _Content(source.props.size, reader.fetch_chunk, None, head)
        return await self._upload_content(
            dest, content, False, source.props.mime_type, source.props.modified, None
        )

    async def delete(self, path: str) -> None:
        """Delete a file or a folder with everything in it (every chunk leaves the tree)."""
        full = self.normalize(path)
        _, name = self._split(full)
        chain = await self._chain(Snapshot(self.net), full)
        parent, node = chain[-2], chain[-1]
        _, p_signer = parent.writable()
        signers = [p_signer]
        if node.signer is not None:
            signers.append(node.signer)

        async def op(batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot) -> None:
            await remove_and_delete(batches, snap, await self._fresh(snap, parent), name)

        await self._write(parent.owner, signers, op)

    # ---- diagnostics -------------------------------------------------------------------------------
    async def directory_chunks(self, path: str) -> int:
        """How many chunks a folder's child list takes (500 children per chunk)."""
        snap = Snapshot(self.net)
        return len(await dir_chunks(snap, await self._dir(snap, path)))


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")


async def _const(data: bytes) -> bytes:
    return data


async def _stream_to(reader: FileReader, out: BinaryIO) -> int:
    async def write(b: bytes) -> None:
        await trio.to_thread.run_sync(out.write, b)

    return await reader.stream(write)


__all__ = [
    "CAPABILITY_CACHE_DIR",
    "SHARED_DIR",
    "SYSTEM_DIRS",
    "FileInfo",
    "UserContext",
    "check_name",
    "home_directory_hook",
    "http_network",
]
