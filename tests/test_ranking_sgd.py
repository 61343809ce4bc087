"""SGD ranking factorization models: BPR family, RankSGD, WARPMF, CLiMF, ListwiseMF."""

from __future__ import annotations

import numpy as np
import pytest

from recseek.data import Interactions, Vocabulary
from recseek.errors import DataError, ParameterError, TrainingError
from recseek.models import create
from recseek.testing.fixtures import holdout_last, ml100k_sample, synthetic

SGD_MODELS = ["BPR", "WBPR", "AoBPR", "GBPR", "RankSGD", "WARPMF", "CLiMF", "ListwiseMF"]


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic(n_users=80, n_items=50, seed=5)


@pytest.fixture
def one_thread():
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize(
    "name,params,word",
    [
        ("BPR", {"factors": 0}, "factors"),
        ("BPR", {"reg": -0.1}, "reg"),
        ("BPR", {"learning_rate": 0.0}, "learning_rate"),
        ("BPR", {"sampling": "items"}, "sampling"),
        ("BPR", {"samples_per_epoch": 0}, "samples_per_epoch"),
        ("AoBPR", {"item_rank_scale": 0.0}, "item_rank_scale"),
        ("GBPR", {"group_size": 0}, "group_size"),
        ("WARPMF", {"max_trials": 0}, "max_trials"),
        ("CLiMF", {"init_std": -1.0}, "init_std"),
        ("ListwiseMF", {"epochs": 0}, "epochs"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(name, params, word):
    with pytest.raises(ParameterError, match=word):
        create(name, **params)


@pytest.mark.parametrize("name", ["BPR", "WBPR", "GBPR", "WARPMF", "RankSGD"])
def test_divergence_is_detected(name, data):
    model = create(name, factors=4, epochs=5, learning_rate=1e6, reg=1.0, verbose=False)
    with pytest.raises(TrainingError, match="epoch"):
        model.fit(data)


@pytest.mark.parametrize("name", SGD_MODELS)
def test_deterministic_on_one_thread(name, data, one_thread):
    a = create(name, factors=4, epochs=3, seed=7).fit(data)
    b = create(name, factors=4, epochs=3, seed=7).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    c = create(name, factors=4, epochs=3, seed=8).fit(data)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_scores_are_dot_products_plus_bias(data):
    m = create("BPR", factors=6, epochs=3).fit(data)
    s = m.score([0, 3])
    expected = m.user_factors_[[0, 3]] @ m.item_factors_.T + m.item_bias_
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-6)
    assert m.item_vectors().shape == (data.n_items, 6) and m.user_vectors().shape == (data.n_users, 6)
    sim = m.similar_items([1], k=3)
    assert (sim.ids[0] != 1).all()


def test_bpr_beats_popularity_on_movielens():
    data = ml100k_sample(300).binarize(4)
    from recseek.testing.conformance import recall_at_k

    train, test = holdout_last(data)
    bpr = create("BPR", factors=32, epochs=40).fit(train)
    pop = create("MostPopular").fit(train)
    assert recall_at_k(bpr, train, test) > recall_at_k(pop, train, test)


def test_fold_in_of_training_users_reproduces_their_recommendations():
    data = synthetic(n_users=150, n_items=80, density=0.2, seed=2)
    m = create("BPR", factors=8, epochs=60, learning_rate=0.05).fit(data)
    users = np.arange(40)
    rows = [data.items_of(u) for u in users]
    folded = m.recommend_new(rows, k=10)
    trained = m.recommend(users, k=10)
    overlap = np.mean([len(np.intersect1d(folded.ids[r], trained.ids[r])) / 10 for r in range(len(users))])
    assert overlap >= 0.6, overlap
    # the folded-in user never gets its own items back
    for r, items in enumerate(rows):
        assert not np.isin(folded.ids[r], items).any()


def test_fold_in_rejects_wrong_width(data):
    import scipy.sparse as sp

    m = create("CLiMF", factors=4, epochs=2).fit(data)
    with pytest.raises(DataError, match="items"):
        m.fold_in(sp.csr_array((1, data.n_items + 1), dtype=np.float32))


def test_partial_fit_grows_vocabularies_and_learns_new_records(data):
    m = create("BPR", factors=8, epochs=30, learning_rate=0.05).fit(data)
    n_users, n_items = data.n_users, data.n_items
    old_item_raw = data.items.ids[:5]
    # a new user who likes a new item and five known items; a known user who likes it too
    known_user = data.users.ids[0]
    new = Interactions.from_arrays(
        np.array(["new-u"] * 6 + [str(known_user)]),
        np.array(["new-i", *map(str, old_item_raw), "new-i"]),
    )
    with pytest.raises(DataError):
        m.partial_fit("not interactions")
    m.partial_fit(new, epochs=50)
    # "new-u" and "new-i" are new; the string form of a known integer id is the known id
    assert m.n_users_ == n_users + 1 and m.n_items_ == n_items + 1
    assert m.user_factors_.shape == (m.n_users_, 8) and m.item_factors_.shape == (m.n_items_, 8)
    assert m.seen_.shape == (m.n_users_, m.n_items_)
    u = m.users_.index("new-u")
    i = m.items_.index("new-i")
    assert m.seen_[[u]].toarray()[0, i] == 1
    rec = m.recommend([u], k=5)
    assert not np.isin(rec.ids[0], m.seen_[[u]].indices).any()
    # the new user's records score above the other items after the update
    s = m.score([u])[0]
    pos = m.seen_[[u]].indices
    assert np.isfinite(s).all() and s[pos].mean() > np.delete(s, pos).mean()


def test_partial_fit_with_known_ids_keeps_indices(data):
    m = create("BPR", factors=8, epochs=10).fit(data)
    before = m.item_factors_.copy()
    u_raw = data.users.ids[[1, 2]]
    i_raw = data.items.ids[[3, 4]]
    new = Interactions.from_arrays(u_raw, i_raw)
    m.partial_fit(new, epochs=2)
    assert m.n_users_ == data.n_users and m.n_items_ == data.n_items
    assert m.users_ == data.users and m.items_ == data.items
    assert m.seen_[[1]].toarray()[0, 3] == 1
    assert not np.array_equal(before, m.item_factors_)


def _climf_objective(U, V, items):
    f = V[items] @ U
    g = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    d = f[None, :] - f[:, None]  # d[i, k] = f_k - f_i
    return np.sum(np.log(g(f))) + np.sum(np.log(1.0 - g(d)) * (1 - np.eye(len(f))))


def test_climf_step_follows_the_gradient_of_its_objective():
    from recseek.models.ranking._kernels import climf_epoch

    rng = np.random.default_rng(0)
    U = rng.normal(0, 0.5, (1, 4)).astype(np.float32)
    V = rng.normal(0, 0.5, (6, 4)).astype(np.float32)
    items = np.array([0, 2, 3, 5])
    indptr = np.array([0, 4], dtype=np.int64)
    indices = items.astype(np.int32)
    lr = 1e-3
    U1, V1 = U.copy(), V.copy()
    climf_epoch(U1, V1, indptr, indices, np.float32(lr), np.float32(0), np.float32(0), np.array([0]))
    eps = 1e-4
    U64, V64 = U[0].astype(np.float64), V.astype(np.float64)
    num_u = np.array([(_climf_objective(U64 + eps * e, V64, items) - _climf_objective(U64 - eps * e, V64, items))
                      / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose((U1[0] - U[0]) / lr, num_u, rtol=2e-2, atol=2e-3)
    for it in items:
        num_v = []
        for e in np.eye(4):
            Vp, Vm = V64.copy(), V64.copy()
            Vp[it] += eps * e
            Vm[it] -= eps * e
            num_v.append((_climf_objective(U64, Vp, items) - _climf_objective(U64, Vm, items)) / (2 * eps))
        np.testing.assert_allclose((V1[it] - V[it]) / lr, num_v, rtol=2e-2, atol=2e-3)
    # items outside the user's list are untouched
    np.testing.assert_array_equal(V1[[1, 4]], V[[1, 4]])


def test_bpr_step_raises_the_positive_over_the_negative(one_thread):
    from recseek.models.ranking._kernels import bpr_epoch, chunk_seeds

    rng = np.random.default_rng(1)
    U = rng.normal(0, 0.1, (1, 3)).astype(np.float32)
    V = rng.normal(0, 0.1, (2, 3)).astype(np.float32)
    b = np.zeros(2, dtype=np.float32)
    indptr = np.array([0, 1], dtype=np.int64)
    indices = np.array([0], dtype=np.int32)
    gap0 = float(U[0] @ (V[0] - V[1]))
    bpr_epoch(U, V, b, indptr, indices, np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int32),
              200, False, np.float32(0.1), np.float32(0), np.float32(0), np.float32(0), True, chunk_seeds(0, 0, 1))
    assert float(U[0] @ (V[0] - V[1]) + b[0] - b[1]) > gap0 + 1.0
    assert b[0] > 0 > b[1]


def test_warp_ranks_positives_first(data):
    train, test = holdout_last(data)
    m = create("WARPMF", factors=8, epochs=30).fit(train)
    # training positives score above the user's unseen items on average
    s = m.score(np.arange(train.n_users))
    seen = train.matrix.toarray() > 0
    assert s[seen].mean() > s[~seen].mean()


# ---------------------------------------------------------------------------- update rules
# One epoch of one sample on a tiny data set whose negatives are forced (or few), compared
# with a numpy re-derivation of the paper's update (or finite differences of the
# objective). The state before the step is captured when training starts its epochs.

def _tiny(rows: dict[int, list[int]], values: dict[tuple[int, int], float] | None = None) -> Interactions:
    u = [a for a, items in rows.items() for _ in items]
    i = [b for items in rows.values() for b in items]
    v = [1.0 if values is None else values[(a, b)] for a, b in zip(u, i, strict=True)]
    users, _ = Vocabulary.from_values(np.arange(max(rows) + 1), "user")
    items, _ = Vocabulary.from_values(np.arange(max(i) + 1), "item")
    return Interactions.from_arrays(np.array(u), np.array(i), np.array(v), user_vocab=users, item_vocab=items)


def _one_epoch(name: str, data: Interactions, **params):
    """``(before, model)``: the factors and biases as the first epoch starts, and the model after it."""
    model = create(name, **{"epochs": 1, "factors": 3, "init_std": 0.3, "seed": 1, **params})
    before: dict[str, np.ndarray] = {}
    progress = model._progress

    def spy(iterable, total=None, desc=None):
        before.update(U=model.user_factors_.astype(np.float64), V=model.item_factors_.astype(np.float64),
                      b=model.item_bias_.astype(np.float64))
        return progress(iterable, total=total, desc=desc)

    model._progress = spy
    with_one_thread(model.fit, data)
    return before, model


def with_one_thread(fn, *args):
    from recseek._numba import get_num_threads, set_num_threads

    threads = get_num_threads()
    set_num_threads(1)
    try:
        return fn(*args)
    finally:
        set_num_threads(threads)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def _pair_update(s: dict, u: int, i: int, j: int, g: float, lr: float, reg: float, reg_b: float | None) -> dict:
    """One pairwise step raising i over j for u with gradient scale g (all from old values)."""
    U, V, b = s["U"].copy(), s["V"].copy(), s["b"].copy()
    uu, vi, vj = s["U"][u], s["V"][i], s["V"][j]
    U[u] = uu + lr * (g * (vi - vj) - reg * uu)
    V[i] = vi + lr * (g * uu - reg * vi)
    V[j] = vj + lr * (-g * uu - reg * vj)
    if reg_b is not None:
        b[i] += lr * (g - reg_b * s["b"][i])
        b[j] += lr * (-g - reg_b * s["b"][j])
    return {"U": U, "V": V, "b": b}


def _matches(model, expected: dict) -> bool:
    return (np.allclose(model.user_factors_, expected["U"], atol=2e-5)
            and np.allclose(model.item_factors_, expected["V"], atol=2e-5)
            and np.allclose(model.item_bias_, expected["b"], atol=2e-5))


def _assert_one_candidate(model, before: dict, candidates: list[dict]) -> None:
    assert not np.allclose(model.user_factors_, before["U"]), "no update happened"
    hits = [c for c in candidates if _matches(model, c)]
    assert len(hits) == 1, f"{len(hits)} of {len(candidates)} reference steps match the trained state"


# users 0 and 2 like item 0, user 1 likes item 1: every negative is forced
FORCED = {0: [0], 1: [1], 2: [0]}
FORCED_SAMPLES = [(0, 0, 1), (1, 1, 0), (2, 0, 1)]


@pytest.mark.parametrize("name,bias", [("BPR", True), ("WBPR", True), ("AoBPR", False)])
def test_bpr_family_step_matches_bpr_opt(name: str, bias: bool) -> None:
    """Rendle et al. 2009: x_uij = x_ui - x_uj (+ b_i - b_j), z = sigmoid(-x_uij);
    U_u += lr (z (V_i - V_j) - reg U_u), V_i += lr (z U_u - reg V_i),
    V_j += lr (-z U_u - reg V_j), b_i += lr (z - reg_b b_i), b_j -= lr (z + reg_b b_j)."""
    lr, reg, reg_b = 0.1, 0.05, 0.02
    extra = {"reg_bias": reg_b} if bias else {}
    before, model = _one_epoch(name, _tiny(FORCED), learning_rate=lr, reg=reg, samples_per_epoch=1, **extra)
    candidates = []
    for u, i, j in FORCED_SAMPLES:
        x = before["U"][u] @ (before["V"][i] - before["V"][j]) + (before["b"][i] - before["b"][j] if bias else 0)
        candidates.append(_pair_update(before, u, i, j, _sig(-x), lr, reg, reg_b if bias else None))
    _assert_one_candidate(model, before, candidates)


def test_ranksgd_step_matches_the_squared_pair_loss() -> None:
    """Jahrer & Toscher 2011: minimise ((x_ui - x_uj) - (r_ui - r_uj))^2 / 2 with r_uj = 0 for
    the unobserved j; one sweep over the two ratings (in either order), each step with
    g = r_ui - (x_ui - x_uj)."""
    lr, reg = 0.1, 0.05
    data = _tiny({0: [0], 1: [1]}, {(0, 0): 4.0, (1, 1): 2.0})
    before, model = _one_epoch("RankSGD", data, learning_rate=lr, reg=reg)
    rating = {(0, 0): 4.0, (1, 1): 2.0}
    candidates = []
    for order in ([(0, 0, 1), (1, 1, 0)], [(1, 1, 0), (0, 0, 1)]):
        s = {k: v.copy() for k, v in before.items()}
        for u, i, j in order:
            g = rating[(u, i)] - s["U"][u] @ (s["V"][i] - s["V"][j])
            s = _pair_update(s, u, i, j, g, lr, reg, None)
        candidates.append(s)
    _assert_one_candidate(model, before, candidates)


def test_warpmf_step_matches_the_weighted_hinge() -> None:
    """Weston et al. 2011: the first negative j with x_uj > x_ui - margin after N draws gives
    the rank estimate floor((n_items - |I_u| - 1) / N) and the weight L(rank) / L(n_items - 1),
    L(r) = sum_{k<=r} 1/k (rank 0 weighted like rank 1); the step descends
    weight (margin - x_ui + x_uj). Here factors start small, so the first draw violates."""
    lr, reg = 0.1, 0.05
    data = _tiny({0: [0], 1: [1, 2, 3]})
    before, model = _one_epoch("WARPMF", data, learning_rate=lr, reg=reg, samples_per_epoch=1, init_std=0.05)
    harmonic = np.cumsum(1.0 / np.arange(1, 4))
    candidates = []
    for u, i, j, n_seen in [(0, 0, 1, 1), (0, 0, 2, 1), (0, 0, 3, 1), (1, 1, 0, 3), (1, 2, 0, 3), (1, 3, 0, 3)]:
        rank = (4 - n_seen - 1) // 1
        weight = harmonic[max(rank, 1) - 1] / harmonic[-1]
        candidates.append(_pair_update(before, u, i, j, weight, lr, reg, None))
    _assert_one_candidate(model, before, candidates)


def test_gbpr_step_matches_the_group_preference() -> None:
    """Pan & Chen 2013: with group G (u and other users who liked i), r_Gui =
    rho mean_{w in G} x_wi + (1 - rho) x_ui; z = sigmoid(-(r_Gui + b_i - x_uj - b_j));
    V_i += lr (z (rho mean_G U_w + (1 - rho) U_u) - reg V_i), V_j += lr (-z U_u - reg V_j),
    U_u += lr (z ((1 - rho) V_i - V_j + rho V_i / |G|) - reg U_u),
    U_w += lr (z rho V_i / |G| - reg U_w) for the other members, biases as in BPR."""
    lr, reg, reg_b, rho = 0.1, 0.05, 0.02, 0.6
    before, model = _one_epoch("GBPR", _tiny(FORCED), learning_rate=lr, reg=reg, reg_bias=reg_b, rho=rho,
                               group_size=2, samples_per_epoch=1)
    candidates = []
    for u, i, j, group in [(0, 0, 1, [0, 2]), (2, 0, 1, [2, 0]), (1, 1, 0, [1])]:
        U, V, b = (before[k].copy() for k in ("U", "V", "b"))
        uu, vi, vj = before["U"][u], before["V"][i], before["V"][j]
        mean_u = before["U"][group].mean(axis=0)
        diff = rho * mean_u @ vi + (1 - rho) * uu @ vi + before["b"][i] - uu @ vj - before["b"][j]
        z = _sig(-diff)
        V[i] = vi + lr * (z * (rho * mean_u + (1 - rho) * uu) - reg * vi)
        V[j] = vj + lr * (-z * uu - reg * vj)
        U[u] = uu + lr * (z * ((1 - rho) * vi - vj + rho * vi / len(group)) - reg * uu)
        for w in group[1:]:
            U[w] = before["U"][w] + lr * (z * rho * vi / len(group) - reg * before["U"][w])
        b[i] += lr * (z - reg_b * before["b"][i])
        b[j] += lr * (-z - reg_b * before["b"][j])
        candidates.append({"U": U, "V": V, "b": b})
    _assert_one_candidate(model, before, candidates)


def _numeric_grad(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        grad[idx] = (fn(hi) - fn(lo)) / (2 * eps)
    return grad


# user 0 has three items, user 1 one other: the two per-user steps touch disjoint rows
LISTS = {0: [0, 1, 2], 1: [3]}
LIST_VALUES = {(0, 0): 4.0, (0, 1): 2.0, (0, 2): 3.0, (1, 3): 5.0}


def test_listwisemf_step_matches_its_documented_rule() -> None:
    """ListwiseMF (JStarCraft's ListRank-MF variant): over the user's items, with
    P_y = softmax(r), P_f = softmax(f), c_i = (P_y(i) - ln P_f(i)) g'(f_i);
    V_i += lr (c_i U_u - reg V_i), U_u += lr (sum_i c_i V_i - reg U_u), from old values."""
    lr, reg = 0.1, 0.02
    before, model = _one_epoch("ListwiseMF", _tiny(LISTS, LIST_VALUES), learning_rate=lr, reg=reg)
    U, V = before["U"].copy(), before["V"].copy()
    for u, items in LISTS.items():
        uu, vs = before["U"][u], before["V"][items]
        r = np.array([LIST_VALUES[(u, i)] for i in items])
        f = vs @ uu
        py = np.exp(r - r.max()) / np.exp(r - r.max()).sum()
        log_pf = f - (f.max() + np.log(np.exp(f - f.max()).sum()))
        c = (py - log_pf) * _sig(f) * (1 - _sig(f))
        V[items] = vs + lr * (c[:, None] * uu - reg * vs)
        U[u] = uu + lr * (c @ vs - reg * uu)
    np.testing.assert_allclose(model.user_factors_, U, atol=2e-5)
    np.testing.assert_allclose(model.item_factors_, V, atol=2e-5)


def test_prankd_step_is_gradient_descent_on_its_objective() -> None:
    """Hurley 2013: for (u, i) and a popularity-drawn unseen j, one SGD step on
    w_j (x_ui - x_uj - d_ij r_ui)^2 / 2 with d_ij = sqrt(1 - tanh(filter s_ij)); checked
    against finite differences of that objective. Only item 1 has popularity, so j = 1."""
    from recseek.models.factorization._prankd import prankd_epoch

    rng = np.random.default_rng(3)
    p, q = rng.normal(0, 0.3, (1, 3)), rng.normal(0, 0.3, (2, 3))
    r_ui, w_j, s_ij, filt, lr, reg = 4.0, 0.5, 0.3, 4.0, 0.05, 0.01
    d_ij = np.sqrt(1 - np.tanh(filt * s_ij))
    p0, q0 = p.copy(), q.copy()

    def loss(pu, qi, qj):
        return 0.5 * w_j * (pu @ qi - pu @ qj - d_ij * r_ui) ** 2

    gp = _numeric_grad(lambda x: loss(x, q0[0], q0[1]), p0[0])
    gi = _numeric_grad(lambda x: loss(p0[0], x, q0[1]), q0[0])
    gj = _numeric_grad(lambda x: loss(p0[0], q0[0], x), q0[1])
    with_one_thread(
        prankd_epoch, np.array([0, 1], dtype=np.int64), np.array([0], dtype=np.int32), np.array([r_ui]), p, q,
        np.array([0.0, 1.0]), np.array([0.0, w_j]), np.array([0, 1, 2], dtype=np.int64),
        np.array([1, 0], dtype=np.int32), np.array([s_ij, s_ij]), filt, lr, reg, 0,
    )
    np.testing.assert_allclose(p[0], p0[0] - lr * (gp + reg * p0[0]), atol=1e-9)
    np.testing.assert_allclose(q[0], q0[0] - lr * (gi + reg * q0[0]), atol=1e-9)
    np.testing.assert_allclose(q[1], q0[1] - lr * (gj + reg * q0[1]), atol=1e-9)
