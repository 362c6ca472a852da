"""The signup OpLog (spec/peergos.md §2.4, §12.2, §18.20; Java `OpLog`, `IpfsCoreNode.applyOpLog`).

Theory of operation
-------------------
A client signs up with one `core/signup` call: it builds its whole initial account against a recording,
non-committing network and sends the recording, so the server can check the name first and then apply
everything, or nothing. CBOR map:

    {ops: [PointerWrite {w, s} | BlockWrite {w, s, b, r}, ...],
     login?: LoginData, loginAuth?: h'detached identity signature over the LoginData',
     b?: BatWithId (the mirror BAT), a?: h'its auth'}

`login`/`loginAuth` and `b`/`a` come in pairs. The server replays `ops` in order (consecutive block writes
of the same kind go in one batch), then stores the login data (whose username must be the one signing up:
"Invalid signup data!") and the mirror BAT. `OpLog` bodies are at most `MAX_OPLOG_SIZE` bytes on the wire.

`check_for_signup` applies the checks that do not need storage; block signatures are checked by
`BlockWrite.verify` (or the block store), pointer updates by the pointer store, the login-data auth by
`accounts.login_data.verify_login_data_auth` with the identity key of the new chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from peergos_node.accounts.login_data import LoginData
from peergos_node.cbor import CborMixin, CborValue, as_bytes, expect_list, expect_map, field, only_keys
from peergos_node.corenode.errors import PkiError
from peergos_node.corenode.writes import BlockWrite, Operation, PointerWrite, operation_from_cbor
from peergos_node.crypto.bat import BatWithId
from peergos_node.errors import DecodeError

MAX_OPLOG_SIZE = 64 * 1024
"""`core/signup` reads the OpLog with this bound."""
MAX_OPS = 4096
MAX_AUTH_BYTES = 4096


@dataclass(frozen=True)
class OpLog(CborMixin):
    """Recorded signup operations plus the login data and mirror BAT to store."""

    operations: tuple[Operation, ...] = ()
    login: tuple[LoginData, bytes] | None = None
    mirror_bat: tuple[BatWithId, bytes] | None = None

    def pointer_writes(self) -> tuple[PointerWrite, ...]:
        """The pointer writes, in order."""
        return tuple(op for op in self.operations if isinstance(op, PointerWrite))

    def block_writes(self) -> tuple[BlockWrite, ...]:
        """The block writes, in order."""
        return tuple(op for op in self.operations if isinstance(op, BlockWrite))

    def batches(self) -> tuple[tuple[Operation, ...], ...]:
        """Operations grouped as the server applies them: each pointer write alone, runs of block writes
        of the same kind (raw or dag-cbor) together (`applyOpLog`)."""
        out: list[list[Operation]] = []
        for op in self.operations:
            prev = out[-1][-1] if out else None
            if isinstance(op, BlockWrite) and isinstance(prev, BlockWrite) and prev.is_raw == op.is_raw:
                out[-1].append(op)
            else:
                out.append([op])
        return tuple(tuple(batch) for batch in out)

    def check_for_signup(self, username: str) -> None:
        """Checks a server makes before replaying a signup OpLog (PkiError)."""
        if self.login is not None and self.login[0].username != username:
            raise PkiError("Invalid signup data!")

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"ops": [op.to_cbor() for op in self.operations]}
        if self.login is not None:
            m["login"] = self.login[0].to_cbor()
            m["loginAuth"] = self.login[1]
        if self.mirror_bat is not None:
            m["b"] = self.mirror_bat[0].to_cbor()
            m["a"] = self.mirror_bat[1]
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "OpLog"
        m = expect_map(value, ctx)
        only_keys(m, {"ops", "login", "loginAuth", "b", "a"}, ctx)
        ops = expect_list(field(m, "ops", ctx), f"{ctx}.ops", max_len=MAX_OPS)
        if ("login" in m) != ("loginAuth" in m):
            raise DecodeError(f"{ctx}: 'login' and 'loginAuth' come together")
        if ("b" in m) != ("a" in m):
            raise DecodeError(f"{ctx}: 'b' and 'a' come together")
        login = (
            (
                LoginData.from_cbor(m["login"]),
                as_bytes(m["loginAuth"], f"{ctx}.loginAuth", max_len=MAX_AUTH_BYTES),
            )
            if "login" in m
            else None
        )
        bat = (
            (BatWithId.from_cbor(m["b"]), as_bytes(m["a"], f"{ctx}.a", max_len=MAX_AUTH_BYTES))
            if "b" in m
            else None
        )
        return cls(tuple(operation_from_cbor(op) for op in ops), login, bat)


__all__ = ["MAX_OPLOG_SIZE", "OpLog"]
