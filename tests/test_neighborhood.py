"""Neighbourhood models: similarities and predictions against brute-force formulas,
Surprise score match for KNNBaseline, fold-in and parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from recseek.errors import ParameterError
from recseek.models import registry
from recseek.models.neighborhood import (
    AssociationRule,
    ItemKNNRanking,
    ItemKNNRating,
    KNNBaseline,
    PersonalityDiagnosis,
    RP3beta,
    SlopeOne,
    UserKNNRanking,
    UserKNNRating,
)
from recseek.testing.fixtures import ml100k_sample, synthetic


@pytest.fixture(scope="module")
def data():
    return synthetic(n_users=50, n_items=30, seed=7)


def _dense(data, binary=True):
    x = data.matrix.toarray().astype(np.float64)
    return (x != 0).astype(np.float64) if binary else x


def _topk_rows(sim, k):
    out = np.zeros_like(sim)
    for a in range(sim.shape[0]):
        row = sim[a].copy()
        row[a] = 0.0
        nz = np.flatnonzero(row != 0)
        keep = nz[np.argsort(-row[nz], kind="stable")[:k]]
        out[a, keep] = row[keep]
    return out


def test_item_cosine_similarity_matches_brute_force(data):
    model = ItemKNNRanking(neighbors=7, shrinkage=3.0).fit(data)
    x = _dense(data)
    dots = x.T @ x
    norms = np.sqrt(np.diag(dots))
    sim = dots / (norms[:, None] * norms[None, :] + 3.0)
    expected = _topk_rows(sim, 7)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(model.score(users), x @ expected.T, rtol=1e-4, atol=1e-6)


def test_user_jaccard_similarity_matches_brute_force(data):
    model = UserKNNRanking(neighbors=5, shrinkage=0.0, similarity="jaccard").fit(data)
    x = _dense(data)
    inter = x @ x.T
    cnt = x.sum(axis=1)
    sim = inter / (cnt[:, None] + cnt[None, :] - inter)
    sims = model.similarity_.toarray()
    # ties at the cut-off may pick different users: compare the kept values
    for a in range(data.n_users):
        row = sim[a].copy()
        row[a] = 0
        kept = np.sort(sims[a][sims[a] != 0])[::-1]
        np.testing.assert_allclose(kept, np.sort(row)[::-1][: len(kept)], rtol=1e-5)
        assert len(kept) == min(5, np.count_nonzero(row))
        np.testing.assert_allclose(sims[a][sims[a] != 0], row[sims[a] != 0], rtol=1e-5)


def test_weightings_change_similarity(data):
    plain = ItemKNNRanking(neighbors=10).fit(data).similarity_.toarray()
    for w in ("tfidf", "bm25"):
        other = ItemKNNRanking(neighbors=10, weighting=w).fit(data)
        assert not np.allclose(other.similarity_.toarray(), plain)
        assert np.isfinite(other.score(np.arange(5))).all()
        u = UserKNNRanking(neighbors=10, weighting=w).fit(data)
        folded = u._score_new(data.matrix[[3]])
        assert folded.shape == (1, data.n_items) and np.isfinite(folded).all()


def test_item_knn_fold_in_reproduces_training_user(data):
    model = ItemKNNRanking(neighbors=8).fit(data)
    for u in (0, 11, 23):
        rec = model.recommend([u], k=5)
        new = model.recommend_new(data.items_of(u), k=5)
        np.testing.assert_array_equal(rec.ids, new.ids)


def test_user_knn_fold_in_reproduces_training_user(data):
    # with every user as a neighbour the user itself adds nothing on unseen items
    model = UserKNNRanking(neighbors=data.n_users).fit(data)
    for u in (1, 9):
        rec = model.recommend([u], k=5)
        new = model.recommend_new(data.items_of(u), k=5)
        np.testing.assert_array_equal(rec.ids, new.ids)


def test_rp3beta_matches_dense_formula(data):
    model = RP3beta(neighbors=data.n_items, alpha=0.8, beta=0.4).fit(data)
    x = _dense(data)
    p_ui = (x / x.sum(axis=1, keepdims=True)) ** 0.8
    p_iu = (x.T / x.T.sum(axis=1, keepdims=True)) ** 0.8
    w = (p_iu @ p_ui) / (x.sum(axis=0)[None, :] ** 0.4)
    np.fill_diagonal(w, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), w, rtol=1e-4, atol=1e-7)
    pruned = RP3beta(neighbors=4).fit(data).similarity_
    assert np.diff(pruned.indptr).max() <= 4


def test_association_rule_confidence(data):
    model = AssociationRule().fit(data)
    x = _dense(data)
    conf = (x.T @ x) / x.sum(axis=0)[:, None]
    np.fill_diagonal(conf, 0.0)
    np.testing.assert_allclose(model.confidence_.toarray(), conf, rtol=1e-5)


def test_slope_one_matches_brute_force(data):
    model = SlopeOne().fit(data)
    r = data.matrix.toarray().astype(np.float64)
    b = r != 0
    users, items = [0, 4, 9], [2, 5, 17]
    for u in users:
        for i in items:
            num = den = 0.0
            for j in np.flatnonzero(b[u]):
                if j == i:
                    continue
                common = b[:, i] & b[:, j]
                c = common.sum()
                if c == 0:
                    continue
                dev = (r[common, i] - r[common, j]).mean()
                num += c * (dev + r[u, j])
                den += c
            expected = num / den if den else model.global_mean_
            got = model.predict(np.array([u]), np.array([i]))[0]
            assert got == pytest.approx(np.clip(expected, 1, 5), rel=1e-4)


def test_personality_diagnosis_matches_brute_force(data):
    sigma = 1.5
    model = PersonalityDiagnosis(sigma=sigma).fit(data)
    r = data.matrix.toarray().astype(np.float64)
    b = r != 0
    levels = np.unique(r[b])
    for u, i in [(0, 3), (5, 10), (20, 29)]:
        probs = np.zeros(len(levels))
        for v in np.flatnonzero(b[:, i]):
            common = b[u] & b[v]
            w = np.exp(-((r[u, common] - r[v, common]) ** 2).sum() / (2 * sigma**2))
            probs += w * np.exp(-((levels - r[v, i]) ** 2) / (2 * sigma**2))
        expected = levels[int(np.argmax(probs))]
        assert model.predict(np.array([u]), np.array([i]))[0] == pytest.approx(expected)


def test_item_knn_rating_formula(data):
    model = ItemKNNRating(neighbors=3).fit(data)
    r = data.matrix.toarray().astype(np.float64)
    b = r != 0
    mean_i = r.sum(0) / b.sum(0)
    u, i = 2, 8
    # pearson over common raters of item-mean-centred ratings
    d = np.where(b, r - mean_i[None, :], 0.0)
    sims = []
    for j in np.flatnonzero(b[u]):
        common = b[:, i] & b[:, j]
        num = (d[common, i] * d[common, j]).sum()
        den = np.sqrt((d[common, i] ** 2).sum() * (d[common, j] ** 2).sum())
        s = num / den if den > 0 and j != i else 0.0
        if s > 0:
            sims.append((s, j))
    sims.sort(key=lambda t: -t[0])
    top = sims[:3]
    expected = mean_i[i] + sum(s * d[u, j] for s, j in top) / sum(s for s, _ in top)
    assert model.predict(np.array([u]), np.array([i]))[0] == pytest.approx(np.clip(expected, 1, 5), rel=1e-4)


def test_knnbaseline_matches_surprise():
    surprise = pytest.importorskip("surprise")
    try:
        data = ml100k_sample(150)
    except FileNotFoundError:
        pytest.skip("MovieLens sample not available")
    u, i, v, _ = data.to_coo()
    rng = np.random.default_rng(0)
    test = rng.random(len(u)) < 0.1
    train = data.subset(~test)
    ours = KNNBaseline(neighbors=20).fit(train)
    import pandas as pd

    df = pd.DataFrame({"u": u[~test], "i": i[~test], "r": v[~test]})
    ts = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = surprise.KNNBaseline(k=20, sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False)
    algo.fit(ts)
    theirs = np.array([algo.predict(a, b).est for a, b in zip(u[test], i[test], strict=True)])
    np.testing.assert_allclose(ours.predict(u[test], i[test]), theirs, atol=2e-3)


def test_knnbaseline_user_based_and_fallbacks(data):
    model = KNNBaseline(user_based=True, neighbors=5).fit(data)
    p = model.predict(np.array([0, -1, 0]), np.array([1, 1, -1]))
    assert np.isfinite(p).all()
    # unknown user: mu + b_i; unknown item: mu + b_u
    assert p[1] == pytest.approx(np.clip(model.global_mean_ + model.item_bias_[1], 1, 5), rel=1e-5)
    assert p[2] == pytest.approx(np.clip(model.global_mean_ + model.user_bias_[0], 1, 5), rel=1e-5)


@pytest.mark.parametrize("cls", [ItemKNNRating, UserKNNRating, KNNBaseline])
def test_rating_knn_fold_in(cls, data):
    model = cls(neighbors=data.n_items).fit(data)
    u = 4
    items = data.items_of(u)
    values = data.matrix.data[data.matrix.indptr[u]:data.matrix.indptr[u + 1]]
    new = model._score_new(data.matrix[[u]])
    assert new.shape == (1, data.n_items) and np.isfinite(new).all()
    if cls is not UserKNNRating:
        # the item-based fold-in of a training user gives (almost) its own predictions
        own = model.score([u])
        close = np.abs(new - own) < 0.15
        assert close.mean() > 0.9
    rec = model.recommend_new(items, values, k=3)
    assert not np.isin(rec.ids, items).any()


@pytest.mark.parametrize(
    ("name", "params", "word"),
    [
        ("ItemKNNRanking", {"neighbors": 0}, "neighbors"),
        ("ItemKNNRanking", {"shrinkage": -1.0}, "shrinkage"),
        ("ItemKNNRanking", {"similarity": "euclid"}, "similarity"),
        ("UserKNNRanking", {"weighting": "okapi"}, "weighting"),
        ("KNNBaseline", {"reg_user": -2.0}, "reg_user"),
        ("ItemKNNRating", {"min_k": 0}, "min_k"),
        ("RP3beta", {"alpha": 0.0}, "alpha"),
        ("PersonalityDiagnosis", {"sigma": 0.0}, "sigma"),
        ("AssociationRule", {"neighbors": -1}, "neighbors"),
    ],
)
def test_bad_hyperparameters(name, params, word):
    with pytest.raises(ParameterError, match=word):
        registry.create(name, **params)


def test_similar_items_and_users(data):
    item_model = ItemKNNRanking(neighbors=5).fit(data)
    r = item_model.similar_items([0, 1], k=3)
    assert r.ids.shape == (2, 3) and not (r.ids[:, 0] == [0, 1]).any()
    user_model = UserKNNRanking(neighbors=5).fit(data)
    assert user_model.similar_users([2], k=4).ids.shape == (1, 4)
