"""The NCF backbone of the federated methods: the kernel's gradients against finite
differences of an independent float64 forward pass, Adam with weight decay on the head,
the numpy scorer, aggregation of the heads, saving and scoring without torch, fold-in,
seeds and the [federated] table."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recseek.errors import ModelFileError, ParameterError
from recseek.federated._kernels import OPT_ADAM, OPT_SGD, local_train_ncf
from recseek.federated.aggregation import FedAvg, PFedRec
from recseek.federated.ncf import head_layout, init_head, ncf_logits, tower
from recseek.federated.privacy import Privacy
from recseek.federated.simulator import Federation, LocalTraining
from recseek.models import registry
from recseek.testing.fixtures import planted_blocks

D, HIDDEN = 3, (5, 4)


def _forward(u, v, head, hidden=HIDDEN):
    """``f([u; v])`` in float64 from explicit matrices (independent of recseek's code)."""
    x = np.concatenate([u, v]).astype(np.float64)
    sizes = [2 * len(u), *hidden, 1]
    pos = 0
    for layer in range(len(sizes) - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        w = np.asarray(head[pos: pos + n_in * n_out], dtype=np.float64).reshape(n_out, n_in)
        pos += n_in * n_out
        b = np.asarray(head[pos: pos + n_out], dtype=np.float64)
        pos += n_out
        x = w @ x + b
        if layer < len(sizes) - 2:
            x = np.maximum(x, 0.0)
    return float(x[0])


def _loss(u, W, head, rows, labels):
    """Mean binary cross-entropy of one batch (rows index W)."""
    z = np.array([_forward(u, W[r], head) for r in rows])
    p = 1.0 / (1.0 + np.exp(-z))
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def _finite_difference(fn, x, eps=1e-6):
    g = np.zeros_like(x, dtype=np.float64)
    for k in np.ndindex(x.shape):
        a, b = x.astype(np.float64).copy(), x.astype(np.float64).copy()
        a[k] += eps
        b[k] -= eps
        g[k] = (fn(a) - fn(b)) / (2 * eps)
    return g


def _one_client(opt, lr, reg_head=0.0, two_step=False, seed=0):
    """One client, one batch holding all its samples, one local epoch."""
    rng = np.random.default_rng(seed)
    n_items = 9
    V = (rng.standard_normal((n_items, D)) * 0.8).astype(np.float32)
    U = (rng.standard_normal((2, D)) * 0.8).astype(np.float32)
    sizes, woff, boff, P = head_layout(D, HIDDEN)
    head0 = init_head(rng, sizes) * np.float32(2.0)
    items = np.array([1, 4, 6, 4, 8, 2, 6], dtype=np.int64)
    labels = np.array([1, 1, 0, 0, 1, 0, 1], dtype=np.float32)
    t_items = np.unique(items)
    s_local = np.searchsorted(t_items, items).astype(np.int64)
    order = rng.permutation(len(items)).astype(np.int64)[None]
    out_rows = np.empty((len(t_items), D), np.float32)
    out_heads = np.empty((1, P), np.float32)
    u0 = U[1].copy()
    f = np.float32
    local_train_ncf(np.array([1]), np.array([0, len(items)]), s_local, labels, order, np.array([0, len(t_items)]),
                    t_items, V[None].copy(), np.array([0]), U, head0[None].copy(), np.array([0]), out_heads, sizes,
                    woff, boff, out_rows, np.zeros(1), 1, 64, opt, f(lr), f(lr), f(lr), f(0.0), f(0.0), f(reg_head),
                    f(0.9), f(0.999), f(1e-8), 0.0, two_step)
    return dict(V=V, t_items=t_items, s_local=s_local, labels=labels, u0=u0, u1=U[1].copy(), head0=head0,
                head1=out_heads[0], W0=V[t_items], W1=out_rows)


def test_ncf_gradients_match_finite_differences():
    c = _one_client(OPT_SGD, 1.0)
    rows, y = c["s_local"], c["labels"].astype(np.float64)
    u0, W0, h0 = (c[k].astype(np.float64) for k in ("u0", "W0", "head0"))
    # with plain SGD at step 1 and no decay the change of each part is minus its gradient
    g_u = _finite_difference(lambda u: _loss(u, W0, h0, rows, y), u0)
    g_W = _finite_difference(lambda W: _loss(u0, W, h0, rows, y), W0)
    g_h = _finite_difference(lambda h: _loss(u0, W0, h, rows, y), h0)
    np.testing.assert_allclose(c["u0"] - c["u1"], g_u, atol=2e-5, rtol=1e-3)
    np.testing.assert_allclose(c["W0"] - c["W1"], g_W, atol=2e-5, rtol=1e-3)
    np.testing.assert_allclose(c["head0"] - c["head1"], g_h, atol=2e-5, rtol=1e-3)
    assert np.abs(g_h).max() > 1e-3 and np.abs(g_W).max() > 1e-3  # a real signal, not zeros


def test_ncf_two_step_takes_the_item_gradient_after_the_own_step():
    c = _one_client(OPT_SGD, 0.5, two_step=True)
    rows, y = c["s_local"], c["labels"].astype(np.float64)
    u1, h1, W0 = (c[k].astype(np.float64) for k in ("u1", "head1", "W0"))
    g_W = _finite_difference(lambda W: _loss(u1, W, h1, rows, y), W0)
    np.testing.assert_allclose(c["W1"], W0 - 0.5 * g_W, atol=2e-5)


def test_ncf_adam_first_step_with_weight_decay_on_the_head():
    sgd = _one_client(OPT_SGD, 1.0)
    adam = _one_client(OPT_ADAM, 0.01, reg_head=0.1)
    g_h = (sgd["head0"] - sgd["head1"]).astype(np.float64) + 0.1 * sgd["head0"]
    g_W = (sgd["W0"] - sgd["W1"]).astype(np.float64)
    # Adam's first step (bias-corrected moments): lr * g / (|g| + eps), torch's L2 decay in g
    np.testing.assert_allclose(adam["head1"], sgd["head0"] - 0.01 * g_h / (np.abs(g_h) + 1e-8), atol=2e-6)
    np.testing.assert_allclose(adam["W1"], sgd["W0"] - 0.01 * g_W / (np.abs(g_W) + 1e-8), atol=2e-6)


def test_numpy_scorer_matches_an_independent_forward():
    rng = np.random.default_rng(1)
    sizes, _, _, P = head_layout(D, HIDDEN)
    U = rng.standard_normal((5, D)).astype(np.float32)
    V = rng.standard_normal((7, D)).astype(np.float32)
    head = init_head(rng, sizes)
    got = ncf_logits(U, V, head, sizes, block=2)
    want = np.array([[_forward(u, v, head) for v in V] for u in U])
    np.testing.assert_allclose(got, want, atol=1e-5)
    # one table and one head per user
    T = rng.standard_normal((5, 7, D)).astype(np.float32)
    H = np.stack([init_head(rng, sizes) for _ in range(5)])
    got = ncf_logits(U, T, H, sizes, block=3)
    want = np.array([[_forward(U[a], T[a, i], H[a]) for i in range(7)] for a in range(5)])
    np.testing.assert_allclose(got, want, atol=1e-5)


def _train():
    return planted_blocks().for_task("ranking")[0]


class _Recorder(FedAvg):
    def aggregate(self, state, up, rng):
        self.seen.append((up, state.head.copy()))
        out = super().aggregate(state, up, rng)
        self.after = state.head.copy()
        return out


def _local(**kw):
    base = dict(factors=4, local_epochs=2, negatives=2, backbone="ncf", mlp_layers=(6,), lr_user=0.05,
                lr_item=0.05, lr_head=0.05, init_std=0.1)
    return LocalTraining(**{**base, **kw})


def test_fedavg_averages_the_heads_by_samples_and_never_sees_user_vectors():
    train = _train()
    strat = _Recorder()
    strat.seen = []
    fed = Federation(strat, _local(), rounds=1, clients_per_round=0.5, seed=2)
    fed.fit(train)
    up, _ = strat.seen[0]
    p = up.n_samples / up.n_samples.sum()
    np.testing.assert_allclose(strat.after, (p[:, None] * up.heads).sum(axis=0), atol=1e-6)
    # what leaves a client: changed item rows, its head and a sample count
    assert up.heads.shape == (len(up.clients), head_layout(4, (6,))[3])
    assert up.deltas.shape[1] == 4 and up.bases is None


def test_pfedrec_keeps_its_head_and_fedca_reduces_to_fedavg():
    train = _train()
    seen = []

    class Keep(PFedRec):
        def aggregate(self, state, up, rng):
            seen.append(up.heads)
            return super().aggregate(state, up, rng)

    fed = Federation(Keep(), _local(optimizer="sgd", two_step=True, lr_item=2.0), rounds=2, seed=1).fit(train)
    assert seen == [None, None]  # the personal score function is never uploaded
    assert not np.allclose(fed.state.heads[0], fed.state.heads[1])
    kw = dict(factors=4, rounds=3, local_epochs=2, learning_rate=0.05, init_std=0.1, backbone="ncf", tower_layers=1)
    a = registry.create("FedCA", alpha=0.0, beta=0.0, aggregated_share=1.0, interpolation=0.0, **kw).fit(train)
    b = registry.create("FedAvg", **kw).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_allclose(a.score(users), b.score(users), atol=1e-4)


@pytest.mark.parametrize("method", ["FedAvg", "FedCA", "PFedRec"])
def test_ncf_methods_recover_planted_blocks(method):
    data = planted_blocks()
    train, test = data.for_task("ranking")
    kw = {"FedAvg": dict(rounds=30, local_epochs=5, learning_rate=0.05, mlp_learning_rate=0.05),
          "FedCA": dict(rounds=10, local_epochs=5, learning_rate=0.05, mlp_learning_rate=0.05,
                        aggregated_share=1.0, interpolation=0.2),
          "PFedRec": dict(rounds=20, local_epochs=5, learning_rate=0.5, eta=0.25, negatives=2)}[method]
    # torch's initialisation (init_std 1): small initial vectors leave every client nearly
    # the same input, and the shared head then learns popularity first; an MLP needs more
    # rounds than the dot product to learn the user-item interaction (FedAvg)
    model = registry.create(method, factors=8, init_std=1.0, backbone="ncf", tower_layers=1, **kw).fit(train)
    users = np.unique(test.matrix.nonzero()[0])
    top = model.recommend(users, k=5).ids
    hits = np.mean([len(set(top[a].tolist()) & set(test.items_of(u).tolist())) > 0 for a, u in enumerate(users)])
    assert hits > 0.6, hits  # random top-5 of the unseen items finds a withheld item far less often


def test_saved_ncf_model_scores_without_torch(tmp_path):
    train = _train()
    model = registry.create("FedAvg", factors=4, rounds=2, local_epochs=2, init_std=0.1, backbone="ncf",
                            tower_layers=1).fit(train)
    model.save(tmp_path / "m")
    assert model.mlp_.shape == (head_layout(4, tower(4, 1))[3],)
    want = model.score(np.arange(5))
    code = ("import sys, numpy as np; sys.modules['torch'] = None\n"
            "from recseek.models.base import Recommender\n"
            f"m = Recommender.load({str(tmp_path / 'm')!r})\n"
            "np.save(sys.argv[1], m.score(np.arange(5)))\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.npy")], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), want, atol=1e-6)
    params = model.get_parameters()
    with pytest.raises(ModelFileError, match="mlp_"):
        model.check_state({k: v for k, v in params.items() if k != "mlp_"})
    with pytest.raises(ModelFileError, match="mlp_ has"):
        model.check_state({**params, "mlp_": params["mlp_"][:-1]})


def test_ncf_fold_in_finds_a_new_users_block():
    data = planted_blocks()
    train, _ = data.for_task("ranking")
    model = registry.create("FedAvg", factors=8, rounds=30, local_epochs=5, learning_rate=0.05,
                            mlp_learning_rate=0.05, init_std=1.0, backbone="ncf", tower_layers=1).fit(train)
    # a new user who likes what user 0 likes
    liked = train.items_of(0)
    top = model.recommend_new([liked[:-3]], k=5).ids[0]
    assert len(set(top.tolist()) & set(liked[-3:].tolist())) >= 1


def test_ncf_seeds_reproduce_threads_do_not_matter_and_privacy_perturbs_the_head():
    from recseek._numba import get_num_threads, set_num_threads

    train = _train()
    kw = dict(factors=4, rounds=2, local_epochs=2, init_std=0.1, backbone="ncf", tower_layers=1,
              clients_per_round=0.5)
    before = get_num_threads()
    try:
        set_num_threads(1)
        one = registry.create("FedCA", seed=3, **kw).fit(train).score(np.arange(12))
        set_num_threads(2)
        two = registry.create("FedCA", seed=3, **kw).fit(train).score(np.arange(12))
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    other = registry.create("FedCA", seed=4, **kw).fit(train).score(np.arange(12))
    assert not np.allclose(one, other)
    strat = _Recorder()
    strat.seen = []
    Federation(strat, _local(), rounds=1, seed=2, privacy=Privacy("laplace", 1.0, clip=0.5, fake_items=3)).fit(train)
    up, start = strat.seen[0]
    exact = Federation(_Recorder(), _local(), rounds=1, seed=2, privacy=Privacy(fake_items=3))
    exact.strategy.seen = []
    exact.fit(train)
    up_exact, _ = exact.strategy.seen[0]
    # the same clients, samples (fake items labelled by the NCF head) and training: only the noise differs
    np.testing.assert_array_equal(up.clients, up_exact.clients)
    np.testing.assert_array_equal(up.items, up_exact.items)
    assert np.isfinite(up.heads).all() and not np.allclose(up.heads, up_exact.heads)
    for j, c in enumerate(up.clients[:10]):
        sent, rated = set(up.items[up.owner == j].tolist()), set(train.items_of(c).tolist())
        assert rated <= sent and len(sent - rated) >= 3


def test_backbone_settings_are_checked():
    from recseek.evaluation.experiment import load_experiment

    exp = load_experiment({"data": {"name": "x"}, "evaluation": {"task": "ranking"},
                           "federated": {"method": ["FedAvg", "FedCA", "PFedRec"], "backbone": "ncf",
                                         "tower_layers": 3}})
    for m in exp.models:
        assert m["params"]["backbone"] == "ncf" and m["params"]["tower_layers"] == 3
    with pytest.raises(ParameterError, match="does not apply to FCF"):
        load_experiment({"data": {"name": "x"}, "evaluation": {"task": "ranking"},
                         "federated": {"method": ["FedAvg", "FCF"], "backbone": "ncf"}})
    with pytest.raises(ParameterError, match="tower_layers"):
        registry.create("FedAvg", tower_layers=3)  # no effect with the dot-product backbone
    with pytest.raises(ParameterError, match="backbone"):
        registry.create("FedAvg", backbone="gmf")
    with pytest.raises(ParameterError, match="closed form"):
        Federation(registry.get("FCF")()._strategy(), _local(), rounds=1).fit(_train())
