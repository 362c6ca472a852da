"""Atomic signup on the home server (spec/peergos.md §2.4 step 8, §13; Java `SignUpFilter`,
`IpfsCoreNode.signup`/`applyOpLog`).

The client records every write of a new account (identity key and WriterData, boxing key, the root
directory's writer and blocks, pointer updates, login data, mirror BAT) in an OpLog and sends it in one
`core/signup` call with its one-link claim chain and a proof of work. This server:

1. refuses signups for another host (the claim must name this server's peer id) and, unless signups are
   open, without a valid unused token;
2. checks everything it can before the name is claimed: the OpLog's shape, every block and pointer
   signature, and the login data's identity signature — so a bad request leaves nothing behind;
3. asks the PKI to accept the claim (the PKI node itself, or forwarded to it); a refused claim (name
   taken, proof of work too weak, illegal name) returns here with nothing stored;
4. only then registers the user with the default quota and replays the OpLog in order through the same
   verified storage path as any write, stores the login data, and consumes the token.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from nabu_py.multiformats.cid import Cid
from peergos_node.accounts.login_data import verify_login_data_auth
from peergos_node.corenode.chain import RequiredDifficulty, check_signup_host
from peergos_node.corenode.messages import DifficultyResponse, SignupRequest
from peergos_node.corenode.writes import BlockWrite, PointerWrite
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import AuthError, BadSignature, PeergosError
from peergos_node.mutable.signed_pointer import verify_signed_pointer
from peergos_node.server.home_storage import HomeStorage
from peergos_node.server.pki import CoreNode
from peergos_node.server.stores.accounts import AccountStore, LoginRow
from peergos_node.server.stores.tokens import TokenStore

log = logging.getLogger(__name__)


class SignupError(PeergosError):
    """A signup was refused before anything was stored."""


class SignupService:
    """Accepts new accounts for this server."""

    def __init__(
        self,
        storage: HomeStorage,
        core: CoreNode,
        accounts: AccountStore,
        tokens: TokenStore,
        our_ids: Sequence[Cid],
        default_quota: int,
        open_signups: bool = False,
    ) -> None:
        self.storage = storage
        self.core = core
        self.accounts = accounts
        self.tokens = tokens
        self.our_ids = list(our_ids)
        self.default_quota = default_quota
        self.open_signups = open_signups

    def signup(self, req: SignupRequest) -> DifficultyResponse:
        """Validate, claim the name, then replay the OpLog (see the module docstring)."""
        username, link, oplog = req.username, req.link, req.oplog
        check_signup_host(link, self.our_ids)
        uses_token = not self.open_signups
        if uses_token and not (req.token and self.tokens.is_valid(req.token)):
            if req.token:
                raise SignupError("Invalid signup token.")
            raise SignupError("This server is not currently accepting new sign ups. Please try again later")
        if self.core.get_chain(username):
            raise SignupError("User already exists!")
        oplog.check_for_signup(username)
        if oplog.login is None:
            raise SignupError("a signup must include login data")
        self._prevalidate(link.owner, oplog.operations)
        login, login_auth = oplog.login
        verify_login_data_auth(link.owner.inlined_signing_key(), login, login_auth)
        result = self.core.update_chain(username, [link], req.proof, req.token)
        if isinstance(result, RequiredDifficulty):
            return DifficultyResponse(result.difficulty)
        if uses_token and not self.tokens.consume(req.token, username):
            log.warning(
                "signup token for %s was used concurrently; the name is claimed, continuing", username
            )
        self.storage.register_user(username, link.owner, self.default_quota)
        self._replay(link.owner, oplog.operations)
        self.accounts.set_login(
            username, LoginRow(login.entry_points.serialize(), login.authorised_reader.serialize())
        )
        log.info("signed up %s", username)
        return DifficultyResponse(None)

    @staticmethod
    def _prevalidate(owner: PublicKeyHash, ops: Sequence[BlockWrite | PointerWrite]) -> None:
        for op in ops:
            try:
                key = op.writer.inlined_signing_key()
                if isinstance(op, BlockWrite):
                    if key.unsign(op.signature) != hashlib.sha256(op.block).digest():
                        raise BadSignature("Invalid signature for block!")
                else:
                    verify_signed_pointer(op.writer, op.signed)
            except (BadSignature, ValueError) as e:
                raise SignupError(f"Invalid signup data! {e}") from None
        if not any(isinstance(op, PointerWrite) and op.writer == owner for op in ops):
            raise SignupError("Invalid signup data! no identity pointer")

    def _replay(self, owner: PublicKeyHash, ops: Sequence[BlockWrite | PointerWrite]) -> None:
        tid = self.storage.start_transaction(owner)
        try:
            i = 0
            while i < len(ops):
                op = ops[i]
                if isinstance(op, PointerWrite):
                    self.storage.set_pointer(owner, op.writer, op.signed)
                    i += 1
                    continue
                group = [op]
                j = i + 1
                while j < len(ops):
                    nxt = ops[j]
                    if not isinstance(nxt, BlockWrite) or nxt.writer != op.writer or nxt.is_raw != op.is_raw:
                        break
                    group.append(nxt)
                    j += 1
                self.storage.put_blocks(
                    owner,
                    op.writer,
                    [g.signature for g in group],
                    [g.block for g in group],
                    tid,
                    raw=op.is_raw,
                )
                i = j
        except (PeergosError, AuthError) as e:
            log.error("signup replay failed after the name was claimed: %s", e)
            raise
        finally:
            self.storage.close_transaction(owner, tid)
