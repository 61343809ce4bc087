"""Evaluation protocols: full ranking against a per-user loop, sampled, rating, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recseek.errors import DataError, NotFittedError, ParameterError, RecseekError, UnsupportedError
from recseek.evaluation import evaluate, evaluate_ranking, evaluate_rating, metric_key
from recseek.models import create
from recseek.testing.fixtures import holdout_last, shared_data_dir, synthetic


@pytest.fixture(scope="module")
def split():
    data = synthetic(n_users=50, n_items=30, seed=5)
    return holdout_last(data, 0.3)


def _loop_metrics(model, train, test, k):
    """Per-user loop over the public recommend output (reference for the vectorised path)."""
    out = {"precision": [], "recall": [], "ndcg": [], "mrr": []}
    for u in range(test.n_users):
        rel = set(test.items_of(u).tolist())
        if not rel:
            continue
        ids, _ = model.recommend([u], k).row(0)
        hits = [int(i) in rel for i in ids]
        assert not set(ids.tolist()) & set(train.items_of(u).tolist())
        out["precision"].append(sum(hits) / k)
        out["recall"].append(sum(hits) / len(rel))
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), len(ids))))
        out["ndcg"].append(dcg / idcg)
        out["mrr"].append(next((1 / (r + 1) for r, h in enumerate(hits) if h), 0.0))
    return {n: float(np.mean(v)) for n, v in out.items()}


@pytest.mark.parametrize("name", ["MostPopular", "RandomGuess", "ItemAverage"])
def test_full_ranking_matches_per_user_loop(split, name):
    train, test = split
    model = create(name).fit(train)
    got = evaluate_ranking(model, train, test, k=5, metrics=["precision", "recall", "ndcg", "mrr"])
    want = _loop_metrics(model, train, test, 5)
    assert set(got) == {"precision@5", "recall@5", "ndcg@5", "mrr@5"}
    for n, v in want.items():
        assert got[f"{n}@5"] == pytest.approx(v)


def test_default_metrics_and_keys(split):
    train, test = split
    got = evaluate_ranking(create("MostPopular").fit(train), train, test)
    assert set(got) == {metric_key(m, 10) for m in
                        ("auc", "map", "map_capped", "mrr", "ndcg", "novelty", "precision", "recall", "hitrate", "coverage", "gini")}
    assert all(np.isfinite(v) for v in got.values())
    assert 0 < got["coverage@10"] <= 1


def test_popularity_beats_random_on_auc_full(split):
    train, test = split
    pop = evaluate_ranking(create("MostPopular").fit(train), train, test, metrics=["auc_full", "diversity"])
    rnd = evaluate_ranking(create("RandomGuess").fit(train), train, test, metrics=["auc_full", "diversity"])
    assert set(pop) == {"auc_full", "diversity@10"}
    assert pop["auc_full"] > rnd["auc_full"]
    assert 0 <= pop["diversity@10"] <= 1


def test_sampled_protocol_is_labelled_seeded_and_full_when_large(split):
    train, test = split
    model = create("MostPopular").fit(train)
    metrics = ["precision", "ndcg", "auc", "auc_full"]
    a = evaluate_ranking(model, train, test, k=5, metrics=metrics, sampled=5, seed=1)
    b = evaluate_ranking(model, train, test, k=5, metrics=metrics, sampled=5, seed=1)
    assert a == b
    assert all(key.endswith("(sampled 5)") for key in a)
    # more negatives than unseen items: the candidate set is the whole unseen catalogue
    big = evaluate_ranking(model, train, test, k=5, metrics=metrics, sampled=1000)
    full = evaluate_ranking(model, train, test, k=5, metrics=metrics)
    for m in metrics:
        assert big[metric_key(m, 5, 1000)] == pytest.approx(full[metric_key(m, 5)])
    # fewer candidates make the task easier
    assert a["ndcg@5 (sampled 5)"] > full["ndcg@5"]


def test_sampled_negatives_avoid_train_and_test(split):
    from recseek.evaluation.protocol import _sample_negatives

    train, test = split
    users = np.arange(train.n_users)
    allowed = _sample_negatives(users, train.matrix, test.matrix, 4, np.random.default_rng(0))
    for u in users:
        tr, te = set(train.items_of(u).tolist()), set(test.items_of(u).tolist())
        chosen = set(np.flatnonzero(allowed[u]).tolist())
        assert te <= chosen and not chosen & tr
        assert len(chosen - te) == min(4, train.n_items - len(tr | te))


def test_rating_metrics_clamped_to_training_range(split):
    train, test = split
    model = create("UserAverage").fit(train)
    u, i, truth, _ = test.to_coo()
    pred = np.clip(model.predict(u, i), train.matrix.data.min(), train.matrix.data.max())
    got = evaluate_rating(model, test)
    assert got["mae"] == pytest.approx(np.abs(pred - truth).mean())
    assert got["rmse"] == pytest.approx(np.sqrt(((pred - truth) ** 2).mean()))
    assert got["mpe"] == pytest.approx((np.abs(pred - truth) > 0.01).mean())
    clipped = evaluate_rating(model, test, metrics=["mae"], clip=(3.0, 3.0))
    assert clipped["mae"] == pytest.approx(np.abs(3.0 - truth).mean())
    assert evaluate(model, train, test, task="rating", metrics="mse") == {"mse": pytest.approx(got["mse"])}


def test_bad_input(split):
    train, test = split
    model = create("MostPopular").fit(train)
    with pytest.raises(ParameterError, match="unknown ranking metric"):
        evaluate_ranking(model, train, test, metrics=["nope"])
    for bad in (0, -1, 2.5):
        with pytest.raises(ParameterError, match="k must be a positive integer"):
            evaluate_ranking(model, train, test, k=bad)
    with pytest.raises(ParameterError, match="sampled"):
        evaluate_ranking(model, train, test, sampled=0)
    with pytest.raises(UnsupportedError, match="ranking model"):
        evaluate_rating(model, test)
    with pytest.raises(NotFittedError):
        evaluate_ranking(create("MostPopular"), train, test)
    other = synthetic(n_users=7, n_items=9)
    with pytest.raises(DataError, match="share"):
        evaluate_ranking(model, train, other)
    empty = test.subset(np.zeros(test.nnz, dtype=bool))
    with pytest.raises(DataError, match="no interactions"):
        evaluate_ranking(model, train, empty)
    with pytest.raises(ParameterError, match="task"):
        evaluate(model, train, test, task="nope")
    with pytest.raises(RecseekError, match="clip"):
        evaluate_rating(create("GlobalAverage").fit(train), test, clip=(4, 1))


def _p1_folders() -> tuple[Path, Path]:
    root = shared_data_dir()
    if root is None or not (Path(root) / "jstarcraft" / "filmtrust" / "score.txt").exists():
        pytest.skip("FilmTrust test data not available")
    anchors = Path(root).parent / "anchors"
    if not (anchors / "jstarcraft_ranking.csv").exists():
        pytest.skip("JStarCraft anchors data not available")
    return Path(root) / "jstarcraft" / "filmtrust", anchors


def test_p1_mostpopular_reproduces_the_published_row():
    """MostPopular on the P1 protocol against JStarCraft's published row, both ways.

    Tolerance 1% relative (the project's P1 target). Popularity has no seed and no
    hyperparameter, so the only freedom left is the split: 143 of the 1,508 test users
    (9.5%) have records with equal ``instant`` on both sides of their 80% boundary, and
    which of those JStarCraft puts in train is not published. Measured here: NDCG 0.992,
    precision 0.991, recall 0.993 of the published figures.
    """
    from recseek.evaluation.jstarcraft import load_split, read_anchors

    filmtrust, anchors = _p1_folders()
    published = read_anchors(anchors)["ranking"]["mostpopular"]
    _, train, test = load_split(filmtrust)
    got = evaluate_ranking(create("MostPopular").fit(train), train, test, metrics=["ndcg", "precision", "recall"])
    for name in ("ndcg", "precision", "recall"):
        assert got[f"{name}@10"] == pytest.approx(published[name], rel=0.01), name
