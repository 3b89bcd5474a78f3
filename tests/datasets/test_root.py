import hashlib
import json
import os
import sys
from importlib import resources
from pathlib import Path

import pytest

import affgraph
from affgraph.datasets import DataFileError, list_datasets, load_webkb, resolve_root
from affgraph.datasets._root import (cache_dir, default_root, lookup, manifest, sha256sum,
                                     user_cache_dir, verify)


def test_resolve_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv("AFFGRAPH_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_root() == default_root()
    monkeypatch.setenv("AFFGRAPH_DATA", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    assert resolve_root(str(tmp_path)) == tmp_path
    with pytest.raises(TypeError, match="root must be a path"):
        resolve_root(3)


def test_manifest_lists_every_shared_file(data_root):
    # the manifest covers exactly the files of SHA256SUMS, with the same digests
    sums = {}
    for line in (data_root / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(None, 1)
        sums[rel.strip()] = digest
    listed = {rel: e["sha256"] for d in manifest()["datasets"].values()
              for rel, e in d["files"].items()}
    assert set(listed) == set(sums)
    assert all(sums[rel] in accepted for rel, accepted in listed.items())
    assert len(list_datasets("featsel")) == 22
    assert list_datasets("webkb") == ["Cornell", "Texas", "Wisconsin"]
    assert list_datasets("planetoid") == ["Cora", "CiteSeer", "PubMed"]
    assert set(list_datasets("embedded")) == {"breast_cancer", "digits", "wine"}
    assert list_datasets("heterophilous") == ["Minesweeper", "Tolokers", "chameleon_filtered"]
    assert list_datasets("synthetic") == ["cSBM", "planted_features", "Match3"]


def test_sha256sum_matches_hashlib(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(3 << 20) + b"tail")  # more than one read block
    assert sha256sum(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_verify_all_present(data_root):
    for name in list_datasets():
        assert verify(name, data_root) == Path(data_root)


def test_lookup_is_case_and_dash_insensitive():
    assert lookup("cora")[0] == "Cora"
    assert lookup("prostate_ge")[0] == "Prostate-GE"
    assert lookup("LUNG_SMALL", "featsel")[0] == "lung_small"


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'Amazon'.*Cora.*Wisconsin"):
        lookup("Amazon")
    with pytest.raises(ValueError,
                       match="unknown webkb dataset 'Cora'; known: Cornell, Texas, Wisconsin"):
        lookup("Cora", "webkb")
    with pytest.raises(ValueError, match="unknown dataset kind"):
        list_datasets("graphs")
    with pytest.raises(TypeError):
        lookup(None)


def test_missing_and_altered_files(data_root, tmp_path):
    rel = "featsel/colon.mat"
    with pytest.raises(DataFileError, match=r"expected .*colon\.mat.*AFFGRAPH_DATA.*"
                                            r"affgraph\.datasets\.fetch\(\"colon\", root="):
        verify("colon", tmp_path)
    (tmp_path / "featsel").mkdir()
    data = bytearray((Path(data_root) / rel).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / rel).write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="checksum mismatch"):
        verify("colon", tmp_path)
    assert isinstance(DataFileError("x"), ValueError)


# ---------------------------------------------------------------- cache and default root folders

def _no_dir_env(monkeypatch, home):
    for var in ("AFFGRAPH_CACHE", "AFFGRAPH_DATA", "XDG_CACHE_HOME", "XDG_DATA_HOME",
                "LOCALAPPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))


def test_cache_dir_env_then_xdg_then_home(monkeypatch, tmp_path):
    _no_dir_env(monkeypatch, tmp_path / "home")
    monkeypatch.setattr(sys, "platform", "linux")
    assert cache_dir() == user_cache_dir() == tmp_path / "home" / ".cache" / "affgraph"
    assert default_root() == tmp_path / "home" / ".local" / "share" / "affgraph"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    assert cache_dir() == tmp_path / "xdg-cache" / "affgraph"
    assert resolve_root() == default_root() == tmp_path / "xdg-data" / "affgraph"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec ignores relative paths
    assert cache_dir() == tmp_path / "home" / ".cache" / "affgraph"
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"                      # the variable wins


def test_cache_dir_per_platform(monkeypatch, tmp_path):
    _no_dir_env(monkeypatch, tmp_path)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cache_dir() == tmp_path / "Library" / "Caches" / "affgraph"
    assert default_root() == tmp_path / "Library" / "Application Support" / "affgraph"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert cache_dir() == tmp_path / "Local" / "affgraph" / "Cache"
    assert default_root() == tmp_path / "Local" / "affgraph" / "Data"
    monkeypatch.delenv("LOCALAPPDATA")
    assert cache_dir() == tmp_path / "AppData" / "Local" / "affgraph" / "Cache"


def test_default_cache_is_outside_package_checkout_and_root(monkeypatch, tmp_path):
    _no_dir_env(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("AFFGRAPH_DATA", str(tmp_path / "root"))
    package = Path(affgraph.__file__).resolve().parent
    cache = cache_dir().resolve()
    for folder in (package, package.parent, resolve_root().resolve(), default_root().resolve()):
        assert folder != cache and folder not in cache.parents


def test_processed_files_go_to_the_cache(data_root, tmp_path, monkeypatch):
    _no_dir_env(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_webkb("Texas", data_root).num_nodes == 183
    written = sorted(p.relative_to(tmp_path / "xdg") for p in (tmp_path / "xdg").rglob("*.pt"))
    assert written and all(p.parts[:4] == ("affgraph", "processed", "webkb", "Texas")
                           for p in written)


def test_manifest_is_package_data():
    res = resources.files("affgraph.datasets").joinpath("manifest.json")
    assert res.is_file()
    assert manifest() == json.loads(res.read_text(encoding="utf-8"))
    for entry in manifest()["datasets"].values():
        assert entry["kind"] in {"planetoid", "webkb", "featsel", "embedded", "heterophilous",
                                 "synthetic"}
        assert bool(entry["files"]) == (entry["kind"] not in {"embedded", "synthetic"})
        assert all(len(d) == 64 for e in entry["files"].values() for d in e["sha256"])


def test_read_verified_returns_the_bytes_it_checked(data_root):
    from affgraph.datasets._root import read_verified
    base, files = read_verified("Texas", data_root)
    assert base == Path(data_root) and len(files) == 12
    for rel, f in files.items():
        assert f.path == Path(data_root) / rel and f.data == f.path.read_bytes()
        assert f.sha256 == hashlib.sha256(f.data).hexdigest()
        assert f.sha256 in manifest()["datasets"]["Texas"]["files"][rel]["sha256"]
    with pytest.raises(ValueError, match="'webkb/texas/raw/x.txt' is not a file of dataset Texas"):
        read_verified("Texas", data_root, files=["webkb/texas/raw/x.txt"])
