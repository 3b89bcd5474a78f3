"""The real-data switch of tests/conftest.py: skip without a data root, fail with
AFFGRAPH_REQUIRE_DATA=1, run with one. Checked by running pytest (pytester) on a one-test
folder that uses the same conftest."""
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def suite(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_needs_data="def test_needs_data(data_root):\n"
                                        "    assert (data_root / 'marker').is_file()\n")
    for var in ("AFFGRAPH_DATA", "AFFGRAPH_REQUIRE_DATA"):
        monkeypatch.delenv(var, raising=False)
    return pytester


def test_without_a_root_the_test_skips_and_says_how(suite, monkeypatch):
    run = suite.runpytest("-rs", "-p", "no:cacheprovider")
    run.assert_outcomes(skipped=1)
    assert run.ret == 0
    run.stdout.fnmatch_lines(["*real data needed (AFFGRAPH_DATA is not set): set AFFGRAPH_DATA "
                              "to a data root laid out like planetoid/*"])
    monkeypatch.setenv("AFFGRAPH_DATA", str(suite.path / "nowhere"))
    run = suite.runpytest("-rs", "-p", "no:cacheprovider")
    run.assert_outcomes(skipped=1)
    run.stdout.fnmatch_lines(["*AFFGRAPH_DATA=*nowhere is not a folder*"])


def test_require_data_turns_the_skip_into_a_failure(suite, monkeypatch):
    monkeypatch.setenv("AFFGRAPH_REQUIRE_DATA", "1")
    run = suite.runpytest("-p", "no:cacheprovider")
    run.assert_outcomes(errors=1)
    assert run.ret == 1
    run.stdout.fnmatch_lines(["*AFFGRAPH_REQUIRE_DATA is set, so this is an error, not a skip*"])
    monkeypatch.setenv("AFFGRAPH_REQUIRE_DATA", "0")                  # 0 means off
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=1)


def test_with_a_root_the_test_runs(suite, monkeypatch, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    (root / "marker").write_text("")
    monkeypatch.setenv("AFFGRAPH_DATA", str(root))
    monkeypatch.setenv("AFFGRAPH_REQUIRE_DATA", "1")
    run = suite.runpytest("-p", "no:cacheprovider")
    run.assert_outcomes(passed=1)
    assert run.ret == 0
