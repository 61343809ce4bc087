"""Numba kernels of the RBM for collaborative filtering: one epoch of contrastive divergence
over mini-batches of users, and the mean-field hidden activations used for prediction."""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange
from ._b_gibbs import _total, _uniform


@njit(error_model="numpy")
def _sigmoid(x):  # pragma: no cover - numba
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x)
    return e / (1.0 + e)


@njit(error_model="numpy")
def _hidden(W, bh, items, levels, lo, hi, out):  # pragma: no cover - numba
    """``out[j] = sigmoid(bh[j] + sum_t W[items[t], levels[t], j])`` over ratings lo..hi."""
    F = bh.shape[0]
    for j in range(F):
        out[j] = bh[j]
    for t in range(lo, hi):
        w = W[items[t], levels[t]]
        for j in range(F):
            out[j] += w[j]
    for j in range(F):
        out[j] = _sigmoid(out[j])


@pnjit(error_model="numpy")
def rbm_phases(batch, indptr, indices, lev, W, bv, bh, steps, seeds, h0, h1, neg):  # pragma: no cover - numba
    """Positive and negative phases of CD-``steps`` for the users of one mini-batch.

    For batch user ``b``: ``h0[b]`` = p(h | data); the hidden units are sampled, each rated
    item's level is resampled from its softmax given them (``steps`` times, the hidden
    units resampled in between); ``neg`` holds the final visible levels (aligned with the
    user's ratings, at ``indptr[u] .. indptr[u + 1]``) and ``h1[b]`` = p(h | reconstruction).
    Each user draws from its own stream ``seeds[b]``, so the result does not depend on the
    threads. Returns the batch's summed -log p(v = data | sampled h) of the first step.
    """
    n = batch.shape[0]
    F = bh.shape[0]
    R = bv.shape[1]
    nll = np.zeros(n)
    for b in prange(n):
        u = batch[b]
        lo, hi = indptr[u], indptr[u + 1]
        x = seeds[b]
        _hidden(W, bh, indices, lev, lo, hi, h0[b])
        # the sampled binary hidden units, kept as the list of those that are on
        on = np.empty(F, dtype=np.int64)
        n_on = 0
        for j in range(F):
            x, v = _uniform(x)
            if v < h0[b, j]:
                on[n_on] = j
                n_on += 1
        logits = np.empty(R)
        acc = 0.0
        for step in range(steps):
            for t in range(lo, hi):
                i = indices[t]
                top = -np.inf
                for k in range(R):
                    s = 0.0
                    w = W[i, k]
                    for a in range(n_on):
                        s += w[on[a]]
                    s += bv[i, k]
                    logits[k] = s
                    if s > top:
                        top = s
                tot = 0.0
                for k in range(R):
                    logits[k] = np.exp(logits[k] - top)
                    tot += logits[k]
                if step == 0:
                    acc -= np.log(logits[lev[t]] / tot)
                x, v = _uniform(x)
                target = v * tot
                pick = R - 1
                run = 0.0
                for k in range(R):
                    run += logits[k]
                    if run > target:
                        pick = k
                        break
                neg[t] = pick
            _hidden(W, bh, indices, neg, lo, hi, h1[b])
            if step + 1 < steps:
                n_on = 0
                for j in range(F):
                    x, v = _uniform(x)
                    if v < h1[b, j]:
                        on[n_on] = j
                        n_on += 1
        nll[b] = acc
    return _total(nll)


@njit(error_model="numpy")
def rbm_update(batch, indptr, indices, lev, neg, h0, h1, W, bv, bh, dW, dbv, dbh, incW, incbv, incbh, count,
               touched, lr, momentum, reg, reg_bias):  # pragma: no cover - numba
    """Accumulate the CD gradient of one mini-batch and take a momentum step.

    Weight and visible-bias gradients of an item are averaged over the batch users who
    rated it, the hidden-bias gradient over the batch; ``reg`` and ``reg_bias`` are L2
    weight decays. Only the items rated in the batch are touched (their momentum too).
    """
    n = batch.shape[0]
    F = bh.shape[0]
    R = bv.shape[1]
    n_touched = 0
    for b in range(n):
        u = batch[b]
        for t in range(indptr[u], indptr[u + 1]):
            i = indices[t]
            if count[i] == 0:
                touched[n_touched] = i
                n_touched += 1
            count[i] += 1
            rp = lev[t]
            rn = neg[t]
            dp = dW[i, rp]
            dn = dW[i, rn]
            for j in range(F):
                dp[j] += h0[b, j]
                dn[j] -= h1[b, j]
            dbv[i, rp] += 1.0
            dbv[i, rn] -= 1.0
        for j in range(F):
            dbh[j] += h0[b, j] - h1[b, j]
    for s in range(n_touched):
        i = touched[s]
        c = count[i]
        for k in range(R):
            for j in range(F):
                incW[i, k, j] = momentum * incW[i, k, j] + lr * (dW[i, k, j] / c - reg * W[i, k, j])
                W[i, k, j] += incW[i, k, j]
                dW[i, k, j] = 0.0
            incbv[i, k] = momentum * incbv[i, k] + lr * (dbv[i, k] / c - reg_bias * bv[i, k])
            bv[i, k] += incbv[i, k]
            dbv[i, k] = 0.0
        count[i] = 0
    for j in range(F):
        incbh[j] = momentum * incbh[j] + lr * (dbh[j] / n - reg_bias * bh[j])
        bh[j] += incbh[j]
        dbh[j] = 0.0


@pnjit(error_model="numpy")
def rbm_hidden_rows(indptr, indices, lev, W, bh):  # pragma: no cover - numba
    """Mean-field hidden activations p(h | ratings) of each row (float32, (n_rows, F))."""
    n = indptr.shape[0] - 1
    F = bh.shape[0]
    out = np.empty((n, F), dtype=np.float32)
    for u in prange(n):
        h = np.empty(F)
        _hidden(W, bh, indices, lev, indptr[u], indptr[u + 1], h)
        for j in range(F):
            out[u, j] = h[j]
    return out
