"""Error tree of nabu_py.

    NabuError                      base of everything nabu_py raises on purpose
    ├── DecodeError (ValueError)   bytes or text from outside (a peer, a file, a user) are malformed;
    │                              always the remote's/caller's fault, never a bug of ours
    ├── HashMismatch (DecodeError) content does not hash to the CID it was stored or fetched under
    └── BlockstoreError            a block store cannot do what was asked (I/O, missing, too large)
        ├── BlockNotFound (KeyError)        the block is not in the store
        ├── BlockTooLarge (ValueError)      a block exceeds the store's maximum block size
        ├── CorruptBlock                    stored data is unreadable or no longer hashes to its CID
        └── BlockstoreClosed                the store was used after close()

Local misuse (calling an API with the wrong Python types) raises TypeError/ValueError as usual;
remote misbehaviour is always one of the classes above, so callers can reset a stream and penalise a
peer with one `except DecodeError`.
"""


class NabuError(Exception):
    """Base class of nabu_py's deliberate errors."""


class DecodeError(NabuError, ValueError):
    """Malformed input: bad varint, multibase, multihash, CID, CBOR or protocol message."""


class HashMismatch(DecodeError):
    """Data does not match the hash in its CID."""


class BlockstoreError(NabuError):
    """A block store operation failed."""


class BlockNotFound(BlockstoreError, KeyError):
    """The requested block is not in the store."""


class BlockTooLarge(BlockstoreError, ValueError):
    """A block is larger than the store's configured maximum block size."""


class CorruptBlock(BlockstoreError):
    """A stored block is damaged: it no longer hashes to its CID or the store cannot decode it.

    Local disk or software damage, never a peer's fault (unlike HashMismatch on a received block).
    """


class BlockstoreClosed(BlockstoreError):
    """The block store was used after close()."""
