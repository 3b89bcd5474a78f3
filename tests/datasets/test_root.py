import hashlib
import os
from pathlib import Path

import pytest

from affgraph.datasets import DataFileError, list_datasets, resolve_root
from affgraph.datasets._root import default_root, lookup, manifest, sha256sum, verify


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
    listed = {rel: e["sha256"] for d in manifest()["datasets"].values() for rel, e in d["files"].items()}
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
    with pytest.raises(ValueError, match="unknown webkb dataset 'Cora'; known: Cornell, Texas, Wisconsin"):
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
