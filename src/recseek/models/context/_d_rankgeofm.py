"""Numba kernels of RankGeoFM: nearest places, and one epoch of weighted-approximate-rank SGD."""

from __future__ import annotations

import numpy as np

from ..._numba import njit

_EARTH_RADIUS_KM = 6378.137


def nearest_places(lat: np.ndarray, lon: np.ndarray, k: int, min_km: float,
                   block: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` nearest other places of every place by great-circle distance.

    Returns ``(indptr, indices, weights)`` of a CSR (n, n): weight ``1 / max(d, min_km)``
    normalised to sum 1 per row; places without coordinates (NaN) get empty rows and are
    nobody's neighbour. Vectorised over blocks of ``block`` places (haversine distances,
    then a partial sort per row).
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    n = lat.shape[0]
    ok = np.isfinite(lat) & np.isfinite(lon)
    kk = int(min(k, max(int(ok.sum()) - 1, 0)))
    counts = np.where(ok, kk, 0)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.zeros(indptr[-1], dtype=np.int64)
    weights = np.zeros(indptr[-1], dtype=np.float32)
    if kk == 0:
        return indptr, indices, weights
    la = np.radians(np.where(ok, lat, 0.0))
    lo = np.radians(np.where(ok, lon, 0.0))
    cos_la = np.cos(la)
    rows = np.flatnonzero(ok)
    for start in range(0, len(rows), block):
        r = rows[start:start + block]
        s1 = np.sin((la[r, None] - la[None, :]) / 2.0)
        s2 = np.sin((lo[r, None] - lo[None, :]) / 2.0)
        h = s1 * s1 + cos_la[r, None] * cos_la[None, :] * s2 * s2
        dist = 2.0 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
        dist[:, ~ok] = np.inf
        dist[np.arange(len(r)), r] = np.inf
        near = np.argpartition(dist, kk - 1, axis=1)[:, :kk]
        near.sort(axis=1)
        d = np.take_along_axis(dist, near, axis=1)
        w = 1.0 / np.maximum(d, min_km)
        w /= w.sum(axis=1, keepdims=True)
        for row, place in enumerate(r):
            a = indptr[place]
            indices[a:a + kk] = near[row]
            weights[a:a + kk] = w[row]
    return indptr, indices, weights


@njit
def seed_kernels(seed):  # pragma: no cover - numba
    np.random.seed(seed)


@njit
def _value(r_idx, r_val, lo, hi, j):  # pragma: no cover - numba
    """The training value of item ``j`` in the sorted row ``lo:hi`` (0 when absent)."""
    a, b = lo, hi
    while a < b:
        m = (a + b) // 2
        if r_idx[m] < j:
            a = m + 1
        else:
            b = m
    if a < hi and r_idx[a] == j:
        return r_val[a]
    return 0.0


@njit
def _clip(vec, limit):  # pragma: no cover - numba
    s = 0.0
    for f in range(vec.shape[0]):
        s += vec[f] * vec[f]
    norm = np.sqrt(s)
    if norm > limit:
        scale = limit / norm
        for f in range(vec.shape[0]):
            vec[f] *= scale


@njit
def rankgeofm_epoch(r_ptr, r_idx, r_val, u, g_user, q, geo, u0, g0, q0, harmonic, lr, margin, radius,
                    balance, max_trials):  # pragma: no cover - numba
    """One epoch over every (user, check-in) pair in user order.

    Scores inside the epoch use the snapshot ``u0``, ``g0`` (user factors), ``q0`` (item
    factors) and the geographical influence ``geo`` taken at its start, as in JStarCraft
    RNS; updates go to ``u``, ``g_user`` and ``q``. A negative ``j`` is drawn uniformly
    until one is less checked-in (``x_uj < x_ui``) and violates the margin
    (``s_uj + margin > s_ui``), or ``max_trials`` draws were made. Returns the weighted
    loss sum.
    """
    n_users = r_ptr.shape[0] - 1
    n_items = q.shape[0]
    k = q.shape[1]
    loss = 0.0
    for w in range(n_users):
        lo, hi = r_ptr[w], r_ptr[w + 1]
        for p in range(lo, hi):
            i = r_idx[p]
            x_i = r_val[p]
            pos = 0.0
            for f in range(k):
                pos += u0[w, f] * q0[i, f] + g0[w, f] * geo[i, f]
            trials = 0
            found = False
            j = 0
            neg = 0.0
            while trials < max_trials:
                j = np.random.randint(0, n_items)
                trials += 1
                if _value(r_idx, r_val, lo, hi, j) >= x_i:
                    continue
                neg = 0.0
                for f in range(k):
                    neg += u0[w, f] * q0[j, f] + g0[w, f] * geo[j, f]
                if neg + margin > pos:
                    found = True
                    break
            if not found:
                continue
            weight = harmonic[n_items // trials]
            s = 1.0 / (1.0 + np.exp(-(neg + margin - pos)))
            loss += weight * s
            step = weight * s * (1.0 - s) * lr
            for f in range(k):
                u[w, f] -= (q[j, f] - q[i, f]) * step
                g_user[w, f] -= (geo[j, f] - geo[i, f]) * step
            for f in range(k):
                d = u[w, f] * step
                q[i, f] += d
                q[j, f] -= d
            _clip(u[w], radius)
            _clip(g_user[w], balance * radius)
            _clip(q[i], radius)
            _clip(q[j], radius)
    return loss
