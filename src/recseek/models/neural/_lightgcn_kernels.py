"""numba kernels of LightGCN's CPU training: one call runs a whole epoch of Adam steps.

A step of LightGCN propagates every embedding over the graph and back, so on the CPU its
cost is a few sparse products of a few million multiply-adds, which torch's autograd
wraps in more time than the arithmetic takes. :func:`lightgcn_epoch` does what the torch
path does (the same loss, its exact gradient and torch's dense Adam update of the whole
embedding table) without leaving numba between steps:

forward
    ``F = (E + A E + ... + A^K E) / (K + 1)``, the layers accumulated as they are made;
loss
    for each triple ``(u, i, j)`` of the batch ``x = f_u . (f_j - f_i)``, the loss
    ``mean softplus(x) + reg / (2 B) sum |e_n|^2`` (``n`` over the batch's ``3 B`` nodes,
    repeats counted), and ``G = dLoss / dF``: ``sigmoid(x) / B`` times ``f_j - f_i`` on
    the user's row, ``-f_u`` on the positive's and ``f_u`` on the negative's;
backward
    ``A`` is symmetric, so ``dLoss / dE = (G + A G + ... + A^K G) / (K + 1)`` plus the
    penalty's ``reg / B e_n`` per occurrence, computed by Horner's rule
    ``H = G + A H`` (``K`` products, as many as the forward);
update
    Adam as ``torch.optim.Adam`` computes it (no weight decay, no AMSGrad).

Rows of a product are split over the threads in blocks, each row computed by one thread
with the same code, and the per-triple loop runs on one thread, so the result does not
depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange
from ._adam import adam_entry

#: Rows per block of the row-parallel loops.
BLOCK = 128
#: Multiply-adds of one sparse product (non-zeros of ``A`` times the embedding width) from
#: which the epoch runs on several threads. Each step starts the threads ``2 K + 3`` times;
#: below this the products take about a millisecond and starting threads costs more than
#: it saves as soon as another process shares the cores (ML-100K, 88k non-zeros times 64:
#: a step 5x slower on two busy cores than on one).
PARALLEL_WORK = 1 << 25


@njit(fastmath=True, error_model="numpy")
def _product_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray, base: np.ndarray,
                  out: np.ndarray, acc_out: np.ndarray, mode: int, lo: int, hi: int) -> None:
    """Rows ``lo:hi`` of ``out = A x`` (``mode`` 0; also ``acc_out += out``) or of
    ``out = base + A x`` (``mode`` 1)."""
    k = x.shape[1]
    acc = np.empty(k, dtype=np.float32)
    for r in range(lo, hi):
        if mode == 1:
            for d in range(k):
                acc[d] = base[r, d]
        else:
            for d in range(k):
                acc[d] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            w = data[p]
            for d in range(k):
                acc[d] += w * x[c, d]
        for d in range(k):
            out[r, d] = acc[d]
        if mode == 0:
            for d in range(k):
                acc_out[r, d] += acc[d]


@njit(fastmath=True, error_model="numpy")
def _fill_rows(src: np.ndarray, dst: np.ndarray, zero: np.ndarray, lo: int, hi: int) -> None:
    """``dst[lo:hi] = src[lo:hi]`` and ``zero[lo:hi] = 0``."""
    for r in range(lo, hi):
        for d in range(src.shape[1]):
            dst[r, d] = src[r, d]
            zero[r, d] = 0.0


@njit(fastmath=True, error_model="numpy")
def _scale_rows(x: np.ndarray, scale: np.float32, lo: int, hi: int) -> None:
    for r in range(lo, hi):
        for d in range(x.shape[1]):
            x[r, d] *= scale


@njit(error_model="numpy")
def _batch_gradient(final: np.ndarray, ego: np.ndarray, grad_final: np.ndarray, penalty: np.ndarray,
                    users: np.ndarray, pos: np.ndarray, neg: np.ndarray, order: np.ndarray, start: int, stop: int,
                    reg: float) -> float:
    """Loss of triples ``order[start:stop]``; writes ``dLoss / dF`` into ``grad_final`` and
    the penalty's gradient into ``penalty`` (both zero on entry)."""
    k = final.shape[1]
    b = stop - start
    inv_b = 1.0 / b
    total = 0.0
    sq = 0.0
    for s in range(start, stop):
        t = order[s]
        u, i, j = users[t], pos[t], neg[t]
        x = 0.0
        for d in range(k):
            x += final[u, d] * (final[j, d] - final[i, d])
        # softplus(x) = log(1 + e^x) and its derivative sigmoid(x), computed stably
        if x > 0:
            e = np.exp(-x)
            total += x + np.log1p(e)
            g = inv_b / (1.0 + e)
        else:
            e = np.exp(x)
            total += np.log1p(e)
            g = inv_b * e / (1.0 + e)
        gf = np.float32(g)
        for d in range(k):
            fu = final[u, d]
            grad_final[u, d] += gf * (final[j, d] - final[i, d])
            grad_final[i, d] -= gf * fu
            grad_final[j, d] += gf * fu
        rb = np.float32(reg * inv_b)
        for n in (u, i, j):
            for d in range(k):
                e0 = ego[n, d]
                sq += e0 * e0
                penalty[n, d] += rb * e0
    return total * inv_b + reg * sq * 0.5 * inv_b


@njit(fastmath=True, error_model="numpy")
def _adam_rows(param: np.ndarray, grad: np.ndarray, penalty: np.ndarray, m: np.ndarray, v: np.ndarray,
               grad_scale: np.float32, beta1: np.float32, beta2: np.float32, step_size: np.float32,
               bc2_sqrt: np.float32, eps: np.float32, lo: int, hi: int) -> None:
    """torch's Adam on rows ``lo:hi`` with the gradient ``grad * grad_scale + penalty``."""
    for r in range(lo, hi):
        for d in range(param.shape[1]):
            g = grad[r, d] * grad_scale + penalty[r, d]
            param[r, d], m[r, d], v[r, d] = adam_entry(param[r, d], g, m[r, d], v[r, d], beta1, beta2, step_size,
                                                       bc2_sqrt, eps)


@pnjit(error_model="numpy")
def lightgcn_epoch(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, ego: np.ndarray, m: np.ndarray,
                   v: np.ndarray, step: int, users: np.ndarray, pos: np.ndarray, neg: np.ndarray, order: np.ndarray,
                   batch_size: int, layers: int, reg: float, lr: float, beta1: float, beta2: float,
                   eps: float) -> np.ndarray:
    """One epoch of Adam steps over the triples ``(users, pos, neg)[order]`` (node ids of
    the graph ``A`` given in CSR form), in batches of ``batch_size``; updates ``ego`` and
    Adam's moments ``m`` / ``v`` in place (``step`` steps taken before). Returns the loss
    of each batch."""
    n, k = ego.shape
    count = order.shape[0]
    n_batches = (count + batch_size - 1) // batch_size
    blocks = (n + BLOCK - 1) // BLOCK
    losses = np.empty(n_batches, dtype=np.float64)
    final = np.empty((n, k), dtype=np.float32)
    x = np.empty((n, k), dtype=np.float32)
    y = np.empty((n, k), dtype=np.float32)
    grad_final = np.empty((n, k), dtype=np.float32)
    penalty = np.empty((n, k), dtype=np.float32)
    inv_layers = np.float32(1.0 / (layers + 1))
    for batch in range(n_batches):
        start = batch * batch_size
        stop = min(count, start + batch_size)
        # forward: final = (E + A E + ... + A^K E) / (K + 1)
        for blk in prange(blocks):
            _fill_rows(ego, final, grad_final, blk * BLOCK, min(n, (blk + 1) * BLOCK))
            _fill_rows(ego, x, penalty, blk * BLOCK, min(n, (blk + 1) * BLOCK))
        for _ in range(layers):
            for blk in prange(blocks):
                _product_rows(indptr, indices, data, x, x, y, final, 0, blk * BLOCK, min(n, (blk + 1) * BLOCK))
            x, y = y, x
        for blk in prange(blocks):
            _scale_rows(final, inv_layers, blk * BLOCK, min(n, (blk + 1) * BLOCK))
        losses[batch] = _batch_gradient(final, ego, grad_final, penalty, users, pos, neg, order, start, stop, reg)
        # backward: H = G + A H, K times, then dLoss/dE = H / (K + 1) + penalty
        h = grad_final
        dst = x
        for layer in range(layers):
            for blk in prange(blocks):
                _product_rows(indptr, indices, data, h, grad_final, dst, final, 1, blk * BLOCK,
                              min(n, (blk + 1) * BLOCK))
            if layer == 0:
                h, dst = x, y
            else:
                h, dst = dst, h
        t = step + batch + 1
        bc1 = 1.0 - beta1 ** t
        bc2_sqrt = np.sqrt(1.0 - beta2 ** t)
        for blk in prange(blocks):
            _adam_rows(ego, h, penalty, m, v, inv_layers, np.float32(beta1), np.float32(beta2),
                       np.float32(lr / bc1), np.float32(bc2_sqrt), np.float32(eps), blk * BLOCK,
                       min(n, (blk + 1) * BLOCK))
    return losses
