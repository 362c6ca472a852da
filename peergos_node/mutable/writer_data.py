"""WriterData: the root block of each writer (spec/peergos.md §5.1, Java `WriterData`).

A CBOR map with only the present fields: `controller` (the writer's key hash, which must equal the
pointer's writer), `algorithm` (login SecretGenerationAlgorithm, identity key only, public), `public`
(root of the public-caps InodeFileSystem), `inbound` (key hash of the follow-request boxing key),
`owned` (owned-key CHAMP root), `named` (name → OwnerProof, e.g. `pki`), `static` (legacy encrypted
UserStaticData), `tree` (filesystem CHAMP root) and `links` (secret-link CHAMP root).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from nabu_py.multiformats.cid import Cid
from peergos_node.cbor import CborMixin, CborValue, as_link, expect_map, only_keys
from peergos_node.cbor import field as req
from peergos_node.crypto.login import SecretGenerationAlgorithm
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.symmetric import PaddedCipherText
from peergos_node.errors import DecodeError
from peergos_node.mutable.owner_proof import OwnerProof

MAX_NAMED_KEYS = 64
_KEYS = frozenset(
    {"controller", "algorithm", "public", "inbound", "owned", "named", "static", "tree", "links"}
)


@dataclass(frozen=True)
class WriterData(CborMixin):
    """The root of one writing subspace."""

    controller: PublicKeyHash
    algorithm: SecretGenerationAlgorithm | None = None
    public: Cid | None = None
    inbound: PublicKeyHash | None = None
    owned: Cid | None = None
    named: dict[str, OwnerProof] = field(default_factory=dict)
    static: PaddedCipherText | None = None
    tree: Cid | None = None
    links: Cid | None = None

    def __hash__(self) -> int:
        return hash((self.controller, self.tree, self.owned, self.links, self.public))

    def with_tree(self, tree: Cid) -> WriterData:
        """A copy with a new filesystem CHAMP root."""
        return replace(self, tree=tree)

    def with_owned(self, owned: Cid) -> WriterData:
        """A copy with a new owned-key CHAMP root."""
        return replace(self, owned=owned)

    def with_links(self, links: Cid) -> WriterData:
        """A copy with a new secret-link CHAMP root."""
        return replace(self, links=links)

    def with_public(self, public: Cid) -> WriterData:
        """A copy with a new public-caps root."""
        return replace(self, public=public)

    def with_named(self, name: str, proof: OwnerProof) -> WriterData:
        """A copy with one more named owned key."""
        return replace(self, named={**self.named, name: proof})

    def with_algorithm(self, algorithm: SecretGenerationAlgorithm) -> WriterData:
        """A copy with new login parameters (password change)."""
        return replace(self, algorithm=algorithm)

    def to_cbor(self) -> CborValue:
        out: dict[str, CborValue] = {"controller": self.controller.to_cbor()}
        if self.algorithm is not None:
            out["algorithm"] = self.algorithm.to_cbor()
        if self.public is not None:
            out["public"] = self.public
        if self.inbound is not None:
            out["inbound"] = self.inbound.to_cbor()
        if self.owned is not None:
            out["owned"] = self.owned
        if self.named:
            out["named"] = {k: v.to_cbor() for k, v in self.named.items()}
        if self.static is not None:
            out["static"] = self.static.to_cbor()
        if self.tree is not None:
            out["tree"] = self.tree
        if self.links is not None:
            out["links"] = self.links
        return out

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "WriterData")
        only_keys(m, _KEYS, "WriterData")
        named_raw = m.get("named", {})
        named = expect_map(named_raw, "WriterData.named")
        if len(named) > MAX_NAMED_KEYS:
            raise DecodeError("WriterData.named: too many named keys")

        def opt_link(key: str) -> Cid | None:
            return None if key not in m else as_link(m[key], f"WriterData.{key}")

        return cls(
            controller=PublicKeyHash.from_cbor(req(m, "controller", "WriterData")),
            algorithm=SecretGenerationAlgorithm.from_cbor(m["algorithm"]) if "algorithm" in m else None,
            public=opt_link("public"),
            inbound=PublicKeyHash.from_cbor(m["inbound"]) if "inbound" in m else None,
            owned=opt_link("owned"),
            named={k: OwnerProof.from_cbor(v) for k, v in named.items()},
            static=PaddedCipherText.from_cbor(m["static"]) if "static" in m else None,
            tree=opt_link("tree"),
            links=opt_link("links"),
        )
