"""The public pure-tensor API of affgraph.

Each line re-exports one function from the module that implements it.
"""
from __future__ import annotations

__all__: list[str] = []
