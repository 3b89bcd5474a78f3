"""affgraph: attention and Infinite Feature Selection as message passing over an affinity graph.

Every set of items (tokens, nodes, features) is a graph whose edge weights are an affinity
matrix ``A``. Attention is one hop of message passing over ``A``; Inf-FS is infinitely many
(``sum_k r^k A^k 1``); K-hop diffusion layers sit in between.
"""
from affgraph import functional, nn, transforms
from affgraph.selection import InfFS  # noqa: F401  (affgraph.InfFS)

__version__ = "0.2.0"
__all__ = ["functional", "nn", "transforms", "__version__"]
