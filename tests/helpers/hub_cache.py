"""A Hugging Face hub cache in a temporary folder, read offline, filled as huggingface_hub lays it
out: the model-by-id tests (tests/test_hub.py) and the backbone-by-id tests (tests/test_pretrained.py)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def offline_hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty cache at tmp_path/hf-cache with HF_HUB_OFFLINE=1 (huggingface_hub reads both at
    import: its constants are patched too)."""
    import huggingface_hub as hf

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf.constants, "HF_HUB_OFFLINE", True)
    return cache


def fill_hub_cache(cache: Path, repo_id: str, files: Mapping[str, bytes], commit: str = COMMIT,
                   ref: str = "main") -> Path:
    """Lay ``files`` ({name: bytes}) out as huggingface_hub does: blobs/<sha256>, then
    snapshots/<commit>/<name> as relative symlinks to the blobs, refs/<ref> holding the commit.
    Returns the snapshot folder."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, data in sorted(files.items()):
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    return snap
