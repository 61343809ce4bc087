"""Saving models and indexes as checksummed files in one directory; never pickle.

A saved object (a *bundle*) is a directory holding

- ``arrays.npz``: the small arrays;
- optional ``<name>.npy`` files: big arrays that readers may memory-map;
- optional ``<name>.json`` files: side data such as ``item_data.json``;
- ``manifest.json``: the format version, the object's kind and name, its
  hyperparameters and the SHA-256 of every file above;
- ``manifest.sha256``: the SHA-256 of the manifest's bytes.

Writing goes to a temporary sibling directory which is renamed into place, so a failed
save leaves nothing half-written. Reading treats the directory as untrusted input: file
names are confined to the bundle (plain names, no links, no subfolders), every file is
hashed before anything is handed out (memory-mapped ``.npy`` files included, hashed
once at load) and every failure is one :class:`~recseek.errors.ModelFileError`
sentence naming the file.

Format versions: version 2 (written now) adds ``manifest.sha256``; version 1 bundles,
written before the manifest had a checksum, are still read, with every data file
verified against their manifest as before.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelFileError, ParameterError, RecseekError

if TYPE_CHECKING:
    import pandas as pd

    from .models.base import Recommender

FORMAT_VERSION = 2
#: Versions this recseek reads (1: no manifest checksum yet).
READABLE_VERSIONS = (1, 2)
ARRAYS = "arrays.npz"
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
ITEM_DATA = "item_data.json"
_RESERVED = {ARRAYS, MANIFEST, MANIFEST_DIGEST}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


# ---------------------------------------------------------------- small helpers
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


def _check_file_name(name: Any, where: str) -> str:
    """``name`` if it is a plain file name inside a bundle, else :class:`ModelFileError`."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ModelFileError(
            f"{where}: file name {name!r} is not a plain file name inside the bundle"
            " (no folders, no '..', no absolute paths)"
        )
    return name


def _mkdir_honouring_umask(parent: Path, prefix: str) -> Path:
    """A new, uniquely named directory in ``parent`` created with the user's umask."""
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            candidate.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return candidate
    raise ModelFileError(f"cannot create a temporary directory in {parent}")  # pragma: no cover


def _make_parents(parent: Path) -> list[Path]:
    """Create ``parent`` and its missing ancestors; returns those created (deepest last)."""
    missing = []
    p = parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise ModelFileError(f"cannot save under {parent}: {p} is not a directory")
    created = []
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o777)
        except FileExistsError:
            if not d.is_dir():
                raise ModelFileError(f"cannot save under {parent}: {d} is not a directory") from None
            continue
        created.append(d)
    return created


def _remove_empty(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            break


def _json_bytes(obj: Any, where: str) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ParameterError(f"{where} cannot be written as JSON ({e})") from None


# ---------------------------------------------------------------- writing
def write_bundle(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    manifest: dict[str, Any],
    extra_files: dict[str, np.ndarray] | None = None,
    json_files: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a bundle into directory ``path``.

    Parameters
    ----------
    path : path
        The bundle directory; replaced atomically if it exists. Missing parent
        directories are created (with the user's umask, like the bundle itself).
    arrays : dict of str to array
        Written together into ``arrays.npz``.
    manifest : dict
        JSON-able description stored in ``manifest.json`` (``format_version`` and
        ``files`` are added).
    extra_files : dict of str to array, optional
        Each written as its own ``<name>.npy`` (readers may memory-map them).
    json_files : dict of str to JSON-able, optional
        Each written as ``<name>`` (which must end in ``.json``), checksummed like the
        arrays.
    """
    path = Path(path)
    extra_files = extra_files or {}
    json_files = json_files or {}
    for k, a in {**arrays, **extra_files}.items():
        if isinstance(a, np.ndarray) and a.dtype == object:
            raise ModelFileError(f"cannot save array {k!r} of object dtype (pickle is never used)")
    names = [f"{n}.npy" for n in extra_files] + list(json_files)
    for fname in names:
        _check_file_name(fname, f"cannot save to {path}")
        if fname in _RESERVED:
            raise ModelFileError(f"cannot save to {path}: file name {fname!r} is reserved")
    for fname in json_files:
        if not fname.endswith(".json"):
            raise ModelFileError(f"cannot save to {path}: side file {fname!r} must end in .json")
    payloads = {fname: _json_bytes(obj, fname) for fname, obj in json_files.items()}
    parent = path.parent if str(path.parent) else Path(".")
    created = _make_parents(parent)
    try:
        tmp = _mkdir_honouring_umask(parent, f".{path.name}.")
    except BaseException:
        _remove_empty(created)
        raise
    try:
        np.savez(tmp / ARRAYS, **arrays)
        files = {ARRAYS: _sha256(tmp / ARRAYS)}
        for name, arr in extra_files.items():
            fname = f"{name}.npy"
            np.save(tmp / fname, arr, allow_pickle=False)
            files[fname] = _sha256(tmp / fname)
        for fname, payload in payloads.items():
            (tmp / fname).write_bytes(payload)
            files[fname] = hashlib.sha256(payload).hexdigest()
        full = {**_jsonable(manifest), "format_version": FORMAT_VERSION, "files": files}
        text = json.dumps(full, indent=2, sort_keys=True).encode("utf-8")
        (tmp / MANIFEST).write_bytes(text)
        (tmp / MANIFEST_DIGEST).write_text(hashlib.sha256(text).hexdigest() + "\n")
        if path.exists():
            backup = _mkdir_honouring_umask(parent, f".{path.name}.old.")
            os.replace(path, backup / "x")
            os.replace(tmp, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise
    return path


# ---------------------------------------------------------------- reading
def _plain_file(path: Path, fname: str) -> Path:
    """``path / fname`` after checking it is a regular file (not a link) inside ``path``."""
    fpath = path / _check_file_name(fname, str(path / MANIFEST))
    try:
        st = fpath.lstat()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing file {fname} (listed in its manifest)") from None
    if os.path.islink(fpath):
        raise ModelFileError(f"{fpath} is a symbolic link; a bundle holds plain files only")
    if not (st.st_mode & 0o170000) == 0o100000:
        raise ModelFileError(f"{fpath} is not a regular file")
    return fpath


def _read_manifest_bytes(path: Path) -> bytes:
    mpath = path / MANIFEST
    if not path.exists():
        raise ModelFileError(f"{path} does not exist")
    if not path.is_dir():
        raise ModelFileError(f"{path} is not a directory (a saved recseek object is a folder)")
    if not mpath.exists() and not mpath.is_symlink():
        raise ModelFileError(f"{path} is not a saved recseek object (no {MANIFEST})")
    _plain_file(path, MANIFEST)
    try:
        return mpath.read_bytes()
    except OSError as e:
        raise ModelFileError(f"{mpath} cannot be read ({e.strerror or e})") from None


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The verified manifest of the bundle in ``path``.

    Raises :class:`ModelFileError` when the folder or manifest is missing, the
    manifest does not match ``manifest.sha256`` (required from format version 2), is
    not a JSON object, or its format version or file list is invalid.
    """
    path = Path(path)
    raw = _read_manifest_bytes(path)
    mpath = path / MANIFEST
    dpath = path / MANIFEST_DIGEST
    has_digest = dpath.exists() or dpath.is_symlink()
    if has_digest:
        try:
            expected = _plain_file(path, MANIFEST_DIGEST).read_text(encoding="ascii").strip()
        except (UnicodeDecodeError, OSError):
            raise ModelFileError(f"{dpath} is not a SHA-256 hex digest") from None
        if hashlib.sha256(raw).hexdigest() != expected:
            raise ModelFileError(f"{mpath}: checksum mismatch with {MANIFEST_DIGEST} (file corrupt or modified)")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{mpath} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{mpath} does not hold a JSON object")
    version = manifest.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{mpath}: unsupported format_version {version!r} (this recseek reads {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if version >= 2 and not has_digest:
        raise ModelFileError(f"{path}: missing file {MANIFEST_DIGEST} (required from format version 2)")
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise ModelFileError(f"{mpath}: 'files' must map file names to SHA-256 digests")
    for fname, digest in files.items():
        _check_file_name(fname, str(mpath))
        if fname in _RESERVED - {ARRAYS}:
            raise ModelFileError(f"{mpath}: file name {fname!r} is reserved")
        if not (fname == ARRAYS or fname.endswith((".npy", ".json"))):
            raise ModelFileError(f"{mpath}: unknown kind of file {fname!r} (expected arrays.npz, .npy or .json)")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ModelFileError(f"{mpath}: the checksum of {fname} is not a SHA-256 hex digest")
    return manifest


def _verified_file(path: Path, fname: str, digest: str) -> Path:
    fpath = _plain_file(path, fname)
    try:
        actual = _sha256(fpath)
    except OSError as e:
        raise ModelFileError(f"{fpath} cannot be read ({e.strerror or e})") from None
    if actual != digest:
        raise ModelFileError(f"{fpath}: checksum mismatch (file corrupt or modified)")
    return fpath


def _check_loaded(fpath: Path, key: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.fields is not None or arr.dtype.kind == "V":
        raise ModelFileError(f"{fpath}: array {key!r} has a structured dtype, which recseek never writes")
    if not arr.dtype.isnative:
        raise ModelFileError(f"{fpath}: array {key!r} is not in this machine's byte order")
    return arr


def _load_arrays(fpath: Path, fname: str, mmap: bool) -> dict[str, np.ndarray]:
    try:
        if fname == ARRAYS:
            with np.load(fpath, allow_pickle=False) as z:
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise ModelFileError(f"{fpath} is not an npz archive")
                return {k: _check_loaded(fpath, k, z[k]) for k in z.files}
        arr = np.load(fpath, allow_pickle=False, mmap_mode="r" if mmap else None)
        if not isinstance(arr, np.ndarray):
            raise ModelFileError(f"{fpath} is not a .npy array file")
        return {fname[:-4]: _check_loaded(fpath, fname[:-4], arr)}
    except RecseekError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        if isinstance(e, OSError) and e.errno == errno.ENOMEM:  # pragma: no cover
            raise
        raise ModelFileError(f"{fpath}: cannot be read without pickle ({e})") from None


def read_bundle(path: str | Path, mmap: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a bundle: its manifest and every array, each file verified first.

    Every listed file is hashed before it is read (``.npy`` files memory-mapped when
    ``mmap`` are hashed once here too). ``.json`` side files are verified but not
    returned; read them with :func:`read_json_file`.
    """
    path = Path(path)
    manifest = read_manifest(path)
    arrays: dict[str, np.ndarray] = {}
    for fname, digest in manifest.get("files", {}).items():
        fpath = _verified_file(path, fname, digest)
        if fname.endswith(".json"):
            continue
        for key, arr in _load_arrays(fpath, fname, mmap).items():
            if key in arrays:
                raise ModelFileError(f"{path}: array {key!r} is stored twice")
            arrays[key] = arr
    return manifest, arrays


def read_json_file(path: str | Path, fname: str) -> Any:
    """A ``.json`` side file of the bundle, verified against the manifest; None if absent."""
    path = Path(path)
    manifest = read_manifest(path)
    digest = manifest.get("files", {}).get(fname)
    if digest is None:
        return None
    fpath = _verified_file(path, fname, digest)
    try:
        return json.loads(fpath.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{fpath} is not valid JSON: {e}") from None


# ---------------------------------------------------------------- item side data
def _item_value(v: Any, column: str, item: Any) -> Any:
    """One item-data cell as JSON: None, str, int, finite float or list of str."""
    import pandas as pd

    if v is None or (np.ndim(v) == 0 and pd.isna(v)):  # None, NaN, pandas NA and NaT
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    if isinstance(v, float):
        if math.isinf(v):
            raise ParameterError(f"item_data column {column!r}, item {item!r}: infinite values cannot be saved")
        return v
    if isinstance(v, list | tuple | np.ndarray) and all(isinstance(x, str) for x in v):
        return [str(x) for x in v]
    raise ParameterError(
        f"item_data column {column!r}, item {item!r}: a value of type {type(v).__name__}"
        " is not a str, int, float, None or a list of str"
    )


def item_data_payload(item_data: pd.DataFrame, items: Any) -> dict[str, Any]:
    """The JSON form of ``item_data`` restricted to the model's ``items`` (a Vocabulary).

    Rows whose index (the raw item id) is not one of the model's items are left out;
    rows are stored in the model's item order.
    """
    import pandas as pd

    if not isinstance(item_data, pd.DataFrame):
        raise ParameterError(f"item_data must be a pandas DataFrame indexed by raw item id, got {type(item_data).__name__}")
    if item_data.index.has_duplicates:
        dup = item_data.index[item_data.index.duplicated()][0]
        raise ParameterError(f"item_data has item {dup!r} more than once in its index")
    columns = [str(c) for c in item_data.columns]
    if len(set(columns)) != len(columns):
        raise ParameterError("item_data has two columns with the same name")
    pos = items.indices(list(item_data.index), missing="negative")
    keep = np.flatnonzero(pos >= 0)
    keep = keep[np.argsort(pos[keep], kind="stable")]
    raw_ids = [_jsonable(items.id(int(pos[r]))) for r in keep]
    data = {}
    for c, col in zip(columns, item_data.columns, strict=True):
        values = item_data[col].to_numpy(dtype=object)
        data[c] = [_item_value(values[r], c, raw) for r, raw in zip(keep, raw_ids, strict=True)]
    name = item_data.index.name
    return {"index_name": None if name is None else str(name), "index": raw_ids, "columns": columns, "data": data}


def _check_item_payload(obj: Any, where: str) -> None:
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{where}: {what}")

    if not isinstance(obj, dict) or set(obj) != {"index_name", "index", "columns", "data"}:
        raise bad("expected an object with keys index_name, index, columns and data")
    if obj["index_name"] is not None and not isinstance(obj["index_name"], str):
        raise bad("index_name must be a string or null")
    index, columns, data = obj["index"], obj["columns"], obj["data"]
    if not isinstance(index, list) or not all(isinstance(x, str | int) and not isinstance(x, bool) for x in index):
        raise bad("index must be a list of item ids (strings or integers)")
    if len({(type(x), x) for x in index}) != len(index):
        raise bad("index lists an item more than once")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise bad("columns must be a list of distinct strings")
    if not isinstance(data, dict) or set(data) != set(columns):
        raise bad("data must have exactly one list per column")
    for c in columns:
        col = data[c]
        if not isinstance(col, list) or len(col) != len(index):
            raise bad(f"column {c!r} must list one value per item ({len(index)})")
        for v in col:
            ok = v is None or isinstance(v, str | float) or (isinstance(v, int) and not isinstance(v, bool))
            ok = ok or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            if not ok:
                raise bad(f"column {c!r} holds a value of type {type(v).__name__}")


def read_item_data(path: str | Path) -> pd.DataFrame | None:
    """The item side data saved with a model, or None when the bundle has none.

    Returns a DataFrame indexed by raw item id, in the model's item order. The file is
    verified against the manifest; a malformed one raises :class:`ModelFileError`.
    """
    import pandas as pd

    path = Path(path)
    obj = read_json_file(path, ITEM_DATA)
    if obj is None:
        return None
    _check_item_payload(obj, str(path / ITEM_DATA))
    index = pd.Index(obj["index"], name=obj["index_name"], dtype="int64" if all(
        isinstance(x, int) for x in obj["index"]) and obj["index"] else object)
    return pd.DataFrame({c: pd.Series(obj["data"][c], index=index, dtype=object) for c in obj["columns"]},
                        index=index, columns=obj["columns"])


# ---------------------------------------------------------------- models
def save_model(
    model: Recommender, path: str | Path, *, include_history: bool = True, item_data: pd.DataFrame | None = None
) -> Path:
    """Save ``model`` to the bundle ``path`` (see :meth:`Recommender.save`)."""
    from . import __version__

    if not isinstance(include_history, bool):
        raise ParameterError(f"include_history must be True or False, got {include_history!r}")
    arrays = model.get_parameters(include_history=include_history)
    json_files = {}
    manifest: dict[str, Any] = {
        "kind": "model",
        "model": model.display_name,
        "task": model.task,
        "params": model.get_params(),
        "recseek_version": __version__,
        "history": include_history,
    }
    if item_data is not None:
        payload = item_data_payload(item_data, model.items_)
        json_files[ITEM_DATA] = payload
        manifest["item_data"] = {"items": len(payload["index"]), "columns": payload["columns"]}
    return write_bundle(path, arrays, manifest, json_files=json_files)


def load_model(path: str | Path) -> Recommender:
    """Load a model bundle; every file verified and the state checked before use."""
    from .models import registry

    path = Path(path)
    manifest, arrays = read_bundle(path)
    if manifest.get("kind") != "model":
        raise ModelFileError(f"{path} holds a {manifest.get('kind')!r}, not a model")
    name = manifest.get("model")
    try:
        cls = registry.get(name) if isinstance(name, str) else None
    except RecseekError:
        cls = None
    if cls is None:
        raise ModelFileError(f"{path / MANIFEST}: unknown model {name!r}")
    params = manifest.get("params", {})
    if not isinstance(params, dict):
        raise ModelFileError(f"{path / MANIFEST}: 'params' must be a JSON object")
    history = manifest.get("history", True)
    if not isinstance(history, bool):
        raise ModelFileError(f"{path / MANIFEST}: 'history' must be true or false")
    try:
        model = cls(**params)
        model.check_params()
    except (RecseekError, TypeError) as e:
        raise ModelFileError(f"{path / MANIFEST}: invalid hyperparameters for {cls.name} ({e})") from None
    try:
        model.set_parameters(arrays, history=history)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    return model
