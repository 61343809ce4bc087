"""TFIDF: content-based ranking by the TF-IDF profiles of users and items built from reviews."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Choice
from ..base import Array, Recommender, Sparse, StateSpec
from ..registry import register


def _profiles(records: sp.csr_array, owner: np.ndarray, n: int, idf: np.ndarray) -> sp.csr_array:
    """Mean TF of the records of each owner (user or item), times the IDF: (n, n_words) float32."""
    nnz = records.shape[0]
    counts = np.bincount(owner, minlength=n).astype(np.float64)
    inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    agg = sp.csr_array((inv[owner], (owner, np.arange(nnz))), shape=(n, nnz))
    out = sp.csr_array(agg @ records)
    out = sp.csr_array(out @ sp.diags_array(idf))
    out.eliminate_zeros()
    out.sort_indices()
    return sp.csr_array(out, dtype=np.float32)


@register
class TFIDF(Recommender):
    """Content-based ranking: cosine of a user's and an item's TF-IDF review profiles.

    The ranking model of JStarCraft RNS (``TFIDFModel``) on review data such as
    ``musical_instruments.txt``: every training record's review is a document with term
    frequencies ``tf_d(w) = count / review length`` and ``idf(w) = ln(D / df(w))`` over the
    ``D`` training reviews. A user's profile is the mean ``tf`` of the reviews the user
    wrote, an item's the mean ``tf`` of the reviews it received, both times ``idf``; an
    item's score for a user is the cosine of the two profiles. Salton & Buckley (1988)
    for the weighting.

    Needs the ``"reviews"`` side data (``meta["review_words"]``). Items without training
    reviews (and users without any) have empty profiles and cannot be scored (NaN).

    Parameters
    ----------
    similarity : {"cosine", "common"}
        ``"cosine"``: the cosine of the full profiles. ``"common"``: the cosine restricted
        to the words both profiles contain (JStarCraft's ``CosineSimilarity``, which pairs
        only the entries present in both sparse vectors; no common word = NaN).

    Learned state
    -------------
    user_profiles_ (n_users, n_words) and item_profiles_ (n_items, n_words): CSR float32;
    idf_ (n_words,) float32. A new user is profiled by the mean profile of the items given.
    """

    name = "TFIDF"
    family: ClassVar[str] = "content"
    paper = "Salton & Buckley. Term-weighting approaches in automatic text retrieval. Information Processing & Management, 1988"
    requires: ClassVar[tuple[str, ...]] = ("reviews",)
    rules: ClassVar[dict[str, Any]] = {"similarity": Choice(("cosine", "common"))}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_profiles_": Sparse(("n_users", "n_words")),
        "item_profiles_": Sparse(("n_items", "n_words")),
        "idf_": Array("float32", ("n_words",)),
    }

    def __init__(self, similarity: str = "cosine") -> None:
        self.similarity = similarity

    def _fit(self, train: Interactions) -> None:
        words = sp.csr_array(train.meta["review_words"], dtype=np.float64)
        words.sort_indices()
        lengths = np.asarray(words.sum(axis=1)).ravel()
        inv = np.where(lengths > 0, 1.0 / np.maximum(lengths, 1e-12), 0.0)
        tf = sp.csr_array((words.data * np.repeat(inv, np.diff(words.indptr)), words.indices, words.indptr),
                          shape=words.shape)
        df = np.bincount(words.indices, minlength=words.shape[1]).astype(np.float64)
        n_docs = float(words.shape[0])
        idf = np.where(df > 0, np.log(n_docs / np.maximum(df, 1.0)), 0.0)
        self.idf_ = idf.astype(np.float32)
        self.user_profiles_ = _profiles(tf, train.user_index(), self.n_users_, idf)
        self.item_profiles_ = _profiles(tf, train.matrix.indices.astype(np.int64), self.n_items_, idf)

    # ------------------------------------------------------------ scoring
    def _cosine(self, left: sp.csr_array, right: sp.csr_array) -> np.ndarray:
        left = sp.csr_array(left, dtype=np.float64)
        right = sp.csr_array(right, dtype=np.float64)
        dots = np.asarray((left @ right.T).toarray())
        if self.similarity == "cosine":
            ln = np.sqrt(np.asarray(left.multiply(left).sum(axis=1)).ravel())
            rn = np.sqrt(np.asarray(right.multiply(right).sum(axis=1)).ravel())
            den = ln[:, None] * rn[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(den > 0, dots / np.where(den > 0, den, 1.0), np.nan)
        else:
            lb = left.copy()
            lb.data = np.ones_like(lb.data)
            rb = right.copy()
            rb.data = np.ones_like(rb.data)
            common = np.asarray((lb @ rb.T).toarray())
            l2 = np.asarray((left.multiply(left) @ rb.T).toarray())
            r2 = np.asarray((lb @ right.multiply(right).T).toarray())
            den = np.sqrt(l2 * r2)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where((common > 0) & (den > 0), dots / np.where(den > 0, den, 1.0), np.nan)
        return out.astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        right = self.item_profiles_ if items is None else self.item_profiles_[items]
        return self._cosine(self.user_profiles_[users], right)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows, dtype=np.float64)
        rows.data = np.ones_like(rows.data)
        n = np.asarray(rows.sum(axis=1)).ravel()
        scale = sp.diags_array(np.where(n > 0, 1.0 / np.maximum(n, 1.0), 0.0))
        profile = sp.csr_array(scale @ rows @ sp.csr_array(self.item_profiles_, dtype=np.float64))
        return self._cosine(profile, self.item_profiles_)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        out = self._cosine(self.item_profiles_[np.asarray(items, dtype=np.int64)], self.item_profiles_)
        return np.nan_to_num(out, nan=-np.inf)
