"""Neural models (recseek.models.neural): the numpy scoring paths against the torch networks
they were trained as, the shared training loop, the optional torch import, saved models
scoring without torch, and the sequential protocol with SASRec."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")  # the neural extra is installed in CI; the import guard is tested below

from recseek.data import Interactions  # noqa: E402
from recseek.errors import ParameterError, TrainingError  # noqa: E402
from recseek.evaluation.sequential import evaluate_sequential, leave_last_out  # noqa: E402
from recseek.models import registry  # noqa: E402
from recseek.models.neural import _train  # noqa: E402
from recseek.testing.conformance import single_thread  # noqa: E402
from recseek.testing.fixtures import synthetic  # noqa: E402

NEURAL = [c.name for c in registry.available() if c.family == "neural"]


def _fit(name: str, data: Interactions | None = None, **params):
    cls = registry.get(name)
    data = synthetic(seed=1) if data is None else data
    with single_thread():
        return registry.create(name, **{**cls.test_params, **params}).fit(data)


# ---------------------------------------------------------------- torch stays optional
def test_importing_recseek_and_listing_models_does_not_import_torch():
    code = textwrap.dedent("""
        import sys
        import recseek
        from recseek.models import registry
        names = [c.name for c in registry.available()]
        assert "MultVAE" in names and "SASRec" in names, names
        assert "torch" not in sys.modules, "torch was imported"
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
""")


def test_fitting_without_torch_is_one_sentence_naming_the_extra():
    code = BLOCK_TORCH + textwrap.dedent("""
        from recseek.models import registry
        from recseek.testing.fixtures import synthetic
        from recseek._optional import MissingDependencyError
        try:
            registry.create("NeuMF", epochs=1).fit(synthetic())
        except MissingDependencyError as exc:
            print(exc)
        else:
            raise SystemExit("no error")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    msg = proc.stdout.strip()
    assert len(msg.splitlines()) == 1 and "pip install 'recseek[neural]'" in msg and "NeuMF" in msg, msg


@pytest.mark.parametrize("name", ["LightGCN", "MultVAE", "CDAE", "NeuMF", "DeepFM", "AutoRec", "SASRec"])
def test_saved_model_scores_without_torch(name, tmp_path):
    model = _fit(name)
    path = model.save(tmp_path / "m", include_history=False)
    users = np.arange(10)
    np.save(tmp_path / "expected.npy", model.score(users))
    code = BLOCK_TORCH + textwrap.dedent(f"""
        import numpy as np
        from recseek.models.base import Recommender
        m = Recommender.load({str(path)!r})
        got = m.score(np.arange(10))
        np.testing.assert_allclose(got, np.load({str(tmp_path / "expected.npy")!r}), rtol=1e-5, atol=1e-6)
        assert "torch" not in __import__("sys").modules
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- device and parameters
def test_device_names_are_checked():
    with pytest.raises(ParameterError, match="device must be one of"):
        registry.create("NeuMF", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA GPU"):
            registry.create("NeuMF", device="cuda", epochs=1).fit(synthetic())


def test_layers_are_checked():
    with pytest.raises(ParameterError, match="mlp_layers must be a non-empty list"):
        registry.create("DeepFM", mlp_layers=[8, 0])


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ["NeuMF", "MultVAE", "LightGCN"])
def test_seed_reproduces_and_differs(name):
    a, b = _fit(name, seed=3), _fit(name, seed=3)
    np.testing.assert_array_equal(a.score(np.arange(20)), b.score(np.arange(20)))
    c = _fit(name, seed=4)
    assert not np.allclose(a.score(np.arange(20)), c.score(np.arange(20)))


# ---------------------------------------------------------------- numpy scoring == torch networks
def _torch_scores(net, users: np.ndarray, n_items: int) -> np.ndarray:
    net.eval()
    uu = torch.from_numpy(np.repeat(users, n_items))
    ii = torch.from_numpy(np.tile(np.arange(n_items), len(users)))
    with torch.no_grad():
        return net(uu, ii).numpy().reshape(len(users), n_items)


def test_neumf_numpy_scores_equal_the_network():
    from recseek.models.neural.neumf import _build

    model = _fit("NeuMF", mlp_layers=[8, 6, 4], factors=5)
    torch.manual_seed(0)
    net = _build(torch, model.n_users_, model.n_items_, 5, [8, 6, 4], 0.0, 0.5)
    model._store(net)
    users = np.arange(7)
    np.testing.assert_allclose(model.score(users), _torch_scores(net, users, model.n_items_), rtol=1e-4, atol=1e-5)


def test_deepfm_numpy_scores_equal_the_network():
    from recseek.models.neural.deepfm import _build

    model = _fit("DeepFM", mlp_layers=[7, 3], factors=4)
    torch.manual_seed(1)
    net = _build(torch, model.n_users_, model.n_items_, 4, [7, 3], 0.0, 0.5)
    with torch.no_grad():
        for p in (net.user_w.weight, net.item_w.weight, net.bias):
            p.normal_()
    model._store(net)
    users = np.arange(6)
    np.testing.assert_allclose(model.score(users), _torch_scores(net, users, model.n_items_), rtol=1e-4, atol=1e-5)


def test_deepfm_fm_part_is_the_factorization_machine():
    """With the deep part silenced the score is w0 + w_u + w_i + <v_u, v_i> (Rendle's FM on two one-hot fields)."""
    model = _fit("DeepFM")
    model.output_ = np.zeros_like(model.output_)
    u, i = 3, 5
    expected = (model.global_bias_ + model.user_bias_[u] + model.item_bias_[i]
                + model.user_factors_[u] @ model.item_factors_[i])
    np.testing.assert_allclose(model.score([u], np.array([i]))[0, 0], expected, rtol=1e-5)


def test_cdae_scores_are_the_uncorrupted_network_output():
    from recseek.models.neural.cdae import _build

    data = synthetic(seed=2)
    model = _fit("CDAE", data)
    net = _build(torch, data.n_users, data.n_items, int(model.hidden_units), 0.5, "sigmoid")
    with torch.no_grad():
        net.encoder.weight.copy_(torch.from_numpy(model.encoder_.T.copy()))
        net.encoder.bias.copy_(torch.from_numpy(model.encoder_bias_))
        net.user_nodes.weight.copy_(torch.from_numpy(model.user_nodes_))
        net.decoder.weight.copy_(torch.from_numpy(model.decoder_))
        net.decoder.bias.copy_(torch.from_numpy(model.decoder_bias_))
    net.eval()  # no corruption when scoring
    x = torch.from_numpy(data.binarize().matrix.toarray().astype(np.float32))
    with torch.no_grad():
        expected = net(x, torch.arange(data.n_users)).numpy()
    np.testing.assert_allclose(model.score(np.arange(data.n_users)), expected, rtol=1e-4, atol=1e-5)
    # folding a training user in again differs only by the user node V_u
    rows = sp.csr_array(data.matrix[[0, 1]])
    z = model._hidden(rows, model.user_nodes_[[0, 1]])
    np.testing.assert_allclose(z, model.user_hidden_[[0, 1]], rtol=1e-5, atol=1e-6)


def test_multvae_numpy_encoder_equals_the_trained_latents():
    """Folding the training rows in again (numpy encoder) gives the latents the torch encoder stored."""
    data = synthetic(seed=4)
    model = _fit("MultVAE", data)
    rows = sp.csr_array(data.matrix)
    np.testing.assert_allclose(model.encode(rows), model.user_latent_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model._score_new(rows[:5]), model.score(np.arange(5)), rtol=1e-4, atol=1e-5)


def test_multvae_sparse_likelihood_equals_the_dense_multinomial():
    """The training loss's likelihood (from the row's item ids) is the paper's
    -sum_i x_ui log softmax_i(f_u) of the dense binary rows, value and gradient."""
    from recseek.models.neural.multvae import _gather, multinomial_nll

    rng = np.random.default_rng(3)
    x = (rng.random((7, 11)) < 0.3).astype(np.float32)
    x[0] = 0.0  # an empty row contributes nothing
    m = sp.csr_array(x)
    users = np.array([4, 0, 2, 6, 1])
    cols, starts, n = _gather(m.indptr.astype(np.int64), m.indices.astype(np.int64), users)
    np.testing.assert_array_equal(n, x[users].sum(1))
    np.testing.assert_array_equal(starts, np.concatenate([[0], np.cumsum(n)[:-1]]))
    logits1 = torch.tensor(rng.standard_normal((5, 11)).astype(np.float32), requires_grad=True)
    logits2 = logits1.detach().clone().requires_grad_(True)
    sparse = multinomial_nll(torch, logits1, torch.from_numpy(cols), n)
    dense = -(torch.log_softmax(logits2, dim=1) * torch.from_numpy(x[users])).sum()
    np.testing.assert_allclose(float(sparse.detach()), float(dense.detach()), rtol=1e-5)
    sparse.backward()
    dense.backward()
    np.testing.assert_allclose(logits1.grad.numpy(), logits2.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_multvae_noise_std_scales_the_sampling_of_the_latent_code():
    """With noise_std=0 (and no dropout) the fit is reproducible and differs from the
    fit that samples z (noise_std=1) from the same seed: the setting reaches the loss."""
    data = synthetic(seed=4)
    a = _fit("MultVAE", data, noise_std=0.0, dropout=0.0, seed=3)
    b = _fit("MultVAE", data, noise_std=0.0, dropout=0.0, seed=3)
    np.testing.assert_array_equal(a.user_latent_, b.user_latent_)
    c = _fit("MultVAE", data, noise_std=1.0, dropout=0.0, seed=3)
    assert not np.allclose(a.user_latent_, c.user_latent_)


def test_multvae_trains_on_all_threads_and_gives_the_same_model_on_one(monkeypatch):
    """MultVAE (large_batches) runs torch on recseek's thread count, other neural models on
    TORCH_THREADS; one and two threads give the same MultVAE to the last digit."""
    import torch

    from recseek import _numba

    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
    data = synthetic(n_users=400, n_items=500, density=0.08, seed=4)

    def fit(name, data, **params):
        return registry.create(name, **{**registry.get(name).test_params, **params}).fit(data)

    before = _numba.get_num_threads()
    try:
        _numba.set_num_threads(2)
        two = fit("MultVAE", data, hidden_units=256, factors=32, batch_size=400, epochs=3, seed=3)
        assert seen[0] == 2
        fit("NeuMF", synthetic(seed=4), epochs=1, seed=3)
        assert seen[2] == _train.TORCH_THREADS
        _numba.set_num_threads(1)
        one = fit("MultVAE", data, hidden_units=256, factors=32, batch_size=400, epochs=3, seed=3)
    finally:
        _numba.set_num_threads(before)
    for key, value in two.get_parameters().items():
        np.testing.assert_array_equal(value, one.get_parameters()[key], err_msg=key)


def test_autorec_predicts_the_reconstruction_of_each_item_column():
    from recseek.models.neural.autorec import _build

    data = synthetic(seed=5)
    model = _fit("AutoRec", data, hidden_units=32, epochs=300, reg=0.0)
    net = _build(torch, data.n_users, int(model.hidden_units))
    # rebuild the encoder from the state: codes = sigmoid(V r_i + mu) must match for the learned V
    cols = torch.from_numpy(data.matrix.T.toarray().astype(np.float32))
    with torch.no_grad():
        net.decoder.weight.copy_(torch.from_numpy(model.decoder_))
        net.decoder.bias.copy_(torch.from_numpy(model.decoder_bias_))
        out = (torch.from_numpy(model.item_codes_) @ net.decoder.weight.T + net.decoder.bias).numpy()
    assert cols.shape == out.shape
    users, items, _, _ = data.to_coo()
    np.testing.assert_allclose(model._predict(users, items), out[items, users], rtol=1e-4, atol=1e-4)
    # the fit lowers the masked reconstruction error far below the global-mean predictor's
    pred = model.predict(users, items)
    truth = data.matrix.data
    assert np.mean((pred - truth) ** 2) < 0.5 * np.var(truth)


# ---------------------------------------------------------------- LightGCN
def test_lightgcn_adjacency_and_propagation():
    from recseek.models.neural.lightgcn import normalized_adjacency, propagate

    r = sp.csr_array(np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32))
    a = normalized_adjacency(r).toarray()
    dense = np.zeros((5, 5))
    dense[:2, 2:] = r.toarray()
    dense[2:, :2] = r.toarray().T
    d = dense.sum(1)
    np.testing.assert_allclose(a, dense / np.sqrt(np.outer(d, d)), rtol=1e-6)
    # the scipy-backed product and its gradient equal torch's dense computation
    rng = np.random.default_rng(0)
    e0 = rng.standard_normal((5, 3)).astype(np.float32)
    x1 = torch.tensor(e0, requires_grad=True)
    x2 = torch.tensor(e0, requires_grad=True)
    w = torch.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    out1 = propagate(torch, normalized_adjacency(r), x1, 3)
    at = torch.from_numpy(a.astype(np.float32))
    out2 = (x2 + at @ x2 + at @ at @ x2 + at @ at @ at @ x2) / 4
    np.testing.assert_allclose(out1.detach().numpy(), out2.detach().numpy(), rtol=1e-5, atol=1e-6)
    (out1 * w).sum().backward()
    (out2 * w).sum().backward()
    np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_lightgcn_with_zero_layers_scores_by_its_free_embeddings():
    model = _fit("LightGCN", graph_layers=0)
    assert model.user_factors_.shape[1] == model.factors
    np.testing.assert_allclose(model.score([0]), model.user_factors_[[0]] @ model.item_factors_.T, rtol=1e-6)


def test_lightgcn_layer_sum_is_every_layer_but_the_last():
    from recseek.models.neural.lightgcn import normalized_adjacency, propagate_layers

    r = sp.csr_array((np.random.default_rng(1).random((4, 6)) < 0.5).astype(np.float32))
    a = normalized_adjacency(r).toarray()
    e0 = np.random.default_rng(2).standard_normal((10, 3)).astype(np.float32)
    final, inner = propagate_layers(torch, normalized_adjacency(r), torch.from_numpy(e0), 2)
    np.testing.assert_allclose(inner.numpy(), e0 + a @ e0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.numpy(), (e0 + a @ e0 + a @ a @ e0) / 3, rtol=1e-5, atol=1e-6)


def test_lightgcn_fold_in_is_the_trained_embedding_without_the_free_term(monkeypatch):
    """For a training user, the propagation over the training graph is exactly
    (e_u^(0) + sum_i (e_i^(0) + ... + e_i^(K-1)) / sqrt(|N_u| d_i)) / (K + 1); the fold-in
    is that sum without e_u^(0), which is never known for a new user."""
    from recseek.models.neural import lightgcn

    captured = {}
    real = lightgcn.propagate_layers

    def spy(t, adj, ego, layers):
        captured["ego"] = ego.detach().numpy().copy()
        return real(t, adj, ego, layers)

    monkeypatch.setattr(lightgcn, "propagate_layers", spy)
    data = synthetic(seed=2).binarize()
    model = _fit("LightGCN", data, graph_layers=2)
    n_users = data.n_users
    folded = model.fold_in(sp.csr_array(data.matrix))
    np.testing.assert_allclose(folded + captured["ego"][:n_users] / 3, model.user_factors_, rtol=1e-4, atol=1e-5)


def _top_overlap(a: np.ndarray, b: np.ndarray, seen: sp.csr_array, k: int = 10) -> float:
    from recseek.models._topk import topk

    x, y = topk(a, k, exclude=seen).ids, topk(b, k, exclude=seen).ids
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(x, y, strict=True)]))


def test_lightgcn_fold_in_ranks_like_the_trained_user():
    """Folding a training user in from their own row gives nearly the trained user's
    top-10 (planted taste blocks); a popularity stand-in and another user's row do not,
    so the floor is one only a personalised fold-in passes."""
    from recseek.testing.fixtures import planted_blocks

    train = planted_blocks().for_task("ranking")[0]
    model = _fit("LightGCN", train)
    seen = sp.csr_array(train.matrix)
    own = model.score(np.arange(train.n_users))
    floor = 0.8
    assert _top_overlap(own, model._score_new(seen), seen) >= floor
    popularity = np.tile(np.diff(sp.csr_array(seen.T).indptr).astype(np.float32) + np.arange(train.n_items) * 1e-3,
                         (train.n_users, 1))
    assert _top_overlap(own, popularity, seen) < floor
    other = np.random.default_rng(0).permutation(train.n_users)
    assert _top_overlap(own, model._score_new(seen[other]), seen) < floor
    # recommend_new goes through the fold-in and leaves the given items out
    ranking = model.recommend_new([seen[[0]].indices], k=5)
    assert not set(ranking.ids[0]) & set(seen[[0]].indices)


def _torch_lightgcn_steps(adj: sp.csr_array, ego0: np.ndarray, triples: tuple, orders: list[np.ndarray],
                          batch: int, layers: int, reg: float, lr: float) -> tuple[list[float], np.ndarray, dict]:
    """The paper's loss written with torch's dense autograd and stepped with torch's Adam,
    one epoch per entry of ``orders``."""
    a = torch.from_numpy(adj.toarray())
    ego = torch.nn.Parameter(torch.from_numpy(ego0.copy()))
    opt = torch.optim.Adam([ego], lr=lr)
    users, pos, neg = triples
    losses = []
    batches = [order[start:start + batch] for order in orders for start in range(0, len(order), batch)]
    for b in batches:
        x, out = ego, ego
        for _ in range(layers):
            x = a @ x
            out = out + x
        f = out / (layers + 1)
        nodes = np.concatenate([users[b], pos[b], neg[b]])
        loss = (torch.nn.functional.softplus((f[users[b]] * (f[neg[b]] - f[pos[b]])).sum(1)).mean()
                + reg * ego[nodes].pow(2).sum() / (2 * len(b)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, ego.detach().numpy(), opt.state[ego]


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_lightgcn_epoch_kernel_is_torch_autograd_and_adam(layers):
    """One numba epoch (batches of 32 triples, the last one short, users repeated within a
    batch) gives torch's losses, weights and Adam moments: the gradient through the
    propagation, the penalty counted per occurrence and Adam's bias corrections are right."""
    from recseek.models.neural._lightgcn_kernels import lightgcn_epoch
    from recseek.models.neural.lightgcn import normalized_adjacency

    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 40, 8
    r = sp.csr_array((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    adj = normalized_adjacency(r)
    ego0 = (rng.standard_normal((n_users + n_items, k)) * 0.3).astype(np.float32)
    n = 100
    triples = (rng.integers(0, n_users, n), n_users + rng.integers(0, n_items, n),
               n_users + rng.integers(0, n_items, n))
    order = rng.permutation(n)
    reg, lr = 0.05, 0.05
    want_losses, want, state = _torch_lightgcn_steps(adj, ego0, triples, [order], 32, layers, reg, lr)
    ego, m, v = ego0.copy(), np.zeros_like(ego0), np.zeros_like(ego0)
    losses = lightgcn_epoch(adj.indptr, adj.indices, adj.data, ego, m, v, 0, *triples, order, 32, layers, reg, lr,
                            0.9, 0.999, 1e-8)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    # Adam moves every weight by about lr per step whatever the gradient's size, so a
    # rounding-level gradient can move a weight by up to lr in either direction; the
    # tolerance is a few thousandths of lr, a wrong gradient shows as a difference of ~lr
    assert np.abs(ego - ego0).max() > 0.1
    np.testing.assert_allclose(ego, want, rtol=1e-4, atol=3e-4)
    np.testing.assert_allclose(m, state["exp_avg"].numpy(), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(v, state["exp_avg_sq"].numpy(), rtol=1e-3, atol=1e-9)
    # the first step's moment is (1 - beta1) times the gradient itself: compared tightly
    first, m1, v1 = ego0.copy(), np.zeros_like(ego0), np.zeros_like(ego0)
    lightgcn_epoch(adj.indptr, adj.indices, adj.data, first, m1, v1, 0, *triples, order[:32], 32, layers, reg, lr,
                   0.9, 0.999, 1e-8)
    ref = torch.nn.Parameter(torch.from_numpy(ego0.copy()))
    a = torch.from_numpy(adj.toarray())
    x, out = ref, ref
    for _ in range(layers):
        x = a @ x
        out = out + x
    f = out / (layers + 1)
    b = order[:32]
    nodes = np.concatenate([triples[0][b], triples[1][b], triples[2][b]])
    loss = (torch.nn.functional.softplus((f[triples[0][b]] * (f[triples[2][b]] - f[triples[1][b]])).sum(1)).mean()
            + reg * ref[nodes].pow(2).sum() / 64)
    loss.backward()
    np.testing.assert_allclose(m1 / np.float32(0.1), ref.grad.numpy(), rtol=1e-4, atol=1e-8)
    # a second epoch continues Adam's step count (bias corrections of steps 5-8, not 1-4)
    second = rng.permutation(n)
    _, want, _ = _torch_lightgcn_steps(adj, ego0, triples, [order, second], 32, layers, reg, lr)
    lightgcn_epoch(adj.indptr, adj.indices, adj.data, ego, m, v, 4, *triples, second, 32, layers, reg, lr,
                   0.9, 0.999, 1e-8)
    np.testing.assert_allclose(ego, want, rtol=1e-4, atol=3e-4)  # a wrong step count moves them by ~0.1


def test_lightgcn_cpu_kernel_fits_the_torch_model(monkeypatch):
    """The numba training and torch's autograd training (as on an accelerator) give the
    same model from one seed: the same batches, negatives and step count across epochs."""
    from recseek.models.neural.lightgcn import LightGCN

    data = synthetic(seed=5).binarize()
    fast = _fit("LightGCN", data, epochs=4, batch_size=256, seed=2)
    monkeypatch.setattr(LightGCN, "cpu_kernel", False)
    slow = _fit("LightGCN", data, epochs=4, batch_size=256, seed=2)
    assert np.abs(fast.user_factors_).max() > 0.05
    for key in ("user_factors_", "item_factors_", "item_layers_"):
        np.testing.assert_allclose(getattr(fast, key), getattr(slow, key), rtol=1e-3, atol=2e-5, err_msg=key)


def test_lightgcn_kernel_gives_the_same_model_on_one_and_two_threads(monkeypatch):
    from recseek import _numba
    from recseek.models.neural import lightgcn

    monkeypatch.setattr(lightgcn, "PARALLEL_WORK", 0)  # the threaded variant even for this small graph
    data = synthetic(n_users=300, n_items=200, density=0.05, seed=8).binarize()
    before = _numba.get_num_threads()
    try:
        _numba.set_num_threads(2)
        assert lightgcn.lightgcn_epoch.variant(parallel=True) is lightgcn.lightgcn_epoch.parallel
        two = registry.create("LightGCN", **{**registry.get("LightGCN").test_params, "epochs": 3}).fit(data)
        _numba.set_num_threads(1)
        one = registry.create("LightGCN", **{**registry.get("LightGCN").test_params, "epochs": 3}).fit(data)
    finally:
        _numba.set_num_threads(before)
    for key, value in two.get_parameters().items():
        np.testing.assert_array_equal(value, one.get_parameters()[key], err_msg=key)


def test_lightgcn_divergence_names_the_model_and_epoch():
    with pytest.raises(TrainingError, match="LightGCN: training diverged at epoch 0"):
        _fit("LightGCN", init_std=1e19, epochs=2)


def test_neumf_grouped_batch_is_the_pairwise_loss_and_gradient():
    """A batch laid out as (positive, negatives) x users, each user's rows and first-layer
    half computed once, has the loss and the gradient of the same pairs scored one by one."""
    from recseek.models.neural.neumf import _build

    torch.manual_seed(0)
    net = _build(torch, 20, 30, 5, [8, 6, 4], 0.0, 0.3)
    rng = np.random.default_rng(0)
    users = torch.from_numpy(rng.integers(0, 20, 16))
    items = torch.from_numpy(rng.integers(0, 30, (3, 16)))
    labels = torch.zeros(3, 16)
    labels[0] = 1.0
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    grads = []
    for grouped in (True, False):
        net.zero_grad()
        if grouped:
            loss = bce(net.grouped(users, items), labels)
        else:
            loss = bce(net(users.repeat(3), items.reshape(-1)), labels.reshape(-1))
        loss.backward()
        grads.append((float(loss.detach()), [p.grad.clone() for p in net.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    assert all(float(g.abs().sum()) > 0 for g in grads[0][1])


def _neumf_arrays(net, k: int) -> tuple:
    """(ug, um, ig, im, mlp, out) of a NeuMF network, as its CPU step keeps them."""
    from recseek.models.neural._train import pack

    user, item = net.user.detach().numpy(), net.item.detach().numpy()
    layers = [net.first.weight, net.first.bias]
    for layer in net.tower:
        layers += [layer.weight, layer.bias]
    return (np.ascontiguousarray(user[:, :k]), np.ascontiguousarray(user[:, k:]), np.ascontiguousarray(item[:, :k]),
            np.ascontiguousarray(item[:, k:]), pack(layers), pack([net.out.weight[0], net.out.bias]))


@pytest.mark.parametrize("layers", [[8, 6], [8, 6, 4, 3]])
def test_neumf_cpu_step_is_torch_autograd_and_adam(layers):
    """NeuMF's numba/BLAS step gives torch's loss, gradient (Adam's first moment after one
    step, compared tightly) and, over several steps, weights (weight decay included)."""
    from recseek.models.neural.neumf import _build, _neumf_step

    torch.manual_seed(0)
    k, lr, decay = 5, 0.02, 0.01
    net = _build(torch, 20, 30, k, layers, 0.0, 0.3)
    params = _neumf_arrays(net, k)
    sizes = np.array([layers[0], *layers[1:]], dtype=np.int64)
    grads = tuple(np.zeros_like(p) for p in params)
    firsts = tuple(np.zeros_like(p) for p in params)
    seconds = tuple(np.zeros_like(p) for p in params)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=decay)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    rng = np.random.default_rng(0)
    for step in range(1, 6):
        users = rng.integers(0, 20, 16)  # users repeat within the batch
        items = rng.integers(0, 30, (3, 16))
        labels = torch.zeros(3, 16)
        labels[0] = 1.0
        loss = bce(net.grouped(torch.from_numpy(users), torch.from_numpy(items)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        got = _neumf_step(torch, params, grads, firsts, seconds, sizes, users, items, step, lr, decay)
        assert got == pytest.approx(float(loss.detach()), rel=1e-5)
        if step == 1:  # m = (1 - beta1) * (gradient + decay * weight)
            want = [opt.state[p]["exp_avg"] for p in (net.user, net.item)]
            np.testing.assert_allclose(firsts[0], want[0][:, :k].numpy(), rtol=1e-4, atol=1e-8)
            np.testing.assert_allclose(firsts[1], want[0][:, k:].numpy(), rtol=1e-4, atol=1e-8)
            np.testing.assert_allclose(firsts[2], want[1][:, :k].numpy(), rtol=1e-4, atol=1e-8)
            np.testing.assert_allclose(firsts[3], want[1][:, k:].numpy(), rtol=1e-4, atol=1e-8)
            layer_moments = [opt.state[net.first.weight]["exp_avg"], opt.state[net.first.bias]["exp_avg"]]
            for layer in net.tower:
                layer_moments += [opt.state[layer.weight]["exp_avg"], opt.state[layer.bias]["exp_avg"]]
            np.testing.assert_allclose(firsts[4], np.concatenate([m.numpy().ravel() for m in layer_moments]),
                                       rtol=1e-4, atol=1e-8)
            np.testing.assert_allclose(firsts[5], np.concatenate([opt.state[net.out.weight]["exp_avg"][0].numpy(),
                                                                  opt.state[net.out.bias]["exp_avg"].numpy()]),
                                       rtol=1e-4, atol=1e-8)
            assert all(np.abs(f).sum() > 0 for f in firsts)
            assert all(not g.any() for g in grads)  # zeroed for the next step
    # Adam moves each weight by about lr per step whatever the gradient's size: a tolerance
    # of a few hundredths of lr; a wrong gradient or step count shows as ~lr
    for got, want in zip(params, _neumf_arrays(net, k), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-4)


def test_neumf_cpu_step_fits_the_torch_model(monkeypatch):
    """The numba training and torch's (as on an accelerator) give the same NeuMF from one
    seed: the same initial weights, batches and negatives."""
    from recseek.models.neural.neumf import NeuMF

    data = synthetic(seed=5).binarize()
    fast = _fit("NeuMF", data, epochs=3, batch_size=256, seed=2, reg=0.001)
    monkeypatch.setattr(NeuMF, "cpu_kernel", False)
    slow = _fit("NeuMF", data, epochs=3, batch_size=256, seed=2, reg=0.001)
    np.testing.assert_allclose(fast.score(np.arange(30)), slow.score(np.arange(30)), rtol=1e-3, atol=1e-3)
    assert np.abs(fast.score(np.arange(30))).std() > 0.05


# ---------------------------------------------------------------- training loop
class _Dummy(_train.NeuralModel):
    display_name = "Dummy"
    divergence_hint = "lower learning_rate"

    def __init__(self, verbose=False):
        self.device, self.seed, self.verbose = "cpu", 0, verbose


def test_loss_that_stops_being_finite_names_model_and_epoch():
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def loss(idx, epoch):
        out = net(torch.ones(len(idx), 1)).sum()
        return out * (float("nan") if epoch == 2 else 1.0)

    with pytest.raises(TrainingError, match="Dummy: training diverged at epoch 2"):
        _train.train_epochs(_Dummy(), net, opt, 10, loss, epochs=5, batch_size=4,
                            generator=torch.Generator().manual_seed(0))


def test_early_stopping_keeps_the_best_weights():
    net = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    figures = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9])
    weights = []

    def loss(idx, epoch):
        return -net.weight.sum()  # every step raises the weight

    def validate():
        weights.append(float(net.weight))
        return next(figures)

    losses = _train.train_epochs(_Dummy(), net, opt, 4, loss, epochs=6, batch_size=4,
                                 generator=torch.Generator().manual_seed(0), validate=validate, patience=2)
    assert len(losses) == 4  # best at epoch 1, then two epochs without improvement
    assert float(net.weight) == pytest.approx(weights[1])


def test_progress_bar_only_when_verbose(capsys):
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def loss(idx, epoch):
        return net(torch.ones(len(idx), 1)).pow(2).sum()

    _train.train_epochs(_Dummy(), net, opt, 8, loss, epochs=2, batch_size=4, generator=torch.Generator())
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    _train.train_epochs(_Dummy(verbose=True), net, opt, 8, loss, epochs=2, batch_size=4,
                        generator=torch.Generator())
    assert "loss=" in capsys.readouterr().err


def test_negatives_are_never_seen_items():
    data = synthetic(seed=6, density=0.4)
    m = sp.csr_array(data.matrix)
    users = np.repeat(np.arange(data.n_users), 30)
    neg = _train.sample_negatives(m.indptr, m.indices, users, data.n_items, 3, np.random.default_rng(0))
    dense = m.toarray() != 0
    assert not dense[np.repeat(users, 3), neg.ravel()].any()
    # uniform over each user's unseen items: every unseen item of user 0 is drawn
    many = _train.sample_negatives(m.indptr, m.indices, np.zeros(4000, np.int64), data.n_items, 1,
                                   np.random.default_rng(1))
    assert set(np.unique(many)) == set(np.flatnonzero(~dense[0]))


def test_negatives_from_the_seen_mask_are_the_searched_draws():
    data = synthetic(seed=6, density=0.4)
    m = sp.csr_array(data.matrix)
    users = np.repeat(np.arange(data.n_users), 7)
    mask = _train.seen_mask(m.indptr, m.indices, data.n_items)
    assert mask is not None and mask.sum() == m.nnz
    assert _train.seen_mask(m.indptr, m.indices, data.n_items, limit=10) is None
    a = _train.sample_negatives(m.indptr, m.indices, users, data.n_items, 3, np.random.default_rng(2), mask=mask)
    b = _train.sample_negatives(m.indptr, m.indices, users, data.n_items, 3, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not mask[np.repeat(users, 3), a.ravel()].any()


def test_validation_split_is_a_share_of_each_users_items():
    data = synthetic(seed=7, density=0.5)
    fit, valid = _train.carve_validation(data, seed=0, share=0.2)
    a, b = fit.matrix.toarray(), valid.matrix.toarray()
    assert not ((a != 0) & (b != 0)).any()
    np.testing.assert_array_equal((a != 0) | (b != 0), data.matrix.toarray() != 0)
    counts = np.diff(data.matrix.indptr)
    np.testing.assert_array_equal(np.diff(valid.matrix.indptr), np.floor(0.2 * counts).astype(int))


def test_patience_trains_on_the_carved_split_and_stops():
    model = _fit("MultVAE", epochs=200, patience=2)
    assert model.user_latent_.shape == (model.n_users_, model.factors)


# ---------------------------------------------------------------- sequential protocol and SASRec
def _sequences(n_users: int = 60, n_items: int = 30, length: int = 12, seed: int = 0) -> Interactions:
    """Each user walks the item cycle 0 -> 1 -> ... from a random start: the next item is
    the last one plus 1 (mod n_items), which only the order reveals."""
    rng = np.random.default_rng(seed)
    u, i, ts = [], [], []
    for user in range(n_users):
        start = rng.integers(n_items)
        for step in range(length):
            u.append(user)
            i.append((start + step) % n_items)
            ts.append(float(step))
    return Interactions.from_arrays(np.array(u), np.array(i), None, np.array(ts))


def test_leave_last_out_takes_the_latest_item_with_ties_in_input_order():
    data = Interactions.from_arrays(np.array([0, 0, 0, 1, 1, 2]), np.array([5, 6, 7, 5, 6, 7]), None,
                                    np.array([3.0, 9.0, 9.0, 2.0, 1.0, 4.0]))
    train, test = leave_last_out(data)
    items = data.items
    assert items.ids[test.items_of(0)].tolist() == [7]  # 6 and 7 tie at t=9: 7 comes later in the input
    assert items.ids[test.items_of(1)].tolist() == [5]
    assert test.items_of(2).size == 0 and items.ids[train.items_of(2)].tolist() == [7]  # one record: train only
    train, valid, test = leave_last_out(data, validation=True)
    assert items.ids[valid.items_of(0)].tolist() == [6] and items.ids[train.items_of(0)].tolist() == [5]
    assert valid.items_of(1).size == 0  # two records are too few for train + valid + test


def test_sasrec_learns_the_order_a_popularity_model_cannot():
    data = _sequences()
    train, test = leave_last_out(data)
    with single_thread():
        sas = registry.create("SASRec", factors=16, blocks=1, heads=1, max_length=12, epochs=40,
                              batch_size=16, learning_rate=0.01, dropout=0.0, device="cpu").fit(train)
    pop = registry.create("MostPopular").fit(train)
    ours = evaluate_sequential(sas, train, test, k=3)
    theirs = evaluate_sequential(pop, train, test, k=3)
    assert ours["hitrate@3"] >= 0.9 and ours["hitrate@3"] - theirs["hitrate@3"] >= 0.5, (ours, theirs)
    # the stored user state equals scoring the history afresh with the network
    rows = []
    for u in range(3):
        lo, hi = train.matrix.indptr[u], train.matrix.indptr[u + 1]
        items, ts = train.matrix.indices[lo:hi], train.timestamps[lo:hi]
        rows.append(items[np.argsort(ts, kind="stable")])
    np.testing.assert_allclose(sas.score_histories(rows), sas.score(np.arange(3)), rtol=1e-4, atol=1e-4)


def test_evaluate_sequential_matches_a_hand_count():
    data = _sequences(n_users=20)
    train, test = leave_last_out(data)
    model = registry.create("MostPopular").fit(train)
    res = evaluate_sequential(model, train, test, k=5)
    ids = model.recommend(np.arange(20), 5).ids
    hits = [(ids[u] == test.items_of(u)[0]) for u in range(20)]
    ndcg = np.mean([1 / np.log2(2 + np.flatnonzero(h)[0]) if h.any() else 0.0 for h in hits])
    assert res["hitrate@5"] == pytest.approx(np.mean([h.any() for h in hits]))
    assert res["ndcg@5"] == pytest.approx(ndcg)
    assert res["users"] == 20
