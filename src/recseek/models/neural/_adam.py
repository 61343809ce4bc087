"""``torch.optim.Adam``'s update of one entry, for the numba training steps of the neural
models (LightGCN's epoch kernel, NeuMF's CPU step), so that both apply the same update."""

from __future__ import annotations

import numpy as np

from ..._numba import njit


@njit(fastmath=True, error_model="numpy", inline="always")
def adam_entry(p: np.float32, g: np.float32, m: np.float32, v: np.float32, beta1: np.float32, beta2: np.float32,
               step_size: np.float32, bc2_sqrt: np.float32, eps: np.float32) -> tuple:
    """``(parameter, first moment, second moment)`` after one Adam step with gradient ``g``
    (no AMSGrad; ``step_size`` is the learning rate over ``1 - beta1^t``, ``bc2_sqrt`` the
    square root of ``1 - beta2^t``), computed in the order torch computes it."""
    one = np.float32(1.0)
    mm = m + (one - beta1) * (g - m)
    vv = beta2 * v + (one - beta2) * g * g
    return p - step_size * (mm / (np.sqrt(vv) / bc2_sqrt + eps)), mm, vv
