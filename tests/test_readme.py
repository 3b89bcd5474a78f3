"""The README's quick tour runs as written.

Every ```` ```python ```` block of ``README.md`` is executed, top to bottom, in one namespace
(as a reader pasting them into one session would). A block whose first line is
``# needs real data`` runs only in the test that needs a data root (``AFFGRAPH_DATA``) and is
skipped with the data fixture's message without one; a block whose first line is
``# needs pyg-lib or torch-sparse`` (``NeighborLoader``) runs only in the test that needs a
sampler extension (the ``neighbor_sampler`` fixture).
"""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DATA_MARK = "# needs real data"
SAMPLER_MARK = "# needs pyg-lib or torch-sparse"
MARKS = (DATA_MARK, SAMPLER_MARK)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```` ```python ```` fenced blocks of ``text``, in order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def test_python_blocks_parser():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]


def test_readme_has_a_tour():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4
    assert any(not b.lstrip().startswith(MARKS) for b in blocks)


def _run(blocks: list[str], monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for i, block in blocks:
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102


def _blocks(*skip: str) -> list[tuple[int, str]]:
    return [(i, b) for i, b in enumerate(python_blocks(README.read_text()))
            if not (skip and b.lstrip().startswith(skip))]


def test_readme_python_blocks_run(monkeypatch, tmp_path):
    """Every block that needs neither real data nor a sampler extension, in order."""
    _run(_blocks(*MARKS), monkeypatch, tmp_path)


def test_readme_sampler_blocks_run(neighbor_sampler, monkeypatch, tmp_path):
    """The blocks without real data, the NeighborLoader ones included."""
    _run(_blocks(DATA_MARK), monkeypatch, tmp_path)


def test_readme_data_blocks_run(data_root, neighbor_sampler, monkeypatch, tmp_path):
    """All blocks in order, the real-data ones included (skipped without a data root)."""
    monkeypatch.setenv("AFFGRAPH_DATA", str(data_root))
    _run(_blocks(), monkeypatch, tmp_path)
