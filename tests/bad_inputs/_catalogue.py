"""The bad-input catalogue's case type and its two checks.

A case is one call of a public entry point and exactly one expected outcome:

- :class:`Raises`: a ``ValueError`` or ``TypeError`` raised by affgraph's own code (the
  innermost frame of the traceback lies in the installed ``affgraph`` package, not in torch,
  PyG or numpy) whose message names the argument;
- :class:`Equals`: a finite result equal to an independent float64 reference (dense
  formulas, SDPA in float64, scipy/networkx, PyG layers with the same weights) within the
  tolerance of the input dtype.

Every ``tests/bad_inputs/test_bad_*.py`` file builds a list of cases with :func:`case` and runs
them through :func:`check`; ``test_bad_catalogue.py`` counts them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch

import affgraph

PACKAGE = Path(affgraph.__file__).resolve().parent

#: (rtol, atol) of a result computed in each input dtype against its float64 reference
TOLERANCE = {
    torch.float16: (2e-2, 2e-2),
    torch.bfloat16: (6e-2, 6e-2),
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-9, 1e-11),
}


@dataclass(frozen=True)
class Raises:
    """A ``ValueError``/``TypeError`` from affgraph's code whose message names ``name``.

    ``origin`` names the package whose frame may raise it (``"affgraph"``; a scikit-learn
    estimator's input validation is ``"sklearn"``'s by design)."""
    name: str
    exc: Tuple[type, ...] = (ValueError, TypeError)
    origin: str = "affgraph"


@dataclass(frozen=True)
class Equals:
    """A finite result equal to ``reference()`` (float64) within the tolerance of ``dtype``
    (or ``tol = (rtol, atol)``)."""
    reference: Callable[[], Any]
    dtype: torch.dtype = torch.float64
    tol: Optional[Tuple[float, float]] = None


@dataclass(frozen=True)
class Case:
    """One call of ``entry`` (a public name, e.g. ``"functional.attention"``)."""
    entry: str
    call: Callable[[], Any]
    expect: Any
    why: str = field(default="")


def case(entry: str, label: str, call: Callable[[], Any], expect: Any,
         xfail: Optional[str] = None) -> Any:
    """A ``pytest.param`` of one :class:`Case`, id ``entry:label``; ``xfail`` gives the reason
    of a known open defect (strict: the case must fail)."""
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(Case(entry, call, expect), id=f"{entry}:{label}", marks=marks)


def _names_argument(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def _innermost_origin(tb: Any) -> str:
    path = Path(tb[-1].path).resolve()
    if path.is_relative_to(PACKAGE):
        return "affgraph"
    return "sklearn" if "sklearn" in path.parts else str(path)


def _as_arrays(x: Any) -> Sequence[np.ndarray]:
    if isinstance(x, (tuple, list)):
        return [a for item in x for a in _as_arrays(item)]
    if isinstance(x, torch.Tensor):
        return [x.detach().cpu().to(torch.float64).numpy()]
    return [np.asarray(x, dtype=np.float64)]


def check(c: Case) -> None:
    """Run one case and assert its single expected outcome."""
    if isinstance(c.expect, Raises):
        with pytest.raises(c.expect.exc) as info:
            c.call()
        message = str(info.value)
        assert _names_argument(message, c.expect.name), \
            f"the error does not name {c.expect.name!r}: {message!r}"
        origin = _innermost_origin(info.traceback)
        assert origin == c.expect.origin, f"raised in {origin}, not by {c.expect.origin}"
        return
    assert isinstance(c.expect, Equals)
    got = _as_arrays(c.call())
    want = _as_arrays(c.expect.reference())
    assert len(got) == len(want)
    rtol, atol = c.expect.tol or TOLERANCE[c.expect.dtype]
    for g, w in zip(got, want):
        assert g.shape == w.shape, f"shape {g.shape} != reference {w.shape}"
        assert np.isfinite(w).all(), "the reference is not finite"
        assert np.isfinite(g).all(), "the result is not finite"
        scale = max(float(np.abs(w).max()) if w.size else 0.0, 1.0)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale)


def counts(tables: Sequence[Sequence[Any]]) -> dict:
    """``{"cases", "errors", "finite", "xfail"}`` over the given tables of ``case(...)``."""
    out = {"cases": 0, "errors": 0, "finite": 0, "xfail": 0}
    for table in tables:
        for p in table:
            c = p.values[0]
            out["cases"] += 1
            out["errors" if isinstance(c.expect, Raises) else "finite"] += 1
            out["xfail"] += any(m.name == "xfail" for m in p.marks)
    return out


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0,
          scale: float = 1.0) -> torch.Tensor:
    """Normal values drawn in float64 (reproducible), scaled, then cast to ``dtype``."""
    return (torch.randn(*shape, generator=seeded(seed), dtype=torch.float64) * scale).to(dtype)


def near(value: float) -> float:
    return math.nextafter(value, 0.0)
