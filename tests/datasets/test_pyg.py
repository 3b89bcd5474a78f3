"""Planted pickles never run: in the raw folder, in the processed cache, or swapped in mid-load.

Every malicious file below is a pickle whose ``__reduce__`` creates a marker folder when it is
unpickled; each test asserts that the marker never appears and that the load either returns a
graph equal to a fresh load from the untouched data root or raises a DataFileError naming the
file. The data root is only read: files to tamper with are copied into ``tmp_path`` first.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch_geometric.io.planetoid as pyg_io_planetoid

from affgraph.datasets import DataFileError, load_featsel, load_planetoid, load_webkb
from affgraph.datasets import _pyg, _root
from affgraph.datasets._root import DataCacheWarning, RawFile, manifest

CORA_RAW = "planetoid/Cora/raw"
CORA_FILES = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]


class Payload:
    """Unpickling this creates the folder ``marker``: proof that a planted pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker), protocol=2)


def evil_torch_file(marker: Path, path: Path) -> None:
    torch.save(Payload(marker), path)  # a zip archive torch.load(weights_only=False) would run


def same_graph(a, b) -> bool:
    return set(a.keys()) == set(b.keys()) and all(torch.equal(a[k], b[k]) for k in a.keys())


def cache_folders(cache: Path) -> list[Path]:
    return sorted(p.parent for p in cache.rglob("data.pt") if ".tmp-" not in str(p))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("AFFGRAPH_CACHE", str(path))
    return path


@pytest.fixture
def cora_copy(data_root, tmp_path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(Path(data_root) / CORA_RAW, root / CORA_RAW)
    return root


@pytest.fixture
def texas_ref(data_root, tmp_path_factory, monkeypatch):
    """Texas as built in a throwaway cache of its own (the fresh-load reference)."""
    with monkeypatch.context() as m:
        m.setenv("AFFGRAPH_CACHE", str(tmp_path_factory.mktemp("ref-cache")))
        return load_webkb("Texas", data_root)


# ----------------------------------------------------------------------------- (a) raw files

@pytest.mark.parametrize("name", CORA_FILES)
def test_malicious_raw_pickle_is_refused_before_unpickling(name, cora_copy, cache, tmp_path):
    marker = tmp_path / "marker"
    target = cora_copy / CORA_RAW / f"ind.cora.{name}"
    target.write_bytes(evil_pickle(marker))
    with pytest.raises(DataFileError, match=rf"checksum mismatch for .*ind\.cora\.{name}"):
        load_planetoid("Cora", cora_copy)
    assert not marker.exists()
    assert not cache_folders(cache)


# ----------------------------------------------------------------- (b) processed cache files

PLANTS = ["data.pt", "pre_transform.pt", "pre_filter.pt", "affgraph.json", "data.pt+sidecar",
          "processed/data.pt"]


@pytest.mark.parametrize("plant", PLANTS)
def test_planted_cache_file_never_runs(plant, data_root, cache, texas_ref, tmp_path):
    marker = tmp_path / "marker"
    load_webkb("Texas", data_root)
    (folder,) = cache_folders(cache)
    target = folder / plant.split("+")[0]
    target.parent.mkdir(exist_ok=True)
    if plant == "affgraph.json":
        target.write_bytes(evil_pickle(marker))
    else:
        evil_torch_file(marker, target)
    if plant == "data.pt+sidecar":  # a forged checksum: weights_only=True still refuses it
        meta = json.loads((folder / "affgraph.json").read_text())
        meta["files"]["data.pt"] = {"sha256": _root.sha256sum(target),
                                    "size": target.stat().st_size}
        (folder / "affgraph.json").write_text(json.dumps(meta))
    bad = plant in ("data.pt", "affgraph.json", "data.pt+sidecar")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_webkb("Texas", data_root)
    named = [str(w.message) for w in caught if issubclass(w.category, DataCacheWarning)]
    assert not marker.exists()
    assert same_graph(data, texas_ref)
    if bad:
        assert len(named) == 1 and str(target) in named[0] and "rebuilding" in named[0]
        if plant == "data.pt+sidecar":
            assert "refused by torch.load(weights_only=True)" in named[0]
    else:
        assert not named                    # a stray file is never read, so never reported
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCacheWarning)
        assert same_graph(load_webkb("Texas", data_root), texas_ref)   # healed
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0, 1, 100, -1, "flip", "append"])
def test_truncated_or_altered_cache_file_heals(keep, data_root, cache, texas_ref):
    load_webkb("Texas", data_root)
    (folder,) = cache_folders(cache)
    path = folder / "data.pt"
    blob = path.read_bytes()
    if keep == "flip":                                   # same size, one bit differs
        path.write_bytes(blob[:-40] + bytes([blob[-40] ^ 1]) + blob[-39:])
    elif keep == "append":
        path.write_bytes(blob + b"\0")
    else:
        path.write_bytes(blob[:keep if keep >= 0 else len(blob) - 1])
    with pytest.warns(DataCacheWarning, match=rf"{path}.*truncated or altered.*rebuilding"):
        data = load_webkb("Texas", data_root)
    assert same_graph(data, texas_ref)
    assert path.read_bytes() == blob
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCacheWarning)
        assert same_graph(load_webkb("Texas", data_root), texas_ref)


def test_missing_sidecar_rebuilds_naming_it(data_root, cache, texas_ref):
    load_webkb("Texas", data_root)
    (folder,) = cache_folders(cache)
    (folder / "affgraph.json").unlink()
    with pytest.warns(DataCacheWarning, match=rf"{folder / 'affgraph.json'}.*missing"):
        assert same_graph(load_webkb("Texas", data_root), texas_ref)
    assert (folder / "affgraph.json").is_file()


def test_cache_holds_only_tensors_loadable_with_weights_only(data_root, cache):
    data = load_planetoid("Cora", data_root)
    (folder,) = cache_folders(cache)
    assert sorted(p.name for p in folder.iterdir()) == ["affgraph.json", "data.pt"]
    obj = torch.load(folder / "data.pt", weights_only=True)
    assert obj["format"] == _pyg.FORMAT and set(obj["data"]) == set(data.keys())
    meta = json.loads((folder / "affgraph.json").read_text())
    assert meta["files"]["data.pt"] == {"sha256": _root.sha256sum(folder / "data.pt"),
                                        "size": (folder / "data.pt").stat().st_size}
    entry = manifest()["datasets"]["Cora"]["files"]
    assert meta["raw"] == {rel: entry[rel]["sha256"][0] for rel in entry
                           if rel.startswith(CORA_RAW + "/")}


# -------------------------------------------------------------------- (c) swapped mid-load

def test_raw_file_swapped_after_its_check_is_never_parsed(data_root, cora_copy, cache,
                                                          tmp_path, monkeypatch):
    """The raw file is replaced right after its bytes are hashed: PyG parses the bytes that
    were checked (a private 0700 copy), never the swapped file."""
    ref = load_planetoid("Cora", data_root)
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "cache2"))
    marker = tmp_path / "marker"
    real_hash = _root.sha256_bytes
    swapped = []

    def hash_then_swap(data: bytes) -> str:
        digest = real_hash(data)
        for path in sorted((cora_copy / CORA_RAW).iterdir()):
            if path.read_bytes() == data:           # the file just hashed
                path.write_bytes(evil_pickle(marker))
                swapped.append(path.name)
        return digest

    monkeypatch.setattr(_root, "sha256_bytes", hash_then_swap)
    data = load_planetoid("Cora", cora_copy)
    assert sorted(swapped) == sorted(f"ind.cora.{n}" for n in CORA_FILES)
    assert not marker.exists()
    assert same_graph(data, ref)


def test_raw_file_swapped_just_before_parsing_is_never_read(data_root, cora_copy, cache,
                                                            tmp_path, monkeypatch):
    """The latest possible swap: every raw file in the root is replaced as PyG starts to parse;
    what PyG opens is the private copy (mode 0700, outside the root)."""
    ref = load_planetoid("Cora", data_root)
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "cache2"))
    marker = tmp_path / "marker"
    real_read = pyg_io_planetoid.read_file
    folders = set()

    def swap_then_read(folder, prefix, name):
        for path in (cora_copy / CORA_RAW).iterdir():
            path.write_bytes(evil_pickle(marker))
        folders.add(Path(folder))
        return real_read(folder, prefix, name)

    monkeypatch.setattr(pyg_io_planetoid, "read_file", swap_then_read)
    data = load_planetoid("Cora", cora_copy)
    assert not marker.exists()
    assert same_graph(data, ref)
    (folder,) = folders
    assert cora_copy not in folder.parents and folder.parent.name.startswith(".tmp-")
    assert not folder.exists()                        # the private copy is gone afterwards


def test_cache_file_swapped_after_its_check_is_never_unpickled(data_root, cache, texas_ref,
                                                               tmp_path, monkeypatch):
    load_webkb("Texas", data_root)
    (folder,) = cache_folders(cache)
    marker = tmp_path / "marker"
    real_hash = _root.sha256_bytes
    blob = (folder / "data.pt").read_bytes()
    swapped = []

    def hash_then_swap(data: bytes) -> str:
        digest = real_hash(data)
        if data == blob:                                # data.pt was just hashed
            evil_torch_file(marker, folder / "data.pt")
            swapped.append(digest)
        return digest

    monkeypatch.setattr(_root, "sha256_bytes", hash_then_swap)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCacheWarning)
        data = load_webkb("Texas", data_root)     # the verified bytes, not the swapped file
    assert swapped and (folder / "data.pt").read_bytes() != blob
    assert not marker.exists()
    assert same_graph(data, texas_ref)


def test_featsel_parses_the_bytes_it_checked(data_root, tmp_path, monkeypatch):
    ref_X, ref_y = load_featsel("colon", data_root)
    (tmp_path / "featsel").mkdir()
    shutil.copy(Path(data_root) / "featsel" / "colon.mat", tmp_path / "featsel" / "colon.mat")
    other = (Path(data_root) / "featsel" / "lung_small.mat").read_bytes()
    real_hash = _root.sha256_bytes

    def hash_then_swap(data: bytes) -> str:
        digest = real_hash(data)
        (tmp_path / "featsel" / "colon.mat").write_bytes(other)
        return digest

    monkeypatch.setattr(_root, "sha256_bytes", hash_then_swap)
    X, y = load_featsel("colon", tmp_path)
    assert X.shape == (62, 2000) and (X == ref_X).all() and (y == ref_y).all()


# ------------------------------------------------------------------ abandoned working folders

def test_folders_left_by_a_killed_load_are_removed(data_root, cache, texas_ref, tmp_path):
    """A load killed (SIGKILL) after processing, before its rename, leaves a .tmp-* folder;
    once older than STALE_AFTER and unlocked, the next load removes it."""
    code = ("import os, signal, sys\n"
            "from affgraph.datasets import _pyg, load_webkb\n"
            "_pyg._install = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
            "load_webkb('Texas', sys.argv[1])\n")
    env = dict(os.environ, AFFGRAPH_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-c", code, str(data_root)], env=env, timeout=300)
    assert proc.returncode == -9
    parent = cache / "processed" / "webkb" / "Texas"
    (left,) = [p for p in parent.iterdir() if p.name.startswith(".tmp-")]
    assert (left / "out" / "data.pt").is_file() and not cache_folders(cache)
    assert same_graph(load_webkb("Texas", data_root), texas_ref)
    assert left.exists()                               # too recent: it may be a running load
    old = time.time() - _pyg.STALE_AFTER - 60
    os.utime(left, (old, old))
    assert same_graph(load_webkb("Texas", data_root), texas_ref)
    assert not left.exists()
    assert [p.name for p in parent.iterdir()] == [cache_folders(cache)[0].name]


@pytest.mark.skipif(_pyg.fcntl is None, reason="advisory locks need fcntl (POSIX)")
def test_a_locked_working_folder_is_kept_however_old(data_root, cache):
    parent = cache / "processed" / "webkb" / "Texas"
    parent.mkdir(parents=True)
    old = time.time() - 24 * 3600
    folders = {}
    for name in (".tmp-abandoned", ".tmp-running", ".tmp-fresh", "keep-me"):
        (parent / name).mkdir()
        (parent / name / ".lock").touch()
        folders[name] = parent / name
    for name in (".tmp-abandoned", ".tmp-running", "keep-me"):
        os.utime(folders[name], (old, old))
    with open(folders[".tmp-running"] / ".lock", "wb") as lock:
        _pyg.fcntl.flock(lock, _pyg.fcntl.LOCK_EX)     # a load that is still running
        assert load_webkb("Texas", data_root).num_nodes == 183
    assert not folders[".tmp-abandoned"].exists()
    assert all(folders[n].exists() for n in (".tmp-running", ".tmp-fresh", "keep-me"))


# ------------------------------------------------------------------------------- cache keys

@pytest.mark.filterwarnings("ignore:.*scipy.sparse.csr")
def test_each_accepted_checksum_has_its_own_cache_folder(data_root, cora_copy, cache,
                                                         tmp_path, monkeypatch):
    """Two roots holding the two accepted versions of one raw file (the same matrix pickled
    twice) are cached in two folders, and each load returns its own file's graph."""
    rel = f"{CORA_RAW}/ind.cora.allx"                    # the rows of data.x but the test rows
    with open(cora_copy / rel, "rb") as f:
        x = pickle.load(f, encoding="latin1")
    other = tmp_path / "other"
    shutil.copytree(cora_copy, other)
    x = x.tolil()
    x[0, 0] = 7.0                                       # a visibly different variant
    (other / rel).write_bytes(pickle.dumps(x.tocsr(), protocol=2))
    accepted = [_root.sha256sum(cora_copy / rel), _root.sha256sum(other / rel)]
    monkeypatch.setitem(manifest()["datasets"]["Cora"]["files"][rel], "sha256", accepted)
    a = load_planetoid("Cora", cora_copy)
    b = load_planetoid("Cora", other)
    assert len(cache_folders(cache)) == 2
    assert float(a.x[0, 0]) == 0.0 and float(b.x[0, 0]) == 7.0
    assert torch.equal(a.x[1:], b.x[1:]) and torch.equal(a.edge_index, b.edge_index)
    assert float(load_planetoid("Cora", cora_copy).x[0, 0]) == 0.0   # cached, still its own


def test_pubmed_allx_variants_key_different_folders():
    entry = manifest()["datasets"]["PubMed"]["files"]
    rel = "planetoid/PubMed/raw/ind.pubmed.allx"
    assert len(entry[rel]["sha256"]) == 2
    others = {r: RawFile(Path(r), b"", e["sha256"][0]) for r, e in entry.items()
              if r.startswith("planetoid/PubMed/raw/") and r != rel}
    folders = {_pyg.cache_folder(["planetoid", "PubMed", "public"],
                                 {**others, rel: RawFile(Path(rel), b"", digest)})
               for digest in entry[rel]["sha256"]}
    assert len(folders) == 2


def test_a_racing_load_keeps_the_folder_installed_first(data_root, cache, texas_ref,
                                                        monkeypatch):
    """Load B builds while load A completes: B finds A's valid folder in place and keeps it
    (no warning, no half-replaced folder, no working folder left)."""
    real_encode = _pyg._encode
    inner = []

    def encode_after_a_racing_load(data):
        if not inner:
            inner.append(1)
            load_webkb("Texas", data_root)               # load A, start to finish
            (folder,) = cache_folders(cache)
            inner.append((folder / "data.pt").stat().st_ino)
        return real_encode(data)

    monkeypatch.setattr(_pyg, "_encode", encode_after_a_racing_load)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCacheWarning)
        data = load_webkb("Texas", data_root)             # load B
    assert same_graph(data, texas_ref)
    (folder,) = cache_folders(cache)
    assert (folder / "data.pt").stat().st_ino == inner[1]  # A's file, not replaced
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
