"""Errors of the Kademlia DHT core.

    NabuError
    ├── DecodeError (ValueError)        malformed wire message (nabu_py.errors)
    ├── InvalidRecord (ValueError)      a record failed its namespace validator (remote misbehaviour
    │                                   when it came from a peer)
    ├── QueryLimitReached               local misuse: too many concurrent queries on one engine
    └── ServiceStopped                  local misuse: the trio service was used after it stopped

The engine never lets any of these escape from input handlers fed by remote peers: they become a
`Penalise` action instead.
"""

from nabu_py.errors import NabuError


class InvalidRecord(NabuError, ValueError):
    """A DHT record is not valid for its key (bad signature, wrong key, expired, unknown namespace...)."""


class QueryLimitReached(NabuError):
    """The engine already runs its maximum number of concurrent user queries."""


class ServiceStopped(NabuError):
    """The DHT service has stopped (its `start` block was left); its stores are closed."""
