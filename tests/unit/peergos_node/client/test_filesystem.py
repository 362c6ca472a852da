"""Filesystem operations of `UserContext` against a real in-process home server (spec/peergos.md §2.4,
§6): signup layout, folders, small files, names, hidden files, rename, move, copy, delete, in-place edits
and big folders."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from peergos_node.accounts.mfa import MultiFactorAuthRequest, MultiFactorAuthResponse
from peergos_node.accounts.time_limited import login_path, sign_request
from peergos_node.accounts.totp import totp
from peergos_node.client.account import LoginFailed
from peergos_node.client.errors import (
    AlreadyExists,
    IllegalName,
    InvalidMove,
    IsADirectory,
    NotADirectory,
    PathNotFound,
)
from peergos_node.client.uploads import transaction_name
from peergos_node.client.user_context import SYSTEM_DIRS, UserContext
from peergos_node.cryptree.chunks import MAX_CHILD_LINKS_PER_CHUNK
from peergos_node.cryptree.properties import CHUNK_SIZE
from tests.helpers.fs import PASSWORD, fs_user


async def test_signup_creates_root_and_hidden_system_folders(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        assert await ctx.ls("/alice") == []
        listed = await ctx.ls("/alice", include_hidden=True)
        assert sorted(i.name for i in listed) == sorted(SYSTEM_DIRS)
        assert all(i.is_dir and i.is_hidden and i.is_writable for i in listed)
        root = await ctx.stat("/alice")
        assert root.is_dir and root.name == "alice"
        # another device logs in with the password alone and sees the same tree
        other = await UserContext.login(u.home.url, "alice", PASSWORD)
        async with other:
            assert [i.name for i in await other.ls("/alice", include_hidden=True)] == [i.name for i in listed]
        with pytest.raises(PathNotFound):
            await ctx.stat("/bob")
        with pytest.raises(PathNotFound):
            await ctx.ls("/")


async def test_folders_files_and_name_rules(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        info = await ctx.mkdir("/alice/docs")
        assert info.is_dir and info.path == "/alice/docs"
        await ctx.mkdir("docs/sub")  # relative to the home folder
        await ctx.mkdir("/alice/a/b/c", parents=True)
        await ctx.mkdir("/alice/a/b/c", parents=True)  # already there: fine with parents
        assert [i.name for i in await ctx.ls("/alice")] == ["a", "docs"]
        assert [i.path for i in await ctx.ls("/alice/a/b")] == ["/alice/a/b/c"]
        with pytest.raises(AlreadyExists):
            await ctx.mkdir("/alice/docs")
        for bad in (".", "..", "x" * 256, "\U0001f600" * 128):
            with pytest.raises(IllegalName):
                await ctx.mkdir(f"/alice/docs/{bad}")
        with pytest.raises(IllegalName):
            await ctx.rename("/alice/docs/sub", "")
        with pytest.raises(PathNotFound):
            await ctx.mkdir("/alice/nope/x")
        # an illegal name anywhere in the path: nothing is created (found by the model test)
        with pytest.raises(IllegalName):
            await ctx.mkdir("/alice/new/" + "n" * 256 + "/x", parents=True)
        assert not await ctx.exists("/alice/new")

        text = "héllo wörld\n".encode()
        up = await ctx.upload("/alice/docs/hello.txt", text)
        assert (up.size, up.mime_type, up.is_dir) == (len(text), "text/plain", False)
        got = await ctx.stat("/alice/docs/hello.txt")
        assert (got.size, got.mime_type, got.created, got.modified) == (
            up.size,
            up.mime_type,
            up.created,
            up.modified,
        )
        assert got.modified.seconds > 1_600_000_000
        assert await ctx.read("/alice/docs/hello.txt") == text
        assert await ctx.read("/alice/docs/hello.txt", 1, 4) == text[1:5]
        with pytest.raises(AlreadyExists):
            await ctx.upload("/alice/docs/hello.txt", b"other")
        with pytest.raises(NotADirectory):
            await ctx.mkdir("/alice/docs/hello.txt/x")
        with pytest.raises(NotADirectory):
            await ctx.ls("/alice/docs/hello.txt")
        with pytest.raises(IsADirectory):
            await ctx.upload("/alice/docs/sub", b"x", overwrite=True)
        with pytest.raises(IsADirectory):
            await ctx.read("/alice/docs")

        # overwrite replaces the content; the old chunks leave the tree
        await ctx.upload("/alice/docs/hello.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, overwrite=True)
        assert (await ctx.stat("/alice/docs/hello.txt")).mime_type == "image/png"
        assert len(await ctx.read("/alice/docs/hello.txt")) == 108

        # from a path, from a file object, empty
        local = tmp_path / "local.pdf"
        local.write_bytes(b"%PDF-1.4 ...")
        await ctx.upload("/alice/docs/local.pdf", local)
        await ctx.upload("/alice/docs/obj.bin", io.BytesIO(b"\x00\x01\x02\xff"))
        await ctx.upload("/alice/docs/empty", b"")
        assert (await ctx.stat("/alice/docs/local.pdf")).mime_type == "application/pdf"
        assert await ctx.read("/alice/docs/obj.bin") == b"\x00\x01\x02\xff"
        assert (await ctx.stat("/alice/docs/empty")).size == 0 and await ctx.read("/alice/docs/empty") == b""
        out = tmp_path / "out.pdf"
        assert await ctx.download("/alice/docs/local.pdf", out) == local.stat().st_size
        assert out.read_bytes() == local.read_bytes()

        # hidden files are listed only on request
        await ctx.upload("/alice/docs/.secret", b"s")
        names = [i.name for i in await ctx.ls("/alice/docs")]
        assert ".secret" not in names and "hello.txt" in names
        assert ".secret" in [i.name for i in await ctx.ls("/alice/docs", include_hidden=True)]
        assert (await ctx.stat("/alice/docs/.secret")).is_hidden

        # several small files in one commit
        commits = ctx.net.stats.pointer_commits
        infos = await ctx.upload_files("/alice/docs", {f"f{i}.txt": f"file {i}".encode() for i in range(5)})
        assert [i.name for i in infos] == [f"f{i}.txt" for i in range(5)]
        assert ctx.net.stats.pointer_commits == commits + 1
        assert await ctx.read("/alice/docs/f3.txt") == b"file 3"
        with pytest.raises(AlreadyExists):
            await ctx.upload_files("/alice/docs", {"f1.txt": b"x"})


async def test_rename_move_copy_delete(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        await ctx.mkdir("/alice/a/b", parents=True)
        await ctx.mkdir("/alice/target")
        await ctx.upload("/alice/a/b/f.txt", b"payload")
        await ctx.upload("/alice/a/g.txt", b"gee")

        renamed = await ctx.rename("/alice/a/g.txt", "h.txt")
        assert renamed.path == "/alice/a/h.txt" and await ctx.read("/alice/a/h.txt") == b"gee"
        assert not await ctx.exists("/alice/a/g.txt")
        with pytest.raises(AlreadyExists):
            await ctx.rename("/alice/a/h.txt", "b")
        with pytest.raises(IllegalName):
            await ctx.rename("/alice/a/h.txt", "x/y")
        with pytest.raises(InvalidMove):
            await ctx.rename("/alice", "bob")
        await ctx.rename("/alice/a/b", "bee")
        assert await ctx.read("/alice/a/bee/f.txt") == b"payload"

        # moves: a folder with its contents, never into itself or below
        with pytest.raises(InvalidMove):
            await ctx.move("/alice/a", "/alice/a/bee")
        with pytest.raises(InvalidMove):
            await ctx.move("/alice/a", "/alice/a")
        moved = await ctx.move("/alice/a/bee", "/alice/target")
        assert moved.path == "/alice/target/bee" and moved.is_dir
        assert await ctx.read("/alice/target/bee/f.txt") == b"payload"
        assert [i.name for i in await ctx.ls("/alice/a")] == ["h.txt"]
        await ctx.upload("/alice/h.txt", b"clash")
        with pytest.raises(AlreadyExists):
            await ctx.move("/alice/h.txt", "/alice/a")
        with pytest.raises(NotADirectory):
            await ctx.move("/alice/h.txt", "/alice/a/h.txt")
        # the moved folder's parent link points at its new parent: it can be moved on, renamed, deleted
        await ctx.move("/alice/target/bee", "/alice")
        assert await ctx.read("/alice/bee/f.txt") == b"payload"

        # copies get their own keys: changing one leaves the other alone
        copied = await ctx.copy("/alice/bee", "/alice/target")
        assert copied.path == "/alice/target/bee"
        await ctx.copy("/alice/bee/f.txt", "/alice/target", "f2.txt")
        await ctx.write_at("/alice/target/bee/f.txt", 0, b"PAY")
        assert await ctx.read("/alice/target/bee/f.txt") == b"PAYload"
        assert await ctx.read("/alice/bee/f.txt") == b"payload"
        assert await ctx.read("/alice/target/f2.txt") == b"payload"
        with pytest.raises(InvalidMove):
            await ctx.copy("/alice/target", "/alice/target/bee")

        # recursive delete: usage drops back, GC frees the blocks
        before = u.usage()
        await ctx.mkdir("/alice/big/x/y", parents=True)
        await ctx.upload_files("/alice/big/x/y", {f"{i}": bytes([i]) * 9000 for i in range(4)})
        await ctx.upload("/alice/big/z", b"z" * 20000)
        grown = u.usage()
        assert grown > before + 4 * 9000 + 20000
        await ctx.delete("/alice/big")
        assert not await ctx.exists("/alice/big")
        assert u.usage() < before + 2000  # only the parent folder's node changed size
        report = u.home.server.storage.collect_garbage()
        assert report.deleted > 0
        assert await ctx.read("/alice/bee/f.txt") == b"payload"
        with pytest.raises(InvalidMove):
            await ctx.delete("/alice")
        with pytest.raises(PathNotFound):
            await ctx.delete("/alice/big")


async def test_write_at_append_truncate_small(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        await ctx.upload("/alice/f", b"0123456789")
        created = (await ctx.stat("/alice/f")).created
        await ctx.write_at("/alice/f", 2, b"ab")
        assert await ctx.read("/alice/f") == b"01ab456789"
        await ctx.append("/alice/f", b"XYZ")
        assert await ctx.read("/alice/f") == b"01ab456789XYZ"
        await ctx.write_at("/alice/f", 20, b"!")  # past the end: zero-filled gap
        assert await ctx.read("/alice/f") == b"01ab456789XYZ" + bytes(7) + b"!"
        info = await ctx.truncate("/alice/f", 4)
        assert info.size == 4 and await ctx.read("/alice/f") == b"01ab"
        assert info.created == created and info.modified >= created
        await ctx.truncate("/alice/f", 6)
        assert await ctx.read("/alice/f") == b"01ab\x00\x00"
        await ctx.truncate("/alice/f", 0)
        assert await ctx.read("/alice/f") == b""
        with pytest.raises(IsADirectory):
            await ctx.truncate("/alice/shared", 0)


async def test_folder_with_more_than_500_children(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        await ctx.mkdir("/alice/many")
        n = MAX_CHILD_LINKS_PER_CHUNK + 20
        await ctx.upload_files("/alice/many", {f"n{i:04d}": str(i).encode() for i in range(n)})
        assert await ctx.directory_chunks("/alice/many") == 2
        await ctx.upload("/alice/many/late", b"late")  # goes into the overflow chunk
        await ctx.mkdir("/alice/many/dir")
        listed = await ctx.ls("/alice/many")
        assert len(listed) == n + 2
        assert await ctx.read("/alice/many/n0511") == b"511"
        with pytest.raises(AlreadyExists):
            await ctx.upload("/alice/many/n0007", b"dup")  # clash with an entry of the first chunk
        with pytest.raises(AlreadyExists):
            await ctx.upload("/alice/many/n0510", b"dup")  # clash with an entry of the overflow chunk
        await ctx.delete("/alice/many/n0003")
        await ctx.delete("/alice/many/n0515")
        await ctx.rename("/alice/many/n0516", "renamed")
        other = await u.login_again()
        async with other:
            names = {i.name for i in await other.ls("/alice/many")}
        assert len(names) == n and "renamed" in names and "n0003" not in names and "n0515" not in names
        await ctx.delete("/alice/many")
        assert await ctx.ls("/alice") == []


class _Pipe(io.RawIOBase):
    """A readable, non-seekable stream."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


async def test_bad_input_gets_clear_errors_and_loses_nothing(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        await ctx.mkdir("/alice/d")
        await ctx.upload("/alice/d/keep", b"keep")
        for bad in ("/alice/../bob", "/alice/d/./keep", "d/../d"):
            with pytest.raises(IllegalName):
                await ctx.stat(bad)
        with pytest.raises(IllegalName):
            await ctx.mkdir("/alice/d/..")
        with pytest.raises(ValueError, match="seekable"):
            await ctx.upload("/alice/d/pipe", _Pipe())  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await ctx.write_at("/alice/d/keep", -1, b"x")
        with pytest.raises(ValueError):
            await ctx.truncate("/alice/d/keep", -5)
        with pytest.raises(NotADirectory):
            await ctx.upload("/alice/d/keep/x", b"x")
        with pytest.raises(PathNotFound):
            await ctx.rename("/alice/d/nothing", "x")
        with pytest.raises(PathNotFound):
            await ctx.move("/alice/d/keep", "/alice/none")
        assert [i.name for i in await ctx.ls("/alice/d")] == ["keep"]
        assert await ctx.read("/alice/d/keep") == b"keep"

        # names beyond ASCII are fine
        await ctx.upload("/alice/d/ünïcødé ✓.txt", b"u")
        assert await ctx.read("/alice/d/ünïcødé ✓.txt") == b"u"

        # an unreadable upload record neither breaks listing pending uploads nor blocks the path
        await ctx.upload(f"/alice/.transactions/{transaction_name('/alice/d/big')}", b"\xa1garbage")
        assert await ctx.pending_uploads() == []
        big = bytes(CHUNK_SIZE + 10)
        await ctx.upload("/alice/d/big", big)
        assert (await ctx.stat("/alice/d/big")).size == len(big)
        assert await ctx.ls("/alice/.transactions", include_hidden=True) == []


async def test_login_with_a_second_factor(tmp_path: Path) -> None:
    async with fs_user(tmp_path) as u:
        net, s = u.home.net, u.ctx.session
        now = int(time.time() * 1000)
        key = await net.account.add_totp("alice", sign_request(s.identity.secret, login_path("addTotp"), now))
        auth = sign_request(s.identity.secret, login_path("enableTotp"), now)
        assert await net.account.enable_totp("alice", key.credential_id, totp(key.key, now), auth)
        asked: list[MultiFactorAuthRequest] = []

        async def answer(req: MultiFactorAuthRequest) -> MultiFactorAuthResponse:
            asked.append(req)
            return MultiFactorAuthResponse(key.credential_id, totp(key.key, int(time.time() * 1000)))

        with pytest.raises(LoginFailed, match="second factor"):
            await UserContext.login(u.home.url, "alice", PASSWORD)
        async with await UserContext.login(u.home.url, "alice", PASSWORD, mfa=answer) as ctx:
            assert len(asked) == 1
            assert [i.name for i in await ctx.ls("/alice", include_hidden=True)] == sorted(SYSTEM_DIRS)


async def test_bulk_upload_overwriting_some_files_keeps_every_entry_readable(tmp_path: Path) -> None:
    # found by the model test: replacing one file and adding another in one `upload_files` wrote the folder
    # back from before the replacement, so the replaced (and deleted) file stayed listed
    async with fs_user(tmp_path) as u:
        ctx = u.ctx
        await ctx.upload_files("/alice", [("c", b"old c"), ("e", b"old e")])
        await ctx.upload_files("/alice", [("d", b"new d"), ("c", b"new c"), ("e", b"new e")], overwrite=True)
        names = {i.name for i in await ctx.ls("/alice")}
        assert {"c", "d", "e"} <= names
        for name in ("c", "d", "e"):
            assert await ctx.read(f"/alice/{name}") == f"new {name}".encode()
        again = await u.login_again()
        try:
            assert await again.read("/alice/c") == b"new c"
        finally:
            await again.aclose()
