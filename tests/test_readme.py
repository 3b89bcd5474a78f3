"""The README's quick tour runs as written.

Every ```` ```python ```` block of ``README.md`` is executed, top to bottom, in one namespace
(as a reader pasting them into one session would). A block whose first line is
``# needs real data`` runs only in the second test, which needs a data root (``AFFGRAPH_DATA``)
and is skipped with the data fixture's message without one.
"""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DATA_MARK = "# needs real data"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```` ```python ```` fenced blocks of ``text``, in order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def test_python_blocks_parser():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]


def test_readme_has_a_tour():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4
    assert any(DATA_MARK not in b for b in blocks)


def _run(blocks: list[str], monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for i, block in blocks:
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102


def test_readme_python_blocks_run(monkeypatch, tmp_path):
    """Every block that needs no real data, in order."""
    blocks = [(i, b) for i, b in enumerate(python_blocks(README.read_text()))
              if not b.lstrip().startswith(DATA_MARK)]
    _run(blocks, monkeypatch, tmp_path)


def test_readme_data_blocks_run(data_root, monkeypatch, tmp_path):
    """All blocks in order, the real-data ones included (skipped without a data root)."""
    monkeypatch.setenv("AFFGRAPH_DATA", str(data_root))
    _run(list(enumerate(python_blocks(README.read_text()))), monkeypatch, tmp_path)
