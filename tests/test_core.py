"""Core contracts: vocabularies, interactions, the top-k path and persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recseek.data import Interactions, Vocabulary
from recseek.errors import DataError, ModelFileError, ParameterError, UnsupportedError
from recseek.models import create, registry, topk
from recseek.models.base import Recommender
from recseek.persistence import read_bundle, write_bundle
from recseek.testing.fixtures import synthetic


# ---------------------------------------------------------------- vocabulary
def test_vocabulary_first_seen_order_and_lookup():
    vocab, codes = Vocabulary.from_values(np.array([30, 10, 30, 20]), "user")
    assert vocab.ids.tolist() == [30, 10, 20]
    assert codes.tolist() == [0, 1, 0, 2]
    assert vocab.index(20) == 2 and vocab.index("20") == 2
    assert vocab.indices([10, 99], missing="negative").tolist() == [1, -1]
    with pytest.raises(DataError, match="unknown user id 99"):
        vocab.index(99)
    assert vocab.lookup(np.array([2, -1])).tolist() == [20, -1]


def test_vocabulary_strings_and_extend():
    vocab, _ = Vocabulary.from_values(np.array(["b", "a"]), "item")
    assert vocab.ids.dtype.kind == "U"
    bigger = vocab.extend(["a", "c"])
    assert bigger.ids.tolist() == ["b", "a", "c"]
    assert vocab.extend(["a"]) is vocab


# ---------------------------------------------------------------- interactions
@pytest.mark.parametrize(
    "policy,expected", [("last", 5.0), ("first", 1.0), ("mean", 3.0), ("sum", 6.0), ("max", 5.0)]
)
def test_duplicate_policies(policy, expected):
    data = Interactions.from_arrays(
        np.array([1, 1, 1, 2]), np.array([7, 7, 7, 8]), np.array([1.0, 0.0, 5.0, 2.0]),
        np.array([1.0, 2.0, 3.0, 1.0]), duplicates=policy,
    )
    # sum and mean include the middle record (0.0)
    want = {"mean": 2.0, "sum": 6.0}.get(policy, expected)
    assert data.nnz == 2
    assert data.matrix[0, 0] == pytest.approx(want)


def test_duplicate_last_uses_time_not_file_order():
    data = Interactions.from_arrays(
        np.array([1, 1]), np.array([7, 7]), np.array([4.0, 2.0]), np.array([10.0, 5.0])
    )
    assert data.matrix[0, 0] == 4.0 and data.timestamps.tolist() == [10.0]


def test_bad_arrays():
    with pytest.raises(DataError, match="not a finite number"):
        Interactions.from_arrays(np.array([1]), np.array([2]), np.array([np.nan]))
    with pytest.raises(DataError, match="different lengths"):
        Interactions.from_arrays(np.array([1, 2]), np.array([2]))
    with pytest.raises(DataError, match="duplicates must be one of"):
        Interactions.from_arrays(np.array([1]), np.array([2]), duplicates="newest")


def test_subset_keeps_alignment():
    data = synthetic()
    mask = data.matrix.data >= 3
    sub = data.subset(mask)
    assert sub.users is data.users and sub.items is data.items
    np.testing.assert_array_equal(sub.timestamps, data.timestamps[mask])
    np.testing.assert_array_equal(sub.order, data.order[mask])
    assert (sub.matrix.data >= 3).all()
    assert data.binarize(4).matrix.data.tolist() == [1.0] * int((data.matrix.data >= 4).sum())


# ---------------------------------------------------------------- top-k
@settings(max_examples=200, deadline=None)
@given(
    scores=arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 30)),
                  elements=st.one_of(st.floats(-5, 5, width=32), st.just(np.nan))),
    k=st.integers(1, 35),
    data=st.data(),
)
def test_topk_matches_naive_sort(scores, k, data):
    n, m = scores.shape
    seen = data.draw(arrays(np.bool_, (n, m)))
    ranking = topk(scores.copy(), k, exclude=sp.csr_array(seen.astype(np.float32)))
    for r in range(n):
        eligible = [(-float(scores[r, j]), j) for j in range(m) if not seen[r, j] and not np.isnan(scores[r, j])]
        expect = [j for _, j in sorted(eligible)][:k]
        got = ranking.ids[r][ranking.ids[r] >= 0].tolist()
        assert got == expect  # ties broken by lower index, also at the cut
        assert (ranking.ids[r][len(got):] == -1).all()
        assert np.isneginf(ranking.scores[r][len(got):]).all()


def test_topk_ties_prefer_lower_index():
    r = topk(np.zeros((1, 5), dtype=np.float32), 3)
    assert r.ids.tolist() == [[0, 1, 2]]


def test_topk_item_ids_mapping():
    r = topk(np.array([[0.1, 0.9, 0.5]], dtype=np.float32), 2, item_ids=np.array([10, 20, 30]))
    assert r.ids.tolist() == [[20, 30]]


# ---------------------------------------------------------------- registry
def test_registry_case_insensitive_and_errors():
    assert registry.get("mostpopular") is registry.get("MostPopular")
    with pytest.raises(ParameterError, match="unknown model 'MostPopularr'; did you mean MostPopular"):
        registry.get("MostPopularr")
    with pytest.raises(ParameterError, match="has no hyperparameter 'foo'"):
        create("RandomGuess", foo=1)
    with pytest.raises(ParameterError, match="seed must be at least 0"):
        create("RandomGuess", seed=-1)


def test_recommend_candidates_per_user_and_extra_exclude():
    data = synthetic()
    model = create("MostPopular").fit(data)
    per_user = [np.array([0, 1, 2]), np.array([5])]
    r = model.recommend([0, 1], k=3, candidates=per_user, exclude_seen=False)
    assert set(r.ids[0][r.ids[0] >= 0]) <= {0, 1, 2}
    assert r.ids[1].tolist() == [5, -1, -1]
    extra = sp.csr_array((np.ones(1, dtype=np.float32), (np.array([0]), np.array([r.ids[0][0]]))), shape=(1, data.n_items))
    r2 = model.recommend([0], k=3, exclude_seen=False, exclude=extra)
    assert r.ids[0][0] not in r2.ids[0]


def test_predict_for_ranking_only_model_is_clear():
    model = create("MostPopular").fit(synthetic())
    with pytest.raises(UnsupportedError, match="MostPopular is a ranking model and cannot predict ratings"):
        model.predict(np.array([0]), np.array([0]))


# ---------------------------------------------------------------- persistence
def test_bundle_checksum_detects_corruption(tmp_path):
    path = write_bundle(tmp_path / "b", {"x": np.arange(5)}, {"kind": "test"})
    manifest, arrays_ = read_bundle(path)
    assert manifest["kind"] == "test" and arrays_["x"].tolist() == [0, 1, 2, 3, 4]
    with open(path / "arrays.npz", "r+b") as f:
        f.seek(40)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        read_bundle(path)


def test_bundle_rejects_object_arrays_and_leaves_nothing(tmp_path):
    with pytest.raises(ModelFileError, match="object dtype"):
        write_bundle(tmp_path / "b", {"x": np.array([{"a": 1}], dtype=object)}, {})
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        Recommender.load(tmp_path / "nothing")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ModelFileError, match="unsupported format_version"):
        Recommender.load(tmp_path / "m")


def test_save_overwrites_atomically(tmp_path):
    data = synthetic()
    a = create("RandomGuess", seed=1).fit(data)
    b = create("RandomGuess", seed=2).fit(data)
    a.save(tmp_path / "m")
    b.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.seed == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_random_guess_is_random_on_implicit_feedback():
    """With every training value 1 the rating range is empty: scores must still differ, or
    the ranking would fall back to item index order (which often follows popularity)."""
    data = synthetic(n_users=50, n_items=200, seed=4).binarize()
    model = create("RandomGuess", seed=3).fit(data)
    scores = model.score(np.arange(50))
    assert len(np.unique(scores)) > 0.99 * scores.size
    top = model.recommend(np.arange(50), k=10).ids
    # the mean item index of random top-10 lists is near the middle of the catalogue
    assert abs(top.mean() - 99.5) < 15
    np.testing.assert_array_equal(model.predict(np.arange(5), np.arange(5)), np.ones(5))


def test_wide_rows_ties_prefer_lower_index():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 50, size=(30, 5000)).astype(np.float32)
    ranking = topk(scores.copy(), 20)
    for r in range(30):
        expect = np.lexsort((np.arange(5000), -scores[r]))[:20]
        np.testing.assert_array_equal(ranking.ids[r], expect)


def test_serial_and_parallel_kernels_agree():
    from recseek.models._topk_kernel import topk_rows, topk_rows_serial

    scores = np.random.default_rng(1).integers(0, 9, size=(40, 300)).astype(np.float32)
    scores[3, ::2] = np.nan
    out = [(np.empty((40, 25), np.int64), np.empty((40, 25), np.float32)) for _ in range(2)]
    topk_rows(scores, 25, *out[0])
    topk_rows_serial(scores, 25, *out[1])
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_topk_ties_at_the_cut_on_long_rows():
    # a full heap meets many entries equal to its worst: the lower column must keep its place
    scores = np.random.default_rng(2).integers(0, 4, size=(30, 5000)).astype(np.float32)
    scores[5, :4990] = np.nan
    scores[6] = -np.inf
    for k in (1, 20, 4999):
        ranking = topk(scores.copy(), k)
        for r in range(30):
            ok = np.flatnonzero(np.isfinite(scores[r]))
            expect = ok[np.lexsort((ok, -scores[r, ok]))][:k]
            np.testing.assert_array_equal(ranking.ids[r][: expect.size], expect)
            assert (ranking.ids[r][expect.size:] == -1).all()
