"""Review and place models: EFMRating, EFMRanking, TopicMFAT, TopicMFMT, HFT, TFIDF, RankGeoFM.

Update rules against numpy re-derivations of the papers' rules (or finite differences),
recovery of planted structure, real data, and the JStarCraft RNS rows on its own
protocol (``benchmarks/bench_jstarcraft_content.py``; slow).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.errors import DataError
from recseek.models import registry
from recseek.testing.fixtures import planted_blocks, shared_data_dir

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared test data not found")
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_jstarcraft_content.py"


def bench():
    spec = importlib.util.spec_from_file_location("bench_jstarcraft_content", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def csr_parts(m):
    m = sp.csr_array(m, dtype=np.float32)
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float32)


# ================================================================ EFM
def tiny_aspect_data() -> Interactions:
    users = np.array([0, 0, 1, 1, 2])
    items = np.array([0, 1, 0, 2, 1])
    data = Interactions.from_arrays(users, items, np.array([5.0, 3.0, 4.0, 1.0, 2.0]))
    # records in CSR order: (0,0) (0,1) (1,0) (1,2) (2,1); aspects a0, a1, a2
    mentions = sp.csr_array(np.array([[2, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32))
    sentiment = sp.csr_array(np.array([[2, -1, 0], [0, 1, 0], [1, 0, 0], [0, 0, -1], [-1, 1, 0]], dtype=np.float32))
    return replace(data, meta={"review_aspects": sentiment, "review_aspect_mentions": mentions})


def test_attention_and_quality_follow_the_paper():
    from recseek.models.content.efm import aspect_matrices

    data = tiny_aspect_data()
    x, y = aspect_matrices(data, scale=4.0)
    sig = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
    # user 0 mentions a0 twice, a1 twice; user 1: a0 once, a2 once; user 2: a0, a1 once
    np.testing.assert_allclose(x.toarray()[0], [1 + 3 * (2 * sig(2) - 1), 1 + 3 * (2 * sig(2) - 1), 0], rtol=1e-6)
    np.testing.assert_allclose(x.toarray()[1], [1 + 3 * (2 * sig(1) - 1), 0, 1 + 3 * (2 * sig(1) - 1)], rtol=1e-6)
    # item 0: a0 sentiments 2 + 1 = 3, a1 -1; item 1: a1 1 + 1 = 2 (user 0 and user 2), a0 -1; item 2: a2 -1
    ya = y.toarray()
    np.testing.assert_allclose(ya[0], [1 + 3 * sig(3), 1 + 3 * sig(-1), 0], rtol=1e-6)
    np.testing.assert_allclose(ya[1], [1 + 3 * sig(-1), 1 + 3 * sig(2), 0], rtol=1e-6)
    np.testing.assert_allclose(ya[2], [0, 0, 1 + 3 * sig(-1)], rtol=1e-6)


def test_quality_leaves_out_aspects_whose_sentiments_cancel():
    from recseek.models.content.efm import aspect_matrices

    data = Interactions.from_arrays(np.array([0, 1]), np.array([0, 0]), np.array([5.0, 1.0]))
    s = sp.csr_array(np.array([[1.0, 1.0], [-1.0, 1.0]], dtype=np.float32))
    x, y = aspect_matrices(replace(data, meta={"review_aspects": s}), 4.0)
    assert y.toarray()[0, 0] == 0 and y.toarray()[0, 1] > 0
    assert x.nnz == 4


def _masked_reference(a, x, y, v, u1, u2, h1, h2, lx, ly, lu, lh, lv, eps=1e-8):
    """The masked multiplicative updates (observed entries only), block by block, in dense numpy."""
    ma, mx, my = (m != 0 for m in (a, x, y))  # test data has no stored zeros
    v, u1, u2, h1, h2 = (t.astype(np.float64).copy() for t in (v, u1, u2, h1, h2))
    rows = mx.any(axis=0) & my.any(axis=0)
    num = lx * x.T @ u1 + ly * y.T @ u2
    den = lx * (mx * (u1 @ v.T)).T @ u1 + ly * (my * (u2 @ v.T)).T @ u2 + lv * v + eps
    v = np.where(rows[:, None], v * np.sqrt(num / den), v)
    pred = u1 @ u2.T + h1 @ h2.T
    rows = ma.any(axis=1) & mx.any(axis=1)
    num = a @ u2 + lx * x @ v
    den = (ma * pred) @ u2 + lx * (mx * (u1 @ v.T)) @ v + lu * u1 + eps
    u1 = np.where(rows[:, None], u1 * np.sqrt(num / den), u1)
    pred = u1 @ u2.T + h1 @ h2.T
    rows = ma.any(axis=0) & my.any(axis=1)
    num = a.T @ u1 + ly * y @ v
    den = (ma * pred).T @ u1 + ly * (my * (u2 @ v.T)) @ v + lu * u2 + eps
    u2 = np.where(rows[:, None], u2 * np.sqrt(num / den), u2)
    pred = u1 @ u2.T + h1 @ h2.T
    rows = ma.any(axis=1)
    h1 = np.where(rows[:, None], h1 * np.sqrt((a @ h2) / ((ma * pred) @ h2 + lh * h1 + eps)), h1)
    pred = u1 @ u2.T + h1 @ h2.T
    rows = ma.any(axis=0)
    h2 = np.where(rows[:, None], h2 * np.sqrt((a.T @ h1) / ((ma * pred).T @ h1 + lh * h2 + eps)), h2)
    return v, u1, u2, h1, h2


def _random_efm_problem(seed=0):
    rng = np.random.default_rng(seed)
    n_u, n_i, n_f = 7, 6, 4
    a = np.where(rng.random((n_u, n_i)) < 0.5, rng.integers(1, 6, (n_u, n_i)), 0).astype(np.float64)
    x = np.where(rng.random((n_u, n_f)) < 0.6, 1 + 3 * rng.random((n_u, n_f)), 0)
    y = np.where(rng.random((n_i, n_f)) < 0.6, 1 + 3 * rng.random((n_i, n_f)), 0)
    v = 0.01 + 0.5 * rng.random((n_f, 2))
    u1, u2 = rng.random((n_u, 2)), rng.random((n_i, 2))
    h1, h2 = rng.random((n_u, 3)), rng.random((n_i, 3))
    return a, x, y, v, u1, u2, h1, h2


def test_efm_kernel_matches_the_masked_multiplicative_rules():
    from recseek.models.content._d_efm import efm_sweep

    a, x, y, v, u1, u2, h1, h2 = _random_efm_problem()
    lams = (1.0, 0.5, 0.01, 0.02, 0.03)
    ref = _masked_reference(a, x, y, v, u1, u2, h1, h2, *lams)
    arrs = [t.astype(np.float32).copy() for t in (v, u1, u2, h1, h2)]
    sa, sx, sy = sp.csr_array(a), sp.csr_array(x), sp.csr_array(y)
    efm_sweep(*csr_parts(sa), *csr_parts(sa.T.tocsr()), *csr_parts(sx), *csr_parts(sx.T.tocsr()),
              *csr_parts(sy), *csr_parts(sy.T.tocsr()), *arrs, *(np.float32(t) for t in lams))
    for got, want in zip(arrs, ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)


def test_efm_dense_sweep_matches_the_paper_rules():
    from recseek.models.content.efm import _dense_sweep

    a, x, y, v, u1, u2, h1, h2 = _random_efm_problem(1)
    lx, ly, lu, lh, lv = 1.0, 0.5, 0.01, 0.02, 0.03
    eps = 1e-8
    # the paper's rules with full matrices (missing = 0), written out densely
    rv = v * np.sqrt((lx * x.T @ u1 + ly * y.T @ u2) / (lx * v @ u1.T @ u1 + ly * v @ u2.T @ u2 + lv * v + eps))
    ru1 = u1 * np.sqrt((a @ u2 + lx * x @ rv) / ((u1 @ u2.T + h1 @ h2.T) @ u2 + lx * u1 @ rv.T @ rv + lu * u1 + eps))
    ru2 = u2 * np.sqrt((a.T @ ru1 + ly * y @ rv)
                       / ((u2 @ ru1.T + h2 @ h1.T) @ ru1 + ly * u2 @ rv.T @ rv + lu * u2 + eps))
    rh1 = h1 * np.sqrt((a @ h2) / ((ru1 @ ru2.T + h1 @ h2.T) @ h2 + lh * h1 + eps))
    rh2 = h2 * np.sqrt((a.T @ rh1) / ((ru2 @ ru1.T + h2 @ rh1.T) @ rh1 + lh * h2 + eps))
    arrs = [t.astype(np.float32).copy() for t in (v, u1, u2, h1, h2)]
    _dense_sweep(sp.csr_array(a, dtype=np.float32), sp.csr_array(x, dtype=np.float32),
                 sp.csr_array(y, dtype=np.float32), *arrs, lx, ly, lu, lh, lv)
    for got, want in zip(arrs, (rv, ru1, ru2, rh1, rh2), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)


def test_efm_ranking_score_uses_the_users_top_aspects():
    data = planted_blocks(side=True)
    train, _ = data.for_task("ranking")
    m = registry.create("EFMRanking", epochs=5, top_aspects=2).fit(train)
    users = np.arange(5)
    x_hat = m.user_explicit_[users] @ m.aspect_factors_.T
    y_hat = m.item_explicit_ @ m.aspect_factors_.T
    expect = np.zeros((len(users), m.n_items_))
    for r in range(len(users)):
        top = np.argsort(-x_hat[r])[:2]
        expect[r] = (x_hat[r, top][None, :] * y_hat[:, top]).sum(axis=1) / (2 * m.scale_max_)
    np.testing.assert_allclose(m.score(users), expect, rtol=1e-4)


def test_efm_needs_aspects():
    data = planted_blocks()
    with pytest.raises(DataError, match="EFMRating"):
        registry.create("EFMRating", epochs=2).fit(data.train)


# ================================================================ TopicMF
def _topicmf_reference(users, items, ratings, w, theta, phi, p, q, bu, bi, mu, lr, lam, ru, rv, rb, kappa, mt):
    """TopicMF's SGD pass written from the rule: the review term's gradient through
    theta = softmax(x), d theta_t / d x_f = theta_t (delta_tf - theta_f)."""
    p, q, bu, bi, kappa = p.astype(np.float64), q.astype(np.float64), bu.astype(np.float64), bi.copy(), list(kappa)
    bi = bi.astype(np.float64)
    k = p.shape[1]
    for d in range(len(users)):
        u, i = users[d], items[d]
        e = ratings[d] - (mu + bu[u] + bi[i] + p[u] @ q[i])
        bu[u] += lr * (e - rb * bu[u])
        bi[i] += lr * (e - rb * bi[i])
        row = w[[d]]
        for f in range(k):
            pf, qf = p[u, f], q[i, f]
            p[u, f] += lr * (e * qf - ru * pf)
            q[i, f] += lr * (e * pf - rv * qf)
            for wi, wv in zip(row.indices, row.data, strict=True):
                what = theta[d] @ phi[:, wi]
                werr = wv - what
                jac = theta[d] * ((np.arange(k) == f) - theta[d, f])
                deriv = werr * float(np.sum(phi[:, wi] * jac))
                c = werr * phi[:, wi] * theta[d] * (1 - theta[d])
                if mt:
                    kappa[0] += lr * lam * float(np.sum(c * np.abs(p[u])))
                    p[u, f] += lr * kappa[0] * deriv * q[i, f]
                    q[i, f] += lr * kappa[0] * deriv * p[u, f]
                else:
                    g1, g2 = float(np.sum(c * np.abs(p[u]))), float(np.sum(c * np.abs(q[i])))
                    kappa[0] += lr * lam * g1
                    kappa[1] += lr * lam * g2
                    p[u, f] += lr * kappa[0] * deriv
                    q[i, f] += lr * kappa[1] * deriv
    return p, q, bu, bi, np.array(kappa)


@pytest.mark.parametrize("mt", [False, True])
def test_topicmf_pass_matches_the_rule(mt):
    from recseek.models.content._d_topicmf import topic_proportions, topicmf_pass

    rng = np.random.default_rng(3)
    users = np.array([0, 0, 1, 2, 2], dtype=np.int32)
    items = np.array([0, 1, 1, 0, 2], dtype=np.int32)
    ratings = np.array([5, 3, 4, 2, 1], dtype=np.float32)
    counts = rng.integers(0, 3, (5, 6)).astype(np.float32)
    counts[1] = 0  # an empty review
    w = sp.csr_array(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1))
    k = 3
    p = rng.normal(0, 0.5, (3, k)).astype(np.float32)
    q = rng.normal(0, 0.5, (3, k)).astype(np.float32)
    bu = rng.normal(0, 0.1, 3).astype(np.float32)
    bi = rng.normal(0, 0.1, 3).astype(np.float32)
    kappa = np.array([0.7, 0.4], dtype=np.float32)
    theta = np.empty((5, k), dtype=np.float32)
    topic_proportions(users, items, p, q, kappa, mt, theta)
    x = kappa[0] * np.abs(p[users]) * np.abs(q[items]) if mt else kappa[0] * np.abs(p[users]) + kappa[1] * np.abs(q[items])
    np.testing.assert_allclose(theta, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), rtol=1e-5)
    phi = rng.random((k, 6)).astype(np.float32)
    args = dict(mu=4.0, lr=0.05, lam=0.5, ru=0.01, rv=0.02, rb=0.03)
    ref = _topicmf_reference(users, items, ratings, w, theta.astype(np.float64), phi.astype(np.float64),
                             p, q, bu, bi, kappa=kappa, mt=mt, **args)
    wp, wi, wv = csr_parts(w)
    topicmf_pass(users, items, ratings, wp, wi, wv, theta, phi, p, q, bu, bi, np.float32(4.0), np.float32(0.05),
                 np.float32(0.5), np.float32(0.01), np.float32(0.02), np.float32(0.03), kappa, mt)
    for got, want in zip((p, q, bu, bi, kappa), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# ================================================================ HFT
def test_hft_topic_gradient_matches_finite_differences():
    from recseek.models.content._d_hft import hft_pass, softmax_rows

    k, kappa = 4, 1.5
    p = np.array([[0.3, -0.2, 0.1, 0.5]], dtype=np.float32)
    q = np.zeros((1, k), dtype=np.float32)
    topics = np.array([0, 2, 2, 3, 2], dtype=np.int64)
    theta = np.empty((1, k), dtype=np.float32)
    softmax_rows(p, np.float32(kappa), theta)

    def loglik(pp):
        x = kappa * pp
        return float(np.sum(x[topics] - np.log(np.sum(np.exp(x)))))

    grad = np.array([(loglik(p[0].astype(np.float64) + h) - loglik(p[0].astype(np.float64) - h)) / 2e-4
                     for h in np.eye(k) * 1e-4])
    before = p.copy()
    lr = 1e-3
    # the rating is predicted exactly (q = 0, mu = r), so only the topic term moves p
    hft_pass(np.array([0], np.int32), np.array([0], np.int32), np.array([4.0], np.float32),
             np.array([0, 5], np.int64), topics, theta, p, q, np.zeros(1, np.float32), np.zeros(1, np.float32),
             np.float32(4.0), np.float32(lr), np.float32(0.0), np.float32(0.0), np.float32(0.0), np.float32(1.0),
             np.float32(5.0), np.float32(kappa))
    np.testing.assert_allclose((p - before)[0] / lr, grad, rtol=1e-3, atol=1e-3)


def test_hft_topic_draws_follow_theta_times_phi():
    from recseek.models.content._d_hft import sample_topics, seed_kernels

    seed_kernels(5)
    theta = np.array([[0.6, 0.3, 0.1]], dtype=np.float32)
    phi = np.array([[0.1, 0.9], [0.5, 0.5], [0.8, 0.2]], dtype=np.float32)
    n = 30000
    words = np.zeros(n, dtype=np.int64)
    topics = np.zeros(n, dtype=np.int64)
    sample_topics(np.array([0], np.int32), np.array([0, n], np.int64), words, topics, theta, phi)
    want = theta[0] * phi[:, 0]
    want /= want.sum()
    np.testing.assert_allclose(np.bincount(topics, minlength=3) / n, want, atol=0.01)


def test_hft_review_tokens_repeat_counts():
    from recseek.models.content.hft import review_tokens

    w = sp.csr_array(np.array([[2, 0, 1], [0, 0, 0], [0, 3, 0]], dtype=np.float32))
    data = Interactions.from_arrays(np.array([0, 0, 1]), np.array([0, 1, 0]), np.ones(3))
    d_ptr, words = review_tokens(replace(data, meta={"review_words": w}))
    np.testing.assert_array_equal(d_ptr, [0, 3, 3, 6])
    np.testing.assert_array_equal(words, [0, 0, 2, 1, 1, 1])


# ================================================================ TFIDF
def test_tfidf_scores_by_hand():
    users = np.array([0, 0, 1, 2])
    items = np.array([0, 1, 1, 2])
    data = Interactions.from_arrays(users, items, np.ones(4))
    counts = np.array([[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 3, 1], [1, 0, 0, 1]], dtype=np.float64)
    data = replace(data, meta={"review_words": sp.csr_array(counts.astype(np.float32))})
    tf = counts / counts.sum(axis=1, keepdims=True)
    idf = np.log(4 / (counts > 0).sum(axis=0))
    up = np.stack([tf[[0, 1]].mean(axis=0), tf[2], tf[3]]) * idf
    ip = np.stack([tf[0], tf[[1, 2]].mean(axis=0), tf[3]]) * idf
    for sim in ("cosine", "common"):
        m = registry.create("TFIDF", similarity=sim).fit(data)
        got = m.score(np.arange(3))
        for u in range(3):
            for i in range(3):
                a, b = up[u], ip[i]
                if sim == "common":
                    both = (a != 0) & (b != 0)
                    a, b = a * both, b * both
                den = np.linalg.norm(a) * np.linalg.norm(b)
                want = np.nan if den == 0 else a @ b / den
                if np.isnan(want):
                    assert np.isnan(got[u, i])
                else:
                    assert got[u, i] == pytest.approx(want, rel=1e-5)


# ================================================================ RankGeoFM
def test_nearest_places_by_great_circle_distance():
    from recseek.models.context._d_rankgeofm import nearest_places

    lat = np.array([0.0, 1.0, 0.0, 3.0, np.nan])
    lon = np.array([0.0, 0.0, 2.0, 0.0, 0.0])
    indptr, indices, weights = nearest_places(lat, lon, 2, 0.5)
    np.testing.assert_array_equal(np.diff(indptr), [2, 2, 2, 2, 0])
    one_degree = 6378.137 * np.pi / 180  # km on JStarCraft's sphere
    # place 0: neighbours 1 (1 degree) and 2 (2 degrees), weights 1/d normalised
    assert list(indices[0:2]) == [1, 2]
    w = np.array([1 / one_degree, 1 / (2 * one_degree)])
    np.testing.assert_allclose(weights[0:2], w / w.sum(), rtol=1e-4)
    assert 4 not in indices  # no coordinates, nobody's neighbour


def test_rankgeofm_learns_places_near_the_users_places():
    """Users check in within one of four place clusters; the held-out check-in's cluster
    must rank far above the others (geography does the work: every place has few check-ins)."""
    rng = np.random.default_rng(0)
    n_users, per_cluster = 80, 25
    cluster = np.repeat(np.arange(4), per_cluster)
    lat = 10.0 * cluster + rng.normal(0, 0.3, len(cluster))
    lon = rng.normal(0, 0.3, len(cluster))
    rows, cols = [], []
    for u in range(n_users):
        c = u % 4
        places = rng.choice(np.flatnonzero(cluster == c), 6, replace=False)
        rows += [u] * 6
        cols += list(places)
    data = Interactions.from_arrays(np.array(rows), np.array(cols), np.ones(len(rows)))
    import pandas as pd

    data = replace(data, item_data=pd.DataFrame({"latitude": lat[data.items.ids], "longitude": lon[data.items.ids]}))
    m = registry.create("RankGeoFM", factors=8, epochs=40, learning_rate=0.05, neighbors=10).fit(data)
    scores = m.score(np.arange(n_users))
    own = cluster[data.items.ids][None, :] == (data.users.ids % 4)[:, None]
    seen = data.matrix.toarray() > 0
    in_cluster = np.where(own & ~seen, scores, np.nan)
    out_cluster = np.where(~own, scores, np.nan)
    assert np.nanmean(in_cluster) > np.nanmean(out_cluster) + 0.1
    top = m.recommend(np.arange(n_users), k=5).ids
    hit = np.take_along_axis(own, top, axis=1).mean()
    assert hit > 0.6  # chance: 0.25


# ================================================================ fold-in
@pytest.mark.parametrize("name", ["EFMRating", "EFMRanking", "TopicMFAT", "HFT", "TFIDF", "RankGeoFM"])
def test_fold_in_of_a_training_user_resembles_the_user(name):
    data = planted_blocks(side=True)
    cls = registry.get(name)
    train, _ = data.for_task(cls.task)
    m = registry.create(name, **cls.test_params).fit(train)
    users = np.arange(12)
    rows = [train.items_of(u) for u in users]
    vals = [train.matrix.data[train.matrix.indptr[u]:train.matrix.indptr[u + 1]] for u in users]
    new = m.recommend_new(rows, vals, k=4)
    own = m.recommend(users, k=4)
    overlap = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(new.ids, own.ids, strict=True)])
    assert overlap >= 0.5, overlap


# ================================================================ real data
@pytest.mark.slow
@needs_shared
def test_content_models_beat_baselines_on_real_reviews():
    b = bench()
    from recseek.evaluation.jstarcraft import run_model

    mi = b.load_dataset("musical_instruments", SHARED / "jstarcraft")
    train, test = b.global_split(mi)
    base = run_model("GlobalAverage", {}, "rating", train, test)["metrics"]["mae"]
    for name in ("TopicMFAT", "HFT"):
        got = run_model(name, {}, "rating", train, test)["metrics"]["mae"]
        assert got < base - 0.03, (name, got, base)
    rand = run_model("RandomGuess", {}, "ranking", train, test)["metrics"]["ndcg"]
    assert run_model("TFIDF", {}, "ranking", train, test)["metrics"]["ndcg"] > 5 * rand
    dc = b.load_dataset("dc_dense", SHARED / "jstarcraft")
    train, test = b.global_split(dc)
    base = run_model("GlobalAverage", {}, "rating", train, test)["metrics"]["mae"]
    assert run_model("EFMRating", {}, "rating", train, test)["metrics"]["mae"] < base
    rand = run_model("RandomGuess", {}, "ranking", train, test)["metrics"]["ndcg"]
    assert run_model("EFMRanking", {"epochs": 50}, "ranking", train, test)["metrics"]["ndcg"] > 5 * rand


# ================================================================ JStarCraft rows (benchmarks/bench_jstarcraft_content.py)
#: Rows that stay short of the published figure, with the measured mean and the cause.
SHORT = {
    "HFT": "mean MAE 0.6562 over split/model seeds 0-4 (spread +-0.013) against the published 0.64272 "
           "(1.021x); the TopicMF rows, a plain biased MF here, are short by the same 2% on the same splits, "
           "so the gap is JStarCraft's one random split of musical_instruments, not the topic part",
    "TopicMFAT": "mean MAE 0.6325 over split/model seeds 0-4 (spread +-0.010) against the published 0.61896 "
                 "(1.022x); with JStarCraft's kappa starting at 0 TopicMF is a biased MF (AT and MT agree to "
                 "every digit, as JStarCraft's rows do), and a biased MF with these settings spreads "
                 "0.611-0.654 over 20 random 80/20 splits (mean 0.632): the published figure is one "
                 "favourable split",
    "TopicMFMT": "as TopicMFAT: mean MAE 0.6325 over seeds 0-4 against 0.61896 (1.022x); the spread of "
                 "random splits (0.611-0.654 over 20) covers the published figure",
}
#: Split seeds averaged per row (one for RankGeoFM: 200 epochs over 78,606 check-ins).
SEEDS = {"RankGeoFM": 1}
REPRODUCED = [r for r in bench().ROWS if r[3].get("missing", "ignore") == "ignore"
              and r[3].get("similarity", "cosine") == "cosine"]


def _row_id(row) -> str:
    return f"{row[0]}@{row[1]}"


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize(
    "row",
    [pytest.param(r, id=_row_id(r),
                  marks=[pytest.mark.xfail(strict=True, reason=SHORT[r[0]])] if r[0] in SHORT else [])
     for r in REPRODUCED],
)
def test_published_jstarcraft_row(row):
    b = bench()
    name, dataset, task, params = row
    pub = b.published(name, dataset, task, SHARED.parent / "anchors")
    assert pub is not None, f"no published row for {name} on {dataset}"
    key = "ndcg" if task == "ranking" else "mae"
    vals = [b.run(name, dataset, task, params, SHARED / "jstarcraft", seed)["metrics"][key]
            for seed in range(SEEDS.get(name, 5))]
    ours = float(np.mean(vals))
    if task == "ranking":
        assert ours >= 0.99 * pub[key], f"{name}: NDCG@10 {ours:.5f} < 0.99 x published {pub[key]:.5f}"
    else:
        assert ours <= 1.01 * pub[key], f"{name}: MAE {ours:.5f} > 1.01 x published {pub[key]:.5f}"
