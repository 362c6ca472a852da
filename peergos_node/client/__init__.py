"""The Peergos client: network access to a home server, and (later) the encrypted filesystem."""
