"""Beyond-accuracy metrics: novelty, catalogue coverage, Gini, intra-list diversity.

Per-user metrics (:func:`novelty`, :func:`diversity`) return one value per row of the
recommendation matrix ``ids`` (shape (n_users, k), ``-1`` = padding); catalogue metrics
(:func:`coverage`, :func:`gini`) return one number for all lists together.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["cooccurrence_vectors", "coverage", "diversity", "gini", "item_counts", "novelty"]


def item_counts(*matrices: sp.csr_array | sp.csr_matrix) -> np.ndarray:
    """Number of distinct users who interacted with each item in any of ``matrices``.

    All matrices must share one shape (users x items); a (user, item) pair present in
    several of them counts once (JStarCraft builds one train+test matrix).
    """
    pattern = None
    for m in matrices:
        m = sp.csr_array(m)
        p = sp.csr_array((np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape)
        pattern = p if pattern is None else pattern + p
    if pattern is None:
        raise ValueError("item_counts needs at least one matrix")
    pattern = sp.csr_array(pattern)
    pattern.sum_duplicates()
    return np.bincount(pattern.indices, minlength=pattern.shape[1]).astype(np.int64)


def novelty(ids: np.ndarray, counts: np.ndarray, n_users: int) -> np.ndarray:
    """JStarCraft novelty: sum over the list of ``-log2(count(item) / n_users)``.

    ``counts`` are item popularities (:func:`item_counts` over train + test) and
    ``n_users`` the number of users of the data set; items never seen add nothing.
    """
    ids = np.asarray(ids, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore"):
        info = np.where(counts > 0, -np.log2(counts / float(n_users)), 0.0)
    valid = ids >= 0
    return np.where(valid, info[np.where(valid, ids, 0)], 0.0).sum(axis=1)


def coverage(ids: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    ids = np.asarray(ids)
    shown = np.unique(ids[ids >= 0])
    return float(shown.size) / float(n_items) if n_items else 0.0


def gini(ids: np.ndarray, n_items: int) -> float:
    """Gini coefficient of how often each catalogue item is recommended.

    0 when every item is recommended equally often, approaching 1 when a few items
    take all the slots (items never recommended count as zeros).
    """
    ids = np.asarray(ids)
    c = np.sort(np.bincount(ids[ids >= 0], minlength=n_items).astype(np.float64))
    total = c.sum()
    if total == 0 or n_items == 0:
        return 0.0
    i = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2 * i - n_items - 1) * c).sum() / (n_items * total))


def cooccurrence_vectors(train: sp.csr_array | sp.csr_matrix) -> sp.csr_array:
    """Item vectors (items x users, L2-normalised rows) whose dot products are the
    item-item co-occurrence cosine ``|U_a & U_b| / sqrt(|U_a| |U_b|)``."""
    m = sp.csr_array(train)
    binary = sp.csr_array((np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape)
    items = sp.csr_array(binary.T)
    norms = np.sqrt(np.diff(items.indptr).astype(np.float32))
    norms[norms == 0] = 1.0
    items.data = items.data / np.repeat(norms, np.diff(items.indptr))
    return items


def diversity(ids: np.ndarray, item_vectors: np.ndarray | sp.csr_array, block: int = 512) -> np.ndarray:
    """Intra-list diversity: mean of ``1 - cosine(a, b)`` over ordered pairs of
    distinct positions in each list (JStarCraft's ``DiversityEvaluator``).

    Parameters
    ----------
    ids : int ndarray, shape (n, k)
        Lists; padding (``-1``) positions are left out. Lists shorter than 2 give 0.
    item_vectors : ndarray (n_items, d) or csr (n_items, d)
        Item representations, e.g. a model's ``item_vectors()`` or
        :func:`cooccurrence_vectors` of the training data (then the similarity is the
        co-occurrence cosine).
    block : int
        Users handled at once (bounds memory at ``block * k * d``).
    """
    ids = np.asarray(ids, dtype=np.int64)
    n, k = ids.shape
    out = np.zeros(n, dtype=np.float64)
    if k < 2:
        return out
    sparse = sp.issparse(item_vectors)
    if sparse:
        vecs = sp.csr_array(item_vectors)
        norms = np.sqrt(np.asarray(vecs.multiply(vecs).sum(axis=1)).ravel())
    else:
        vecs = np.asarray(item_vectors, dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1)
    norms = np.where(norms == 0, 1.0, norms)
    for start in range(0, n, block):
        b = ids[start : start + block]
        valid = b >= 0
        safe = np.where(valid, b, 0)
        if sparse:
            uniq, inv = np.unique(safe, return_inverse=True)
            sub = vecs[uniq]
            gram_u = (sub @ sub.T).toarray() / np.outer(norms[uniq], norms[uniq])
            inv = inv.reshape(b.shape)
            sims = gram_u[inv[:, :, None], inv[:, None, :]]
        else:
            v = vecs[safe] / norms[safe][..., None]
            sims = np.einsum("ukd,ujd->ukj", v, v)
        pair = valid[:, :, None] & valid[:, None, :]
        pair &= ~np.eye(k, dtype=bool)[None]
        total = np.where(pair, 1.0 - sims, 0.0).sum(axis=(1, 2))
        cnt = pair.sum(axis=(1, 2))
        out[start : start + len(b)] = np.divide(total, cnt, out=np.zeros(len(b)), where=cnt > 0)
    return out
