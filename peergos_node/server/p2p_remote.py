"""Calling another Peergos server over libp2p (`/http`, spec/peergos.md §11.1): the home server's own
embedded nabu node sends the request to the peer's p2p API listener; replies follow Peergos' error
convention (400 + message in `Trailer`).

`P2pPeergosClient` is async. `P2pRemotePki` adapts it to the synchronous `RemotePki` interface the PKI
mirror uses from worker threads (each call hops back into the trio loop with `trio.from_thread.run`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

import trio

from nabu_py.multiformats.cid import Cid
from nabu_py.node import NabuNode
from nabu_py.p2p import PeerId
from nabu_py.protocols.http_proxy import ProxyError
from peergos_node.client.http import RemoteError, RemotePointerCas
from peergos_node.corenode.chain import RequiredDifficulty
from peergos_node.corenode.claims import UserPublicKeyLink
from peergos_node.corenode.messages import DifficultyResponse, UpdateChainRequest
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash

MAX_RESPONSE = 4 * 1024 * 1024


class P2pPeergosClient:
    """POSTs to one peer's Peergos API over `/http`."""

    def __init__(self, node: NabuNode, peer: PeerId) -> None:
        self.node = node
        self.peer = peer

    async def post(self, path: str, params: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
        """POST and return the body; RemoteError (or a subclass) for a refusal or a p2p failure."""
        query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params)
        target = path + (f"?{query}" if query else "")
        try:
            resp = await self.node.http.request(self.peer, "POST", target, (), body, len(body))
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.body:
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raise RemoteError(0, f"response from {self.peer} larger than {MAX_RESPONSE} bytes")
                chunks.append(chunk)
        except ProxyError as e:
            raise RemoteError(0, f"cannot reach {self.peer} over p2p: {e}") from None
        data = b"".join(chunks)
        if resp.status == 200:
            return data
        headers = {k.lower(): v for k, v in resp.headers}
        message = urllib.parse.unquote_plus(headers.get(b"trailer", b"").decode("utf-8", "replace"))
        if message.startswith("PointerCAS:"):
            raise RemotePointerCas(resp.status, message)
        raise RemoteError(resp.status, message or f"HTTP {resp.status} from {self.peer}")


class P2pRemotePki:
    """The PKI node, reached over p2p, as the synchronous `RemotePki` the mirror uses."""

    def __init__(self, peer: PeerId, peergos_identity: PublicKeyHash) -> None:
        self.peer = peer
        self.peergos_identity = peergos_identity
        self._client: P2pPeergosClient | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def bind(self, node: NabuNode) -> None:
        """Attach the running p2p node (call from the trio thread once the node is up)."""
        self._client = P2pPeergosClient(node, self.peer)
        self._token = trio.lowlevel.current_trio_token()

    def unbind(self) -> None:
        """Detach before the node stops."""
        self._client = None

    def _post(self, path: str, params: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
        client = self._client
        if client is None or self._token is None:
            raise RemoteError(0, "the p2p node is not running")
        return trio.from_thread.run(client.post, path, params, body, trio_token=self._token)

    def get_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> bytes | None:
        out = self._post("/peergos/v0/mutable/getPointer", [("owner", str(owner)), ("writer", str(writer))])
        return out or None

    def get_block(self, cid: Cid) -> bytes | None:
        out = self._post("/api/v0/block/get", [("arg", str(cid)), ("owner", str(self.peergos_identity))])
        return out or None

    def update_chain(
        self, username: str, chain: Sequence[UserPublicKeyLink], proof: ProofOfWork, token: str
    ) -> RequiredDifficulty | None:
        body = UpdateChainRequest(username, tuple(chain), proof, token).encode()
        resp = DifficultyResponse.decode(self._post("/peergos/v0/core/updateChain", body=body))
        return None if resp.required is None else RequiredDifficulty(resp.required)
