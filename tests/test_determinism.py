"""A fixed seed reproduces every registered model: fits on one and on two numba threads agree exactly.

The default run fits every model on a small data set (about 2,000 interactions) once on two
threads and once on one. The slow run repeats both checks on a data set large enough (about
22,000 interactions) that chunked SGD epochs and chunked Gibbs sweeps really split into
several chunks, so lock-free parallel training would show up there as a mismatch. Both data
sets carry every kind of side data (planted from their taste groups), so models that require
side data are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from recseek import _numba
from recseek.data import Interactions
from recseek.errors import ParameterError
from recseek.models import available, registry
from recseek.models.base import Recommender
from recseek.testing.conformance import make_model
from recseek.testing.fixtures import synthetic

MODEL_NAMES = [cls.name for cls in available()]


@pytest.fixture(scope="module")
def data() -> Interactions:
    # with every kind of side data, for the models that require some (trust, features, reviews ...)
    return synthetic(n_users=500, n_items=300, density=0.15, seed=5, side=True)


@pytest.fixture(scope="module")
def small() -> Interactions:
    return synthetic(n_users=120, n_items=80, density=0.12, seed=5, side=True)


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = _numba.get_num_threads()
    _numba.set_num_threads(2)
    assert _numba.get_num_threads() == 2, "this check needs numba to run on two threads"
    try:
        yield
    finally:
        _numba.set_num_threads(before)


def _fit_state(name: str, data: Interactions) -> tuple[dict[str, np.ndarray], np.ndarray]:
    extra = {"seed": 7} if "seed" in registry.get(name).param_names() else {}
    model: Recommender = make_model(name, **extra).fit(data)
    users = np.arange(0, data.n_users, 7)
    return model.get_parameters(), np.asarray(model.score(users))


def _assert_same(name: str, a: tuple[dict[str, np.ndarray], np.ndarray],
                 b: tuple[dict[str, np.ndarray], np.ndarray]) -> None:
    params_a, scores_a = a
    params_b, scores_b = b
    assert sorted(params_a) == sorted(params_b)
    for key in params_a:
        np.testing.assert_array_equal(np.asarray(params_a[key]), np.asarray(params_b[key]),
                                      err_msg=f"{name}: parameter {key!r} differs between two fits")
    np.testing.assert_array_equal(scores_a, scores_b, err_msg=f"{name}: scores differ between two fits")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_and_two_threads_agree_on_small_data(name: str, small: Interactions, two_threads: None) -> None:
    on_two = _fit_state(name, small)
    _numba.set_num_threads(1)
    on_one = _fit_state(name, small)
    _assert_same(name, on_two, on_one)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fixed_seed_reproduces_on_two_threads(name: str, data: Interactions, two_threads: None) -> None:
    first = _fit_state(name, data)
    second = _fit_state(name, data)
    _assert_same(name, first, second)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fixed_seed_gives_the_same_model_on_one_and_two_threads(name: str, data: Interactions,
                                                                two_threads: None) -> None:
    on_two = _fit_state(name, data)
    _numba.set_num_threads(1)
    on_one = _fit_state(name, data)
    _assert_same(name, on_two, on_one)


def test_lock_free_training_is_opt_in(data: Interactions, two_threads: None) -> None:
    from recseek.models.ranking._kernels import bpr_epoch

    assert _numba.is_deterministic(), "deterministic training must be the default"
    reference = make_model("BPR", seed=7).fit(data).get_parameters()
    before = _numba.set_deterministic(False)
    try:
        fast = make_model("BPR", seed=7).fit(data).get_parameters()
    finally:
        _numba.set_deterministic(before)
    assert bpr_epoch.parallel.signatures, "set_deterministic(False) did not run the parallel kernel"
    assert np.isfinite(fast["user_factors_"]).all()
    # same data, seed and chunk streams: the lock-free run learns nearly the same factors
    cos = np.sum(fast["item_factors_"] * reference["item_factors_"]) / (
        np.linalg.norm(fast["item_factors_"]) * np.linalg.norm(reference["item_factors_"]))
    assert cos > 0.9


@pytest.mark.parametrize("raw, expected", [("0", False), ("off", False), ("1", True), ("", True)])
def test_environment_switch(raw: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_numba, "_deterministic", None)
    monkeypatch.setenv("RECSEEK_DETERMINISTIC", raw)
    assert _numba.is_deterministic() is expected


def test_environment_switch_rejects_other_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_numba, "_deterministic", None)
    monkeypatch.setenv("RECSEEK_DETERMINISTIC", "sometimes")
    with pytest.raises(ParameterError, match="RECSEEK_DETERMINISTIC must be 1 or 0"):
        _numba.is_deterministic()
