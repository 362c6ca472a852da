"""Server-side persistence: one module per store, each a `typing.Protocol` with an in-memory twin and a
SQL implementation (SQLite or PostgreSQL through `peergos_node.server.db.Database`). One conformance
test module runs every store against every implementation.
"""
