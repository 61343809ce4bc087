"""Federated recommendation: local training against a numpy re-derivation, aggregation maths
against hand-computed cases, the leave-one-out protocol, privacy, uploads and seeds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.errors import ParameterError
from recseek.federated._kernels import OPT_ADAM, OPT_SGD, local_train_dot
from recseek.federated.aggregation import (
    FCF,
    FedAvg,
    RoundUploads,
    complementarity_matrix,
    composite_weights,
    project_simplex,
    similarity_matrix,
)
from recseek.federated.privacy import Privacy
from recseek.federated.protocol import evaluate_scores, hr_ndcg, leave_one_out, sampled_ranks
from recseek.federated.simulator import Federation, LocalTraining
from recseek.models import registry
from recseek.testing.fixtures import planted_blocks


# ---------------------------------------------------------------- local training
def _reference_client(V, u0, items, labels, order, opt, two_step, bias, bs, lr_u, lr_i, reg_u, reg_i):
    """One client's local epoch re-derived in float64 numpy: BCE of sigmoid(<u, v> + b),
    batch means, torch's Adam (moments over every touched row) or SGD with weight decay."""
    t_items = np.unique(items)
    r_of = np.searchsorted(t_items, items)
    u = u0.astype(np.float64).copy()
    b = 0.0
    W = V[t_items].astype(np.float64).copy()
    mu, vu, mW, vW = np.zeros_like(u), np.zeros_like(u), np.zeros_like(W), np.zeros_like(W)
    mb = vb = 0.0
    t = 0

    def grads(u, b, W, idx):
        r, y = r_of[idx], labels[idx]
        z = W[r] @ u + (b if bias else 0.0)
        g = (1 / (1 + np.exp(-z)) - y) / len(idx)
        gW = np.zeros_like(W)
        np.add.at(gW, r, g[:, None] * u[None])
        return g @ W[r], g.sum(), gW

    for s in range(0, len(items), bs):
        idx = order[s: s + bs]
        gu, gb, gW = grads(u, b, W, idx)
        t += 1
        if opt == OPT_ADAM:
            def adam(p, g, m, v, lr, t=t):
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * g * g
                return p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8), m, v
            u, mu, vu = adam(u, gu, mu, vu, lr_u)
            if bias:
                b, mb, vb = adam(b, gb, mb, vb, lr_u)
            W, mW, vW = adam(W, gW, mW, vW, lr_i)
        else:
            u = u - lr_u * (gu + reg_u * u)
            if bias:
                b = b - lr_u * gb
            if two_step:
                _, _, gW = grads(u, b, W, idx)
            W = W - lr_i * (gW + reg_i * W)
    return t_items, u, b, W


@pytest.mark.parametrize("opt,two_step,bias,bs", [(OPT_ADAM, False, False, 4), (OPT_ADAM, False, True, 6),
                                                  (OPT_SGD, True, True, 4), (OPT_SGD, False, False, 2)])
def test_local_training_matches_numpy(opt, two_step, bias, bs):
    rng = np.random.default_rng(0)
    n_items, d = 12, 4
    V = rng.standard_normal((n_items, d)).astype(np.float32)
    U = rng.standard_normal((3, d)).astype(np.float32)
    ub = np.zeros(3, np.float32)
    items = np.array([1, 5, 7, 5, 2, 9], dtype=np.int64)
    labels = np.array([1, 1, 0, 0, 1, 0], dtype=np.float32)
    order = np.array([3, 1, 0, 5, 4, 2], dtype=np.int64)
    t_items = np.unique(items)
    out = np.empty((len(t_items), d), np.float32)
    losses = np.zeros(1)
    f = np.float32
    u0 = U[1].copy()
    local_train_dot(np.array([1]), np.array([0, 6]), np.searchsorted(t_items, items), labels, order[None],
                    np.array([0, len(t_items)]), t_items, V[None].copy(), np.array([0]), U, ub, out, losses, 1, bs,
                    opt, f(0.1), f(0.5), f(0.01), f(0.02), f(0.9), f(0.999), f(1e-8), 0.0, bias, two_step)
    ti, u, b, W = _reference_client(V, u0, items, labels, order, opt, two_step, bias, bs, 0.1, 0.5, 0.01, 0.02)
    np.testing.assert_allclose(U[1], u, atol=2e-5)
    np.testing.assert_allclose(ub[1], b, atol=2e-5)
    np.testing.assert_allclose(out, W, atol=2e-5)
    # other clients are untouched
    assert U[0].tolist() != u.tolist()


# ---------------------------------------------------------------- aggregation maths
def test_project_simplex_hand_cases():
    np.testing.assert_allclose(project_simplex([[2.0, 0.0]]), [[1.0, 0.0]])
    np.testing.assert_allclose(project_simplex([[0.5, 0.5]]), [[0.5, 0.5]])
    # (0.8, 0.6, -1): theta = 0.2 on the two positive entries -> (0.6, 0.4, 0)
    np.testing.assert_allclose(project_simplex([[0.8, 0.6, -1.0]]), [[0.6, 0.4, 0.0]])
    # uniform shift: (3, 3, 3) -> thirds
    np.testing.assert_allclose(project_simplex([[3.0, 3.0, 3.0]]), [[1 / 3] * 3])


def test_project_simplex_is_the_nearest_point():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 5))
    x = project_simplex(y)
    assert np.all(x >= 0) and np.allclose(x.sum(axis=1), 1)
    for _ in range(200):  # no random simplex point is closer
        z = rng.dirichlet(np.ones(5), size=50)
        assert np.all(((x - y) ** 2).sum(1) <= ((z - y) ** 2).sum(1) + 1e-12)


def test_composite_weights_reduce_to_fedavg_and_follow_similarity():
    p = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(composite_weights(p, None, None, 0.0, 0.0), np.tile(p, (3, 1)))
    sim = np.eye(3)
    # client 0: projection of (0.5 + 0.6, 0.3, 0.2) = (1.1, 0.3, 0.2): theta = 0.2 -> (0.9, 0.1, 0)
    w = composite_weights(p, None, sim, 0.0, 0.6)
    np.testing.assert_allclose(w[0], [0.9, 0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_complementarity_and_similarity_hand_cases():
    e = np.eye(4)
    bases = np.stack([e[:2], e[:2], e[2:]])  # same, same, orthogonal subspace
    c = complementarity_matrix(bases)
    np.testing.assert_allclose(c[0, 1], 1.0, atol=1e-12)
    np.testing.assert_allclose(c[0, 2], 0.0, atol=1e-12)
    rng = np.random.default_rng(0)
    t = rng.normal(size=(2, 30, 4))
    tables = np.stack([t[0], t[0], t[1]])
    s = similarity_matrix(tables)
    assert s[0, 1] == 1.0 and s[0, 2] < 0.9 and np.allclose(s, s.T)


def test_fedavg_aggregation_hand_case():
    class State:
        V = np.zeros((3, 2), dtype=np.float32)

    up = RoundUploads(clients=np.array([4, 7]), owner=np.array([0, 0, 1]), items=np.array([0, 2, 2]),
                      deltas=np.array([[1, 1], [2, 0], [0, 4]], dtype=np.float32), n_samples=np.array([30, 10]))
    st = State()
    FedAvg().aggregate(st, up, np.random.default_rng(0))
    np.testing.assert_allclose(st.V, [[0.75, 0.75], [0, 0], [1.5, 1.0]])
    st.V[:] = 0
    FedAvg(weighting="uniform").aggregate(st, up, np.random.default_rng(0))
    np.testing.assert_allclose(st.V, [[0.5, 0.5], [0, 0], [1.0, 2.0]])


def _small_train(seed=0, n_users=30, n_items=25):
    data = planted_blocks()
    return data.for_task("ranking")[0]


def test_fcf_gradient_is_the_objective_gradient():
    """The server's summed upload equals the finite-difference gradient of
    sum_u sum_i c_ui (p_ui - x_u.y_i)^2 in Y (user factors held fixed)."""
    train = _small_train()
    captured = {}

    class Capture(FCF):
        def aggregate(self, state, up, rng):
            captured["g"] = up.gradients.copy()
            captured["U"] = state.U.copy()
            captured["V"] = state.V.copy()
            return {}

    fed = Federation(Capture(), LocalTraining(factors=3, confidence=2.0, reg_user=0.5, init_std=0.3), rounds=1)
    fed.fit(train)
    X = captured["U"].astype(np.float64)
    Y = captured["V"].astype(np.float64)
    R = train.matrix.toarray() > 0
    C = 1 + 2.0 * R

    def J(Y):
        return float((C * (R - X @ Y.T) ** 2).sum())

    num = np.zeros_like(Y)
    h = 1e-5
    for i in range(Y.shape[0]):
        for f in range(Y.shape[1]):
            Yp, Ym = Y.copy(), Y.copy()
            Yp[i, f] += h
            Ym[i, f] -= h
            num[i, f] = (J(Yp) - J(Ym)) / (2 * h)
    np.testing.assert_allclose(captured["g"], num, rtol=1e-4, atol=1e-4)
    # and each user vector is the minimiser of its own loss (zero gradient)
    gx = -2 * ((C * (R - X @ Y.T)) @ Y) + 2 * 0.5 * X
    assert np.abs(gx).max() < 1e-3


def test_fedca_without_composite_terms_is_fedavg():
    train = _small_train()
    a = registry.create("FedCA", factors=4, rounds=3, local_epochs=2, alpha=0.0, beta=0.0, aggregated_share=1.0,
                        interpolation=0.0, learning_rate=0.05, init_std=0.1).fit(train)
    b = registry.create("FedAvg", factors=4, rounds=3, local_epochs=2, learning_rate=0.05, init_std=0.1).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_allclose(a.score(users), b.score(users), atol=1e-4)


# ---------------------------------------------------------------- seeds
def test_seeds_reproduce_and_differ():
    train = _small_train()
    kw = dict(factors=4, rounds=3, local_epochs=2, clients_per_round=0.5, init_std=0.1)
    s1 = registry.create("FedCA", seed=3, **kw).fit(train).score(np.arange(10))
    s2 = registry.create("FedCA", seed=3, **kw).fit(train).score(np.arange(10))
    s3 = registry.create("FedCA", seed=4, **kw).fit(train).score(np.arange(10))
    np.testing.assert_array_equal(s1, s2)
    assert not np.allclose(s1, s3)


def test_threads_do_not_change_the_result():
    from recseek._numba import get_num_threads, set_num_threads

    train = _small_train()
    kw = dict(factors=4, rounds=2, local_epochs=2, init_std=0.1)
    before = get_num_threads()
    try:
        set_num_threads(1)
        one = registry.create("PFedRec", **kw).fit(train).score(np.arange(12))
        set_num_threads(2)
        two = registry.create("PFedRec", **kw).fit(train).score(np.arange(12))
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(one, two)


# ---------------------------------------------------------------- uploads and privacy
class _Recorder(FedAvg):
    def aggregate(self, state, up, rng):
        self.seen.append(up)
        return super().aggregate(state, up, rng)


def test_uploads_hold_no_interactions_and_fake_items_hide_them():
    train = _small_train()
    strat = _Recorder()
    strat.seen = []
    fed = Federation(strat, LocalTraining(factors=4, local_epochs=1, negatives=1, init_std=0.1), rounds=1,
                     privacy=Privacy(fake_items=5))
    fed.fit(train)
    up = strat.seen[0]
    # what leaves a client: item ids with changed rows, and a sample count; no labels, no user vector
    assert set(vars(up)) == {"clients", "owner", "items", "deltas", "n_samples", "bases", "gradients", "heads"}
    assert up.bases is None and up.gradients is None and up.heads is None
    for j, c in enumerate(up.clients[:20]):
        sent = set(up.items[up.owner == j].tolist())
        rated = set(train.items_of(c).tolist())
        assert rated <= sent
        # at least the 5 fake items plus the sampled negatives are uploaded beside the rated ones
        assert len(sent - rated) >= 5
    # the user vectors never travel: no upload array has the clients' vector rows
    assert up.deltas.shape[0] == len(up.items)


def test_laplace_noise_has_the_stated_scale():
    p = Privacy("laplace", epsilon=2.0, clip=0.5)
    assert p.noise_scale() == pytest.approx(0.5)
    rows = np.zeros((20000, 4), dtype=np.float32)
    noisy = p.perturb(rows, np.random.default_rng(0))
    # Laplace(b) has variance 2 b^2
    assert np.var(noisy) == pytest.approx(2 * 0.5 ** 2, rel=0.05)
    big = np.full((3, 4), 10.0, dtype=np.float32)
    clipped = Privacy("gaussian", epsilon=1e6, clip=1.0).perturb(big, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=1), 1.0, atol=1e-3)
    assert "epsilon = 2" in p.report(10) and "20 over 10 rounds" in p.report(10)


def test_privacy_settings_are_checked():
    with pytest.raises(ParameterError, match="epsilon"):
        Privacy("laplace", epsilon=0.0)
    with pytest.raises(ParameterError, match="privacy"):
        Privacy("exponential")
    with pytest.raises(ParameterError, match="no effect"):
        registry.create("FedAvg", epsilon=0.5)  # privacy is 'none'


def test_privacy_noise_changes_the_model_but_it_still_trains():
    train = _small_train()
    kw = dict(factors=4, rounds=2, local_epochs=2, init_std=0.1)
    plain = registry.create("FedAvg", **kw).fit(train)
    noisy = registry.create("FedAvg", privacy="gaussian", epsilon=0.5, clip=0.1, **kw).fit(train)
    assert not np.allclose(plain.item_factors_, noisy.item_factors_)
    assert np.isfinite(noisy.item_factors_).all()


# ---------------------------------------------------------------- protocol
def _timed_data():
    # user 0: items 0..5 at times 5,4,3,2,1,0 -> latest = item 0 (test), second = item 1 (valid)
    users = np.repeat([0, 1, 2], 6)
    items = np.concatenate([np.arange(6), np.arange(3, 9), np.arange(6, 12)])
    times = np.concatenate([np.arange(6)[::-1], np.arange(6), np.arange(6)]).astype(float)
    extra_u = np.repeat([3], 4)
    users = np.concatenate([users, extra_u])
    items = np.concatenate([items, np.arange(200, 204)])
    times = np.concatenate([times, np.arange(4.0)])
    return Interactions.from_arrays(users, items, None, times)


def test_leave_one_out_by_time():
    data = _timed_data()
    split = leave_one_out(data, order="time", negatives=3, min_interactions=5, seed=1)
    assert split.n_users == 3  # user 3 has only 4 interactions
    ids = split.train.items.ids
    assert ids[split.test_items[0]] == 0 and ids[split.valid_items[0]] == 1
    assert ids[split.test_items[1]] == 8 and ids[split.valid_items[1]] == 7
    assert split.train.nnz == 3 * 4
    full = sp.csr_array(split.train.matrix).toarray() > 0
    for u in range(3):
        for negs in (split.valid_negatives[u], split.test_negatives[u]):
            assert len(set(negs)) == 3
            assert not full[u, negs].any()
            assert split.test_items[u] not in negs and split.valid_items[u] not in negs
        assert not set(split.valid_negatives[u]) & set(split.test_negatives[u])
    again = leave_one_out(data, order="time", negatives=3, min_interactions=5, seed=1)
    np.testing.assert_array_equal(again.test_negatives, split.test_negatives)
    shared = leave_one_out(data, order="time", negatives=5, min_interactions=5, shared_negatives=True)
    np.testing.assert_array_equal(shared.valid_negatives, shared.test_negatives)


def test_leave_one_out_orders():
    data = _timed_data()
    with pytest.raises(ParameterError, match="order"):
        leave_one_out(data, order="latest")
    rnd = leave_one_out(data, order="random", negatives=3, min_interactions=5, seed=0)
    assert rnd.train.nnz == 12


def test_sampled_ranks_put_ties_last_and_metrics_by_hand():
    pos = np.array([1.0, 0.5, 0.2])
    neg = np.array([[0.0, 0.9, 1.0], [0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    np.testing.assert_array_equal(sampled_ranks(pos, neg), [2, 1, 4])
    hr, ndcg = hr_ndcg(np.array([1, 2, 11]), k=10)
    assert hr == pytest.approx(2 / 3)
    assert ndcg == pytest.approx((1 + 1 / np.log2(3)) / 3)


def test_evaluate_scores_sampled_and_full():
    data = _timed_data()
    split = leave_one_out(data, order="time", negatives=3, min_interactions=5, seed=0)
    n = split.n_items

    def oracle(users):
        s = np.zeros((len(users), n))
        s[np.arange(len(users)), split.test_items[users]] = 1.0
        return s

    f = evaluate_scores(oracle, split, "test", k=1)
    assert f.hr == 1.0 and f.full_hr == 1.0 and f.ndcg == 1.0
    flat = evaluate_scores(lambda u: np.zeros((len(u), n)), split, "test", k=1)
    assert flat.hr == 0.0 and flat.full_hr == 0.0


# ---------------------------------------------------------------- TOML and CLI
def test_federated_table_sets_defaults_and_adds_methods():
    from recseek.evaluation.experiment import load_experiment

    exp = load_experiment({
        "data": {"name": "ml-100k"},
        "evaluation": {"task": "ranking"},
        "federated": {"method": ["FedCA", "FCF"], "rounds": 7, "local_epochs": 2,
                      "privacy": {"mechanism": "laplace", "epsilon": 2.0}},
        "models": [{"name": "MostPopular"}, {"name": "FedAvg", "rounds": 3}],
    })
    by = {m["name"]: m["params"] for m in exp.models}
    assert by["MostPopular"] == {}
    assert by["FedAvg"]["rounds"] == 3 and by["FedAvg"]["local_epochs"] == 2 and by["FedAvg"]["epsilon"] == 2.0
    assert by["FedCA"]["rounds"] == 7 and by["FedCA"]["privacy"] == "laplace"
    assert "local_epochs" not in by["FCF"] and by["FCF"]["rounds"] == 7
    with pytest.raises(ParameterError, match=r"\[federated\] has no setting 'epochs'"):
        load_experiment({"data": {"name": "x"}, "evaluation": {"task": "ranking"},
                         "federated": {"method": "FedAvg", "epochs": 3}})
    with pytest.raises(ParameterError, match="not a federated method"):
        load_experiment({"data": {"name": "x"}, "evaluation": {"task": "ranking"},
                         "federated": {"method": "BPR"}})
    with pytest.raises(ParameterError, match="backbone"):
        load_experiment({"data": {"name": "x"}, "evaluation": {"task": "ranking"},
                         "federated": {"method": "FedAvg", "backbone": "transformer"}})


def test_recseek_run_compares_federated_and_centralised(tmp_path):
    from click.testing import CliRunner

    from recseek.cli import cli

    data = planted_blocks().for_task("ranking")[0]
    u, i, v, _ = data.to_coo()
    rows = [f"{data.users.ids[a]},{data.items.ids[b]},1" for a, b in zip(u, i, strict=True)]
    (tmp_path / "d.csv").write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    (tmp_path / "e.toml").write_text(
        '[data]\npath = "d.csv"\nformat = "csv"\n\n[split]\nmethod = "leave_one_out"\norder = "random"\n\n'
        '[evaluation]\ntask = "ranking"\nk = 5\nmetrics = ["hitrate", "ndcg"]\n\n'
        '[federated]\nmethod = ["FedAvg"]\nrounds = 10\nlocal_epochs = 3\nfactors = 8\nlearning_rate = 0.05\n'
        'init_std = 0.1\n\n[[models]]\nname = "MostPopular"\n')
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "e.toml")])
    assert res.exit_code == 0, res.output
    assert "FedAvg" in res.output and "MostPopular" in res.output
