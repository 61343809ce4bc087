"""Rating-prediction error metrics (JStarCraft RNS definitions).

Each function takes aligned arrays of predictions and true ratings (one entry per
test rating) and returns one number: every rating counts once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "mpe", "mse", "rmse"]


def _pair(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"predictions ({p.size}) and ratings ({t.size}) differ in length")
    return p, t


def mae(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    p, t = _pair(predicted, truth)
    return float(np.abs(p - t).mean()) if t.size else float("nan")


def mse(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error."""
    p, t = _pair(predicted, truth)
    return float(np.square(p - t).mean()) if t.size else float("nan")


def rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(predicted, truth)))


def mpe(predicted: np.ndarray, truth: np.ndarray, threshold: float = 0.01) -> float:
    """Share of ratings whose absolute error exceeds ``threshold`` (JStarCraft MPE)."""
    p, t = _pair(predicted, truth)
    return float((np.abs(p - t) > threshold).mean()) if t.size else float("nan")
