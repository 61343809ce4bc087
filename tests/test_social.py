"""Social models (SoRec, SoReg, SocialMF, TrustMF, TrustSVD, RSTE, SBPR) and TimeSVD.

- each batch-gradient model's update is the gradient of its paper's objective, checked by
  central finite differences of that objective written out here in numpy;
- the TrustSVD kernel against a plain-Python transcription of its documented SGD steps;
- the social cold start: a new user known only by whom they trust gets the items of the
  trusted users' taste group (planted blocks), and on FilmTrust the trusted users' tastes
  predict the new user's ratings better than the global mean does;
- TimeSVD recovers a planted change of item ratings over time;
- missing side data and divergence raise one clear error.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.errors import DataError, TrainingError
from recseek.models import registry
from recseek.testing.conformance import single_thread
from recseek.testing.fixtures import planted_blocks, shared_data_dir, synthetic

SOCIAL = ["SocialMF", "SoRec", "SoReg", "RSTE", "TrustMF", "TrustSVD", "SBPR"]


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def small() -> Interactions:
    data = synthetic(n_users=30, n_items=20, density=0.25, seed=5, side=True)
    t = sp.csr_array(data.trust)
    t.setdiag(0)
    t.eliminate_zeros()
    t.data[:] = 1.0
    return Interactions(data.matrix, data.users, data.items, data.timestamps, trust=sp.csr_array(t))


def _coo(data):
    r = sp.csr_array(data.matrix)
    u = np.repeat(np.arange(data.n_users), np.diff(r.indptr))
    return u, r.indices, r.data.astype(np.float64)


def _fd(f, params, h=1e-5):
    """Central finite-difference gradient of f over each array of ``params`` (float64)."""
    grads = []
    for a in params:
        g = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            old = a[idx]
            a[idx] = old + h
            up = f(*params)
            a[idx] = old - h
            down = f(*params)
            a[idx] = old
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def _uniform(rng, n, k, lo=0.0, hi=1.0):
    return rng.uniform(lo, hi, (n, k)).astype(np.float32).astype(np.float64)


K = 3
LR = 0.01


def _step_matches(model, before, after_names, objective):
    """(before - after) / lr equals the finite-difference gradient of ``objective``."""
    grads = _fd(objective, [b.copy() for b in before])
    for b, name, g in zip(before, after_names, grads, strict=True):
        step = (b - getattr(model, name).astype(np.float64)) / LR
        np.testing.assert_allclose(step, g, rtol=2e-3, atol=2e-4 * max(1.0, np.abs(g).max()),
                                   err_msg=f"{model.name}.{name}")


def test_socialmf_step_is_the_gradient_of_its_objective(small) -> None:
    m = registry.create("SocialMF", factors=K, epochs=1, learning_rate=LR, reg_user=0.05, reg_item=0.02,
                        reg_social=0.7, seed=3).fit(small)
    rng = np.random.default_rng(3)
    u0, v0 = _uniform(rng, small.n_users, K), _uniform(rng, small.n_items, K)
    uu, ii, r = _coo(small)
    tgt = (r - r.min()) / (r.max() - r.min())
    t = small.trust.toarray()
    tn = t / np.maximum(t.sum(axis=1, keepdims=True), 1e-12)
    linked = t.sum(axis=1) > 0

    def objective(U, V):
        e = sig(np.sum(U[uu] * V[ii], axis=1)) - tgt
        d = (U - tn @ U)[linked]
        return 0.5 * (e @ e + 0.05 * np.sum(U * U) + 0.02 * np.sum(V * V) + 0.7 * np.sum(d * d))

    _step_matches(m, [u0, v0], ["user_factors_", "item_factors_"], objective)


def test_sorec_step_is_the_gradient_of_its_objective(small) -> None:
    m = registry.create("SoRec", factors=K, epochs=1, learning_rate=LR, reg_user=0.05, reg_item=0.02,
                        reg_social=0.8, reg_trustee=0.03, seed=4).fit(small)
    rng = np.random.default_rng(4)
    u0, v0, z0 = (_uniform(rng, n, K) for n in (small.n_users, small.n_items, small.n_users))
    uu, ii, r = _coo(small)
    tgt = (r - r.min()) / (r.max() - r.min())
    t = small.trust.tocoo()
    out_deg = np.bincount(t.row, minlength=small.n_users)
    in_deg = np.bincount(t.col, minlength=small.n_users)
    c = np.sqrt(in_deg[t.col] / (out_deg[t.row] + in_deg[t.col]))

    def objective(U, V, Z):
        e = sig(np.sum(U[uu] * V[ii], axis=1)) - tgt
        s = sig(np.sum(U[t.row] * Z[t.col], axis=1)) - c
        return 0.5 * (e @ e + 0.8 * s @ s + 0.05 * np.sum(U * U) + 0.02 * np.sum(V * V) + 0.03 * np.sum(Z * Z))

    _step_matches(m, [u0, v0, z0], ["user_factors_", "item_factors_", "trustee_factors_"], objective)


def test_soreg_step_is_the_gradient_of_its_objective(small) -> None:
    m = registry.create("SoReg", factors=K, epochs=1, learning_rate=LR, reg_user=0.05, reg_item=0.02, beta=0.6,
                        init_range=0.4, seed=6).fit(small)
    rng = np.random.default_rng(6)
    u0, v0 = _uniform(rng, small.n_users, K, -0.2, 0.2), _uniform(rng, small.n_items, K, -0.2, 0.2)
    uu, ii, r = _coo(small)
    mu = r.mean()
    dense = small.matrix.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=1)
    t = small.trust.tocoo()
    cos = np.sum(dense[t.row] * dense[t.col], axis=1) / (norms[t.row] * norms[t.col])
    sim = (1 + cos) / 2

    def objective(U, V):
        e = mu + np.sum(U[uu] * V[ii], axis=1) - r
        d = U[t.row] - U[t.col]
        return 0.5 * (e @ e + 0.05 * np.sum(U * U) + 0.02 * np.sum(V * V) + 0.6 * np.sum(sim * np.sum(d * d, axis=1)))

    _step_matches(m, [u0, v0], ["user_factors_", "item_factors_"], objective)


def test_rste_step_is_the_gradient_of_its_objective(small) -> None:
    m = registry.create("RSTE", factors=K, epochs=1, learning_rate=LR, reg_user=0.05, reg_item=0.02, alpha=0.3,
                        seed=7).fit(small)
    rng = np.random.default_rng(7)
    u0, v0 = _uniform(rng, small.n_users, K), _uniform(rng, small.n_items, K)
    uu, ii, r = _coo(small)
    tgt = (r - r.min()) / (r.max() - r.min())
    t = small.trust.toarray()
    s = t / np.maximum(t.sum(axis=1, keepdims=True), 1e-12)

    def objective(U, V):
        x = np.sum((0.3 * U + 0.7 * (s @ U))[uu] * V[ii], axis=1)
        e = sig(x) - tgt
        return 0.5 * (e @ e + 0.05 * np.sum(U * U) + 0.02 * np.sum(V * V))

    _step_matches(m, [u0, v0], ["user_factors_", "item_factors_"], objective)


@pytest.mark.parametrize("mode", ["truster", "trustee"])
def test_trustmf_step_is_the_gradient_of_its_objective(small, mode) -> None:
    m = registry.create("TrustMF", factors=K, epochs=1, learning_rate=LR, reg=0.04, reg_social=0.6, mode=mode,
                        seed=8).fit(small)
    rng = np.random.default_rng(8)
    b, w, v, b2, w2, v2 = (_uniform(rng, n, K) for n in (small.n_users, small.n_users, small.n_items) * 2)
    uu, ii, r = _coo(small)
    tgt = (r - r.min()) / (r.max() - r.min())
    t = small.trust.tocoo()

    def objective(user, item, truster, trustee):
        # user rates with `user`; trust links pair truster rows with trustee rows
        e = sig(np.sum(user[uu] * item[ii], axis=1)) - tgt
        s = sig(np.sum(truster[t.row] * trustee[t.col], axis=1)) - t.data
        pen = (np.sum(user[uu] ** 2) + np.sum(item[ii] ** 2) + np.sum(truster[t.row] ** 2)
               + np.sum(trustee[t.col] ** 2))
        return 0.5 * (e @ e + 0.6 * s @ s + 0.04 * pen)

    if mode == "truster":  # b rates and trusts, w is trusted
        grads = _fd(lambda B, V, W: objective(B, V, B, W), [b.copy(), v.copy(), w.copy()])
        start, names = [b, v, w], ["user_factors_", "item_factors_", "trustee_factors_"]
    else:  # w' rates and is trusted, b' trusts
        grads = _fd(lambda W, V, B: objective(W, V, B, W), [w2.copy(), v2.copy(), b2.copy()])
        start, names = [w2, v2, b2], ["user_factors_", "item_factors_", "trustee_factors_"]
    for s0, name, g in zip(start, names, grads, strict=True):
        step = (s0 - getattr(m, name).astype(np.float64)) / LR
        np.testing.assert_allclose(step, g, rtol=2e-3, atol=2e-4 * max(1.0, np.abs(g).max()), err_msg=name)


def _trustsvd_reference(order, indptr, indices, ratings, inner, t_indptr, t_indices, t_values, p, q, y, w, bu, bi,
                        mu, lr, reg, lam, item_w, trustee_w):
    """The SGD steps TrustSVD documents, one user at a time, in float64."""
    for u in order:
        a, b = indptr[u], indptr[u + 1]
        ta, tb = t_indptr[u], t_indptr[u + 1]
        rated, trusted = indices[a:b], t_indices[ta:tb]
        ny = 1 / np.sqrt(b - a) if b > a else 0.0
        nw = 1 / np.sqrt(tb - ta) if tb > ta else 0.0
        zy = ny * y[rated].sum(axis=0)
        zw = nw * w[trusted].sum(axis=0)
        acc = np.zeros(p.shape[1])
        for s in inner[a:b]:
            j = indices[s]
            e = mu + bu[u] + bi[j] + q[j] @ (p[u] + zy + zw) - ratings[s]
            bu[u] -= lr * (e + reg * ny * bu[u])
            bi[j] -= lr * (e + reg * item_w[j] * bi[j])
            pu, qj = p[u].copy(), q[j].copy()
            acc += e * qj
            p[u] = pu - lr * (e * qj + (reg * ny + lam * nw) * pu)
            q[j] = qj - lr * (e * (pu + zy + zw) + reg * item_w[j] * qj)
        if b > a:
            y[rated] -= lr * (ny * acc[None, :] + reg * item_w[rated][:, None] * y[rated])
            w[trusted] -= lr * (nw * acc[None, :] + reg * trustee_w[trusted][:, None] * w[trusted])
        for pos in range(ta, tb):
            v = t_indices[pos]
            e = w[v] @ p[u] - t_values[pos]
            pu, wv = p[u].copy(), w[v].copy()
            p[u] = pu - lr * lam * e * wv
            w[v] = wv - lr * lam * e * pu


def test_trustsvd_kernel_follows_its_update_rules(small) -> None:
    from recseek.models.social._base import trust_matrix
    from recseek.models.social._kernels import trustsvd_epoch

    r = sp.csr_array(small.matrix, dtype=np.float32)
    t = trust_matrix("TrustSVD", small)
    rng = np.random.default_rng(0)
    n_u, n_i = small.n_users, small.n_items
    arrays = [rng.normal(0, 0.1, s).astype(np.float32) for s in ((n_u, K), (n_i, K), (n_i, K), (n_u, K))]
    bu, bi = rng.normal(0, 0.1, n_u).astype(np.float32), rng.normal(0, 0.1, n_i).astype(np.float32)
    item_w = rng.uniform(0.2, 1, n_i).astype(np.float32)
    trustee_w = rng.uniform(0.2, 1, n_u).astype(np.float32)
    order = rng.permutation(n_u).astype(np.int64)
    inner = np.argsort(np.repeat(np.arange(n_u), np.diff(r.indptr)) + rng.random(r.nnz), kind="stable")
    ref = [a.astype(np.float64) for a in (*arrays, bu, bi)]
    f32 = np.float32
    trustsvd_epoch(order, r.indptr.astype(np.int64), r.indices.astype(np.int32), r.data, inner.astype(np.int64),
                   t.indptr, t.indices, t.data, *arrays, bu, bi, f32(3.0), f32(0.02), f32(0.3), f32(0.5), item_w,
                   trustee_w, 1)
    _trustsvd_reference(order, r.indptr, r.indices, r.data.astype(np.float64), inner, t.indptr, t.indices,
                        t.data.astype(np.float64), *ref, 3.0, 0.02, 0.3, 0.5, item_w, trustee_w)
    for got, want in zip((*arrays, bu, bi), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- social cold start
@pytest.fixture(scope="module")
def blocks():
    return planted_blocks(side=True)


@pytest.mark.parametrize("name", SOCIAL)
def test_cold_start_from_trust_finds_the_trusted_group(name, blocks) -> None:
    """A new user who trusts some users of block b is recommended block b's items."""
    cls = registry.get(name)
    train, _ = blocks.for_task(cls.task)
    with single_thread():
        model = registry.create(name, **cls.test_params).fit(train)
    shares = []
    for b in range(int(blocks.user_block.max()) + 1):
        trusted = np.flatnonzero(blocks.user_block == b)[:6]
        ids = model.recommend_for_trust(trusted, k=6).ids[0]
        assert (ids >= 0).all()
        shares.append(np.mean(blocks.item_block[ids] == b))
    assert np.mean(shares) >= 0.8, f"{name}: share of the trusted block's items {np.round(shares, 2)}"
    # several users at once, one without links (a row of -1), trust values accepted
    rank = model.recommend_for_trust([np.array([0, 1]), np.array([], dtype=np.int64)], k=3,
                                     values=[np.array([1.0, 0.5]), np.array([])])
    assert rank.ids.shape == (2, 3) and (rank.ids[1] == -1).all() and (rank.ids[0] >= 0).all()
    with pytest.raises(DataError, match="out of range"):
        model.recommend_for_trust([train.n_users + 3], k=3)


def test_filmtrust_cold_start_from_trust_beats_the_global_mean() -> None:
    """FilmTrust: for test users who trust someone, rating predictions from their trust
    links alone (their own ratings ignored) are closer than the global mean."""
    from recseek.evaluation.jstarcraft import load_dataset_split

    _, train, test = load_dataset_split(shared_data_dir() / "jstarcraft" / "filmtrust")
    trust = sp.csr_array(train.trust)
    users = np.flatnonzero((np.diff(trust.indptr) > 0) & (np.diff(test.matrix.indptr) > 0))
    assert len(users) > 100
    with single_thread():
        model = registry.create("SocialMF", factors=5, epochs=100, learning_rate=0.02, reg_user=0.001,
                                reg_item=0.001, reg_social=1.0).fit(train)
    scores = model.score_for_trust([trust.indices[trust.indptr[u]:trust.indptr[u + 1]] for u in users])
    te = sp.csr_array(test.matrix)[users]
    rows = np.repeat(np.arange(len(users)), np.diff(te.indptr))
    pred = scores[rows, te.indices]
    ok = np.isfinite(pred)
    mae_social = np.mean(np.abs(pred[ok] - te.data[ok]))
    mae_mean = np.mean(np.abs(model.global_mean_ - te.data[ok]))
    assert ok.mean() > 0.95
    assert mae_social < 0.97 * mae_mean, (mae_social, mae_mean)


# ---------------------------------------------------------------- TimeSVD
def test_timesvd_recovers_a_change_of_item_ratings_over_time() -> None:
    """Items of group A are rated 4.5 in the first 50 days and 1.5 afterwards; the others 3."""
    rng = np.random.default_rng(0)
    n_u, n_i = 60, 20
    u = np.repeat(np.arange(n_u), n_i)
    i = np.tile(np.arange(n_i), n_u)
    day = rng.uniform(0, 100, len(u))
    group = i < 10
    r = np.where(group, np.where(day < 50, 4.5, 1.5), 3.0) + rng.normal(0, 0.1, len(u))
    data = Interactions.from_arrays(u, i, r, day * 86400.0)
    with single_thread():
        model = registry.create("TimeSVD", factors=4, epochs=40, learning_rate=0.01, bins=4, beta=0.4).fit(data)
    users = np.arange(n_u)
    early = model.predict_at(users, np.zeros(n_u, np.int64), np.full(n_u, 20 * 86400.0))
    late = model.predict_at(users, np.zeros(n_u, np.int64), np.full(n_u, 80 * 86400.0))
    assert early.mean() > 4.0 and late.mean() < 2.0, (early.mean(), late.mean())
    other = model.predict_at(users, np.full(n_u, 15), np.full(n_u, 80 * 86400.0))
    assert abs(other.mean() - 3.0) < 0.3
    with pytest.raises(DataError, match="TimeSVD needs a timestamp"):
        registry.create("TimeSVD").fit(Interactions.from_arrays(u, i, r))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("name", SOCIAL)
def test_missing_trust_graph_is_one_clear_error(name) -> None:
    data = synthetic(n_users=20, n_items=15, seed=1)
    with pytest.raises(DataError, match=f"{name}.*trust"):
        registry.create(name, **registry.get(name).test_params).fit(data)


def test_divergence_names_the_model_and_epoch(small) -> None:
    with pytest.raises(TrainingError, match=r"SoReg: training diverged at epoch \d+"):
        registry.create("SoReg", learning_rate=5.0, epochs=50).fit(small)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*SOCIAL, "TimeSVD"])
def test_fixed_seed_gives_the_same_model_on_one_and_two_threads(name) -> None:
    from recseek import _numba
    from recseek.testing.conformance import make_model

    data = synthetic(n_users=200, n_items=120, density=0.15, seed=5, side=True)
    before = _numba.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            _numba.set_num_threads(threads)
            model = make_model(name, seed=7).fit(data)
            runs.append((model.get_parameters(), model.score(np.arange(0, data.n_users, 7))))
    finally:
        _numba.set_num_threads(before)
    (pa, sa), (pb, sb) = runs
    assert sorted(pa) == sorted(pb)
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key], err_msg=f"{name}: {key} differs")
    np.testing.assert_array_equal(sa, sb)


def test_timesvd_state_is_checked_on_load_and_predict_at_validates(tmp_path) -> None:
    from recseek.errors import ModelFileError, ParameterError

    data = synthetic(n_users=30, n_items=20, seed=2)
    model = registry.create("TimeSVD", factors=3, epochs=3).fit(data)
    params = model.get_parameters()
    bad = dict(params)
    bad["day_indptr_"] = params["day_indptr_"][::-1].copy()
    with pytest.raises(ModelFileError, match="day_indptr_"):
        registry.create("TimeSVD", factors=3, epochs=3).set_parameters(bad)
    model.save(tmp_path / "m")
    loaded = registry.get("TimeSVD").load(tmp_path / "m")
    u, i, _, t = data.to_coo()
    np.testing.assert_array_equal(loaded.predict_at(u, i, t), model.predict_at(u, i, t))
    with pytest.raises(ParameterError, match="same length"):
        model.predict_at(u[:3], i[:2], t[:3])
    with pytest.raises(DataError, match="finite"):
        model.predict_at(u[:1], i[:1], np.array([np.nan]))
