"""Similarity matrices for the neighbourhood models (sparse, top-k pruned per row).

The numba kernels live in :mod:`._kernels` and numba itself is imported only when a
similarity is computed, so importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SIMILARITIES = ("cosine", "jaccard", "pearson", "asymmetric", "conditional")
WEIGHTINGS = ("none", "tfidf", "bm25")


def idf_weights(x: sp.csr_array) -> np.ndarray:
    """Inverse document frequency of each column (feature) of ``x``, rows being documents."""
    n_docs = x.shape[0]
    df = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    return np.log(n_docs / (1.0 + df)).clip(min=0.0) + 1e-6


def apply_weighting(
    x: sp.csr_array,
    weighting: str,
    idf: np.ndarray | None,
    avg_length: float | None,
    k1: float = 1.2,
    b: float = 0.75,
) -> sp.csr_array:
    """Re-weight ``x`` (documents x terms): ``tfidf`` = value * idf; ``bm25`` = Okapi BM25
    term weight (saturated value, document-length normalised) * idf."""
    if weighting == "none":
        return x
    x = sp.csr_array(x, dtype=np.float32, copy=True)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    w = idf[x.indices]
    if weighting == "tfidf":
        x.data = (x.data * w).astype(np.float32)
        return x
    lengths = np.asarray(x.sum(axis=1)).ravel()
    norm = (1.0 - b) + b * lengths / max(avg_length or 1.0, 1e-12)
    tf = x.data * (k1 + 1.0) / (x.data + k1 * norm[rows])
    x.data = (tf * w).astype(np.float32)
    return x


def pairwise_topk(
    entities: sp.csr_array,
    similarity: str,
    neighbors: int | None,
    shrinkage: float,
    alpha: float = 0.5,
    min_support: int = 1,
    right: sp.csr_array | None = None,
) -> sp.csr_array:
    """Similarity of the rows of ``entities`` (n x f) to each other, shape (n, n).

    With ``similarity="dot"`` and ``right`` (f x n) the result is ``entities @ right``.
    Keeps the ``neighbors`` largest similarities of each row (all when ``None``); the
    diagonal is dropped. See :func:`._kernels.similarity_topk` for the formulas.
    """
    from ..._numba import get_num_threads
    from ._kernels import MODES, padded_to_csr, similarity_topk

    e = sp.csr_array(entities, dtype=np.float32)
    e.sort_indices()
    f = sp.csr_array(e.T if right is None else right, dtype=np.float32)
    f.sort_indices()
    n = e.shape[0]
    norms = np.sqrt(np.asarray(e.multiply(e).sum(axis=1)).ravel()).astype(np.float64)
    counts = np.diff(e.indptr).astype(np.float64)
    k = n if neighbors is None else int(min(neighbors, n))
    k = max(k, 1)
    blocks = max(1, min(n, 8 * get_num_threads()))
    cols, vals, lens = similarity_topk(
        e.indptr.astype(np.int64), e.indices.astype(np.int32), e.data.astype(np.float64),
        f.indptr.astype(np.int64), f.indices.astype(np.int32), f.data.astype(np.float64),
        norms, counts, MODES[similarity], float(shrinkage), float(alpha), k, int(min_support), blocks,
    )
    return padded_to_csr(cols, vals, lens, n)


def prune_rows(m: sp.csr_array, k: int) -> sp.csr_array:
    """Keep the ``k`` largest entries of each row of ``m``."""
    from ._kernels import topk_rows

    m = sp.csr_array(m, dtype=np.float32)
    m.sort_indices()
    ptr, idx, val = topk_rows(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data, int(k))
    return sp.csr_array((val, idx, ptr), shape=m.shape)


def cross_similarity(
    new: sp.csr_array,
    train: sp.csr_array,
    similarity: str,
    shrinkage: float,
    alpha: float = 0.5,
) -> sp.csr_array:
    """Similarity of the rows of ``new`` to the rows of ``train`` (same feature space),
    with the formulas of :func:`pairwise_topk` (pearson uses full-row norms here)."""
    new = sp.csr_array(new, dtype=np.float32)
    train = sp.csr_array(train, dtype=np.float32)
    bin_new = new.copy()
    bin_new.data = np.ones_like(bin_new.data)
    bin_train = train.copy()
    bin_train.data = np.ones_like(bin_train.data)
    if similarity in ("jaccard", "conditional"):
        dots = sp.csr_array(bin_new @ bin_train.T)
    else:
        dots = sp.csr_array(new @ train.T)
    dots.sort_indices()
    rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr))
    cols = dots.indices
    d = dots.data.astype(np.float64)
    if similarity in ("cosine", "pearson", "asymmetric"):
        na = np.sqrt(np.asarray(new.multiply(new).sum(axis=1)).ravel())[rows]
        nb = np.sqrt(np.asarray(train.multiply(train).sum(axis=1)).ravel())[cols]
        if similarity == "asymmetric":
            den = na ** (2 * alpha) * nb ** (2 * (1 - alpha)) + shrinkage
        else:
            den = na * nb + shrinkage
    else:
        ca = np.diff(new.indptr)[rows].astype(np.float64)
        cb = np.diff(train.indptr)[cols].astype(np.float64)
        den = ca + cb - d + shrinkage if similarity == "jaccard" else ca + shrinkage
    sims = np.divide(d, den, out=np.zeros_like(d), where=den > 0).astype(np.float32)
    out = sp.csr_array((sims, cols, dots.indptr), shape=dots.shape)
    out.eliminate_zeros()
    return out
