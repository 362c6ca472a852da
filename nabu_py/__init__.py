"""nabu_py: a minimal IPFS layer (codecs, block stores, libp2p node, bitswap, Kademlia, /http proxy).

nabu_py knows nothing of Peergos; see ../shared/spec/nabu.md for the Java Nabu it reimplements.
"""

__version__ = "0.1.0"
