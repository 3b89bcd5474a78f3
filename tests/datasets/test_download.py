import functools
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from affgraph.datasets import DataFileError, load_featsel, load_webkb
from affgraph.datasets.download import fetch


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP mirror (same layout as a data root) serving tmp_path/mirror."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_from_mirror_then_load(mirror, data_root, tmp_path):
    folder, url = mirror
    shutil.copytree(data_root / "webkb" / "texas", folder / "webkb" / "texas")
    root = tmp_path / "root"
    paths = fetch("Texas", root, base_url=url, timeout=5)
    assert len(paths) == 12 and all(p.is_file() for p in paths)
    assert load_webkb("Texas", root).num_nodes == 183
    # intact files are kept, not downloaded again (the mirror is gone now)
    shutil.rmtree(folder / "webkb")
    assert fetch("Texas", root, base_url=url, timeout=5) == paths


def test_fetch_rejects_a_bad_download_and_writes_nothing(mirror, data_root, tmp_path):
    folder, url = mirror
    (folder / "featsel").mkdir()
    data = bytearray((data_root / "featsel" / "colon.mat").read_bytes())
    data[200] ^= 1
    (folder / "featsel" / "colon.mat").write_bytes(bytes(data))
    root = tmp_path / "root"
    with pytest.raises(DataFileError, match="sha256 .* not the manifest's.*nothing was written"):
        fetch("colon", root, base_url=url, timeout=5)
    assert not (root / "featsel").exists() or not any((root / "featsel").iterdir())
    with pytest.raises(DataFileError, match="missing data file"):
        load_featsel("colon", root)


def test_fetch_offline_fails_fast(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(DataFileError, match="cannot download http://127.0.0.1:9/featsel/colon.mat"
                                            ".*offline.*featsel/colon.mat"):
        fetch("colon", tmp_path, base_url="http://127.0.0.1:9", timeout=2)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ValueError, match="unknown dataset"):
        fetch("mnist", tmp_path)
