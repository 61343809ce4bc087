"""Saving models and indexes as ``arrays.npz`` + ``manifest.json``; never pickle.

A saved object is a directory holding the arrays and a JSON manifest with the format
version, the object's kind and name, its hyperparameters and the SHA-256 of the array
file. Writing goes to a temporary sibling directory which is renamed into place, so a
failed save leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelFileError

if TYPE_CHECKING:
    from .models.base import Recommender

FORMAT_VERSION = 1
ARRAYS = "arrays.npz"
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def write_bundle(path: str | Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any],
                 extra_files: dict[str, np.ndarray] | None = None) -> Path:
    """Atomically write ``arrays`` (npz) and ``manifest`` (JSON) into directory ``path``.

    ``extra_files`` are written as separate ``.npy`` files (for memory mapping).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ModelFileError(f"cannot save to {path}: directory {parent} does not exist")
    for k, a in {**arrays, **(extra_files or {})}.items():
        if isinstance(a, np.ndarray) and a.dtype == object:
            raise ModelFileError(f"cannot save array {k!r} of object dtype (pickle is never used)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    try:
        np.savez(tmp / ARRAYS, **arrays)
        files = {ARRAYS: _sha256(tmp / ARRAYS)}
        for name, arr in (extra_files or {}).items():
            fname = f"{name}.npy"
            np.save(tmp / fname, arr, allow_pickle=False)
            files[fname] = _sha256(tmp / fname)
        full = {"format_version": FORMAT_VERSION, **_jsonable(manifest), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=parent))
            os.replace(path, backup / "x")
            os.replace(tmp, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    mpath = path / MANIFEST
    if not path.exists():
        raise ModelFileError(f"{path} does not exist")
    if not mpath.exists():
        raise ModelFileError(f"{path} is not a saved recseek object (no {MANIFEST})")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{mpath} is not valid JSON: {e}") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{mpath}: unsupported format_version {version!r} (this recseek reads {FORMAT_VERSION})")
    return manifest


def read_bundle(path: str | Path, mmap: bool = False, verify: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a bundle; checksums verified; ``.npy`` extras memory-mapped when ``mmap``."""
    path = Path(path)
    manifest = read_manifest(path)
    files = manifest.get("files", {})
    arrays: dict[str, np.ndarray] = {}
    for fname, digest in files.items():
        fpath = path / fname
        if not fpath.exists():
            raise ModelFileError(f"{path}: missing file {fname}")
        if verify and not (mmap and fname.endswith(".npy")) and _sha256(fpath) != digest:
            raise ModelFileError(f"{fpath}: checksum mismatch (file corrupt or modified)")
        try:
            if fname == ARRAYS:
                with np.load(fpath, allow_pickle=False) as z:
                    arrays.update({k: z[k] for k in z.files})
            else:
                arrays[fname[:-4]] = np.load(fpath, allow_pickle=False, mmap_mode="r" if mmap else None)
        except ValueError as e:
            raise ModelFileError(f"{fpath}: cannot be read without pickle ({e})") from None
    return manifest, arrays


def save_model(model: Recommender, path: str | Path) -> Path:
    from . import __version__

    manifest = {
        "kind": "model",
        "model": model.display_name,
        "task": model.task,
        "params": model.get_params(),
        "recseek_version": __version__,
    }
    return write_bundle(path, model.get_parameters(), manifest)


def load_model(path: str | Path) -> Recommender:
    from .models import registry

    manifest, arrays = read_bundle(path)
    if manifest.get("kind") != "model":
        raise ModelFileError(f"{path} holds a {manifest.get('kind')!r}, not a model")
    cls = registry.get(manifest["model"])
    model = cls(**manifest.get("params", {}))
    model.set_parameters(arrays)
    return model
