"""The public pure-tensor API of affgraph.

Each line re-exports one function from the module that implements it.
"""
from __future__ import annotations

__all__: list[str] = []
from affgraph.diffusion import diffuse, spectral_radius, spectral_radius_dense  # noqa: E402
__all__ += ["diffuse", "spectral_radius", "spectral_radius_dense"]
from affgraph.inffs import inffs_scores  # noqa: E402
__all__ += ["inffs_scores"]
from affgraph.attention import attention, attention_diffusion  # noqa: E402
__all__ += ["attention", "attention_diffusion"]
from affgraph.simplicial import simplicial_attention  # noqa: E402
__all__ += ["simplicial_attention"]
