"""Block codecs (dag-cbor)."""
