"""PyG transforms: node features precomputed by multi-hop diffusion (SIGN-style)."""
from affgraph.transforms.diffusion_features import DiffusionFeatures

__all__ = ["DiffusionFeatures"]
