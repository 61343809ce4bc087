"""Saved files as untrusted input: verified bytes, confined names, declared state only.

Every corruption of a saved model must end in one :class:`ModelFileError` sentence from
the API and one ``error:`` line with exit status 2 from ``recseek recommend``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recseek.errors import ModelFileError, ParameterError, UnsupportedError
from recseek.models import available, create
from recseek.models.base import Recommender
from recseek.persistence import (
    ARRAYS,
    ITEM_DATA,
    MANIFEST,
    MANIFEST_DIGEST,
    read_bundle,
    read_item_data,
    read_manifest,
    write_bundle,
)
from recseek.testing.fixtures import synthetic

ALL_MODELS = sorted(available(), key=lambda c: c.name)


# ---------------------------------------------------------------- helpers
def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _rewrite_manifest(path: Path, edit: Callable[[dict], None] | None = None) -> None:
    """Apply ``edit`` to the manifest and make every checksum consistent again (a crafted file)."""
    manifest = json.loads((path / MANIFEST).read_text())
    for fname in manifest["files"]:
        if (path / fname).is_file():
            manifest["files"][fname] = _sha(path / fname)
    if edit is not None:
        edit(manifest)
    text = json.dumps(manifest, indent=2).encode()
    (path / MANIFEST).write_bytes(text)
    (path / MANIFEST_DIGEST).write_text(hashlib.sha256(text).hexdigest() + "\n")


def _rewrite_arrays(path: Path, edit: Callable[[dict], None]) -> None:
    """Apply ``edit`` to the arrays of ``arrays.npz`` and re-checksum (a crafted file)."""
    with np.load(path / ARRAYS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    np.savez(path / ARRAYS, **arrays)
    _rewrite_manifest(path)


def _flip(f: Path, offset: int | None = None) -> None:
    data = bytearray(f.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i : i + 16] = bytes(b ^ 0xFF for b in data[i : i + 16])
    f.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def knn(data):
    """A model with vocabularies, CSR matrices (read by a numba kernel) and history."""
    return create("ItemKNNRanking", neighbors=10).fit(data)


# ---------------------------------------------------------------- declared state
@pytest.mark.parametrize("cls", ALL_MODELS, ids=lambda c: c.name)
def test_every_model_declares_exactly_its_state(cls, data, tmp_path):
    """get_parameters() of a fitted model is exactly its declaration, and it round-trips."""
    if cls.requires:
        data = synthetic(side=True)
    model = cls(**cls.test_params).fit(data)
    params = model.get_parameters()
    model.check_state(params)  # raises on any undeclared, missing or mis-shaped array
    schema = cls.state_schema()
    stored = {k.partition(".")[0] for k in params}
    required = {n for n, s in schema.items() if not s.optional}
    assert required <= stored, f"declared but never stored: {sorted(required - stored)}"
    loaded = Recommender.load(model.save(tmp_path / "m"))
    users = np.arange(min(8, model.n_users_))
    assert np.array_equal(loaded.recommend(users, 5).ids, model.recommend(users, 5).ids)


def test_a_model_that_forgets_a_declaration_cannot_be_saved_or_loaded(data, tmp_path, monkeypatch):
    model = create("MostPopular").fit(data)
    path = model.save(tmp_path / "m")
    monkeypatch.setattr(type(model), "state", {})
    with pytest.raises(ModelFileError, match="undeclared array 'popularity_'"):
        model.check_state(model.get_parameters())
    with pytest.raises(ModelFileError, match="undeclared array 'popularity_'"):
        Recommender.load(path)


def test_shape_symbols_bind_to_hyperparameters(data):
    model = create("BPR", factors=8, epochs=2).fit(data)
    params = model.get_parameters()
    model.factors = 16
    with pytest.raises(ModelFileError, match="user_factors_ dimension 1 has size 8, but factors is 16"):
        model.check_state(params)


def test_csr_index_arrays_are_bounds_checked(knn):
    params = dict(knn.get_parameters())
    indices = params["similarity_.indices"].copy()
    indices[0] = knn.n_items_ + 5
    with pytest.raises(ModelFileError, match=r"similarity_.indices holds an index outside 0..39"):
        knn.check_state({**params, "similarity_.indices": indices})
    indptr = params["similarity_.indptr"].copy()
    indptr[3] = indptr[-1] + 7
    with pytest.raises(ModelFileError, match="similarity_.indptr is not a valid row pointer"):
        knn.check_state({**params, "similarity_.indptr": indptr})
    row = slice(params["similarity_.indptr"][0], params["similarity_.indptr"][1])
    unsorted = params["similarity_.indices"].copy()
    unsorted[row] = unsorted[row][::-1]
    with pytest.raises(ModelFileError, match="not sorted and distinct"):
        knn.check_state({**params, "similarity_.indices": unsorted})


# ---------------------------------------------------------------- corruption table
def _swap_arrays(path: Path, other: Path) -> None:
    a, b = path / ARRAYS, other / ARRAYS
    tmp = a.with_suffix(".tmp")
    os.replace(a, tmp)
    os.replace(b, a)
    os.replace(tmp, b)


def _outside_npy(path: Path) -> None:
    np.save(path.parent / "outside.npy", np.arange(3))
    _rewrite_manifest(path, lambda m: m["files"].update({"../outside.npy": _sha(path.parent / "outside.npy")}))


def _symlink_out(path: Path) -> None:
    copy = path.parent / "elsewhere.npz"
    shutil.copy(path / ARRAYS, copy)
    (path / ARRAYS).unlink()
    (path / ARRAYS).symlink_to(copy)


def _subdir(path: Path) -> None:
    (path / "sub").mkdir()
    os.replace(path / ARRAYS, path / "sub" / ARRAYS)

    def edit(m: dict) -> None:
        m["files"]["sub/arrays.npz"] = m["files"].pop(ARRAYS)

    _rewrite_manifest(path, edit)


def _extra_npy(path: Path) -> None:
    np.save(path / "n_items_.npy", np.asarray(10**9))
    _rewrite_manifest(path, lambda m: m["files"].update({"n_items_.npy": _sha(path / "n_items_.npy")}))


def _set(key: str, value: object) -> Callable[[Path], None]:
    return lambda p: _rewrite_arrays(p, lambda a: a.__setitem__(key, value))


def _drop(key: str) -> Callable[[Path], None]:
    return lambda p: _rewrite_arrays(p, lambda a: a.pop(key))


def _manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda p: _rewrite_manifest(p, edit)


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "flip arrays.npz": (lambda p: _flip(p / ARRAYS), "checksum mismatch"),
    "flip arrays.npz header": (lambda p: _flip(p / ARRAYS, 0), "checksum mismatch"),
    "truncate arrays.npz": (lambda p: (p / ARRAYS).write_bytes((p / ARRAYS).read_bytes()[:100]), "checksum mismatch"),
    "empty arrays.npz": (lambda p: (p / ARRAYS).write_bytes(b""), "checksum mismatch"),
    "flip manifest": (lambda p: _flip(p / MANIFEST), "manifest.json: checksum mismatch"),
    "truncate manifest": (lambda p: (p / MANIFEST).write_bytes((p / MANIFEST).read_bytes()[:40]),
                          "manifest.json: checksum mismatch"),
    "manifest not JSON": (lambda p: ((p / MANIFEST).write_text("{"), _rewrite_digest(p)), "not valid JSON"),
    "manifest a list": (lambda p: ((p / MANIFEST).write_text("[]"), _rewrite_digest(p)), "does not hold a JSON object"),
    "no manifest digest": (lambda p: (p / MANIFEST_DIGEST).unlink(), "missing file manifest.sha256"),
    "no arrays file": (lambda p: (p / ARRAYS).unlink(), "missing file arrays.npz"),
    "swap arrays of two models": (None, "checksum mismatch"),  # filled in by the test
    "path traversal": (_outside_npy, "not a plain file name inside the bundle"),
    "absolute path": (_manifest(lambda m: m["files"].update({"/etc/passwd.npy": "0" * 64})),
                      "not a plain file name inside the bundle"),
    "subdirectory": (_subdir, "not a plain file name inside the bundle"),
    "symlink out": (_symlink_out, "is a symbolic link"),
    "unknown file kind": (_manifest(lambda m: m["files"].update({"model.pkl": "0" * 64})), "unknown kind of file"),
    "bad checksum field": (_manifest(lambda m: m["files"].update({ARRAYS: 5})), "not a SHA-256 hex digest"),
    "extra array n_items_": (_extra_npy, "array 'n_items_' is stored twice"),
    "undeclared array": (_set("evil_", np.arange(3)), "undeclared array 'evil_'"),
    "missing required array": (_drop("similarity_.data"), "lacks the declared array 'similarity_.data'"),
    "missing vocabulary": (_drop("items_.ids"), "lacks the declared array 'items_.ids'"),
    "wrong dtype": (_set("similarity_.data", np.zeros(1, dtype=np.float64)), "similarity_.data must be a one-dimensional float32"),
    "mis-shaped matrix": (_set("similarity_.shape", np.array([40, 41])), "similarity_ columns has size 41, but n_items is 40"),
    "n_items_ lies": (_set("n_items_", np.asarray(1000)), "has size"),
    "n_items_ not a scalar": (_set("n_items_", np.arange(3)), "n_items_ must be a single int"),
    "index out of range": (lambda p: _rewrite_arrays(p, _bad_index), "holds an index outside"),
    "NaN in scores": (lambda p: _rewrite_arrays(p, _nan_data), "NaN or infinite"),
    "duplicate user ids": (lambda p: _rewrite_arrays(p, _dup_ids), "lists an id more than once"),
    "object array": (_set("evil_", np.array([{"a": 1}], dtype=object)), "cannot be read without pickle"),
    "unknown model": (_manifest(lambda m: m.update(model="Nope")), "unknown model 'Nope'"),
    "not a model": (_manifest(lambda m: m.update(kind="search-index")), "not a model"),
    "unknown hyperparameter": (_manifest(lambda m: m["params"].update(bogus=1)), "invalid hyperparameters"),
    "bad hyperparameter": (_manifest(lambda m: m["params"].update(neighbors=-3)), "invalid hyperparameters"),
    "history flag lies": (_manifest(lambda m: m.update(history=False)), "training history"),
    "future format": (_manifest(lambda m: m.update(format_version=99)), "unsupported format_version 99"),
    "flip item_data.json": (lambda p: _flip(p / ITEM_DATA), "item_data.json: checksum mismatch"),
}


def _rewrite_digest(path: Path) -> None:
    (path / MANIFEST_DIGEST).write_text(_sha(path / MANIFEST) + "\n")


def _bad_index(a: dict) -> None:
    a["similarity_.indices"] = a["similarity_.indices"].copy()
    a["similarity_.indices"][-1] = 10**6


def _nan_data(a: dict) -> None:
    a["similarity_.data"] = a["similarity_.data"].copy()
    a["similarity_.data"][0] = np.nan


def _dup_ids(a: dict) -> None:
    a["users_.ids"] = a["users_.ids"].copy()
    a["users_.ids"][1] = a["users_.ids"][0]


@pytest.fixture()
def corrupted(knn, data, tmp_path, request):
    """A saved ItemKNNRanking (with item data) damaged by the named corruption."""
    name = request.param
    titles = pd.DataFrame({"title": [f"t{i}" for i in knn.items_.ids]}, index=knn.items_.ids)
    path = knn.save(tmp_path / "store" / "m", item_data=titles)
    corrupt, expected = CORRUPTIONS[name]
    if corrupt is None:
        other = create("ItemKNNRanking", neighbors=5).fit(data).save(tmp_path / "store" / "other", item_data=titles)
        _swap_arrays(path, other)
    else:
        corrupt(path)
    return path, expected


@pytest.mark.parametrize("corrupted", list(CORRUPTIONS), indirect=True)
def test_corrupt_model_gives_one_clear_error_from_the_api(corrupted):
    path, expected = corrupted
    with pytest.raises(ModelFileError, match=expected) as info:
        Recommender.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path.parent) in message


@pytest.mark.parametrize("corrupted", list(CORRUPTIONS), indirect=True)
def test_corrupt_model_gives_one_error_line_from_the_cli(corrupted):
    path, expected = corrupted
    proc = subprocess.run(
        [sys.executable, "-m", "recseek.cli", "recommend", str(path), "--user", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert expected.split("'")[0] in lines[0] and proc.stdout == ""


def test_intact_model_still_recommends_from_the_cli(knn, tmp_path):
    path = knn.save(tmp_path / "m")
    proc = subprocess.run([sys.executable, "-m", "recseek.cli", "recommend", str(path), "--user", "0", "-k", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = knn.items_.lookup(knn.recommend([knn.users_.index(0)], 3).ids[0])
    assert [int(line.split()[1]) for line in proc.stdout.splitlines()[2:]] == [int(x) for x in expected]


# ---------------------------------------------------------------- bundles in general
def test_mmap_npy_files_are_verified(tmp_path):
    path = write_bundle(tmp_path / "b", {"x": np.arange(5)}, {"kind": "test"},
                        extra_files={"big": np.arange(10_000, dtype=np.int64)})
    _, arrays = read_bundle(path, mmap=True)
    assert isinstance(arrays["big"], np.memmap) and int(arrays["big"][-1]) == 9999
    _flip(path / "big.npy")
    for mmap in (True, False):
        with pytest.raises(ModelFileError, match="big.npy: checksum mismatch"):
            read_bundle(path, mmap=mmap)


def test_corrupt_search_index_files_are_refused_under_mmap(tmp_path):
    from recseek.search import BM25

    index = BM25().index([{"id": "a", "text": "the mango is ripe"}, {"id": "b", "text": "a zebra runs"},
                          {"id": "c", "text": "mango and zebra"}])
    path = index.save(tmp_path / "idx")
    assert BM25.load(path, mmap=True).search("zebra", k=1).ids[0][0] == index.search("zebra", k=1).ids[0][0]
    npys = sorted(p.name for p in path.iterdir() if p.suffix == ".npy")
    assert npys
    for name in npys:
        broken = tmp_path / f"broken-{name}"
        shutil.copytree(path, broken)
        _flip(broken / name, offset=max(0, (broken / name).stat().st_size - 16))
        with pytest.raises(ModelFileError, match=f"{name}: checksum mismatch"):
            BM25.load(broken, mmap=True)
    swapped = tmp_path / "swapped"
    shutil.copytree(path, swapped)
    a, b = swapped / npys[0], swapped / npys[1]
    data_a = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data_a)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        BM25.load(swapped, mmap=True)


def test_format_1_bundles_are_still_read(knn, tmp_path):
    path = knn.save(tmp_path / "m")
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["format_version"] = 1
    (path / MANIFEST).write_text(json.dumps(manifest))
    (path / MANIFEST_DIGEST).unlink()
    loaded = Recommender.load(path)
    assert np.array_equal(loaded.recommend([0, 1], 5).ids, knn.recommend([0, 1], 5).ids)
    _flip(path / ARRAYS)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        Recommender.load(path)


def test_save_creates_parents_with_the_users_umask(knn, tmp_path):
    old = os.umask(0o022)
    try:
        path = knn.save(tmp_path / "store" / "movies" / "1")
    finally:
        os.umask(old)
    assert Recommender.load(path).n_items_ == knn.n_items_
    for d in (tmp_path / "store", tmp_path / "store" / "movies", path):
        assert d.stat().st_mode & 0o777 == 0o755, (d, oct(d.stat().st_mode))
    assert sorted(p.name for p in (tmp_path / "store" / "movies").iterdir()) == ["1"]


def test_failed_save_leaves_nothing_behind(knn, tmp_path):
    bad = pd.DataFrame({"x": [{"a": 1}]}, index=[knn.items_.ids[0]])
    with pytest.raises(ParameterError, match="column 'x'"):
        knn.save(tmp_path / "new" / "deeper" / "m", item_data=bad)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_file_where_a_parent_folder_should_be(knn, tmp_path):
    (tmp_path / "store").write_text("not a folder")
    with pytest.raises(ModelFileError, match="is not a directory"):
        knn.save(tmp_path / "store" / "m")


def test_json_side_files_are_checksummed_and_confined(tmp_path):
    path = write_bundle(tmp_path / "b", {}, {"kind": "test"}, json_files={"notes.json": {"a": [1, 2]}})
    assert "notes.json" in read_manifest(path)["files"]
    for bad in ("../x.json", "sub/x.json", "notes.txt", "manifest.json"):
        with pytest.raises(ModelFileError):
            write_bundle(tmp_path / "c", {}, {}, json_files={bad: {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


# ---------------------------------------------------------------- history
def test_saving_without_history(data, tmp_path):
    model = create("EASE", reg=10.0).fit(data)
    full = model.save(tmp_path / "full")
    lean = model.save(tmp_path / "lean", include_history=False)
    assert read_manifest(full)["history"] is True and read_manifest(lean)["history"] is False
    with np.load(lean / ARRAYS) as z:
        assert not any(k.startswith("seen_") for k in z.files)
    assert (lean / ARRAYS).stat().st_size < (full / ARRAYS).stat().st_size
    loaded = Recommender.load(lean)
    assert not loaded.has_history and Recommender.load(full).has_history
    users = np.arange(model.n_users_)
    # scores are unchanged (EASE keeps the user rows it scores from) ...
    assert np.allclose(loaded.score(users), model.score(users))
    # ... but seen items are no longer left out, unless the caller passes them
    got = loaded.recommend(users, 10).ids
    assert np.array_equal(got, model.recommend(users, 10, exclude_seen=False).ids)
    hit_seen = [np.isin(got[u], data.matrix.indices[data.matrix.indptr[u]:data.matrix.indptr[u + 1]]).any()
                for u in users]
    assert any(hit_seen)
    again = loaded.recommend(users, 10, exclude=model.seen_)
    assert np.array_equal(again.ids, model.recommend(users, 10).ids)


@pytest.mark.parametrize("name", ["BPR", "WRMF"])
def test_incremental_training_needs_the_history(name, data, tmp_path):
    model = create(name, factors=4, epochs=2).fit(data)
    loaded = Recommender.load(model.save(tmp_path / "m", include_history=False))
    with pytest.raises(UnsupportedError, match="saved without its training history"):
        loaded.partial_fit(data)
    history = {n for n, spec in type(model).state_schema().items() if spec.history}
    assert {k.partition(".")[0] for k in model.get_parameters()} >= history
    assert not {k.partition(".")[0] for k in loaded.get_parameters()} & history


def test_include_history_must_be_a_bool(knn, tmp_path):
    with pytest.raises(ParameterError, match="include_history must be True or False"):
        knn.save(tmp_path / "m", include_history="no")


# ---------------------------------------------------------------- item data
def _catalogue(model: Recommender) -> pd.DataFrame:
    ids = [int(x) for x in model.items_.ids] + [987654]
    return pd.DataFrame(
        {
            "title": [f"Film {i}" for i in ids],
            "genres": [["Drama", "War"] if i % 2 else [] for i in ids],
            "year": [1990 + (i % 7) for i in ids],
            "rating": [float("nan") if i % 3 == 0 else 3.5 for i in ids],
            "votes": pd.array([None if i % 3 == 0 else i for i in ids], dtype="Int64"),
        },
        index=pd.Index(ids, name="item"),
    ).iloc[::-1]


def test_item_data_round_trip(knn, tmp_path):
    catalogue = _catalogue(knn)
    path = knn.save(tmp_path / "m", item_data=catalogue)
    got = read_item_data(path)
    assert list(got.index) == [int(x) for x in knn.items_.ids]  # model order, unknown item left out
    assert got.index.name == "item" and list(got.columns) == ["title", "genres", "year", "rating", "votes"]
    first = int(knn.items_.ids[0])
    assert got.loc[first, "title"] == f"Film {first}" and got.loc[first, "year"] == 1990 + first % 7
    assert got.loc[first, "genres"] == (["Drama", "War"] if first % 2 else [])
    nan_item = next(int(i) for i in knn.items_.ids if int(i) % 3 == 0)
    assert got.loc[nan_item, "rating"] is None and got.loc[nan_item, "votes"] is None
    assert got.loc[first, "votes"] == (None if first % 3 == 0 else first)
    assert read_manifest(path)["item_data"] == {"items": knn.n_items_, "columns": list(got.columns)}
    assert read_item_data(knn.save(tmp_path / "bare")) is None


def test_item_data_with_string_ids(tmp_path):
    from recseek.data import Interactions

    train = Interactions.from_arrays(np.array(["u1", "u1", "u2"]), np.array(["a", "b", "a"]), np.ones(3))
    model = create("MostPopular").fit(train)
    path = model.save(tmp_path / "m", item_data=pd.DataFrame({"title": ["A", "B", "C"]}, index=["a", "b", "zz"]))
    assert read_item_data(path)["title"].to_dict() == {"a": "A", "b": "B"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("[1, 2]", "expected an object"),
        ('{"index_name": null, "index": [1, 1], "columns": [], "data": {}}', "more than once"),
        ('{"index_name": null, "index": [1], "columns": ["t"], "data": {"t": []}}', "one value per item"),
        ('{"index_name": null, "index": [1], "columns": ["t"], "data": {"t": [{"x": 1}]}}', "holds a value of type dict"),
        ('{"index_name": null, "index": [true], "columns": [], "data": {}}', "index must be a list of item ids"),
        ("not json", "not valid JSON"),
    ],
)
def test_malformed_item_data_is_one_clear_error(knn, tmp_path, payload, expected):
    path = knn.save(tmp_path / "m", item_data=pd.DataFrame({"t": ["x"]}, index=[knn.items_.ids[0]]))
    (path / ITEM_DATA).write_text(payload)
    _rewrite_manifest(path)
    with pytest.raises(ModelFileError, match=expected):
        read_item_data(path)


def test_item_data_values_are_checked_on_save(knn, tmp_path):
    item = knn.items_.ids[0]
    with pytest.raises(ParameterError, match="a value of type dict"):
        knn.save(tmp_path / "m", item_data=pd.DataFrame({"x": [{"a": 1}]}, index=[item]))
    with pytest.raises(ParameterError, match="more than once"):
        knn.save(tmp_path / "m", item_data=pd.DataFrame({"x": [1, 2]}, index=[item, item]))
    with pytest.raises(ParameterError, match="must be a pandas DataFrame"):
        knn.save(tmp_path / "m", item_data={"x": 1})
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- every declared array is enforced
#: A dtype that no declaration accepts in place of one of this kind.
_WRONG_DTYPE = {"f": np.float16, "i": np.float64, "u": np.float64, "b": np.float64}


def _mutations(a: np.ndarray) -> dict[str, np.ndarray]:
    """Changes to one stored array that no declaration may accept."""
    if a.dtype.kind == "U":
        retyped = np.zeros(a.shape, dtype=np.float32)
    else:
        retyped = a.astype(_WRONG_DTYPE[a.dtype.kind])
    return {"extra axis": a[None, ...], "other dtype": retyped}


@pytest.mark.parametrize("cls", ALL_MODELS, ids=lambda c: c.name)
def test_every_declared_array_is_enforced(cls, data):
    """Dropping, re-typing or re-shaping any stored array of any model is refused."""
    if cls.requires:
        data = synthetic(side=True)
    model = cls(**cls.test_params).fit(data)
    params = model.get_parameters()
    for key, arr in params.items():
        rest = {k: v for k, v in params.items() if k != key}
        with pytest.raises(ModelFileError, match="lacks the declared array"):
            model.check_state(rest)
        for what, changed in _mutations(np.asarray(arr)).items():
            with pytest.raises(ModelFileError):
                model.check_state({**rest, key: changed})
                pytest.fail(f"{key}: {what} accepted")


# ---------------------------------------------------------------- crafted index values never crash scoring
@pytest.mark.parametrize("name", ["ItemKNNRanking", "UserKNNRating", "SlopeOne", "LLORMA", "SLIM"])
def test_crafted_index_values_are_refused_or_harmless(name, data):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    cls = type(create(name))
    model = cls(**cls.test_params).fit(data)
    params = model.get_parameters()
    index_keys = sorted(k for k, v in params.items() if np.asarray(v).dtype.kind == "i" and np.ndim(v) == 1
                        and not k.endswith(".ids"))
    assert index_keys

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(index_keys), pos=st.integers(0, 10**6), value=st.integers(-(2**40), 2**40))
    def check(key: str, pos: int, value: int) -> None:
        arr = np.array(params[key])
        if arr.size == 0:
            return
        arr[pos % arr.size] = np.clip(value, np.iinfo(arr.dtype).min, np.iinfo(arr.dtype).max)
        fresh = cls(**cls.test_params)
        try:
            fresh.set_parameters({**params, key: arr})
        except ModelFileError:
            return
        ranking = fresh.recommend(np.arange(fresh.n_users_), 5)  # accepted: it must score safely
        assert ((ranking.ids >= -1) & (ranking.ids < fresh.n_items_)).all()

    check()


def test_arrays_that_the_settings_always_produce_are_required(tmp_path):
    """A TF-IDF text model always stores its idf weights and an MLP map its hidden layer: a
    file without them is refused, although other settings leave those arrays out."""
    data = synthetic(side=True)
    knn = create("ItemTextKNN", encoder="tfidf", text_columns=["title", "genres"]).fit(data)
    params = knn.get_parameters()
    with pytest.raises(ModelFileError, match="lacks the declared array 'idf_'"):
        knn.check_state({k: v for k, v in params.items() if k != "idf_"})
    hashing = create("ItemTextKNN", encoder="hashing").fit(data)
    assert "idf_" not in hashing.get_parameters()
    hashing.check_state(hashing.get_parameters())
    mlp = create("TextToCF", encoder="hashing", mapping="mlp", hidden=8, epochs=3,
                 base_params={"factors": 4, "epochs": 2}).fit(data)
    params = mlp.get_parameters()
    with pytest.raises(ModelFileError, match="lacks the declared array 'map_hidden_weights_'"):
        mlp.check_state({k: v for k, v in params.items() if k != "map_hidden_weights_"})
