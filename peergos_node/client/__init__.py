"""The Peergos client: account flows, trust-free network access and the encrypted filesystem.

Most callers need only `UserContext` (`peergos_node.client.user_context`):

    ctx = await UserContext.login("http://127.0.0.1:8000", "alice", "password")
    await ctx.mkdir("/alice/docs")
    await ctx.upload("/alice/docs/report.pdf", Path("report.pdf"))
    reader = await ctx.open("/alice/docs/report.pdf"); await reader.seek(10 << 20); await reader.read(4096)
    await ctx.aclose()

Modules: `http` (HTTP API client), `account` (signup, login, password change), `network` (verified reads,
signed writes), `synchronizer` (per-writer write batches, commits, 3-way merges), `nodes` (directories
and file chunks as cryptree nodes), `files` (sources, reading, in-place edits), `uploads` (resumable
upload transactions), `user_context` (the filesystem by path), `errors`.
"""

from peergos_node.client.errors import (
    AlreadyExists,
    ConcurrentModificationError,
    FsError,
    IllegalName,
    InvalidMove,
    IsADirectory,
    NotADirectory,
    NotWritable,
    PathNotFound,
    PointerRollback,
    StorageQuotaExceeded,
    TamperedData,
    UntrustedServerError,
    UploadNotResumable,
)
from peergos_node.client.files import FileReader
from peergos_node.client.uploads import FileUploadTransaction, UploadProgress
from peergos_node.client.user_context import FileInfo, UserContext

__all__ = [
    "AlreadyExists",
    "ConcurrentModificationError",
    "FileInfo",
    "FileReader",
    "FileUploadTransaction",
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
    "UploadProgress",
    "UserContext",
]
