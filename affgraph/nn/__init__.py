"""PyG layers of affgraph (one layer a file)."""
from __future__ import annotations

__all__: list[str] = []
