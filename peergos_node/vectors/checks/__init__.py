"""Vector format checkers, one module per format of ../shared/vectors/README.md."""

from __future__ import annotations

from typing import Any

from peergos_node.vectors.checks import cbor, champ

ALL: list[Any] = [cbor, champ]
