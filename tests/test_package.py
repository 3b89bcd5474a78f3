"""The package as installed: a built wheel carries the manifest and works from another folder,
and the dependency metadata matches what the code imports."""
import ast
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import affgraph

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# import name -> distribution name, for the third-party modules affgraph/ may import
DISTRIBUTIONS = {"torch": "torch", "torch_geometric": "torch-geometric", "numpy": "numpy",
                 "scipy": "scipy", "sklearn": "scikit-learn"}
OPTIONAL = {"torch_sparse"}  # imported inside try/except ImportError only


def test_version_and_modules():
    assert affgraph.__version__ == PYPROJECT["project"]["version"] == "0.2.0"
    assert hasattr(affgraph, "functional") and hasattr(affgraph, "nn")


def _imports(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _dist(requirement: str) -> str:
    for sep in "<>=!~ ;[":
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower()


def test_dependencies_are_what_the_package_imports():
    third_party = _imports(REPO / "affgraph") - set(sys.stdlib_module_names) - {"affgraph"}
    assert third_party - OPTIONAL <= set(DISTRIBUTIONS), third_party
    deps = {_dist(r): r for r in PYPROJECT["project"]["dependencies"]}
    assert set(deps) == {DISTRIBUTIONS[m] for m in third_party - OPTIONAL}
    # validate_data / __sklearn_tags__ need scikit-learn 1.6
    assert deps["scikit-learn"] == "scikit-learn>=1.6"
    extras = PYPROJECT["project"]["optional-dependencies"]
    test_only = {"pytest", "networkx", "matplotlib", "tqdm", "pyifs", "skrebate",
                 "simplicial-attention"}
    assert test_only <= {_dist(r) for r in extras["test"]} and not test_only & set(deps)


def test_licence_file_matches_metadata():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the affgraph developers\n")
    assert "Permission is hereby granted, free of charge" in text


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """affgraph's wheel, built from the checkout (installed setuptools, no network)."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"building offline needs setuptools >= 77, found {setuptools.__version__}")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(REPO)], check=True)
    (path,) = out.glob("affgraph-*.whl")
    return path


def test_wheel_carries_the_package_manifest_and_licence(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "affgraph/datasets/manifest.json" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert all(n.startswith(("affgraph/", "affgraph-")) for n in names)  # no tests, no scripts
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata


def test_installed_copy_finds_its_manifest_from_another_folder(wheel, tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere.mkdir()
    code = ("import json, affgraph\n"
            "from affgraph.datasets import list_datasets, load_embedded\n"
            "from affgraph.datasets._root import cache_dir, resolve_root\n"
            "X, y = load_embedded('wine')\n"
            "print(json.dumps([affgraph.__file__, list_datasets(), str(cache_dir()),\n"
            "                  str(resolve_root()), X.shape[0]]))\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("AFFGRAPH_CACHE", "AFFGRAPH_DATA", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path / "home"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), XDG_DATA_HOME=str(tmp_path / "xdg"))
    run = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env,
                         capture_output=True, text=True, check=True)
    file, names, cache, root, n = json.loads(run.stdout)
    assert Path(file).resolve().is_relative_to(site)         # the unpacked copy, not the checkout
    shipped = json.loads((REPO / "affgraph" / "datasets" / "manifest.json").read_text())
    assert names == list(shipped["datasets"]) and n == 178
    if sys.platform.startswith("linux"):
        assert cache == str(tmp_path / "xdg-cache" / "affgraph")
        assert root == str(tmp_path / "xdg" / "affgraph")
