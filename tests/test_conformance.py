"""Every registered model runs the conformance suite (recseek.testing.conformance), and
two fake models (popularity and random stubs) are shown to fail it."""

import numpy as np
import pytest

from recseek.errors import RecseekError
from recseek.models import available, registry
from recseek.testing.conformance import (
    MIN_PERSONALISED_AUC,
    RecommenderConformance,
    check_personalisation,
    make_model,
    personalisation,
)
from recseek.testing.fixtures import planted_blocks, synthetic
from recseek.testing.stubs import STUBS, registered_stubs

MODEL_NAMES = [cls.name for cls in available()]


def _make(name: str) -> type:
    return type(f"Test{name}", (RecommenderConformance,), {"model_name": name})


for _n in MODEL_NAMES:
    globals()[f"Test{_n}"] = _make(_n)


@pytest.mark.parametrize("stub", [cls.name for cls in STUBS])
def test_stub_fails_the_suite(stub: str) -> None:
    """A model that ignores the user (popularity) or guesses (random) must not pass."""
    with registered_stubs():
        with pytest.raises(AssertionError, match="does not personalise"):
            check_personalisation(stub)
        data = planted_blocks()
        train, test = data.for_task("ranking")
        auc, _ = personalisation(make_model(stub).fit(train), train, test)
        assert abs(auc - 0.5) < 0.1 < MIN_PERSONALISED_AUC - 0.5


def test_stubs_pass_the_contract_checks() -> None:
    """The stubs honour the interface, so only the quality check can be what rejects them."""
    with registered_stubs():
        for cls in STUBS:
            suite = _make(cls.name)()
            data = synthetic(seed=3)
            fitted = make_model(cls.name).fit(data)
            suite.test_recommend_shape_and_order(fitted, data)
            suite.test_exclude_seen(fitted, data)
            suite.test_batch_equals_single(fitted, data)
            suite.test_unknown_hyperparameter()


def test_stubs_do_not_leak_into_the_registry() -> None:
    with registered_stubs():
        assert registry.get("PopularityStub").name == "PopularityStub"
    names = {cls.name for cls in available()}
    assert names == set(MODEL_NAMES) and not names & {cls.name for cls in STUBS}
    with pytest.raises(RecseekError, match="unknown model"):
        registry.get("RandomStub")


def test_planted_blocks_have_flat_popularity() -> None:
    """The premise of the personalisation check: item counts and means carry no signal."""
    data = planted_blocks()
    for train in (data.train, data.for_task("ranking")[0]):
        counts = np.bincount(train.matrix.indices, minlength=train.n_items)
        sums = np.bincount(train.matrix.indices, weights=train.matrix.data, minlength=train.n_items)
        assert counts.min() == counts.max() and sums.min() == sums.max()
    # each user's withheld items lie in the user's own block
    u, i, _, _ = data.test.to_coo()
    np.testing.assert_array_equal(data.user_block[u], data.item_block[i])
