"""Privacy options of a client's upload.

Local differential privacy (LDP): each uploaded row (an item's embedding change, or an
item's gradient) is clipped to norm ``clip`` and perturbed on the client before it leaves
it. Replacing one client's data changes a clipped row by at most ``2 * clip``, so

* ``"laplace"``: L1 clipping and Laplace noise of scale ``b = 2 * clip / epsilon`` per
  coordinate gives ``epsilon``-LDP per row and round;
* ``"gaussian"``: L2 clipping and Gaussian noise of standard deviation
  ``sigma = 2 * clip * sqrt(2 ln(1.25 / delta)) / epsilon`` gives
  ``(epsilon, delta)``-LDP per row and round (the classical Gaussian mechanism,
  valid for ``epsilon < 1``).

Over ``R`` rounds basic composition gives ``R * epsilon`` per row; :meth:`Privacy.report`
states both figures.

Fake items (``fake_items``): besides the items it trained on, every client uploads rows
for that many items it never interacted with, sampled uniformly each round, which it
trained with labels drawn from its own current prediction (Bernoulli of the predicted
probability), so that real and fake rows look alike to the server (the scheme of Lin et
al., "FedRec: Federated Recommendation with Explicit Feedback", IEEE Intelligent Systems
2021, for implicit feedback). This hides which items a client rated at some accuracy cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

MECHANISMS = ("none", "laplace", "gaussian")


@dataclass(frozen=True)
class Privacy:
    """What a client does to its upload (see the module docstring)."""

    mechanism: str = "none"
    epsilon: float = 1.0
    delta: float = 1e-5
    clip: float = 0.5
    fake_items: int = 0

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ParameterError(f"privacy must be one of {', '.join(MECHANISMS)}, got {self.mechanism!r}")
        if not (isinstance(self.epsilon, int | float) and self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ParameterError(f"epsilon must be a positive number, got {self.epsilon!r}")
        if not (0 < self.delta < 1):
            raise ParameterError(f"delta must lie strictly between 0 and 1, got {self.delta!r}")
        if not self.clip > 0:
            raise ParameterError(f"clip must be a positive number, got {self.clip!r}")
        if isinstance(self.fake_items, bool) or not isinstance(self.fake_items, int | np.integer) or self.fake_items < 0:
            raise ParameterError(f"fake_items must be a non-negative integer, got {self.fake_items!r}")

    @property
    def noisy(self) -> bool:
        return self.mechanism != "none"

    def noise_scale(self) -> float:
        """Laplace scale ``b`` or Gaussian standard deviation ``sigma`` of each coordinate."""
        if self.mechanism == "laplace":
            return 2.0 * self.clip / self.epsilon
        if self.mechanism == "gaussian":
            return 2.0 * self.clip * math.sqrt(2.0 * math.log(1.25 / self.delta)) / self.epsilon
        return 0.0

    def perturb(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Clip each row (L1 for Laplace, L2 for Gaussian) and add the noise; float32."""
        rows = np.asarray(rows, dtype=np.float32)
        return self.perturb_with(rows, rng.random(rows.shape), rng.random(rows.shape))

    def perturb_with(self, rows: np.ndarray, u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
        """:meth:`perturb` from given uniform numbers in [0, 1) (``u1``, ``u2`` of the rows'
        shape): Laplace by the inverse distribution function of ``u1``, Gaussian by the
        Box-Muller transform of ``(u1, u2)``."""
        rows = np.asarray(rows, dtype=np.float32)
        if not self.noisy or rows.size == 0:
            return rows
        order = 1 if self.mechanism == "laplace" else 2
        norms = np.linalg.norm(rows, ord=order, axis=1, keepdims=True)
        scale = np.minimum(1.0, self.clip / np.maximum(norms, 1e-12))
        clipped = rows * scale
        b = self.noise_scale()
        if self.mechanism == "laplace":
            c = np.asarray(u1, dtype=np.float64) - 0.5
            noise = -b * np.sign(c) * np.log1p(-2.0 * np.minimum(np.abs(c), 0.5 - 2.0 ** -54))
        else:
            r = np.sqrt(-2.0 * np.log1p(-np.asarray(u1, dtype=np.float64)))
            noise = b * r * np.cos(2.0 * np.pi * np.asarray(u2, dtype=np.float64))
        return (clipped + noise).astype(np.float32)

    def report(self, rounds: int) -> str:
        """One sentence: the guarantee per uploaded row and round, and over ``rounds``."""
        parts = []
        if self.mechanism == "laplace":
            parts.append(f"Laplace LDP: epsilon = {self.epsilon:g} per uploaded row and round "
                         f"(L1 clip {self.clip:g}, noise scale {self.noise_scale():.4g}); "
                         f"{rounds * self.epsilon:g} over {rounds} rounds by basic composition")
        elif self.mechanism == "gaussian":
            parts.append(f"Gaussian LDP: (epsilon, delta) = ({self.epsilon:g}, {self.delta:g}) per uploaded row "
                         f"and round (L2 clip {self.clip:g}, sigma {self.noise_scale():.4g}); "
                         f"({rounds * self.epsilon:g}, {rounds * self.delta:g}) over {rounds} rounds by basic "
                         "composition")
        else:
            parts.append("no noise on uploads")
        if self.fake_items:
            parts.append(f"{self.fake_items} fake items uploaded per client and round")
        return "; ".join(parts)
