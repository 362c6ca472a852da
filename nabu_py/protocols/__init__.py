"""libp2p protocols of nabu_py, one package each (design.md §3): sans-IO cores plus thin trio drivers."""
