"""Explicit download of a dataset's raw files from their official source (never implicit)."""
from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from affgraph.datasets._root import DataFileError, lookup, resolve_root


def fetch(name: str, root: str | os.PathLike | None = None, *, base_url: str | None = None,
          timeout: float = 10.0, include_optional: bool = False) -> list[Path]:
    """Download the raw files of dataset ``name`` into the data root and verify them.

    Each file comes from the URL in the manifest (the official sources that PyG,
    scikit-feature and Platonov et al. use, pinned to a commit), or from ``base_url`` + its
    root-relative path (a mirror with the same layout). It is written to ``<path>.part``,
    checked against the manifest's sha256 and only then renamed into place; files already
    present and intact are kept. Offline, the first connection fails after at most
    ``timeout`` seconds.

    Args:
        name (str): a dataset name (see :func:`list_datasets`); embedded and synthetic sets
            need nothing (an empty list is returned).
        root (str or PathLike, optional): the data root to fill: else ``$AFFGRAPH_DATA``, else
            the per-user default (:func:`affgraph.datasets._root.default_root`, e.g.
            ``~/.local/share/affgraph`` on Linux).
        base_url (str, optional): a mirror to use instead of the official URLs.
        timeout (float, optional): seconds per connection. (default: :obj:`10.0`)
        include_optional (bool, optional): also fetch optional extras. (default: :obj:`False`)

    Returns:
        The paths of the dataset's files under the root.

    Raises:
        DataFileError: a download failed (with the URL and the reason) or a checksum differs.
    """
    canonical, entry = lookup(name)
    base = resolve_root(root)
    paths = []
    for rel, info in entry["files"].items():
        if info.get("optional") and not include_optional:
            continue
        url = f"{base_url.rstrip('/')}/{rel}" if base_url else info.get("url")
        if not url:
            continue
        dest = base / rel
        if dest.is_file() and _sha256(dest.read_bytes()) in info["sha256"]:
            paths.append(dest)
            continue
        try:
            _resolve(url, timeout)
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                data = resp.read()
        except (urllib.error.URLError, socket.timeout, OSError) as err:
            reason = getattr(err, "reason", err)
            raise DataFileError(
                f"cannot download {url} for {canonical} ({reason}). Are you offline? Copy the "
                f"file to {dest} by hand, or pass a mirror as base_url=...") from err
        digest = _sha256(data)
        if digest not in info["sha256"]:
            raise DataFileError(f"downloaded {url} has sha256 {digest}, not the manifest's "
                                f"{' or '.join(info['sha256'])}; nothing was written")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        part.write_bytes(data)
        os.replace(part, dest)
        paths.append(dest)
    return paths


def _resolve(url: str, timeout: float) -> None:
    """Resolve the URL's host within ``timeout`` seconds (name lookups ignore socket timeouts,
    and an offline resolver can stall for much longer)."""
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        raise urllib.error.URLError(f"no host in {url!r}")
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(socket.getaddrinfo, host, None).result(timeout=timeout)
    except FutureTimeout:
        raise urllib.error.URLError(f"no answer resolving {host} within {timeout:g} s") from None
    except OSError as err:
        raise urllib.error.URLError(err) from err
    finally:
        pool.shutdown(wait=False)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
