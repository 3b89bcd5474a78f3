"""The bad-input catalogue as a whole: every public entry point has cases of both kinds, every
case has exactly one expected outcome, ids are unique, and the counts are what the tables
hold (they are reported from here: cases, clear errors, finite results, known defects)."""
from __future__ import annotations

import affgraph
import affgraph.nn.models
import test_bad_attention
import test_bad_diffusion
import test_bad_inffs
import test_bad_layers
import test_bad_models
import test_bad_simplicial
import test_bad_supports
import test_bad_synthetic
from _catalogue import Case, Equals, Raises, counts

TABLES = [m.CASES for m in (test_bad_attention, test_bad_diffusion, test_bad_inffs,
                            test_bad_layers, test_bad_models, test_bad_simplicial,
                            test_bad_supports, test_bad_synthetic)]

#: entry points that must have at least one error case and one finite case
PUBLIC = (
    [f"functional.{name}" for name in affgraph.functional.__all__]
    + [f"nn.{name}" for name in affgraph.nn.__all__ if name != "models"]
    + [f"nn.models.{name}" for name in affgraph.nn.models.__all__]
    + ["InfFS", "supports.knn", "supports.window", "supports.edges", "datasets.make_csbm",
       "datasets.make_planted_features", "datasets.make_match3"]
)


def _all():
    return [p for table in TABLES for p in table]


def test_every_public_entry_point_has_error_and_finite_cases():
    kinds = {}
    for p in _all():
        c = p.values[0]
        kinds.setdefault(c.entry, set()).add(type(c.expect))
    missing = {e: sorted(k.__name__ for k in {Raises, Equals} - kinds.get(e, set()))
               for e in PUBLIC if kinds.get(e, set()) != {Raises, Equals}}
    assert not missing, f"entry points without both kinds of case: {missing}"
    assert set(kinds) <= set(PUBLIC), f"cases of unknown entry points: {set(kinds) - set(PUBLIC)}"


def test_every_case_has_one_outcome_and_a_unique_id():
    ids = [p.id for p in _all()]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for p in _all():
        c = p.values[0]
        assert isinstance(c, Case) and isinstance(c.expect, (Raises, Equals)), p.id
        if isinstance(c.expect, Raises):
            assert c.expect.name and set(c.expect.exc) <= {ValueError, TypeError}, p.id


def test_counts():
    n = counts(TABLES)
    assert n["cases"] == n["errors"] + n["finite"] == len(_all())
    # the catalogue's size (a shrinking table is a lost check, not a silent pass)
    assert n["errors"] >= 400 and n["finite"] >= 250, n
    assert n["xfail"] <= 10, n
