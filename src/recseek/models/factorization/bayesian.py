"""Bayesian probabilistic matrix factorisation by Gibbs sampling (BPMF)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, StateSpec
from ..registry import register
from ._base import LatentRatingModel, init_normal


def _sample_hyper(rng: np.random.Generator, x: np.ndarray, beta0: float, nu0: float, w0_inv: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(mu, Lambda)`` from the Normal-Wishart posterior given the rows of ``x``."""
    from scipy.stats import wishart

    n, k = x.shape
    xbar = x.mean(axis=0)
    centred = x - xbar
    s = centred.T @ centred / max(n, 1)
    beta = beta0 + n
    nu = nu0 + n
    mu_star = n * xbar / beta  # prior mean mu0 = 0
    w_inv = w0_inv + n * s + (beta0 * n / beta) * np.outer(xbar, xbar)
    w = np.linalg.inv((w_inv + w_inv.T) / 2)
    lam = wishart.rvs(df=nu, scale=(w + w.T) / 2, random_state=rng)
    lam = np.atleast_2d(lam)
    cov = np.linalg.inv(beta * lam)
    mu = rng.multivariate_normal(mu_star, (cov + cov.T) / 2)
    return mu, lam


@register
class BPMF(LatentRatingModel):
    """Bayesian probabilistic matrix factorisation, Gibbs sampling with Normal-Wishart priors.

    ``r(u, i) ~ N(mu + u_u . v_i, 1 / precision)`` with Gaussian user and item factors whose
    means and precision matrices get Normal-Wishart hyperpriors (``mu0 = 0``, ``beta0``,
    ``W0 = wishart_scale * I``, ``nu0 = factors``). Each sweep draws the hyperparameters,
    then every user and every item from their conditionals (in parallel). Predictions are
    the posterior mean over ``samples`` draws spread evenly after ``burn_in`` sweeps; they
    are stored as concatenated, scaled factors so that scoring stays one dot product.
    Salakhutdinov & Mnih (2008).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        Gibbs sweeps.
    burn_in : int
        Sweeps discarded before collecting samples (less than ``epochs``).
    samples : int
        Posterior draws averaged for prediction.
    precision : float
        Observation precision ``alpha`` (1 / noise variance).
    beta0 : float
        Prior strength of the hyper-mean.
    wishart_scale : float
        Scale of the Wishart prior ``W0 = wishart_scale * I``.
    seed, verbose
        Seed and progress bar.
    """

    name = "BPMF"
    paper = ("Salakhutdinov & Mnih. Bayesian Probabilistic Matrix Factorization using Markov Chain Monte Carlo. "
             "ICML 2008")
    rules = {"burn_in": Int(lo=0), "samples": Int(lo=1), "precision": Float(lo=0.0, lo_open=True),
             "beta0": Float(lo=0.0, lo_open=True), "wishart_scale": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 12, "burn_in": 4, "samples": 4}
    fold_in_bias = False
    state: ClassVar[dict[str, StateSpec]] = {
        # one block of factors per kept sample, concatenated
        "user_factors_": Array("float32", ("n_users", "width")),
        "item_factors_": Array("float32", ("n_items", "width")),
    }

    def __init__(self, factors: int = 10, epochs: int = 60, burn_in: int = 20, samples: int = 10,
                 precision: float = 2.0, beta0: float = 2.0, wishart_scale: float = 1.0, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.burn_in = burn_in
        self.samples = samples
        self.precision = precision
        self.beta0 = beta0
        self.wishart_scale = wishart_scale
        self.seed = seed
        self.verbose = verbose

    @property
    def fold_in_reg(self) -> float:
        return 1.0 / (self.precision * max(int(self.samples), 1))

    def check_params(self) -> None:
        super().check_params()
        if self.burn_in >= self.epochs:
            from ...errors import ParameterError

            raise ParameterError(f"BPMF: burn_in ({self.burn_in}) must be smaller than epochs ({self.epochs})")

    def _fit(self, train: Interactions) -> None:
        from ._als import n_chunks
        from ._bayes import draw_side
        from .alternating import _sides

        (ui, uj, ud), (ii, ij, idata), _ = _sides(train)
        mu = np.float32(self.global_mean_)
        ud = (ud - mu).astype(np.float64)
        idata = (idata - mu).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        u = init_normal(rng, (self.n_users_, k), 0.1).astype(np.float64)
        v = init_normal(rng, (self.n_items_, k), 0.1).astype(np.float64)
        w0_inv = np.eye(k) / self.wishart_scale
        n_keep = min(int(self.samples), int(self.epochs) - int(self.burn_in))
        keep = set(np.linspace(int(self.burn_in), int(self.epochs) - 1, n_keep).round().astype(int).tolist())
        chunks = n_chunks(ui, u) if k >= 4 else 1
        kept_u, kept_v = [], []
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            mu_u, lam_u = _sample_hyper(rng, u, self.beta0, k, w0_inv)
            draw_side(ui, uj, ud, u, v, lam_u, mu_u, self.precision, rng.standard_normal(u.shape), chunks)
            mu_v, lam_v = _sample_hyper(rng, v, self.beta0, k, w0_inv)
            draw_side(ii, ij, idata, v, u, lam_v, mu_v, self.precision, rng.standard_normal(v.shape), chunks)
            self._check_finite(epoch, u[:1], v[:1])
            if epoch in keep:
                kept_u.append(u.copy())
                kept_v.append(v.copy())
        self._check_finite(int(self.epochs), u, v)
        scale = 1.0 / np.sqrt(len(kept_u))
        self._finish(np.hstack(kept_u) * scale, np.hstack(kept_v) * scale, global_bias=float(mu))
