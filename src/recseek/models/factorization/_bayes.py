"""Numba kernel of BPMF: draw every row's factors from its Gaussian conditional."""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange


@njit
def _draw_row(r, indptr, indices, data, a, b, prior_prec, prior_shift, alpha, noise):  # pragma: no cover
    k = a.shape[1]
    prec = prior_prec.copy()
    rhs = prior_shift.copy()
    for p in range(indptr[r], indptr[r + 1]):
        j = indices[p]
        x = data[p]
        for f in range(k):
            bf = b[j, f]
            rhs[f] += alpha * x * bf
            for h in range(f, k):
                prec[f, h] += alpha * bf * b[j, h]
    for f in range(k):
        for h in range(f):
            prec[f, h] = prec[h, f]
    chol = np.linalg.cholesky(prec)
    y = np.linalg.solve(chol, rhs)
    mean = np.linalg.solve(chol.T, y)
    dev = np.linalg.solve(chol.T, noise[r].astype(np.float64))
    for f in range(k):
        a[r, f] = mean[f] + dev[f]


@pnjit
def _draw_chunks(indptr, indices, data, a, b, prior_prec, prior_shift, alpha, noise, n_chunks):  # pragma: no cover
    n = indptr.shape[0] - 1
    for c in prange(n_chunks):
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _draw_row(r, indptr, indices, data, a, b, prior_prec, prior_shift, alpha, noise)


def draw_side(indptr, indices, data, a, b, prior_prec, prior_mean, alpha, noise, n_chunks):
    """Replace each row of ``a`` by a draw from ``N(mean_r, Lambda_r^-1)`` where
    ``Lambda_r = prior_prec + alpha sum_j b_j b_j^T`` and
    ``Lambda_r mean_r = alpha sum_j x_rj b_j + prior_prec prior_mean``; ``noise`` holds the
    standard normal numbers (drawn by the caller, so the result is thread-independent);
    rows run in ``n_chunks`` contiguous blocks in parallel (one block: a single thread)."""
    shift = prior_prec @ prior_mean
    _draw_chunks.variant(n_chunks > 1)(indptr, indices, data, a, b, prior_prec, shift, np.float64(alpha), noise,
                                       n_chunks)
