"""Login data on the home server: storing it, releasing it to the holder of the login key, crash-safe
password changes and second factors (spec/peergos.md §2.2-2.6, §12.5; Java `JdbcAccount`,
`AccountWithStorage`, `VerifyingAccount`).

- `set_login(login, auth)`: `auth` must be the user's identity key's detached signature over the login
  data; the identity key comes from the PKI. A plain update replaces the row. A **password change**
  (login data carrying the new identity WriterData block and the signed pointer update publishing it)
  is staged: write the block, stage the new login data, then move the pointer — the single commit
  point. Before it, the old password works (the old algorithm is still published); after it, the new
  one does, served from the staged row if the server died before promoting it. So a crash between any
  two steps leaves exactly one working password, never none.
- `get_login(username, reader, auth, mfa)`: `auth` is the login key's signed time (±24 h); the key must be
  the stored (or staged-and-published) reader, else "Incorrect username or password". If the user has an
  enabled interactive second factor, the answer is a challenge unless `mfa` carries a valid TOTP or
  unused backup code. Failed attempts per username are rate limited (429 once over the limit).
- MFA management (`list`, `add_totp`, `enable_totp`, `gen_backup_codes`, `delete`): authorised by the
  identity key's signed `{p: path, t}` request (24 h, path-bound so it can't be replayed elsewhere).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nabu_py.multiformats.cid import Cid
from peergos_node.accounts.backup_codes import BackupCodeHashes, BackupCodes
from peergos_node.accounts.entry_points import UserStaticData
from peergos_node.accounts.login_data import LoginData, verify_login_data_auth
from peergos_node.accounts.mfa import (
    MAX_MFA,
    MfaType,
    MultiFactorAuthMethod,
    MultiFactorAuthRequest,
    MultiFactorAuthResponse,
    check_can_add_factor,
    check_can_generate_backup_codes,
    listed,
    methods_to_challenge,
)
from peergos_node.accounts.time_limited import login_path, verify_signed_request, verify_signed_time
from peergos_node.accounts.totp import TotpKey, verify_totp
from peergos_node.corenode.dates import LocalDate
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import PublicSigningKey
from peergos_node.errors import AuthError, PeergosError
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.server.home_storage import HomeStorage
from peergos_node.server.stores.accounts import AccountStore, FactorRow, LoginRow, PendingLogin

LOGIN_WINDOW_SECONDS = 24 * 3600
MFA_MANAGEMENT_WINDOW_SECONDS = 24 * 3600
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 600
MAX_TRACKED_USERS = 100_000
INCORRECT = "Incorrect username or password"


CRASH_ENV = "PEERGOS_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    """Test hook for crash-safety tests: SIGKILL this process at a named step if asked to by the
    environment (never set in production; the variable name says what it is for)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class RateLimitedError(PeergosError):
    """Too many failed attempts; the HTTP layer answers 429."""


@dataclass
class _Failures:
    times: deque[float]


class AccountService:
    """Login data and second factors of this server's users."""

    def __init__(
        self,
        store: AccountStore,
        storage: HomeStorage,
        identity_of: Callable[[str], PublicKeyHash | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.storage = storage
        self.identity_of = identity_of
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._challenges: dict[str, bytes] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- rate limiting -----------------------------------------------------------------------------
    def _check_rate(self, username: str) -> None:
        now = self.clock()
        with self._lock:
            q = self._failures.get(username)
            if q is None:
                return
            while q and q[0] < now - FAILURE_WINDOW_SECONDS:
                q.popleft()
            if len(q) >= MAX_FAILURES:
                raise RateLimitedError("Too many failed login attempts, please try again later")

    def _failed(self, username: str) -> None:
        with self._lock:
            if len(self._failures) > MAX_TRACKED_USERS:
                self._failures.clear()
            q = self._failures.setdefault(username, deque(maxlen=MAX_FAILURES * 2))
            q.append(self.clock())

    # ---- login data --------------------------------------------------------------------------------
    def _identity_key(self, username: str) -> PublicSigningKey:
        identity = self.identity_of(username)
        if identity is None:
            raise AuthError(f"Unknown user {username}")
        return identity.inlined_signing_key()

    def set_login(self, login: LoginData, auth: bytes) -> bool:
        """Store (or, for a password change, stage and publish) a user's login data."""
        identity = self._identity_key(login.username)
        verify_login_data_auth(identity, login, auth)
        if login.identity_update is None:
            self.store.set_login(
                login.username, LoginRow(login.entry_points.serialize(), login.authorised_reader.serialize())
            )
            return True
        return self._change_password(login)

    def _change_password(self, login: LoginData) -> bool:
        assert login.identity_update is not None
        block, pointer = login.identity_update
        owner = self.identity_of(login.username)
        if owner is None or block.writer != owner or pointer.writer != owner:
            raise AuthError("a password change may only update the user's identity key")
        tid = self.storage.start_transaction(owner)
        try:
            [wd_cid] = self.storage.put_blocks(
                owner, owner, [block.signature], [block.block], tid, raw=block.is_raw
            )
            crash_point("password-change:block-written")
            update = PointerUpdate.deserialize(owner.inlined_signing_key().unsign(pointer.signed))
            if update.updated != wd_cid:
                raise AuthError("the password change's pointer update does not publish its WriterData")
            final = login.without_identity_update()
            self.store.set_pending(
                login.username,
                PendingLogin(
                    final.entry_points.serialize(),
                    final.authorised_reader.serialize(),
                    owner.to_bytes(),
                    wd_cid.to_bytes(),
                ),
            )
            crash_point("password-change:staged")
            self.storage.set_pointer(owner, owner, pointer.signed)  # the commit point
            crash_point("password-change:published")
        finally:
            self.storage.close_transaction(owner, tid)
        self.store.promote_pending(login.username)
        crash_point("password-change:promoted")
        return True

    def _pending_is_published(self, pending: PendingLogin) -> bool:
        signed = self.storage.pointers.get(pending.writer)
        if signed is None:
            return False
        target = PointerUpdate.from_signed_unverified(signed).updated
        return target is not None and target.to_bytes() == pending.writer_data

    def get_login(
        self, username: str, reader: PublicSigningKey, auth: bytes, mfa: MultiFactorAuthResponse | None
    ) -> UserStaticData | MultiFactorAuthRequest:
        """Release the encrypted login data to the holder of the login key (or challenge for a 2nd factor)."""
        self._check_rate(username)
        try:
            verify_signed_time(auth, reader, LOGIN_WINDOW_SECONDS, self.now_ms())
        except AuthError:
            self._failed(username)
            raise
        reader_cbor = reader.serialize()
        entry: bytes | None = None
        pending = self.store.get_pending(username)
        row = self.store.get_login(username)
        if pending is not None and self._pending_is_published(pending):
            # a password change published its new algorithm but died before promoting: finish it now
            self.store.promote_pending(username)
            row = self.store.get_login(username)
        if row is not None and row.reader == reader_cbor:
            entry = row.entry
        if entry is None:
            self._failed(username)
            raise AuthError(INCORRECT)
        methods = self._methods(username)
        challenge = methods_to_challenge(methods)
        if challenge is not None:
            if mfa is None:
                nonce = secrets.token_bytes(32)
                with self._lock:
                    self._challenges[username] = nonce
                return MultiFactorAuthRequest(tuple(challenge), nonce)
            self._check_second_factor(username, mfa)
        return UserStaticData.deserialize(entry)

    def _check_second_factor(self, username: str, mfa: MultiFactorAuthResponse) -> None:
        rows = {f.credential_id: f for f in self.store.factors(username)}
        factor = rows.get(mfa.credential_id)
        code = mfa.response if isinstance(mfa.response, str) else None
        if factor is None or not factor.enabled or code is None:
            self._failed(username)
            raise AuthError("Invalid second factor")
        if factor.type in (MfaType.TOTP, MfaType.MOUNT):
            if not verify_totp(factor.secret, code, self.now_ms()):
                self._failed(username)
                raise AuthError("Invalid TOTP code")
            return
        if factor.type == MfaType.BACKUP_CODES:
            hashes = BackupCodeHashes.deserialize(factor.secret)
            try:
                remaining = hashes.redeem(code)
            except (AuthError, ValueError):
                self._failed(username)
                raise AuthError("Invalid backup code") from None
            if not self.store.replace_secret(
                username, factor.credential_id, factor.secret, remaining.serialize(), remaining.remaining_name
            ):
                raise AuthError("Backup code already used")
            return
        raise AuthError("Not a code based credential!")

    # ---- second factors ----------------------------------------------------------------------------
    def _methods(self, username: str) -> list[MultiFactorAuthMethod]:
        return [
            MultiFactorAuthMethod(
                f.name, f.credential_id, LocalDate.of_epoch_day(f.created_day), MfaType(f.type), f.enabled
            )
            for f in self.store.factors(username)
        ]

    def _authorise(self, username: str, auth: bytes, method: str) -> None:
        identity = self.identity_of(username)
        if identity is None:
            raise AuthError(f"Unknown user {username}")
        verify_signed_request(
            auth, identity, login_path(method), MFA_MANAGEMENT_WINDOW_SECONDS, self.now_ms()
        )

    def list_mfa(self, username: str, auth: bytes) -> Sequence[MultiFactorAuthMethod]:
        """The user's listed factors."""
        self._authorise(username, auth, "listMfa")
        return listed(self._methods(username))

    def add_totp(self, username: str, auth: bytes) -> TotpKey:
        """Create a (not yet enabled) TOTP factor; enabling it needs a valid code."""
        self._authorise(username, auth, "addTotp")
        methods = self._methods(username)
        check_can_add_factor(methods)
        if len(methods) >= MAX_MFA:
            raise AuthError("Too many second factors")
        # only one TOTP is active: drop earlier TOTPs that were never enabled
        for f in self.store.factors(username):
            if f.type == MfaType.TOTP and not f.enabled:
                self.store.delete_factor(username, f.credential_id)
        key = TotpKey.generate()
        today = LocalDate.from_epoch_seconds(self.clock()).to_epoch_day()
        self.store.add_factor(
            username, FactorRow(key.credential_id, "TOTP", int(MfaType.TOTP), today, False, key.key)
        )
        return key

    def enable_totp(self, username: str, credential_id: bytes, code: str, auth: bytes) -> bool:
        """Enable a TOTP factor given a current code (and retire any other TOTP)."""
        self._authorise(username, auth, "enableTotp")
        rows = {f.credential_id: f for f in self.store.factors(username)}
        factor = rows.get(credential_id)
        if factor is None or factor.type != MfaType.TOTP:
            raise AuthError("Unknown TOTP factor")
        if not verify_totp(factor.secret, code, self.now_ms()):
            return False
        for f in rows.values():
            if f.type == MfaType.TOTP and f.credential_id != credential_id:
                self.store.delete_factor(username, f.credential_id)
        return self.store.set_enabled(username, credential_id, True)

    def gen_backup_codes(self, username: str, auth: bytes) -> BackupCodes:
        """A fresh set of single-use backup codes (replacing any earlier set)."""
        self._authorise(username, auth, "genBackupCodes")
        methods = self._methods(username)
        check_can_generate_backup_codes(methods)
        for f in self.store.factors(username):
            if f.type == MfaType.BACKUP_CODES:
                self.store.delete_factor(username, f.credential_id)
        codes = BackupCodes.generate()
        hashes = codes.hashes()
        today = LocalDate.from_epoch_seconds(self.clock()).to_epoch_day()
        self.store.add_factor(
            username,
            FactorRow(
                secrets.token_bytes(16),
                hashes.remaining_name,
                int(MfaType.BACKUP_CODES),
                today,
                True,
                hashes.serialize(),
            ),
        )
        return codes

    def delete_mfa(self, username: str, credential_id: bytes, auth: bytes) -> bool:
        """Remove a factor (and the backup codes with the last interactive factor)."""
        self._authorise(username, auth, "deleteMfa")
        ok = self.store.delete_factor(username, credential_id)
        remaining = self.store.factors(username)
        if not any(f.type in (MfaType.TOTP, MfaType.WEBAUTHN) and f.enabled for f in remaining):
            for f in remaining:
                if f.type == MfaType.BACKUP_CODES:
                    self.store.delete_factor(username, f.credential_id)
        return ok


def cid_of(data: bytes) -> Cid:
    """CID bytes → Cid (helper for stores that keep bytes)."""
    return Cid.decode(data)
