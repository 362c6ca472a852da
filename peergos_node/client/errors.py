"""Errors of the filesystem client (spec/peergos.md §4.4, §6, §11.5, §13).

    PeergosError
    └── FsError                              a filesystem operation cannot be done as asked
        ├── PathNotFound (FileNotFoundError) no file or directory at a path
        ├── AlreadyExists (FileExistsError)  the name is taken in the target directory
        ├── IllegalName (ValueError)         the name breaks Peergos' rules ('/', '.', '..', empty, too long)
        ├── NotADirectory                    a directory was required
        ├── IsADirectory                     a file was required
        ├── NotWritable (PermissionError)    the capability in hand cannot write there
        ├── InvalidMove                      moving a folder into itself or a descendant, or the user root
        ├── ConcurrentModificationError      another client changed the same name or file chunks at the
        │                                    same time; nothing of this operation was committed
        ├── StorageQuotaExceeded             the server refused a write: storage quota reached (the
        │                                    upload stays resumable once space is freed)
        ├── UploadNotResumable               a pending upload cannot continue with the data supplied
        └── UntrustedServerError             the server answered something it cannot have honestly stored:
            ├── TamperedData                 a block, CHAMP proof or signature does not verify
            └── PointerRollback              an older (or forked) pointer than one already seen

The untrusted-server errors are raised before anything is written: every read a write depends on is
verified first, so a lying server can make an operation fail but cannot make the client commit state
built on forged data.
"""

from __future__ import annotations

from peergos_node.errors import PeergosError


class FsError(PeergosError):
    """Base class of filesystem client errors."""


class PathNotFound(FsError, FileNotFoundError):
    """No file or directory exists at the path."""


class AlreadyExists(FsError, FileExistsError):
    """A child with this name already exists."""


class IllegalName(FsError, ValueError):
    """The name is not allowed (Peergos `isLegalName` plus the 255 UTF-16 unit limit)."""


class NotADirectory(FsError, NotADirectoryError):
    """The path names a file where a directory is needed."""


class IsADirectory(FsError, IsADirectoryError):
    """The path names a directory where a file is needed."""


class NotWritable(FsError, PermissionError):
    """Write access is needed but only a read capability is held."""


class InvalidMove(FsError, ValueError):
    """A move that would lose data (into itself or a descendant) or move the user's root."""


class ConcurrentModificationError(FsError):
    """The same file or directory entry was changed concurrently elsewhere (Peergos "Concurrent
    modification of a file or directory!"); this operation was not committed."""


class StorageQuotaExceeded(FsError):
    """The server refused a write because the user's storage quota is reached."""


class UploadNotResumable(FsError):
    """A pending upload cannot be resumed with the given data (different size or content)."""


class UntrustedServerError(FsError):
    """The server returned data that fails verification."""


class TamperedData(UntrustedServerError):
    """A block, CHAMP proof, pointer signature or WriterData does not verify."""


class PointerRollback(UntrustedServerError):
    """The server returned an older (or conflicting) pointer than one this client has already seen."""


__all__ = [
    "AlreadyExists",
    "ConcurrentModificationError",
    "FsError",
    "IllegalName",
    "InvalidMove",
    "IsADirectory",
    "NotADirectory",
    "NotWritable",
    "PathNotFound",
    "PointerRollback",
    "StorageQuotaExceeded",
    "TamperedData",
    "UntrustedServerError",
    "UploadNotResumable",
]
