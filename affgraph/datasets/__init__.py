"""Dataset loaders and synthetic generators (one source a file)."""
from __future__ import annotations

__all__: list[str] = []
