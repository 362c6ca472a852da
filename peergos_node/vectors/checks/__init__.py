"""Vector format checkers, one module per format of ../shared/vectors/README.md."""

from __future__ import annotations

from typing import Any

from peergos_node.vectors.checks import (
    cbor,
    champ,
    cryptree,
    login,
    nacl,
    pow,
    s3_bat_auth,
    secret_link,
)

ALL: list[Any] = [cbor, champ, cryptree, login, nacl, pow, s3_bat_auth, secret_link]
