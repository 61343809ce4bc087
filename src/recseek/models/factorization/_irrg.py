"""numba kernel mining IRRG's group-to-item association rules."""

from __future__ import annotations

import numpy as np

from ..._numba import pnjit, prange


@pnjit
def group_rules(n_indptr, n_indices, i_indptr, i_indices, u_indptr, u_indices,
                co_indptr, co_indices, co_data, reliability, top):
    """For every target item ``j`` and every pair ``(k, g)`` of its neighbour items that
    co-occur: ``s = c/(c + reliability) * c / co(k, g)`` with ``c`` the users who rated
    ``k``, ``g`` and ``j``. Keeps the ``top`` strongest pairs per target.

    ``n_*``: neighbours of each item (CSR, item x item); ``i_*``: users of each item;
    ``u_*``: items of each user; ``co_*``: item co-occurrence counts (CSR, sorted).
    Returns padded ``(k, g, s)`` arrays of shape (n_items, top) and the counts.
    """
    n_items = n_indptr.shape[0] - 1
    out_k = np.full((n_items, top), -1, dtype=np.int32)
    out_g = np.full((n_items, top), -1, dtype=np.int32)
    out_s = np.zeros((n_items, top), dtype=np.float64)
    lens = np.zeros(n_items, dtype=np.int64)
    for j in prange(n_items):
        ns, ne = n_indptr[j], n_indptr[j + 1]
        m = ne - ns
        if m < 2:
            continue
        slot = np.full(n_items, -1, dtype=np.int32)
        for a in range(m):
            slot[n_indices[ns + a]] = a
        counts = np.zeros((m, m), dtype=np.int64)
        present = np.empty(m, dtype=np.int32)
        for p in range(i_indptr[j], i_indptr[j + 1]):
            u = i_indices[p]
            c = 0
            for q in range(u_indptr[u], u_indptr[u + 1]):
                s = slot[u_indices[q]]
                if s >= 0:
                    present[c] = s
                    c += 1
            for a in range(c):
                for b in range(a + 1, c):
                    x, y = present[a], present[b]
                    if x < y:
                        counts[x, y] += 1
                    else:
                        counts[y, x] += 1
        n_pairs = m * (m - 1) // 2
        ks = np.empty(n_pairs, dtype=np.int32)
        gs = np.empty(n_pairs, dtype=np.int32)
        ss = np.empty(n_pairs, dtype=np.float64)
        t = 0
        for a in range(m):
            ka = n_indices[ns + a]
            for b in range(a + 1, m):
                c = counts[a, b]
                if c == 0:
                    continue
                kb = n_indices[ns + b]
                lo, hi = ka, kb
                if lo > hi:
                    lo, hi = hi, lo
                # co-occurrence of the pair
                left, right = co_indptr[lo], co_indptr[lo + 1]
                while left < right:
                    mid = (left + right) // 2
                    if co_indices[mid] < hi:
                        left = mid + 1
                    else:
                        right = mid
                co = co_data[left] if left < co_indptr[lo + 1] and co_indices[left] == hi else 0.0
                if co <= 0:
                    continue
                ks[t] = lo
                gs[t] = hi
                ss[t] = c / (c + reliability) * c / co
                t += 1
        if t == 0:
            continue
        order = np.argsort(-ss[:t], kind="mergesort")
        keep = min(t, top)
        for r in range(keep):
            out_k[j, r] = ks[order[r]]
            out_g[j, r] = gs[order[r]]
            out_s[j, r] = ss[order[r]]
        lens[j] = keep
    return out_k, out_g, out_s, lens
