"""libp2p protocols of nabu_py: one package per protocol (wire messages, sans-IO engine, trio service)."""
