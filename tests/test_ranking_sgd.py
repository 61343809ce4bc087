"""SGD ranking factorization models: BPR family, RankSGD, WARPMF, CLiMF, ListwiseMF."""

from __future__ import annotations

import numpy as np
import pytest

from recseek.data import Interactions
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
