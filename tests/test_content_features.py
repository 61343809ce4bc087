"""VBPR, RankCD and RankVFCD: update rules against numpy re-derivations from the papers'
objectives, and item features that help where interactions are few (planted synthetic
features and MovieLens-100K genres and title words)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.data._vocab import Vocabulary
from recseek.data.split import split
from recseek.errors import DataError
from recseek.models import registry
from recseek.testing.conformance import single_thread
from recseek.testing.fixtures import shared_data_dir, with_side_data


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- VBPR: one SGD step
def test_vbpr_step_is_a_gradient_step_of_bpr_opt():
    """One sample of the kernel moves every parameter by lr x the gradient of
    ln sigmoid(x_uij) - penalties (central finite differences in float64)."""
    from recseek.models.content._e_kernels import vbpr_epoch
    from recseek.models.ranking._kernels import chunk_seeds

    rng = np.random.default_rng(5)
    k, kv, nf = 3, 2, 5
    U, V, b = rng.normal(0, 0.5, (1, k)), rng.normal(0, 0.5, (2, k)), rng.normal(0, 0.5, 2)
    T, E, w = rng.normal(0, 0.5, (1, kv)), rng.normal(0, 0.5, (nf, kv)), rng.normal(0, 0.5, nf)
    # item 0 has features 0, 1, 3; item 1 has 1, 4 (feature 2 is nobody's: untouched)
    F = sp.csr_array(np.array([[0.5, 1.0, 0, 0.25, 0], [0, 0.75, 0, 0, 1.0]], dtype=np.float32))
    lr, reg, reg_b, reg_e = 0.1, 0.05, 0.2, 0.3
    touched = [0, 1, 3, 4]

    def objective(params):
        U_, V_, b_, T_, E_, w_ = params
        d = F.toarray()[0] - F.toarray()[1]
        x = b_[0] - b_[1] + U_[0] @ (V_[0] - V_[1]) + T_[0] @ (E_.T @ d) + w_ @ d
        pen = reg * (U_[0] @ U_[0] + V_[0] @ V_[0] + V_[1] @ V_[1] + T_[0] @ T_[0]) + reg_b * (b_ @ b_)
        pen += reg_e * sum(E_[t] @ E_[t] + w_[t] ** 2 for t in touched)
        return np.log(sigmoid(x)) - pen / 2

    params = [U, V, b, T, E, w]
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = objective(params)
            p[idx] = old - 1e-6
            down = objective(params)
            p[idx] = old
            g[idx] = (up - down) / 2e-6
        grads.append(g)
    arrs = [np.ascontiguousarray(p, dtype=np.float32) for p in params]
    indptr = np.array([0, 1], dtype=np.int64)
    indices = np.array([0], dtype=np.int32)
    vbpr_epoch(*arrs, F.indptr.astype(np.int64), F.indices.astype(np.int32), F.data.astype(np.float32),
               indptr, indices, np.zeros(1, np.int32), indices, np.zeros(1, np.int32), 1, False,
               np.float32(lr), np.float32(reg), np.float32(reg_b), np.float32(reg_e), chunk_seeds(0, 0, 1))
    for name, new, old, g in zip("U V b T E w".split(), arrs, params, grads, strict=True):
        np.testing.assert_allclose((new - old) / lr, g, atol=2e-4, err_msg=name)
    assert np.array_equal(arrs[4][2], E[2].astype(np.float32))  # the untouched feature row stays


# ---------------------------------------------------------------- RankCD: coordinate descent
def tiny_implicit(seed=0, n_users=12, n_items=9, density=0.3) -> Interactions:
    rng = np.random.default_rng(seed)
    m = rng.random((n_users, n_items)) < density
    m[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    u, i = np.nonzero(m)
    return Interactions.from_arrays(u, i, user_vocab=Vocabulary(np.arange(n_users), "user"),
                                    item_vocab=Vocabulary(np.arange(n_items), "item"))


def cd_sweep(X, Y, R, C, reg):
    """Coordinate-wise exact minimisation of sum_j C_rj (R_rj - x_r.y_j)^2 + reg |x_r|^2, in float64."""
    X = X.copy()
    for r in range(X.shape[0]):
        for f in range(X.shape[1]):
            rest = R[r] - (X[r] @ Y.T - X[r, f] * Y[:, f])
            X[r, f] = (C[r] * rest * Y[:, f]).sum() / (reg + (C[r] * Y[:, f] ** 2).sum())
    return X


def test_rankcd_sweeps_match_a_dense_numpy_derivation():
    data = tiny_implicit()
    alpha, reg, std, k = 5.0, 0.3, 0.1, 4
    model = registry.create("RankCD", factors=k, epochs=2, reg=reg, alpha=alpha, init_std=std, seed=3)
    with single_thread():
        model.fit(data)
    rng = np.random.default_rng(3)
    P = (rng.standard_normal((data.n_users, k), dtype=np.float32) * np.float32(std)).astype(np.float64)
    Q = (rng.standard_normal((data.n_items, k), dtype=np.float32) * np.float32(std)).astype(np.float64)
    R = data.matrix.toarray() > 0
    C = 1.0 + alpha * R
    for _ in range(2):
        P = cd_sweep(P, Q, R.astype(float), C, reg)
        Q = cd_sweep(Q, P, R.T.astype(float), C.T, reg)
    np.testing.assert_allclose(model.user_factors_, P, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(model.item_factors_, Q, rtol=1e-3, atol=1e-4)


def test_rankcd_is_eals_with_uniform_missing_weights():
    data = tiny_implicit(1, 30, 20)
    a = registry.create("RankCD", factors=5, epochs=4, reg=0.5, alpha=3.0, init_std=0.1, seed=2).fit(data)
    b = registry.create("EALS", factors=5, epochs=4, reg=0.5, alpha=3.0, init_std=0.1, seed=2,
                        missing_weighting="uniform").fit(data)
    np.testing.assert_allclose(a.score(np.arange(30)), b.score(np.arange(30)), atol=1e-4)


def test_rankcd_fold_in_is_the_exact_user_minimiser():
    data = tiny_implicit(2)
    model = registry.create("RankCD", factors=4, epochs=5, reg=0.2, alpha=4.0).fit(data)
    items = np.array([0, 3, 5])
    Q = model.item_factors_.astype(np.float64)
    c = np.ones(data.n_items)
    c[items] += 4.0
    r = np.zeros(data.n_items)
    r[items] = 1.0
    p = np.linalg.solve((Q * c[:, None]).T @ Q + 0.2 * np.eye(4), (Q * (c * r)[:, None]).sum(axis=0))
    rows = sp.csr_array((np.ones(3, np.float32), (np.zeros(3, int), items)), shape=(1, data.n_items))
    np.testing.assert_allclose(model.fold_in(rows)[0], p, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------- RankVFCD: coordinate descent
def vfcd_data(seed=0) -> Interactions:
    data = tiny_implicit(seed, 15, 10)
    rng = np.random.default_rng(seed + 1)
    feats = sp.csr_array(np.where(rng.random((10, 6)) < 0.5, rng.random((10, 6)), 0).astype(np.float32))
    rel = sp.csr_array((rng.random((10, 10)) < 0.2).astype(np.float32))
    return replace(data, item_features=feats, meta={"item_relations": rel})


def vfcd_objective(model, data, alpha, beta, gamma, reg, reg_feature) -> float:
    """The RankVFCD objective of the class docstring, densely in float64."""
    P, Q, Z, E = (getattr(model, n).astype(np.float64) for n in
                  ("user_factors_", "item_factors_", "relation_factors_", "feature_factors_"))
    R = (data.matrix.toarray() > 0).astype(float)
    S = (data.meta["item_relations"].toarray() > 0).astype(float)
    F = data.item_features.toarray() / model.feature_scale_
    out = ((1 + alpha * R) * (R - P @ Q.T) ** 2).sum() + reg * ((P ** 2).sum() + (Q ** 2).sum() + (Z ** 2).sum())
    out += beta * ((1 + alpha * S) * (S - Q @ Z.T) ** 2).sum()
    out += gamma * ((Q - F @ E) ** 2).sum() + reg_feature * (E ** 2).sum()
    return float(out)


def test_rankvfcd_descends_its_objective_to_a_stationary_point():
    data = vfcd_data()
    hp = dict(alpha=2.0, beta=3.0, gamma=4.0, reg=0.5, reg_feature=1.5)
    values = []
    for epochs in (1, 2, 3, 4, 6):
        with single_thread():
            m = registry.create("RankVFCD", factors=3, epochs=epochs, init_std=0.3, seed=1, **hp).fit(data)
        values.append(vfcd_objective(m, data, **hp))
    assert all(b <= a * (1 + 1e-5) for a, b in zip(values, values[1:], strict=False)), values
    assert values[-1] < values[0]
    with single_thread():
        m = registry.create("RankVFCD", factors=3, epochs=400, init_std=0.3, seed=1, **hp).fit(data)
    # at a stationary point no small move of any parameter lowers the objective
    base = vfcd_objective(m, data, **hp)
    for name in ("user_factors_", "item_factors_", "relation_factors_", "feature_factors_"):
        arr = getattr(m, name)
        for idx in [(0, 0), (arr.shape[0] - 1, 2), (arr.shape[0] // 2, 1)]:
            old = arr[idx]
            grads = []
            for step in (1e-3, -1e-3):
                arr[idx] = old + step
                grads.append((vfcd_objective(m, data, **hp) - base) / abs(step))
            arr[idx] = old
            assert min(grads) > -1e-3, (name, idx, grads)


def test_rankvfcd_without_relations_and_beta_zero_agree():
    data = vfcd_data(3)
    plain = replace(data, meta={})
    a = registry.create("RankVFCD", factors=4, epochs=3, beta=0.0).fit(data)
    b = registry.create("RankVFCD", factors=4, epochs=3, beta=5.0).fit(plain)
    np.testing.assert_allclose(a.score(np.arange(15)), b.score(np.arange(15)), atol=1e-5)
    assert not a.relation_factors_.any() and not b.relation_factors_.any()


def test_rankvfcd_scores_untrained_items_from_their_features():
    data = vfcd_data(4)
    keep = data.matrix.indices != 7
    data = data.subset(keep)
    m = registry.create("RankVFCD", factors=4, epochs=3).fit(data)
    assert not m.item_trained_[7] and m.item_trained_.sum() == 9
    F = data.item_features.toarray() / m.feature_scale_
    np.testing.assert_allclose(m.score(np.array([0]), np.array([7]))[0, 0],
                               m.user_factors_[0] @ (F[7] @ m.feature_factors_), rtol=1e-4, atol=1e-6)


def test_feature_models_refuse_data_without_features():
    data = tiny_implicit()
    for name in ("VBPR", "RankVFCD"):
        with pytest.raises(DataError, match=name):
            registry.create(name).fit(data)
    bad = replace(vfcd_data(), meta={"item_relations": sp.csr_array((3, 3), dtype=np.float32)})
    with pytest.raises(DataError, match="item_relations"):
        registry.create("RankVFCD").fit(bad)


# ---------------------------------------------------------------- features help cold items
def cold_split(data: Interactions, share: float, seed: int):
    """Per-user 80/20 split, then every training record of a random ``share`` of the items moved to test."""
    train, test = split(data, "ratio", ratio=0.8, by="user", order="random", seed=seed)
    rng = np.random.default_rng(seed + 101)
    pool = np.flatnonzero(np.bincount(train.matrix.indices, minlength=train.n_items) > 0)
    cold = np.sort(rng.choice(pool, max(1, int(share * len(pool))), replace=False))
    moved = np.isin(train.matrix.indices, cold)
    tr, mv = train.subset(~moved), train.subset(moved)
    te = Interactions.from_indices(np.concatenate([test.user_index(), mv.user_index()]),
                                   np.concatenate([test.matrix.indices, mv.matrix.indices]).astype(np.int64),
                                   np.concatenate([test.matrix.data, mv.matrix.data]), None, test)
    return tr, te, cold


def cold_auc(model, train, test, items) -> float:
    """Mean over users with a test item among ``items`` of the AUC of ranking ``items``."""
    sub = sp.csr_array(test.matrix[:, items])
    users = np.flatnonzero(np.diff(sub.indptr) > 0)
    scores = model.score(users, items).astype(np.float64)
    pos = sub[users].toarray() > 0
    out = []
    for r in range(len(users)):
        s, p = scores[r], pos[r]
        diff = s[p][:, None] - s[~p][None, :]
        out.append(((diff > 0) + 0.5 * (diff == 0)).mean())
    return float(np.mean(out))


def planted(seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    n_users, n_items, n_groups = 300, 240, 6
    ug, ig = rng.integers(0, n_groups, n_users), rng.integers(0, n_groups, n_items)
    rows, cols = [], []
    for u in range(n_users):
        own = np.flatnonzero(ig == ug[u])
        pick = rng.choice(own, min(len(own), 15), replace=False)
        rows += [u] * (len(pick) + 2)
        cols += list(pick) + list(rng.choice(n_items, 2, replace=False))
    data = Interactions.from_arrays(np.array(rows), np.array(cols))
    return with_side_data(data, ug[data.users.ids.astype(np.int64)], ig[data.items.ids.astype(np.int64)], seed=seed)


def test_planted_features_rank_cold_items():
    """Items never seen in training: the feature-aware models rank them by their (noisy
    group-indicator) features; BPR and RankCD can only guess."""
    train, test, cold = cold_split(planted(), 0.15, 0)
    fits = {}
    with single_thread():
        for name, hp in [("BPR", {"factors": 16, "epochs": 30}), ("VBPR", {"factors": 16, "feature_factors": 8,
                                                                           "epochs": 30}),
                         ("RankCD", {"factors": 16, "epochs": 8, "reg": 5.0}),
                         ("RankVFCD", {"factors": 16, "epochs": 8, "reg": 5.0})]:
            fits[name] = cold_auc(registry.create(name, **hp).fit(train), train, test, cold)
    assert fits["VBPR"] > 0.8 and fits["RankVFCD"] > 0.8, fits
    assert fits["VBPR"] > fits["BPR"] + 0.2 and fits["RankVFCD"] > fits["RankCD"] + 0.2, fits


def test_movielens_genres_and_titles_help_cold_items():
    """MovieLens-100K (ratings >= 4), genres and shared title words as features: on items
    whose training records were all withheld, VBPR beats BPR and RankVFCD beats RankCD."""
    root = shared_data_dir()
    assert root is not None, "the shared data folder is needed (RECSEEK_TEST_DATA)"
    from recseek.data import readers
    from recseek.data.readers import genre_features

    data = readers.read(root / "ml-100k").binarize(4)
    feats, names = genre_features(data.item_data)
    data = replace(data, item_features=feats, meta={**data.meta, "item_feature_names": names})
    train, test, cold = cold_split(data, 0.1, 0)
    auc = {}
    with single_thread():
        for name, hp in [("BPR", {"factors": 32, "epochs": 40}),
                         ("VBPR", {"factors": 32, "feature_factors": 16, "epochs": 40}),
                         ("RankCD", {"factors": 32, "epochs": 10, "reg": 10.0}),
                         ("RankVFCD", {"factors": 32, "epochs": 10, "reg": 10.0, "reg_feature": 5.0})]:
            auc[name] = cold_auc(registry.create(name, **hp).fit(train), train, test, cold)
    assert auc["VBPR"] > auc["BPR"] + 0.04 and auc["RankVFCD"] > auc["RankCD"] + 0.04, auc
    assert auc["VBPR"] > 0.56 and auc["RankVFCD"] > 0.56, auc


@pytest.mark.parametrize("name", ["VBPR", "RankCD", "RankVFCD"])
def test_fixed_seed_reproduces_on_one_and_two_threads(name):
    from recseek import _numba
    from recseek.testing.fixtures import synthetic

    data = synthetic(n_users=200, n_items=150, density=0.15, seed=5, side=True)
    cls = registry.get(name)
    fits = []
    before = _numba.get_num_threads()
    try:
        for threads in (1, 2, 2):
            _numba.set_num_threads(threads)
            m = registry.create(name, **cls.test_params, seed=7).fit(data)
            fits.append(m.get_parameters())
    finally:
        _numba.set_num_threads(before)
    for other in fits[1:]:
        assert sorted(other) == sorted(fits[0])
        for key, value in fits[0].items():
            np.testing.assert_array_equal(value, other[key], err_msg=f"{name}: {key} differs")


def test_rankvfcd_item_relations_help_rare_items():
    """Related-item pairs within planted taste groups (features pure noise, gamma 0): the
    relation factorisation (beta > 0) ranks items with 1-3 training records better."""
    rng = np.random.default_rng(0)
    n_users, n_items, n_groups = 300, 240, 6
    ug, ig = rng.integers(0, n_groups, n_users), rng.integers(0, n_groups, n_items)
    rare = rng.random(n_items) < 0.4
    rows, cols = [], []
    for u in range(n_users):
        own = np.flatnonzero(ig == ug[u])
        w = np.where(rare[own], 0.05, 1.0)
        pick = rng.choice(own, min(len(own), 15), replace=False, p=w / w.sum())
        rows += [u] * len(pick)
        cols += list(pick)
    data = Interactions.from_arrays(np.array(rows), np.array(cols))
    group = ig[data.items.ids.astype(np.int64)]
    r, c = [], []
    for i in range(data.n_items):
        same = np.flatnonzero(group == group[i])
        for j in rng.choice(same[same != i], 5, replace=False):
            r.append(i)
            c.append(j)
    rel = sp.csr_array((np.ones(len(r), np.float32), (r, c)), shape=(data.n_items,) * 2)
    noise = sp.csr_array(rng.random((data.n_items, 4)).astype(np.float32))
    data = replace(data, item_features=noise, meta={"item_relations": rel})
    train, test = split(data, "ratio", ratio=0.8, by="user", order="random", seed=0)
    counts = np.bincount(train.matrix.indices, minlength=train.n_items)
    few = np.flatnonzero((counts >= 1) & (counts <= 3))
    auc = {beta: cold_auc(registry.create("RankVFCD", factors=16, epochs=10, reg=5.0, beta=beta, gamma=0.0)
                          .fit(train), train, test, few) for beta in (0.0, 10.0)}
    assert auc[10.0] > auc[0.0] + 0.02, auc
