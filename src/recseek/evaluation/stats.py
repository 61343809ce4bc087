"""Statistics for comparing recommenders over the same users.

Every function takes per-user metric values (one value per evaluated user, the
unit of the evaluation protocol) and is seeded where it is random, so a fixed seed
gives the same numbers on every run.

- :func:`bootstrap_ci`: percentile bootstrap confidence interval of a mean.
- :func:`permutation_test`: paired two-sided randomisation (sign-flip) test.
- :func:`wilcoxon_test`: paired two-sided Wilcoxon signed-rank test.
- :func:`holm`: Holm's step-down adjustment of several p-values.
- :func:`cohens_dz`, :func:`rank_biserial`: paired effect sizes.
- :func:`mean_sd`: mean and sample standard deviation over seeds or folds.
- :func:`compare`: all paired figures of one model against a baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

__all__ = [
    "PairedComparison",
    "bootstrap_ci",
    "cohens_dz",
    "compare",
    "holm",
    "mean_sd",
    "permutation_test",
    "rank_biserial",
    "wilcoxon_test",
]

#: Resamples (bootstrap) or sign patterns (permutation test) drawn at once; bounds memory
#: at ``_CHUNK * n_users`` numbers.
_CHUNK = 2048


def _values(x: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ParameterError(f"{what} must be a non-empty 1-d array of per-user values, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ParameterError(f"{what} holds NaN or infinite values")
    return a


def _pair(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _values(x, "x"), _values(y, "y")
    if a.shape != b.shape:
        raise ParameterError(f"paired values need equal lengths, got {a.size} and {b.size}")
    return a, b


def _check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ParameterError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean.

    Definition: draw ``n_resamples`` samples of the ``n`` values with replacement,
    take each sample's mean, and return the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of those means (Efron & Tibshirani, *An
    Introduction to the Bootstrap*, 1993, ch. 13). Resampling is vectorised.

    Parameters
    ----------
    values : array (n,) or (n, m)
        Per-user metric values; with ``m`` columns (several metrics of the same
        users) every column gets its interval from the same resamples, and ``low``
        and ``high`` are arrays of ``m`` values.
    level : float
        Coverage, strictly between 0 and 1.
    n_resamples : int
        Number of bootstrap samples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    (low, high)
    """
    v = np.asarray(values, dtype=np.float64)
    columns = v.ndim == 2
    v = _values(v.T if columns else v, "values") if not columns else v
    if columns and (v.shape[0] == 0 or not np.all(np.isfinite(v))):
        raise ParameterError(f"values must be finite per-user values with at least one row, got shape {v.shape}")
    b = _check_count(n_resamples, "n_resamples")
    if not 0.0 < float(level) < 1.0:
        raise ParameterError(f"level must be between 0 and 1, got {level!r}")
    rng = np.random.default_rng(seed)
    n = v.shape[0]
    table = np.ascontiguousarray((v if columns else v[:, None]).T).T
    means = np.empty((b, table.shape[1]), dtype=np.float64)
    for s in range(0, b, _CHUNK):
        m = min(_CHUNK, b - s)
        idx = rng.integers(0, n, size=(m, n), dtype=np.int32 if n < 2**31 else np.int64)
        for j in range(table.shape[1]):  # the same resamples for every column
            means[s : s + m, j] = table[:, j][idx].mean(axis=1)
    alpha = (1.0 - float(level)) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    if columns:
        return low, high
    return float(low[0]), float(high[0])


def _byte_sums(d: np.ndarray) -> np.ndarray:
    """(ceil(n / 8), 256) table: entry (j, b) sums the differences ``d[8j : 8j + 8]`` whose bit is set in ``b``."""
    n_bytes = (d.size + 7) // 8
    groups = np.zeros(n_bytes * 8, dtype=np.float64)
    groups[: d.size] = d
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)  # (256, 8)
    return groups.reshape(n_bytes, 8) @ bits.T


def permutation_test(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    n_permutations: int = 100_000,
    seed: int = 0,
) -> float:
    """Two-sided paired randomisation test of equal means (Fisher's randomisation test).

    Definition: under the null hypothesis the two systems' values of a user are
    exchangeable, so each difference ``d_u = y_u - x_u`` keeps or flips its sign
    with probability 1/2. With ``T = |mean(d)|`` and ``T_b`` the same statistic
    after the b-th random sign pattern, the p-value is
    ``(1 + #{b : T_b >= T}) / (1 + n_permutations)`` (Smucker, Allan & Carterette,
    CIKM 2007; the ``+1`` keeps it a valid p-value, Phipson & Smyth 2010). Sign
    patterns are drawn as random bytes, each covering 8 users, and applied through a
    table of the 256 partial sums of each group of 8 differences (vectorised, no loop
    per permutation).

    Returns
    -------
    float p-value in (0, 1]
    """
    a, b = _pair(x, y)
    n_perm = _check_count(n_permutations, "n_permutations")
    d = b - a
    observed = abs(d.sum())
    # equal sums reached by a different order of additions must still count as ties
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    rng = np.random.default_rng(seed)
    tables = _byte_sums(d)
    cols = np.arange(tables.shape[0])
    total = d.sum()
    extreme = 0
    for s in range(0, n_perm, _CHUNK):
        m = min(_CHUNK, n_perm - s)
        # one random byte per 8 users: its bits say which differences keep their sign;
        # the flipped sum is 2 * (sum of the kept differences) - sum(d)
        pattern = rng.integers(0, 256, size=(m, tables.shape[0]), dtype=np.uint8)
        kept = tables[cols, pattern].sum(axis=1)
        extreme += int(np.count_nonzero(np.abs(2.0 * kept - total) >= observed - tol))
    return (1.0 + extreme) / (1.0 + n_perm)


def wilcoxon_test(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank test of paired values.

    Definition: :func:`scipy.stats.wilcoxon` with its defaults (zero differences
    dropped, ``zero_method="wilcox"``; exact distribution for small samples without
    ties, normal approximation otherwise). When every difference is zero the two
    systems are indistinguishable and the p-value is 1.
    """
    from scipy.stats import wilcoxon

    a, b = _pair(x, y)
    if np.all(a == b):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, Scand. J. Statistics 1979).

    Definition: with the ``m`` p-values sorted ascending, ``p_(1) <= ... <= p_(m)``,
    the adjusted value of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))``;
    rejecting where the adjusted value is below ``alpha`` controls the family-wise
    error rate at ``alpha``. Returned in the input order.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ParameterError(f"p-values must be a 1-d array, got shape {p.shape}")
    if p.size == 0:
        return p.copy()
    if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ParameterError("p-values must lie between 0 and 1")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m, dtype=np.float64)
    out[order] = np.maximum.accumulate(scaled)
    return out


def cohens_dz(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Cohen's d for paired samples, ``d_z = mean(d) / sd(d)`` with ``d = y - x``.

    ``sd`` is the sample standard deviation (ddof 1). Identical values give 0; a
    constant non-zero difference gives a signed infinity.
    """
    a, b = _pair(x, y)
    d = b - a
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    if sd == 0.0:
        return 0.0 if mean == 0.0 else float(np.copysign(np.inf, mean))
    return mean / sd


def rank_biserial(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation, the effect size of the Wilcoxon test.

    Definition (Kerby, 2014): rank the non-zero ``|d|`` (``d = y - x``, ties get their
    average rank); with ``R+`` and ``R-`` the rank sums of positive and negative
    differences, ``r = (R+ - R-) / (R+ + R-)``, between -1 (y always lower) and 1
    (y always higher); 0 when every difference is zero.
    """
    from scipy.stats import rankdata

    a, b = _pair(x, y)
    d = b - a
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    r = rankdata(np.abs(d))
    pos, neg = float(r[d > 0].sum()), float(r[d < 0].sum())
    return (pos - neg) / (pos + neg)


def mean_sd(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1) over seeds or folds; sd is NaN for one value."""
    v = _values(values, "values")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


@dataclass(frozen=True)
class PairedComparison:
    """One model against the baseline on the same users (``d = model - baseline``).

    Attributes
    ----------
    n_users : number of paired users
    difference : mean of ``d``
    p_permutation : :func:`permutation_test` p-value
    p_wilcoxon : :func:`wilcoxon_test` p-value
    cohens_dz : :func:`cohens_dz`
    rank_biserial : :func:`rank_biserial`
    """

    n_users: int
    difference: float
    p_permutation: float
    p_wilcoxon: float
    cohens_dz: float
    rank_biserial: float


def compare(
    baseline: Sequence[float] | np.ndarray,
    other: Sequence[float] | np.ndarray,
    n_permutations: int = 100_000,
    seed: int = 0,
) -> PairedComparison:
    """Every paired figure of ``other`` against ``baseline`` (values aligned by user)."""
    a, b = _pair(baseline, other)
    return PairedComparison(
        n_users=int(a.size),
        difference=float((b - a).mean()),
        p_permutation=permutation_test(a, b, n_permutations=n_permutations, seed=seed),
        p_wilcoxon=wilcoxon_test(a, b),
        cohens_dz=cohens_dz(a, b),
        rank_biserial=rank_biserial(a, b),
    )
