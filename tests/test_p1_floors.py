"""Published floors: every model with a JStarCraft row, run with its ``benchmarks/p1/*.toml``
settings on the P1 protocol (recseek.evaluation.jstarcraft, the code bench_p1.py runs),
must reach the published key metric within 1% or do better.

- ranking: NDCG@10 >= 0.99 x published;
- rating: MAE <= 1.01 x published (lower is better);
- RandomGuess (ranking): a random ranking has no published figure to reach (JStarCraft's
  0.0112 is one draw of its own random generator); its NDCG@10 must instead agree with the
  exact expectation of a uniformly random ranking of every user's candidates, within four
  standard errors of the mean over users (a false alarm about once in 15,000 runs).

A model that stays short is a strict xfail with its measured figure and reason (it turns
red if it starts passing, so the note cannot go stale). Models whose P1 run takes more
than a few seconds are marked slow (CI runs them with ``-m slow``). Training runs on one
thread so that every figure is reproducible for the seeds in the TOML files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.evaluation.jstarcraft import (
    P1Case,
    cases,
    key_metric,
    load_dataset_split,
    read_anchors,
    read_model_specs,
    run_model,
)
from recseek.metrics import ranking as rm
from recseek.testing.conformance import single_thread
from recseek.testing.fixtures import shared_data_dir

MODELS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "p1"
#: Relative tolerance against the published figure (the project's P1 target).
TOLERANCE = 0.01
#: Models whose P1 run takes more than about five seconds here (training and evaluation).
SLOW = {"AoBPR", "BPMF", "CCD", "CLiMF", "GBPR", "IRRG", "LLORMA", "RankSGD", "SBPR",
        "BHFreeRanking", "BHFreeRating", "BUCMRanking", "LDCC", "RBM", "CDAE", "DeepFM"}
#: Models whose key metric moves by more than the tolerance from one seed to the next are
#: judged on the mean over this many seeds (0, 1, ...). RankSGD: NDCG@10 over seeds 0-5 is
#: 0.3153-0.3291 (sd 0.005, 1.5% of the published 0.3208), mean 0.3217. CLiMF: seeds 0-3
#: give 0.4607, 0.4653, 0.4650, 0.4569 (published 0.4657), mean 0.4620.
#: BHFreeRanking: seeds 0-3 give 0.5154, 0.5134, 0.5123, 0.5087 (published 0.5166), mean 0.5125.
SEEDS = {"RankSGD": 5, "CLiMF": 4, "BHFreeRanking": 4}
#: (model, task) -> why it stays short; each is a strict xfail.
SHORT: dict[tuple[str, str], str] = {
    ("WBPR", "ranking"): (
        "measured NDCG@10 0.170 vs published 0.304 (ratio 0.56). Negatives here are drawn in proportion to "
        "item popularity, as in Gantner et al. 2012. JStarCraft's WBPR sampler puts the same popularity "
        "entries into every user's list and normalises them in place once per user, so the weights it "
        "finally draws from are no longer proportional to popularity (on this split its five heaviest "
        "items have 9-42 training ratings while the most popular item has 676). Training with those "
        "weights instead gives NDCG@10 0.288 (ratio 0.95): the published figure measures that sampler, "
        "not the paper's"
    ),
}


def _anchors_dir() -> Path | None:
    root = shared_data_dir()
    return None if root is None or not (root.parent / "anchors").is_dir() else root.parent / "anchors"


def _filmtrust_dir() -> Path | None:
    root = shared_data_dir()
    folder = None if root is None else root / "jstarcraft" / "filmtrust"
    if folder is not None and (folder / "score.txt").exists():
        return folder
    from recseek import datasets
    from recseek.errors import DataError

    try:
        datasets.load("filmtrust")
    except DataError:
        return None
    return datasets.default_cache_dir() / "filmtrust"


def _cases() -> list:
    folder = _anchors_dir()
    if folder is None:
        return [pytest.param(None, id="anchors-missing")]
    params = []
    for case in cases(read_model_specs(MODELS_DIR), read_anchors(folder)):
        if case.published is None:
            continue
        marks = [pytest.mark.slow] if case.model in SLOW else []
        why = SHORT.get((case.model, case.task))
        if why is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=why))
        params.append(pytest.param(case, id=f"{case.model}-{case.dataset}-{case.task}", marks=marks))
    return params


@pytest.fixture(scope="module")
def splits():
    """``dataset -> (train, test)``, each split read once."""
    folder = _filmtrust_dir()
    if folder is None:
        pytest.skip("FilmTrust data not found (set RECSEEK_TEST_DATA to the shared data folder)")
    cache: dict[str, tuple[Interactions, Interactions]] = {}

    def get(dataset: str) -> tuple[Interactions, Interactions]:
        if dataset not in cache:
            cache[dataset] = load_dataset_split(folder, dataset)[1:]
        return cache[dataset]

    return get


def random_ndcg_expectation(train: Interactions, test: Interactions, k: int = 10) -> float:
    """Mean over test users of E[NDCG@k] for a uniformly random ranking of the user's
    candidates (items outside their training data): each position holds a relevant item
    with probability |test_u| / |candidates_u|."""
    n_rel = np.diff(test.matrix.indptr)
    users = np.flatnonzero(n_rel > 0)
    n_rel = n_rel[users]
    n_cand = train.n_items - np.diff(train.matrix.indptr)[users]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    cum = np.concatenate([[0.0], np.cumsum(disc)])
    dcg = n_rel / n_cand * cum[np.minimum(k, n_cand)]
    return float(np.mean(dcg / cum[np.minimum(n_rel, k)]))


def _per_user_ndcg(model, test: Interactions, k: int = 10) -> np.ndarray:
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    ids = model.recommend(users, k).ids
    rel = sp.csr_array(sp.csr_array(test.matrix)[users])
    hits = rm.hit_matrix(ids, rel)
    return np.asarray(rm.ndcg(hits, np.diff(rel.indptr), rm.list_lengths(ids)))


@pytest.mark.parametrize("case", _cases())
def test_published_floor(case: P1Case | None, splits) -> None:
    if case is None:
        pytest.skip("JStarCraft anchors not found (set RECSEEK_TEST_DATA to the shared data folder)")
    train, test = splits(case.dataset)
    metric = key_metric(case.task)
    runs = []
    for seed in range(SEEDS.get(case.model, 1)):
        params = case.params if case.model not in SEEDS else {**case.params, "seed": seed}
        with single_thread():
            runs.append(run_model(case.model, params, case.task, train, test))
    result = runs[0]
    ours, published = float(np.mean([r["metrics"][metric] for r in runs])), case.published[metric]
    if case.model == "RandomGuess" and case.task == "ranking":
        per_user = _per_user_ndcg(result["model"], test)
        np.testing.assert_allclose(per_user.mean(), ours, rtol=1e-9)
        expected = random_ndcg_expectation(train, test)
        se = per_user.std(ddof=1) / np.sqrt(len(per_user))
        assert abs(ours - expected) <= 4 * se, (
            f"RandomGuess NDCG@10 {ours:.5f} is not a random ranking's: expected {expected:.5f} +- {4 * se:.5f}"
        )
    elif case.task == "ranking":
        assert ours >= (1 - TOLERANCE) * published, (
            f"{case.label}: NDCG@10 {ours:.4f} below the published {published:.4f} "
            f"(ratio {ours / published:.3f}, floor {1 - TOLERANCE})"
        )
    else:
        assert ours <= (1 + TOLERANCE) * published, (
            f"{case.label}: MAE {ours:.4f} above the published {published:.4f} "
            f"(ratio {ours / published:.3f}, ceiling {1 + TOLERANCE})"
        )


def test_random_expectation_matches_simulation() -> None:
    """The closed form above against shuffled rankings on a small split."""
    from recseek.testing.fixtures import holdout_last, synthetic

    train, test = holdout_last(synthetic(n_users=40, n_items=30, seed=2))
    rng = np.random.default_rng(0)
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    rel = sp.csr_array(sp.csr_array(test.matrix)[users])
    draws = []
    for _ in range(400):
        ids = np.full((len(users), 10), -1, dtype=np.int64)
        for r, u in enumerate(users):
            cand = np.setdiff1d(np.arange(train.n_items), train.items_of(u))
            pick = rng.permutation(cand)[:10]
            ids[r, : len(pick)] = pick
        hits = rm.hit_matrix(ids, rel)
        draws.append(np.mean(rm.ndcg(hits, np.diff(rel.indptr), rm.list_lengths(ids))))
    assert abs(np.mean(draws) - random_ndcg_expectation(train, test)) < 4 * np.std(draws) / np.sqrt(len(draws))
