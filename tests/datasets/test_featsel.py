import numpy as np
import pytest
import scipy.io

from affgraph.datasets import DataFileError, list_datasets, load_featsel
from affgraph.datasets._root import manifest


@pytest.mark.parametrize("name", list_datasets("featsel"))
def test_all_sets_load(name, data_root):
    X, y = load_featsel(name, data_root)
    shape = manifest()["datasets"][name]["shape"]
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.shape == (shape["samples"], shape["features"])
    assert np.array_equal(np.unique(y), np.arange(shape["classes"]))
    assert np.isfinite(X).all()


@pytest.mark.parametrize("name", ["colon", "ALLAML", "lymphoma"])
def test_values_and_label_order_match_raw(name, data_root):
    raw = scipy.io.loadmat(data_root / "featsel" / f"{name}.mat")
    X, y = load_featsel(name, data_root)
    assert np.array_equal(X, raw["X"].astype(np.float64))  # integer X cast exactly
    labels = sorted(set(raw["Y"].ravel().tolist()))        # {-1, 1}, {1, 2} or 1..K
    assert [labels[k] for k in y] == raw["Y"].ravel().tolist()


def test_tampered_mat(data_root, tmp_path):
    (tmp_path / "featsel").mkdir()
    data = bytearray((data_root / "featsel" / "lung_small.mat").read_bytes())
    data[-1] ^= 0x55
    (tmp_path / "featsel" / "lung_small.mat").write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="checksum mismatch"):
        load_featsel("lung_small", tmp_path)
    with pytest.raises(ValueError, match="unknown featsel dataset 'lung'.*lung_small"):
        load_featsel("lung", tmp_path)
