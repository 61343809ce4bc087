"""Factor-model scoring and top-k on a torch device (recseek.models._device_scoring) against the
numpy path: on torch's CPU device here, and on a GPU when one is present."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recseek.errors import UnsupportedError  # noqa: E402
from recseek.models import registry  # noqa: E402
from recseek.models._device_scoring import (  # noqa: E402
    augmented_factors,
    device_scores,
    device_topk,
    recommend_on_device,
)
from recseek.testing.conformance import single_thread  # noqa: E402
from recseek.testing.fixtures import synthetic  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _fit(name: str, **params):
    cls = registry.get(name)
    with single_thread():
        return registry.create(name, **{**cls.test_params, **params}).fit(synthetic(n_users=80, n_items=50, seed=2))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["BPR", "BiasedMF", "WRMF", "LightGCN", "LambdaFMStatic"])
def test_device_recommend_matches_numpy(name, device):
    model = _fit(name)
    users = np.concatenate([np.arange(model.n_users_), [-1, model.n_users_ + 3]])
    ours = recommend_on_device(model, users, k=7, device=device, block_users=13)
    theirs = model.recommend(users, k=7)
    np.testing.assert_allclose(ours.scores, theirs.scores, rtol=1e-5, atol=1e-5)
    # ids agree except where two items tie within float32 rounding
    close = np.isclose(ours.scores, theirs.scores, rtol=0, atol=0) & (ours.ids != theirs.ids)
    assert ((ours.ids == theirs.ids) | close).all()
    assert (ours.ids[-2:] == -1).all()
    # seen items are never returned, unless asked for
    for u in range(model.n_users_):
        assert not np.isin(ours.ids[u], model.seen_[[u]].indices).any()
    everything = recommend_on_device(model, [0], k=model.n_items_, exclude_seen=False, device=device)
    assert (everything.ids[0] >= 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_device_scores_are_the_model_scores(device):
    model = _fit("BiasedMF")
    p, q = augmented_factors(model)
    users = np.arange(model.n_users_)
    np.testing.assert_allclose(device_scores(p, q, users, device=device, block_users=7), model.score(users),
                               rtol=1e-5, atol=1e-5)


def test_ties_put_the_lower_item_first_and_short_rows_are_padded():
    p = np.array([[1.0], [0.0]], dtype=np.float32)
    q = np.array([[1.0], [2.0], [2.0], [1.0]], dtype=np.float32)
    import scipy.sparse as sp

    exclude = sp.csr_array(np.array([[0, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32))
    r = device_topk(p, q, np.array([0, 1]), 3, exclude=exclude, device="cpu")
    assert r.ids[0].tolist() == [2, 0, 3]
    assert r.ids[1].tolist() == [3, -1, -1] and np.isneginf(r.scores[1, 1:]).all()


def test_models_whose_scores_are_not_a_factor_product_are_refused():
    with pytest.raises(UnsupportedError, match="not a product of its factors"):
        recommend_on_device(_fit("DeepFM"), [0], device="cpu")  # FM factors plus a deep part
    with pytest.raises(UnsupportedError, match="no user and item factors"):
        recommend_on_device(_fit("NeuMF"), [0], device="cpu")


def test_evaluator_on_a_torch_device_gives_the_cpu_figures() -> None:
    """evaluate_ranking(device=...) ranks on the device (here CPU torch) and gets the numpy path's metrics."""
    from recseek.evaluation.protocol import evaluate_ranking
    from recseek.models import create
    from recseek.testing.fixtures import holdout_last, ml100k_sample

    train, test = holdout_last(ml100k_sample(200).binarize(4))
    model = create("BPR", factors=16, epochs=5, seed=0).fit(train)
    on_cpu = evaluate_ranking(model, train, test, k=10, metrics=["ndcg", "recall", "precision"])
    on_device = evaluate_ranking(model, train, test, k=10, metrics=["ndcg", "recall", "precision"], device="cpu")
    assert on_cpu.keys() == on_device.keys()
    for key in on_cpu:
        assert abs(on_cpu[key] - on_device[key]) < 1e-6, key
    from recseek.errors import UnsupportedError

    with pytest.raises(UnsupportedError):
        evaluate_ranking(create("ItemKNNRanking").fit(train), train, test, device="cpu")
