"""Factorisation machines over side features: encoding, exact folding, cold items, validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recseek.data import Interactions
from recseek.data._vocab import Vocabulary
from recseek.errors import ParameterError
from recseek.models import create
from recseek.models.factorization.fm import encode_column

N_USERS, N_ITEMS, N_COLD = 40, 30, 6
KIND_RATING = {"a": 1.0, "b": 2.5, "c": 4.0}


def kind_data(seed: int = 0) -> Interactions:
    """Ratings depend only on the item's kind; the last N_COLD items have no ratings."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["a", "b", "c"])[np.arange(N_ITEMS) % 3]
    users, items = [], []
    for u in range(N_USERS):
        chosen = rng.choice(N_ITEMS - N_COLD, size=12, replace=False)
        users += [u] * len(chosen)
        items += list(chosen)
    users, items = np.array(users), np.array(items)
    ratings = np.array([KIND_RATING[kinds[i]] for i in items]) + rng.normal(0, 0.1, len(items))
    data = Interactions.from_arrays(users, items, ratings.astype(np.float32),
                                    user_vocab=Vocabulary(np.arange(N_USERS), "user"),
                                    item_vocab=Vocabulary(np.arange(N_ITEMS), "item"))
    age = rng.integers(18, 70, N_USERS)
    item_data = pd.DataFrame({"kind": kinds, "title": [f"film {i}" for i in range(N_ITEMS)],
                              "tags": ["x|y" if i % 2 else "y" for i in range(N_ITEMS)]})
    return dataclasses.replace(data, item_data=item_data, user_data=pd.DataFrame({"age": age}))


@pytest.fixture(scope="module")
def data() -> Interactions:
    return kind_data()


def test_encode_column_one_hot_multi_hot_and_deciles() -> None:
    one = encode_column(pd.Series(["a", "b", None, "a"], dtype="string"), explicit=False).toarray()
    np.testing.assert_array_equal(one, [[1, 0], [0, 1], [0, 0], [1, 0]])
    multi = encode_column(pd.Series(["x|y", "y", ""], dtype="string"), explicit=False).toarray()
    np.testing.assert_allclose(multi, [[0.5, 0.5], [0, 1], [0, 0]])
    dec = encode_column(pd.Series(np.arange(100)), explicit=False)
    assert dec.shape == (100, 10) and np.all(dec.sum(axis=1) == 1)
    # identifier-like text is skipped by "auto" but kept when named
    ids = pd.Series([f"id{i}" for i in range(50)])
    assert encode_column(ids, explicit=False) is None
    assert encode_column(ids, explicit=True).shape == (50, 50)


TRAIN = {"FMSGD": {"epochs": 40, "learning_rate": 0.05}, "FFM": {"epochs": 40, "learning_rate": 0.05},
         "FMALS": {"epochs": 20, "reg": 1.0, "reg_bias": 1.0}}


@pytest.mark.parametrize("name", ["FMSGD", "FFM", "FMALS"])
def test_cold_items_are_predicted_from_their_attribute(name: str, data) -> None:
    model = create(name, factors=4, features=["kind"], **TRAIN[name]).fit(data)
    assert model.side_features_
    cold = np.arange(N_ITEMS - N_COLD, N_ITEMS)
    users = np.zeros(N_COLD, dtype=np.int64)
    pred = model.predict(users, cold)
    expect = np.array([KIND_RATING[k] for k in data.item_data["kind"].to_numpy()[cold]])
    # the kind's weight shares the effect with the item ids, so cold items get most of it
    by_kind = {k: pred[np.flatnonzero(expect == KIND_RATING[k])] for k in KIND_RATING}
    assert np.ptp(by_kind["a"]) < 1e-5
    assert by_kind["b"].min() - by_kind["a"].max() > 0.7
    assert by_kind["c"].min() - by_kind["b"].max() > 0.7
    err = np.abs(pred - expect).mean()
    # ids only: cold items cannot be told apart
    plain = create(name, factors=4, features="none", **TRAIN[name]).fit(data)
    assert not plain.side_features_
    plain_pred = plain.predict(users, cold)
    assert np.ptp(plain_pred) < 1e-6
    assert err < 0.5 * np.abs(plain_pred - expect).mean()


@pytest.mark.parametrize("name", ["FMSGD", "FFM", "FMALS"])
def test_folded_model_equals_the_machine(name: str, data) -> None:
    m = create(name, factors=3, epochs=5, features="auto").fit(data)
    w, v, field = m.feature_weights_, m.feature_factors_, m.feature_fields_
    ffm = name == "FFM"
    # auto: kind + tags on items (title is identifier-like), age deciles on users
    assert len(np.unique(field)) == 5
    blocks = [encode_column(data.user_data["age"], False), encode_column(data.item_data["kind"], False),
              encode_column(data.item_data["tags"], False)]
    offsets = np.cumsum([N_USERS + N_ITEMS] + [b.shape[1] for b in blocks])
    rng = np.random.default_rng(1)
    for _ in range(10):
        u, i = int(rng.integers(N_USERS)), int(rng.integers(N_ITEMS - N_COLD))
        feats, vals = [u, N_USERS + i], [1.0, 1.0]
        for b, (block, row) in enumerate(zip(blocks, [u, i, i], strict=True)):
            r = block[[row]]
            feats += list(offsets[b] + r.indices)
            vals += list(r.data)
        y = m.global_bias_ + sum(w[f] * x for f, x in zip(feats, vals, strict=True))
        for a in range(len(feats)):
            for b in range(a + 1, len(feats)):
                la = field[feats[a]] if ffm else 0
                lb = field[feats[b]] if ffm else 0
                y += float(v[feats[a], lb] @ v[feats[b], la]) * vals[a] * vals[b]
        assert m._predict(np.array([u]), np.array([i]))[0] == pytest.approx(y, abs=1e-4)


def test_save_load_with_side_features(data, tmp_path) -> None:
    from recseek.models.base import Recommender

    m = create("FFM", factors=3, epochs=3).fit(data)
    m.save(tmp_path / "ffm")
    back = Recommender.load(tmp_path / "ffm")
    cold = np.arange(N_ITEMS - N_COLD, N_ITEMS)
    np.testing.assert_allclose(back.predict(np.zeros(N_COLD, np.int64), cold),
                               m.predict(np.zeros(N_COLD, np.int64), cold), rtol=1e-6)


@pytest.mark.parametrize("name", ["FMSGD", "FMALS"])
def test_without_side_data_the_id_path_is_unchanged(name: str) -> None:
    data = kind_data()
    bare = dataclasses.replace(data, item_data=None, user_data=None)
    a = create(name, factors=4, epochs=5).fit(bare)
    b = create(name, factors=4, epochs=5, features="none").fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert not a.side_features_ and not hasattr(a, "feature_factors_")


def _fm_objective(x, y, w0, w, v, reg_w0, reg_w, reg_v):
    xv = x @ v[:, 0, :]
    pair = 0.5 * ((xv**2).sum(axis=1) - (x.multiply(x) @ v[:, 0, :] ** 2).sum(axis=1))
    resid = y - (w0 + x @ w + pair)
    return float(resid @ resid + reg_w0 * w0**2 + reg_w * w @ w + reg_v * (v**2).sum()), resid


def test_fmals_sweep_keeps_exact_residuals_and_never_increases_the_objective() -> None:
    import scipy.sparse as sp

    from recseek.models.factorization._als import fm_als_feature_sweep

    rng = np.random.default_rng(3)
    n, n_feat, k = 60, 12, 3
    dense = (rng.random((n, n_feat)) < 0.3) * rng.uniform(0.2, 1.5, (n, n_feat))
    x = sp.csc_array(dense.astype(np.float32))
    x.sort_indices()
    y = rng.normal(3.0, 1.0, n).astype(np.float32)
    w0 = np.array([0.5], np.float32)
    w = rng.normal(0, 0.1, n_feat).astype(np.float32)
    v = rng.normal(0, 0.3, (n_feat, 1, k)).astype(np.float32)
    regs = (0.5, 0.7, 0.9)
    obj, resid = _fm_objective(x, y, float(w0[0]), w, v, *regs)
    resid = resid.astype(np.float32)
    cache = np.zeros(n, np.float32)
    for _ in range(4):
        fm_als_feature_sweep(x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data, resid, w0, w, v,
                             *(np.float32(r) for r in regs), cache)
        new, exact = _fm_objective(x, y, float(w0[0]), w, v, *regs)
        np.testing.assert_allclose(resid, exact, atol=1e-4)
        assert new <= obj + 1e-4
        obj = new
    # at convergence each coordinate is at its ridge minimiser: the linear weights' gradient vanishes
    for _ in range(200):
        fm_als_feature_sweep(x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data, resid, w0, w, v,
                             *(np.float32(r) for r in regs), cache)
    grad_w = -(x.T @ resid) + regs[1] * w
    assert np.abs(grad_w).max() < 1e-3


@pytest.mark.parametrize("features,match", [(["colour"], "colour"), (3, "features"), ("some", "features")])
def test_bad_features_are_rejected(features, match, data) -> None:
    with pytest.raises(ParameterError, match=match):
        create("FMSGD", factors=2, epochs=1, features=features).fit(data)
