"""IPNS (ipfs/specs src/ipns/ipns-record.md; spec/nabu.md §7): signed, versioned records naming a value
under a publisher's peer id. `record` has the codec, creation, verification and ordering; the DHT
service (`nabu_py.protocols.kademlia.service`) stores and finds them under `/ipns/<peer id>`.
"""

from nabu_py.protocols.ipns.record import (
    DEFAULT_TTL_NS,
    MAX_RECORD_SIZE,
    InvalidIpnsRecord,
    IpnsEntry,
    IpnsRecord,
    IpnsSigner,
    IpnsValidator,
    create_record,
    format_validity,
    name_from_key,
    parse_validity,
    routing_key,
    select_best,
    validate_record,
)

__all__ = [
    "DEFAULT_TTL_NS",
    "MAX_RECORD_SIZE",
    "InvalidIpnsRecord",
    "IpnsEntry",
    "IpnsRecord",
    "IpnsSigner",
    "IpnsValidator",
    "create_record",
    "format_validity",
    "name_from_key",
    "parse_validity",
    "routing_key",
    "select_best",
    "validate_record",
]
