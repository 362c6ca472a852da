"""A reference model of one user's Peergos filesystem and a random operation generator for the model test
(tests/property/test_fs_model.py; spec/peergos.md §6.5 files, §6.6 directories; Java `Simulator`).

Theory of operation
-------------------
`FsModel` is the filesystem as plain data: a tree of `MDir` (children by name, a hidden flag) and `MFile`
(a bytearray), rooted at `/<username>` with the system folders signup creates (§2.4). Its operations
take the same arguments as `UserContext`'s and follow the same rules, written down from what a user may
expect rather than from the client's code:

- paths: relative paths start at the home folder, empty components are dropped, `.`/`..` components are
  IllegalName, anything outside `/<username>` is PathNotFound, a file inside the path is NotADirectory;
- names (§6.6 `isLegalName`): not empty, `.` or `..`, no `/`, at most 255 UTF-16 units (IllegalName);
  names starting with `.` (and folders made hidden) are listed only on request;
- a name is unique in its folder (AlreadyExists), the user's root cannot be moved, renamed or deleted, and
  a folder cannot be moved or copied into itself or a descendant (InvalidMove, judged on the paths);
- files: `write_at` past the end zero-fills the gap, `truncate` shrinks or zero-extends, reads past the end
  return what is there; a folder where a file is needed is IsADirectory.

Every operation either succeeds or raises one of the client's error classes **without changing
anything** (checks first, then one mutation), so the test can demand the same of the client. Results are
reduced to comparable values (`Info` tuples, bytes, bools) so model and client answers compare with `==`.

`OpGenerator` draws weighted operations from a `random.Random(seed)`: mostly valid ones on existing paths
(small files, some over the 4 KiB inline limit, a few over one 5 MiB chunk; edits across the chunk boundary
and past the end), and about one in six aimed at an error (name clashes, illegal names, paths below a file,
missing parents, moves into a descendant, the root). The tree is kept to a few dozen entries so every step
can be compared in full.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from peergos_node.client.errors import (
    AlreadyExists,
    IllegalName,
    InvalidMove,
    IsADirectory,
    NotADirectory,
    PathNotFound,
)
from peergos_node.cryptree.properties import CHUNK_SIZE, java_length

SYSTEM_DIRS = ("shared", ".transactions", ".capabilitycache")
MAX_NAME_UNITS = 255


# ---- the model ---------------------------------------------------------------------------------------
@dataclass
class MFile:
    """A file: its bytes."""

    data: bytearray = field(default_factory=bytearray)


@dataclass
class MDir:
    """A folder: children by name; `hidden` as given to mkdir (names starting with `.` are hidden anyway)."""

    children: dict[str, MFile | MDir] = field(default_factory=dict)
    hidden: bool = False


MNode = MFile | MDir


class Info(NamedTuple):
    """The comparable part of a `FileInfo`."""

    path: str
    name: str
    is_dir: bool
    size: int
    is_hidden: bool


def check_name(name: str) -> None:
    """Peergos name rules (IllegalName)."""
    if name in ("", ".", "..") or "/" in name or java_length(name) > MAX_NAME_UNITS:
        raise IllegalName(f"illegal name {name[:40]!r}")


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def _copy_node(node: MNode) -> MNode:
    if isinstance(node, MFile):
        return MFile(bytearray(node.data))
    return MDir({k: _copy_node(v) for k, v in node.children.items()}, node.hidden)


class FsModel:
    """One user's filesystem as plain data (see the module docstring)."""

    def __init__(self, username: str) -> None:
        self.username = username
        self.root = MDir({name: MDir(hidden=True) for name in SYSTEM_DIRS})
        self.touched: list[str] = []
        """Paths (files or folders) whose content the last operation created or changed."""

    # ---- paths -------------------------------------------------------------------------------------
    @property
    def home(self) -> str:
        return f"/{self.username}"

    def normalize(self, path: str) -> str:
        if not path.startswith("/"):
            path = f"{self.home}/{path}"
        return "/" + "/".join(p for p in path.split("/") if p)

    def _parts(self, path: str) -> list[str]:
        parts = [p for p in self.normalize(path).split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise IllegalName(f"'.' or '..' in {path!r}")
        if not parts:
            raise PathNotFound("/")
        return parts

    def _node(self, path: str) -> MNode:
        parts = self._parts(path)
        if parts[0] != self.username:
            raise PathNotFound(f"/{parts[0]}")
        node: MNode = self.root
        for name in parts[1:]:
            if not isinstance(node, MDir):
                raise NotADirectory(path)
            child = node.children.get(name)
            if child is None:
                raise PathNotFound(path)
            node = child
        return node

    def _dir(self, path: str) -> MDir:
        node = self._node(path)
        if not isinstance(node, MDir):
            raise NotADirectory(path)
        return node

    def _file(self, path: str) -> MFile:
        node = self._node(path)
        if not isinstance(node, MFile):
            raise IsADirectory(path)
        return node

    def _split(self, path: str) -> tuple[str, str]:
        full = self.normalize(path)
        parent, _, name = full.rpartition("/")
        if not parent:
            raise InvalidMove(f"{full} is the root")
        return parent, name

    def info(self, path: str, node: MNode | None = None) -> Info:
        full = self.normalize(path)
        node = self._node(full) if node is None else node
        name = full.rpartition("/")[2]
        if isinstance(node, MDir):
            return Info(full, name, True, 0, node.hidden or name.startswith("."))
        return Info(full, name, False, len(node.data), name.startswith("."))

    # ---- reading -----------------------------------------------------------------------------------
    def stat(self, path: str) -> Info:
        return self.info(path)

    def exists(self, path: str) -> bool:
        try:
            self._node(path)
        except (PathNotFound, NotADirectory):
            return False
        return True

    def ls(self, path: str, include_hidden: bool = False) -> tuple[Info, ...]:
        full = self.normalize(path)
        folder = self._dir(full)
        infos = [self.info(_join(full, n), c) for n, c in folder.children.items()]
        return tuple(sorted((i for i in infos if include_hidden or not i.is_hidden), key=lambda i: i.name))

    def read(self, path: str, offset: int = 0, length: int = -1) -> bytes:
        data = self._file(path).data
        if offset < 0:
            raise ValueError("negative seek position")
        return bytes(data[offset:] if length < 0 else data[offset : offset + length])

    def open_read(self, path: str, offset: int, whence: int, lengths: tuple[int, ...]) -> tuple[bytes, ...]:
        """`open`, one `seek(offset, whence)`, then `read(n)` for each n."""
        data = self._file(path).data
        pos = {io.SEEK_SET: 0, io.SEEK_END: len(data)}[whence] + offset
        if pos < 0:
            raise ValueError("negative seek position")
        out = []
        for n in lengths:
            end = len(data) if n < 0 else min(len(data), pos + n)
            out.append(bytes(data[pos:end]))
            pos = max(pos, end)
        return tuple(out)

    # ---- writing -----------------------------------------------------------------------------------
    def mkdir(self, path: str, parents: bool = False, hidden: bool = False) -> Info:
        full = self.normalize(path)
        parent_path, name = self._split(full)
        check_name(name)
        if not parents:
            folder = self._dir(parent_path)
            if name in folder.children:
                raise AlreadyExists(full)
            folder.children[name] = MDir(hidden=hidden)
            self.touched = [full]
            return self.info(full)
        parts = self._parts(full)
        if parts[0] != self.username:
            raise PathNotFound(full)
        for p in parts[1:]:
            check_name(p)
        # find the deepest existing ancestor; below it everything is created
        node: MNode = self.root
        depth = 1
        while depth < len(parts):
            if not isinstance(node, MDir):
                raise NotADirectory(full)
            child = node.children.get(parts[depth])
            if child is None:
                break
            node, depth = child, depth + 1
        if depth == len(parts):  # it exists already
            if not isinstance(node, MDir):
                raise AlreadyExists(full)
            return self.info(full)
        if not isinstance(node, MDir):
            raise NotADirectory(full)
        for i in range(depth, len(parts)):
            new = MDir(hidden=hidden and i == len(parts) - 1)
            node.children[parts[i]] = new
            node = new
        self.touched = [full]
        return self.info(full)

    def upload(self, path: str, data: bytes, overwrite: bool = False) -> Info:
        full = self.normalize(path)
        parent_path, name = self._split(full)
        check_name(name)
        folder = self._dir(parent_path)
        old = folder.children.get(name)
        if old is not None:
            if not overwrite:
                raise AlreadyExists(full)
            if isinstance(old, MDir):
                raise IsADirectory(full)
        folder.children[name] = MFile(bytearray(data))
        self.touched = [full]
        return self.info(full)

    def upload_files(
        self, folder: str, files: tuple[tuple[str, bytes], ...], overwrite: bool = False
    ) -> tuple[Info, ...]:
        """Several small files into one folder, all or nothing."""
        full = self.normalize(folder)
        names = [n for n, _ in files]
        for n in names:
            check_name(n)
        if len(set(names)) != len(names):
            raise AlreadyExists("the same name twice")
        d = self._dir(full)
        for n in names:
            old = d.children.get(n)
            if old is not None and not overwrite:
                raise AlreadyExists(_join(full, n))
            if isinstance(old, MDir):
                raise IsADirectory(_join(full, n))
        for n, data in files:
            d.children[n] = MFile(bytearray(data))
        self.touched = [_join(full, n) for n in names]
        return tuple(self.info(p) for p in self.touched)

    def download(self, path: str) -> bytes:
        """The whole file, as `download` streams it."""
        return bytes(self._file(path).data)

    def write_at(self, path: str, offset: int, data: bytes) -> Info:
        if offset < 0:
            raise ValueError("offset must be non-negative")
        f = self._file(path)
        if data:
            if offset > len(f.data):
                f.data.extend(bytes(offset - len(f.data)))
            f.data[offset : offset + len(data)] = data
        self.touched = [self.normalize(path)]
        return self.info(path)

    def append(self, path: str, data: bytes) -> Info:
        return self.write_at(path, len(self._file(path).data), data)

    def truncate(self, path: str, size: int) -> Info:
        if size < 0:
            raise ValueError("size must be non-negative")
        f = self._file(path)
        if size < len(f.data):
            del f.data[size:]
        else:
            f.data.extend(bytes(size - len(f.data)))
        self.touched = [self.normalize(path)]
        return self.info(path)

    def rename(self, path: str, new_name: str) -> Info:
        check_name(new_name)
        full = self.normalize(path)
        parent_path, name = self._split(full)
        node = self._node(full)
        if name == new_name:
            return self.info(full)
        folder = self._dir(parent_path)
        if new_name in folder.children:
            raise AlreadyExists(new_name)
        del folder.children[name]
        folder.children[new_name] = node
        self.touched = [_join(parent_path, new_name)]
        return self.info(_join(parent_path, new_name))

    def move(self, path: str, target_dir: str) -> Info:
        full = self.normalize(path)
        target = self.normalize(target_dir)
        parent_path, name = self._split(full)
        if target == full or target.startswith(full + "/"):
            raise InvalidMove(f"{full} into {target}")
        node = self._node(full)
        if target == parent_path:
            return self.info(full)
        dest = self._dir(target)
        if name in dest.children:
            raise AlreadyExists(_join(target, name))
        del self._dir(parent_path).children[name]
        dest.children[name] = node
        self.touched = [_join(target, name)]
        return self.info(_join(target, name))

    def copy(self, path: str, target_dir: str, new_name: str | None = None) -> Info:
        full = self.normalize(path)
        target = self.normalize(target_dir)
        if target == full or target.startswith(full + "/"):
            raise InvalidMove(f"{full} into {target}")
        node = self._node(full)
        name = new_name if new_name is not None else full.rpartition("/")[2]
        check_name(name)
        dest_path = _join(target, name)
        self._split(dest_path)
        dest = self._dir(target)
        if name in dest.children:
            raise AlreadyExists(dest_path)
        dest.children[name] = _copy_node(node)
        self.touched = [dest_path]
        return self.info(dest_path)

    def delete(self, path: str) -> None:
        full = self.normalize(path)
        parent_path, name = self._split(full)
        self._node(full)
        del self._dir(parent_path).children[name]
        self.touched = []

    # ---- whole-tree views --------------------------------------------------------------------------
    def walk(self, include_system: bool = True) -> Iterator[tuple[str, MNode]]:
        """(path, node) of everything below the home folder, parents before children."""

        def rec(path: str, d: MDir) -> Iterator[tuple[str, MNode]]:
            for name, child in sorted(d.children.items()):
                p = _join(path, name)
                if not include_system and path == self.home and name in SYSTEM_DIRS:
                    continue
                yield p, child
                if isinstance(child, MDir):
                    yield from rec(p, child)

        return rec(self.home, self.root)

    def listing(self) -> dict[str, Info]:
        """Every entry below the home folder (hidden ones too) by path."""
        return {p: self.info(p, n) for p, n in self.walk()}

    def files(self) -> dict[str, bytes]:
        """Every file's content by path."""
        return {p: bytes(n.data) for p, n in self.walk() if isinstance(n, MFile)}

    def files_below(self, path: str) -> list[str]:
        """The files at or below `path` (a file or a folder)."""
        node = self._node(path)
        if isinstance(node, MFile):
            return [self.normalize(path)]
        prefix = self.normalize(path) + "/"
        return [p for p, n in self.walk() if p.startswith(prefix) and isinstance(n, MFile)]

    def total_bytes(self) -> int:
        return sum(len(n.data) for _, n in self.walk() if isinstance(n, MFile))


# ---- operations ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One filesystem call: `UserContext.<kind>(*args)`; `other` runs it through the second session."""

    kind: str
    args: tuple[object, ...]
    other: bool = False
    label: str = ""
    """What the generator meant (`upload_big`, `write_boundary`, `overwrite`, ...); not shown."""

    def __str__(self) -> str:
        def show(a: object) -> str:
            if isinstance(a, bytes):
                digest = hashlib.sha256(a).hexdigest()[:8]
                return f"<{len(a)} bytes {digest}>" if len(a) > 16 else repr(a)
            if isinstance(a, tuple):
                return "(" + ", ".join(show(x) for x in a) + ("," if len(a) == 1 else "") + ")"
            if isinstance(a, str) and len(a) > 60:
                return repr(a[:20] + "…" + a[-20:]) + f"(len {len(a)})"
            return repr(a)

        who = "other." if self.other else ""
        return f"{who}{self.kind}({', '.join(show(a) for a in self.args)})"


def apply_to_model(model: FsModel, op: Op) -> object:
    """Run `op` on the model; returns its comparable result (raises the expected error)."""
    model.touched = []
    method: Callable[..., object] = getattr(model, op.kind)
    return method(*op.args)


NAMES = ("a", "b", "c", "notes.txt", "img.png", "data.bin", ".hid", "ünï ✓", "x y", "d")
LONG_OK = ("n" * 255, "\U0001f600" * 127)
ILLEGAL = ("", ".", "..", "n" * 256, "\U0001f600" * 128, "a/b")
BIG_BUDGET = 24 * 1024 * 1024
MAX_ENTRIES = 40


class OpGenerator:
    """Weighted random operations on the model's current tree (see the module docstring)."""

    WEIGHTS: dict[str, float] = {
        "upload": 16,
        "overwrite": 5,
        "upload_big": 0.5,
        "upload_files": 3,
        "mkdir": 9,
        "read": 7,
        "open_read": 4,
        "download": 2,
        "write_at": 8,
        "write_boundary": 0.6,
        "append": 4,
        "truncate": 5,
        "rename": 5,
        "move": 5,
        "copy": 4,
        "delete": 5,
        "ls": 4,
        "stat": 3,
        "exists": 2,
    }

    def __init__(self, model: FsModel, rng: random.Random, other_session: float = 0.1) -> None:
        self.model = model
        self.rng = rng
        self.other_session = other_session

    # ---- choices ------------------------------------------------------------------------------------
    def _user_entries(self) -> list[tuple[str, MNode]]:
        return list(self.model.walk(include_system=False))

    def _files(self) -> list[str]:
        return [p for p, n in self._user_entries() if isinstance(n, MFile)]

    def _dirs(self, with_home: bool = True) -> list[str]:
        dirs = [p for p, n in self._user_entries() if isinstance(n, MDir)]
        return [self.model.home, *dirs] if with_home else dirs

    def _name(self) -> str:
        r = self.rng.random()
        if r < 0.85:
            return self.rng.choice(NAMES)
        if r < 0.9:
            return self.rng.choice(LONG_OK)
        return f"n{self.rng.randrange(1000)}"

    def _fmt(self, path: str) -> str:
        """The same path as the user might type it: relative, with doubled or trailing slashes."""
        r = self.rng.random()
        home = self.model.home
        if r < 0.1 and path.startswith(home + "/"):
            return path[len(home) + 1 :]
        if r < 0.15:
            return path.replace("/", "//", 1) + "/"
        return path

    def _bad_path(self) -> str:
        """A path that names nothing usable: below a file, below a missing folder, '..', another user."""
        files = self._files()
        r = self.rng.random()
        if r < 0.35 and files:
            return _join(self.rng.choice(files), self._name())
        if r < 0.65:
            return _join(_join(self.rng.choice(self._dirs()), "missing"), self._name())
        if r < 0.8:
            return _join(self.rng.choice(self._dirs()), self.rng.choice(("..", ".")))
        if r < 0.9:
            return f"/bob/{self._name()}"
        return self.model.home

    def _existing(self, want: str = "any") -> str:
        """An existing path (file, dir or any), with a small chance of a bad one."""
        if self.rng.random() < 0.08:
            return self._bad_path()
        files, dirs = self._files(), self._dirs(with_home=False)
        pool = {"file": files, "dir": dirs, "any": files + dirs}[want]
        if not pool or (want == "file" and self.rng.random() < 0.05):
            pool = files + dirs if files or dirs else [self.model.home]
        return self.rng.choice(pool)

    def _new_path(self) -> str:
        if self.rng.random() < 0.06:
            return _join(self.rng.choice(self._dirs()), self.rng.choice(ILLEGAL[:5]))
        if self.rng.random() < 0.06:
            return self._bad_path()
        return _join(self.rng.choice(self._dirs()), self._name())

    def _size(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randrange(0, 300)
        if r < 0.9:
            return self.rng.randrange(300, 12_000)
        return self.rng.randrange(12_000, 300_000)

    def _data(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def _file_size(self, path: str) -> int:
        try:
            return len(self.model._file(path).data)
        except (PathNotFound, NotADirectory, IsADirectory, IllegalName, InvalidMove):
            return 0

    # ---- the next operation ----------------------------------------------------------------------------
    def next(self) -> Op:
        weights = dict(self.WEIGHTS)
        entries = len(self._user_entries())
        big = self.model.total_bytes() > BIG_BUDGET
        if entries > MAX_ENTRIES:
            weights["delete"] *= 6
            weights["upload"] /= 3
            weights["mkdir"] /= 3
            weights["copy"] /= 3
        if big:
            weights["upload_big"] = weights["write_boundary"] = 0
            weights["delete"] *= 4
        kind = self.rng.choices(list(weights), list(weights.values()))[0]
        op = getattr(self, f"_gen_{kind}")()
        assert isinstance(op, Op)
        return Op(op.kind, op.args, self.rng.random() < self.other_session, kind)

    def _gen_upload(self) -> Op:
        return Op("upload", (self._fmt(self._new_path()), self._data(self._size()), self.rng.random() < 0.2))

    def _gen_overwrite(self) -> Op:
        return Op("upload", (self._fmt(self._existing("file")), self._data(self._size()), True))

    def _gen_upload_big(self) -> Op:
        n = CHUNK_SIZE + self.rng.randrange(1, 300_000)
        return Op("upload", (self._fmt(self._new_path()), self._data(n), self.rng.random() < 0.5))

    def _gen_upload_files(self) -> Op:
        folder = self.rng.choice(self._dirs()) if self.rng.random() < 0.9 else self._bad_path()
        n = self.rng.randrange(1, 5)
        names = [self._name() if self.rng.random() < 0.97 else self.rng.choice(ILLEGAL) for _ in range(n)]
        if self.rng.random() < 0.8:
            names = list(dict.fromkeys(names))  # mostly no name given twice
        files = tuple((name, self._data(self.rng.randrange(0, 9000))) for name in names)
        return Op("upload_files", (self._fmt(folder), files, self.rng.random() < 0.3))

    def _gen_download(self) -> Op:
        return Op("download", (self._fmt(self._existing("file")),))

    def _gen_mkdir(self) -> Op:
        parents = self.rng.random() < 0.3
        hidden = self.rng.random() < 0.1
        path = self._new_path()
        if parents and self.rng.random() < 0.7:
            path = _join(path, self._name())
        if parents and self.rng.random() < 0.15:  # an illegal name below a missing folder
            below = _join(_join(self.rng.choice(self._dirs()), "new"), self.rng.choice(ILLEGAL[3:5]))
            path = _join(below, "x")
        return Op("mkdir", (self._fmt(path), parents, hidden))

    def _gen_read(self) -> Op:
        path = self._existing("file")
        size = self._file_size(path)
        offset = self.rng.randrange(0, size + 20)
        length = self.rng.choice((-1, self.rng.randrange(0, 5000)))
        if size > CHUNK_SIZE and self.rng.random() < 0.7:  # around the chunk boundary
            offset = max(0, CHUNK_SIZE - self.rng.randrange(0, 100))
            length = self.rng.randrange(0, 300)
        return Op("read", (self._fmt(path), offset, length))

    def _gen_open_read(self) -> Op:
        path = self._existing("file")
        size = self._file_size(path)
        if self.rng.random() < 0.5:
            offset, whence = self.rng.randrange(0, size + 10), io.SEEK_SET
        else:
            offset, whence = -self.rng.randrange(0, size + 10), io.SEEK_END
        lengths = tuple(self.rng.choice((-1, 0, 1, 7, 4096, 5000)) for _ in range(self.rng.randrange(1, 4)))
        return Op("open_read", (self._fmt(path), offset, whence, lengths))

    def _gen_write_at(self) -> Op:
        path = self._existing("file")
        size = self._file_size(path)
        r = self.rng.random()
        if r < 0.03:
            offset = -1
        elif r < 0.25:  # past the end: a zero-filled gap
            offset = size + self.rng.randrange(0, 5000)
        else:
            offset = self.rng.randrange(0, size + 1)
        n = self.rng.choice((0, self.rng.randrange(1, 64), self.rng.randrange(64, 9000)))
        return Op("write_at", (self._fmt(path), offset, self._data(n)))

    def _gen_write_boundary(self) -> Op:
        """A write across the first chunk boundary (extends a small file past one chunk)."""
        path = self._existing("file")
        offset = CHUNK_SIZE - self.rng.randrange(1, 3000)
        return Op("write_at", (self._fmt(path), offset, self._data(self.rng.randrange(2, 6000))))

    def _gen_append(self) -> Op:
        n = self.rng.choice((0, self.rng.randrange(1, 100), self.rng.randrange(100, 10_000)))
        return Op("append", (self._fmt(self._existing("file")), self._data(n)))

    def _gen_truncate(self) -> Op:
        path = self._existing("file")
        size = self._file_size(path)
        r = self.rng.random()
        if r < 0.03:
            new = -3
        elif r < 0.6:
            new = self.rng.randrange(0, size + 1)
        elif size > CHUNK_SIZE and r < 0.8:
            new = CHUNK_SIZE + self.rng.choice((-1, 0, 1))
        else:
            new = size + self.rng.randrange(0, 6000)
        return Op("truncate", (self._fmt(path), new))

    def _gen_rename(self) -> Op:
        path = self._existing()
        r = self.rng.random()
        name = self.rng.choice(ILLEGAL) if r < 0.08 else self._name()
        if r > 0.95:
            name = path.rpartition("/")[2]  # its own name
        return Op("rename", (self._fmt(path), name))

    def _gen_move(self) -> Op:
        path = self._existing()
        r = self.rng.random()
        dirs = self._dirs()
        if r < 0.15:  # into itself or below
            below = [d for d in dirs if d == path or d.startswith(path + "/")]
            target = self.rng.choice(below) if below else path
        elif r < 0.2:
            target = path.rpartition("/")[0] or self.model.home  # the folder it is in
        elif r < 0.27 and self._files():
            target = self.rng.choice(self._files())  # a file
        elif r < 0.32:
            target = _join(self.rng.choice(dirs), "missing")
        else:
            target = self.rng.choice(dirs)
        return Op("move", (self._fmt(path), self._fmt(target)))

    def _gen_copy(self) -> Op:
        path = self._existing()
        dirs = self._dirs()
        r = self.rng.random()
        if r < 0.1:
            below = [d for d in dirs if d == path or d.startswith(path + "/")]
            target = self.rng.choice(below) if below else path
        else:
            target = self.rng.choice(dirs)
        name = None if self.rng.random() < 0.4 else self._name()
        if r > 0.96:
            name = self.rng.choice(ILLEGAL)
        return Op("copy", (self._fmt(path), self._fmt(target), name))

    def _gen_delete(self) -> Op:
        return Op("delete", (self._fmt(self._existing()),))

    def _gen_ls(self) -> Op:
        return Op("ls", (self._fmt(self._existing("dir")), self.rng.random() < 0.5))

    def _gen_stat(self) -> Op:
        return Op("stat", (self._fmt(self._existing()),))

    def _gen_exists(self) -> Op:
        path = self._existing() if self.rng.random() < 0.6 else self._new_path()
        return Op("exists", (self._fmt(path),))
