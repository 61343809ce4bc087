"""Side data on Interactions: per-record entries follow every cut, vocabularies grow the
trust graph and item features, and a model that requires side data says what is missing."""

from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import SIDE_DATA, Interactions, Vocabulary, random_split
from recseek.errors import DataError
from recseek.models.base import Recommender
from recseek.testing.fixtures import ml100k_sample, planted_blocks, synthetic, with_ml100k_items


def test_subset_and_splits_cut_per_record_meta() -> None:
    data = synthetic(seed=1, side=True)
    words = data.meta["review_words"]
    # tag every record with its own value so that misalignment shows
    tag = np.arange(data.nnz, dtype=np.float64)
    data = Interactions(data.matrix, data.users, data.items, data.timestamps, item_data=data.item_data,
                        trust=data.trust, order=data.order, item_features=data.item_features,
                        meta={**data.meta, "tag": tag})
    mask = np.random.default_rng(0).random(data.nnz) < 0.5
    part = data.subset(mask)
    np.testing.assert_array_equal(part.meta["tag"], tag[mask])
    np.testing.assert_array_equal(part.meta["review_words"].toarray(), words.toarray()[mask])
    assert part.meta["review_vocabulary"] is data.meta["review_vocabulary"]
    train, test = random_split(data, 0.2, seed=0)
    for piece in (train, test):
        u, i, _, _ = piece.to_coo()
        # the tag of each record names the record of the full data with the same (user, item)
        fu, fi, _, _ = data.to_coo()
        np.testing.assert_array_equal(fu[piece.meta["tag"].astype(int)], u)
        np.testing.assert_array_equal(fi[piece.meta["tag"].astype(int)], i)
        assert piece.meta["review_words"].shape == (piece.nnz, words.shape[1])


def test_with_vocabularies_grows_trust_and_features() -> None:
    data = synthetic(seed=2, side=True)
    users = Vocabulary(np.concatenate([data.users.ids, [10_000, 10_001]]), "user")
    items = Vocabulary(np.concatenate([data.items.ids, [20_000]]), "item")
    grown = data.with_vocabularies(users, items)
    assert grown.trust.shape == (data.n_users + 2, data.n_users + 2)
    assert grown.item_features.shape == (data.n_items + 1, data.item_features.shape[1])
    assert grown.trust[[data.n_users]].nnz == 0 and grown.item_features[[data.n_items]].nnz == 0
    np.testing.assert_array_equal(grown.trust[: data.n_users][:, : data.n_users].toarray(), data.trust.toarray())


def test_has_names_every_kind() -> None:
    bare, full = synthetic(seed=0, with_time=False), synthetic(seed=0, side=True)
    for kind in SIDE_DATA:
        assert full.has(kind), kind
        assert not bare.has(kind), kind
    with pytest.raises(DataError, match="unknown kind of side data"):
        bare.has("photos")


class _NeedsTrust(Recommender):
    name = "NeedsTrustForTest"
    requires: ClassVar[tuple[str, ...]] = ("trust",)

    def _fit(self, train: Interactions) -> None:
        pass

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return np.zeros((len(users), self.n_items_ if items is None else len(items)), np.float32)


def test_required_side_data_is_one_sentence() -> None:
    with pytest.raises(DataError, match=r"NeedsTrustForTest needs a user-user trust graph .*has none"):
        _NeedsTrust().fit(synthetic(seed=0))
    _NeedsTrust().fit(synthetic(seed=0, side=True))


def test_planted_side_data_carries_the_blocks() -> None:
    """The premise of checking side-data models on planted blocks: each kind tells the blocks apart."""
    data = planted_blocks(side=True)
    train, ub, ib = data.train, data.user_block, data.item_block
    t = train.trust.tocoo()
    assert np.mean(ub[t.row] == ub[t.col]) >= 0.75
    f = train.item_features.toarray()
    assert (f[:, : ib.max() + 1].argmax(axis=1) == ib).all()
    _, items, _, _ = train.to_coo()
    w = train.meta["review_words"].toarray()
    assert (w[:, :20].argmax(axis=1) // 5 == ib[items]).all()
    lat = train.item_data["latitude"].to_numpy()
    assert (np.round(lat / 10) == ib).all()
    # test records carry their own reviews but share the item table and graph
    assert data.test.meta["review_words"].shape[0] == data.test.nnz
    assert data.test.trust is train.trust and data.test.item_data is train.item_data


def test_ml100k_items_attach_titles_and_genres() -> None:
    data = with_ml100k_items(ml100k_sample(100))
    assert data.has("item_text") and data.has("item_features")
    assert data.item_features.shape[0] == data.n_items and len(data.meta["item_feature_names"]) >= 18
    assert isinstance(data.item_features, sp.csr_array)
    assert data.item_data["title"].notna().all()
