"""Conformance checks every registered model must pass.

``tests/test_conformance.py`` runs :class:`RecommenderConformance` for every model in
the registry, so a new model is tested as soon as it is registered. Models give small,
fast settings in their ``test_params`` class attribute.

Besides the interface contract (shapes, order, seen items, unknown ids, saving), two
quality checks make the suite impossible to pass with a fake: the personalisation check
(:func:`check_personalisation`, planted taste blocks on which popularity is flat, so a
model that ignores the user or guesses fails; see :mod:`recseek.testing.stubs`) and a
real-data check (recall@10 or RMSE better than RandomGuess on a MovieLens sample).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ..data import Interactions
from ..errors import RecseekError
from ..models import registry
from ..models.base import RatingPredictor, Recommender
from .fixtures import PlantedBlocks, holdout_last, ml100k_sample, planted_blocks, synthetic, with_ml100k_items

#: Side data the MovieLens-100K sample of the real-data check can provide (timestamps, and
#: titles and genres from its item table); a model requiring anything else (a trust graph,
#: reviews, locations) is checked on real data by its own tests instead.
ML100K_SIDE_DATA = frozenset({"timestamps", "item_text", "item_features"})

#: Models that by design rank every user's unseen items alike or at random: the JStarCraft
#: baselines, and three rating models whose prediction is a sum of a user part and an
#: item part (UserCluster: a per-user expected rating; ItemCluster: per item; RFRec:
#: user and item rating-frequency estimates), so their ranking is the same for every
#: user. The personalisation check asserts that these *fail* it, so the list cannot hide
#: a model that does personalise, and a model added here by mistake turns the suite red.
NOT_PERSONALISED = frozenset({"RandomGuess", "MostPopular", "ConstantGuess", "GlobalAverage", "ItemAverage",
                              "UserAverage", "UserCluster", "ItemCluster", "RFRec"})

#: Floors of the personalisation check on :func:`~recseek.testing.fixtures.planted_blocks`
#: (96 users in 4 blocks, 2 withheld items per user among 38 (ranking) or 31 (rating)
#: unseen candidates). Popularity and item means are flat there, so a model that ignores
#: the user scores every candidate alike (AUC exactly 0.5), and a random one has AUC 0.5
#: with a standard deviation of the 96-user mean of about 0.03 (one user's AUC over
#: 2 x 36 pairs has sd <= 0.25): 0.8 is ten standard deviations above both. Random
#: recall@2 is about 2/38 = 0.05 (sd of the mean about 0.02); 0.5 is far above it, and a
#: model that uses the user's history finds both withheld items of nearly every user
#: (every model outside :data:`NOT_PERSONALISED` reaches AUC >= 0.9 with its test_params).
MIN_PERSONALISED_AUC = 0.8
MIN_PERSONALISED_RECALL = 0.5


def make_model(name: str, **extra) -> Recommender:
    cls = registry.get(name)
    params = {**cls.test_params, **extra}
    if "verbose" in cls.param_names():
        params.setdefault("verbose", False)
    return registry.create(name, **params)


def recall_at_k(model: Recommender, train: Interactions, test: Interactions, k: int = 10) -> float:
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    ranking = model.recommend(users, k)
    hits = 0.0
    for r, u in enumerate(users):
        relevant = test.items_of(u)
        hits += np.isin(ranking.ids[r], relevant).sum() / min(len(relevant), k)
    return hits / len(users)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run numba kernels on one thread (deterministic for a seed, so quality checks cannot flake)."""
    from .._numba import get_num_threads, set_num_threads

    threads = get_num_threads()
    set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(threads)


def personalisation(model: Recommender, train: Interactions, test: Interactions) -> tuple[float, float]:
    """``(auc, recall)`` of a fitted model's ranking of each user's withheld items.

    AUC: over the user's unseen candidates (items outside ``train``), the share of
    (withheld, other) pairs the model orders correctly, ties counting one half; an item
    the model cannot score (NaN) ranks last. Recall: share of the withheld items in the
    user's ``recommend`` list of that many items (training items excluded). Both are
    averaged over the users of ``test``.
    """
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    scores = np.asarray(model.score(users), dtype=np.float64)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    n_held = int(np.diff(test.matrix.indptr)[users].max())
    ranking = model.recommend(users, k=n_held)
    aucs, recalls = [], []
    for row, u in enumerate(users):
        held = test.items_of(u)
        candidates = np.setdiff1d(np.arange(train.n_items), train.items_of(u))
        others = np.setdiff1d(candidates, held)
        pos, neg = scores[row, held][:, None], scores[row, others][None, :]
        aucs.append(float(np.mean((pos > neg) + 0.5 * (pos == neg))))
        recalls.append(np.isin(held, ranking.ids[row]).mean())
    return float(np.mean(aucs)), float(np.mean(recalls))


def check_personalisation(name: str, data: PlantedBlocks | None = None, **params) -> tuple[float, float]:
    """Fit model ``name`` (its ``test_params``) on the planted blocks and assert it finds
    each user's withheld items far better than popularity or chance would.

    Raises ``AssertionError`` naming the measured and required figures; returns
    ``(auc, recall)`` when the model passes.
    """
    cls = registry.get(name)
    data = planted_blocks(side=bool(cls.requires)) if data is None else data
    train, test = data.for_task(cls.task)
    model = make_model(name, **params).fit(train)
    auc, recall = personalisation(model, train, test)
    assert auc >= MIN_PERSONALISED_AUC and recall >= MIN_PERSONALISED_RECALL, (
        f"{cls.name} does not personalise on planted blocks: AUC {auc:.3f} (needs >= {MIN_PERSONALISED_AUC}; "
        f"popularity and random give 0.5), recall@2 {recall:.3f} (needs >= {MIN_PERSONALISED_RECALL}; "
        "random gives about 0.05)"
    )
    return auc, recall


class RecommenderConformance:
    """Mixin of pytest checks; subclasses set ``model_name``."""

    model_name: str = ""

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> Interactions:
        return synthetic(seed=3, side=bool(registry.get(cls.model_name).requires))

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data: Interactions) -> Recommender:
        return make_model(cls.model_name).fit(data)

    def test_metadata(self) -> None:
        cls = registry.get(self.model_name)
        assert cls.task in ("ranking", "rating")
        assert cls.paper, f"{cls.name} must name its paper"
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.name} needs a docstring"

    def test_recommend_shape_and_order(self, fitted: Recommender, data: Interactions) -> None:
        users = np.arange(data.n_users)
        r = fitted.recommend(users, k=5)
        assert r.ids.shape == (data.n_users, 5) and r.scores.shape == (data.n_users, 5)
        valid = r.ids >= 0
        assert valid.sum(axis=1).min() > 0, "some users got no recommendation at all"
        assert (r.ids[valid] < data.n_items).all()
        s = np.where(valid, r.scores, -np.inf)
        assert (np.diff(s, axis=1) <= 1e-6).all(), "scores must be non-increasing"
        assert np.isfinite(r.scores[valid]).all()

    def test_exclude_seen(self, fitted: Recommender, data: Interactions) -> None:
        users = np.arange(data.n_users)
        r = fitted.recommend(users, k=10)
        everything = fitted.recommend(users, k=data.n_items, exclude_seen=False)
        scores = fitted.score(users)
        for u in users:
            listed = r.ids[u][r.ids[u] >= 0]
            assert not np.isin(listed, data.items_of(u)).any()
            # without the filter every item the model can score is listed, the seen ones included
            full = np.sort(everything.ids[u][everything.ids[u] >= 0])
            np.testing.assert_array_equal(full, np.flatnonzero(np.isfinite(scores[u])))
            unseen = np.setdiff1d(np.flatnonzero(np.isfinite(scores[u])), data.items_of(u))
            assert len(listed) == min(10, len(unseen)), f"user {u}: {len(listed)} items listed, {len(unseen)} unseen"

    def test_batch_equals_single(self, fitted: Recommender, data: Interactions) -> None:
        users = np.array([0, 5, 17, 3])
        batch = fitted.recommend(users, k=7)
        for row, u in enumerate(users):
            one = fitted.recommend([u], k=7)
            np.testing.assert_array_equal(batch.ids[row], one.ids[0])
            np.testing.assert_allclose(batch.scores[row], one.scores[0], rtol=1e-5, atol=1e-6)
        full = fitted.score(users)
        for row, u in enumerate(users):
            np.testing.assert_allclose(full[row], fitted.score([u])[0], rtol=1e-5, atol=1e-6)

    def test_score_items_subset(self, fitted: Recommender, data: Interactions) -> None:
        items = np.array([3, 1, 7])
        sub = fitted.score([0, 2], items)
        full = fitted.score([0, 2])
        np.testing.assert_allclose(sub, full[:, items], rtol=1e-5, atol=1e-6)

    def test_candidates(self, fitted: Recommender, data: Interactions) -> None:
        cands = np.array([1, 2, 3, 4, 5, 6])
        r = fitted.recommend(np.arange(6), k=3, candidates=cands)
        assert np.isin(r.ids[r.ids >= 0], cands).all()

    def test_unknown_users_and_items(self, fitted: Recommender, data: Interactions) -> None:
        r = fitted.recommend([-1, data.n_users + 5], k=3)
        assert r.ids.shape == (2, 3)
        assert ((r.ids == -1) | ((r.ids >= 0) & (r.ids < data.n_items))).all()
        s = fitted.score([0], np.array([0, data.n_items + 3]))
        assert np.isnan(s[0, 1])
        if isinstance(fitted, RatingPredictor):
            p = fitted.predict(np.array([-1, 0, 0]), np.array([0, -1, data.n_items]))
            assert np.isfinite(p).all()

    def test_k_larger_than_catalogue(self, fitted: Recommender, data: Interactions) -> None:
        r = fitted.recommend([0], k=data.n_items + 10)
        assert r.ids.shape == (1, data.n_items + 10)
        assert (r.ids[0, -10:] == -1).all()

    def test_bad_k(self, fitted: Recommender) -> None:
        for bad in (0, -3):
            with pytest.raises(RecseekError):
                fitted.recommend([0], k=bad)

    def test_save_load_roundtrip(self, fitted: Recommender, data: Interactions, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "model")
        loaded = Recommender.load(path)
        assert type(loaded) is type(fitted)
        users = np.arange(min(10, data.n_users))
        np.testing.assert_array_equal(np.isnan(loaded.score(users)), np.isnan(fitted.score(users)))
        np.testing.assert_allclose(loaded.score(users), fitted.score(users), rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(loaded.recommend(users, 5).ids, fitted.recommend(users, 5).ids)
        if isinstance(fitted, RatingPredictor):
            np.testing.assert_allclose(loaded.predict(users, users), fitted.predict(users, users), rtol=1e-6)

    def test_parameters_roundtrip(self, fitted: Recommender) -> None:
        params = fitted.get_parameters()
        assert all(isinstance(v, np.ndarray) for v in params.values())
        clone = type(fitted)(**fitted.get_params())
        clone.set_parameters(params)
        np.testing.assert_allclose(clone.score([0, 1]), fitted.score([0, 1]), rtol=1e-6, equal_nan=True)

    def test_unknown_hyperparameter(self) -> None:
        with pytest.raises(RecseekError, match="no hyperparameter"):
            registry.create(self.model_name, not_a_parameter=1)

    def test_empty_training_data(self) -> None:
        empty = synthetic().subset(np.zeros(synthetic().nnz, dtype=bool))
        with pytest.raises(RecseekError):
            make_model(self.model_name).fit(empty)

    def test_personalisation(self) -> None:
        """Planted blocks with flat popularity: a real model finds each user's withheld
        items; a model in :data:`NOT_PERSONALISED` must be seen to fail."""
        cls = registry.get(self.model_name)
        with single_thread():
            if cls.name in NOT_PERSONALISED:
                with pytest.raises(AssertionError, match="does not personalise"):
                    check_personalisation(cls.name)
            else:
                check_personalisation(cls.name)

    def test_beats_random_on_real_sample(self) -> None:
        cls = registry.get(self.model_name)
        if not cls.conformance_quality or cls.name == "RandomGuess":
            pytest.skip("quality check not applicable")
        missing = set(cls.requires) - ML100K_SIDE_DATA
        if missing:
            pytest.skip(f"{cls.name} needs {', '.join(sorted(missing))}, which the MovieLens sample lacks; "
                        "its own tests check it on real data that has them")
        data = ml100k_sample(300)
        if cls.requires:
            data = with_ml100k_items(data)
        if cls.task == "ranking":
            data = data.binarize(4)
        train, test = holdout_last(data)
        with single_thread():
            model = make_model(self.model_name).fit(train)
        rand = make_model("RandomGuess").fit(train)
        if cls.task == "rating":
            users, items, truth, _ = test.to_coo()
            err = np.sqrt(np.mean((model.predict(users, items) - truth) ** 2))
            err_r = np.sqrt(np.mean((rand.predict(users, items) - truth) ** 2))
            assert err < err_r, f"RMSE {err:.4f} not better than RandomGuess {err_r:.4f}"
        else:
            ours, theirs = recall_at_k(model, train, test), recall_at_k(rand, train, test)
            assert ours > theirs, f"recall@10 {ours:.4f} not better than RandomGuess {theirs:.4f}"
