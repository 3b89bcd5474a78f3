"""PyG layers of affgraph (one layer a file)."""
from __future__ import annotations

__all__: list[str] = []
from affgraph.nn.affinity_diffusion import AffinityDiffusion  # noqa: E402
__all__ += ["AffinityDiffusion"]
from affgraph.nn.affinity_attention import AffinityAttention  # noqa: E402
__all__ += ["AffinityAttention"]
from affgraph.nn.simplicial_attention import SimplicialAttention  # noqa: E402
__all__ += ["SimplicialAttention"]
from affgraph.nn import models  # noqa: E402  (networks: affgraph.nn.models)
__all__ += ["models"]
