"""MultVAE: the variational autoencoder with a multinomial likelihood (Liang et al. 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._torch import torch as _torch_module
from ...data._interactions import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    NeuralModel,
    carve_validation,
    mlp_shapes,
    pack,
    train_epochs,
    unpack,
    validation_ndcg,
)


def _build(t: Any, n_items: int, hidden: int, factors: int, dropout: float) -> Any:
    nn = t.nn

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.enc1 = nn.Linear(n_items, hidden)
            self.enc2 = nn.Linear(hidden, 2 * factors)
            self.dec1 = nn.Linear(factors, hidden)
            self.dec2 = nn.Linear(hidden, n_items)

        def encode(self, x: Any) -> tuple[Any, Any]:
            x = t.nn.functional.normalize(x, dim=1)
            h = t.tanh(self.enc1(self.drop(x)))
            out = self.enc2(h)
            return out[:, :factors], out[:, factors:]

        def decode(self, z: Any) -> Any:
            return self.dec2(t.tanh(self.dec1(z)))

    return VAE()


@register
class MultVAE(NeuralModel, Recommender):
    """Variational autoencoder for collaborative filtering with a multinomial likelihood.

    Each user's (binary) row ``x_u`` over the catalogue, L2-normalised and dropped out,
    is encoded by ``tanh`` layers to a Gaussian ``q(z_u | x_u) = N(mu_u, diag sigma_u^2)``;
    a sample ``z_u`` is decoded to logits ``f(z_u)`` whose softmax ``pi(z_u)`` is the
    multinomial over items. Training maximises the annealed evidence lower bound (Adam)::

        sum_i x_ui log pi_i(z_u)  -  beta_t KL(q(z_u | x_u) || N(0, I)),
        beta_t = min(beta, step / anneal_steps)

    Scores are the decoder logits of the encoder mean ``mu_u`` (the softmax keeps their
    order). Folding in a new user runs the encoder on the user's row.

    Parameters
    ----------
    factors : int
        Dimension of the latent code ``z`` (the paper's 200).
    hidden_units : int
        Width of the one hidden ``tanh`` layer of the encoder and of the decoder (600).
    dropout : float
        Dropout rate on the normalised input rows (0.5).
    beta : float
        Cap of the KL weight (0.2 in the paper).
    anneal_steps : int
        Mini-batch steps over which the KL weight grows linearly from 0 to ``beta``.
    epochs, batch_size, learning_rate : int, int, float
        Passes over the users, users per Adam step, Adam's step.
    reg : float
        L2 weight decay of Adam on every weight.
    patience : int, optional
        Early stopping: hold out a tenth of each user's training items, stop after this
        many epochs without a better validation NDCG@10 and keep the best weights
        (None: train ``epochs`` passes on everything).
    device : {"auto", "cpu", "cuda", "mps"}
        Where training runs; scoring a fitted model needs numpy only.
    seed, verbose
        Seed of the initialisation, dropout, sampling and batches; progress bar with
        the loss per epoch.

    Learned state: ``user_latent_`` (n_users, factors) the encoder means of the training
    users; ``encoder_`` and ``decoder_``, the weights of the two halves as flat float32
    arrays (torch's ``(out, in)`` layout: n_items -> hidden -> 2 factors, and
    factors -> hidden -> n_items).

    Reference: Liang, Krishnan, Hoffman, Jebara, "Variational Autoencoders for
    Collaborative Filtering", WWW 2018.
    """

    name = "MultVAE"
    family = "neural"
    paper = ("Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for Collaborative Filtering. "
             "WWW 2018")
    rules = {"hidden_units": Int(lo=1), "dropout": Float(lo=0.0, hi=0.99), "beta": Float(lo=0.0),
             "anneal_steps": Int(lo=1), "patience": PATIENCE_RULE, "device": DEVICE_RULE}
    test_params = {"factors": 16, "hidden_units": 32, "epochs": 20, "batch_size": 64, "learning_rate": 0.02,
                   "dropout": 0.2, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_latent_": Array("float32", ("n_users", "factors")),
        "encoder_": Array("float32", ("n_encoder",)),
        "decoder_": Array("float32", ("n_decoder",)),
    }

    def __init__(
        self,
        factors: int = 200,
        hidden_units: int = 600,
        dropout: float = 0.5,
        beta: float = 0.2,
        anneal_steps: int = 200000,
        epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 0.001,
        reg: float = 0.0,
        patience: int | None = None,
        device: str = "auto",
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.beta = beta
        self.anneal_steps = anneal_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.patience = patience
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ shapes
    def _encoder_shapes(self, n_items: int | None = None) -> list[tuple[int, ...]]:
        return mlp_shapes([self.n_items_ if n_items is None else n_items, int(self.hidden_units), 2 * int(self.factors)])

    def _decoder_shapes(self, n_items: int | None = None) -> list[tuple[int, ...]]:
        return mlp_shapes([int(self.factors), int(self.hidden_units), self.n_items_ if n_items is None else n_items])

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        super().check_state(params, history)
        n_items = int(params["n_items_"])
        unpack(np.asarray(params["encoder_"]), self._encoder_shapes(n_items), self.display_name, "encoder_")
        unpack(np.asarray(params["decoder_"]), self._decoder_shapes(n_items), self.display_name, "decoder_")

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        t = _torch_module(f"{self.display_name} (a neural model)")
        device = self._device()
        binary = train.binarize()
        fit, valid = (carve_validation(binary, self.seed) if self.patience is not None else (binary, None))
        rows = sp.csr_array(fit.matrix)
        active = np.flatnonzero(np.diff(rows.indptr) > 0)
        with self._seeded():
            net = _build(t, train.n_items, int(self.hidden_units), int(self.factors), float(self.dropout)).to(device)
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg))
        gen = self._generator()
        dev_gen = gen if device.type == "cpu" else None
        step = [0]
        beta, anneal = float(self.beta), int(self.anneal_steps)

        def batch_loss(idx: Any, epoch: int) -> Any:
            users = active[idx.numpy()]
            x = t.from_numpy(rows[users].toarray()).to(device)
            mu, logvar = net.encode(x)
            std = t.exp(0.5 * logvar)
            if dev_gen is not None:
                eps = t.randn(std.shape, generator=dev_gen)
            else:
                eps = t.randn(std.shape, generator=gen).to(device)
            logits = net.decode(mu + eps * std)
            nll = -(t.log_softmax(logits, dim=1) * x).sum(dim=1).mean()
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
            weight = min(beta, step[0] / anneal)
            step[0] += 1
            return nll + weight * kl

        def validate() -> float:
            def score(users: np.ndarray) -> np.ndarray:
                x = t.from_numpy(rows[users].toarray()).to(device)
                return net.decode(net.encode(x)[0]).cpu().numpy()

            return validation_ndcg(score, fit, valid)

        # dropout draws come from torch's global generator: seed it for the whole run
        with self._seeded():
            train_epochs(self, net, opt, len(active), batch_loss, epochs=int(self.epochs),
                         batch_size=int(self.batch_size), generator=gen,
                         validate=validate if valid is not None else None, patience=self.patience)
        full = sp.csr_array(binary.matrix)
        latent = np.zeros((train.n_users, int(self.factors)), dtype=np.float32)
        with t.no_grad():
            for start in range(0, train.n_users, 1024):
                users = np.arange(start, min(start + 1024, train.n_users))
                x = t.from_numpy(full[users].toarray()).to(device)
                latent[users] = net.encode(x)[0].cpu().numpy()
        self.user_latent_ = latent
        self.encoder_ = pack([net.enc1.weight, net.enc1.bias, net.enc2.weight, net.enc2.bias])
        self.decoder_ = pack([net.dec1.weight, net.dec1.bias, net.dec2.weight, net.dec2.bias])
        self._check_finite(int(self.epochs), self.user_latent_, self.encoder_, self.decoder_)

    # ------------------------------------------------------------ scoring (numpy only)
    def _decode(self, z: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w1, b1, w2, b2 = unpack(self.decoder_, self._decoder_shapes(), self.display_name, "decoder_")
        h = np.tanh(z @ w1.T + b1)
        if items is not None:
            w2, b2 = w2[items], b2[items]
        return (h @ w2.T + b2).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._decode(self.user_latent_[users], items)

    def encode(self, rows: sp.csr_array) -> np.ndarray:
        """Encoder means (n, factors) of interaction rows (n, n_items), numpy only."""
        self._check_fitted()
        w1, b1, w2, b2 = unpack(self.encoder_, self._encoder_shapes(), self.display_name, "encoder_")
        x = sp.csr_array(rows, dtype=np.float32).toarray()
        x[x != 0] = 1.0
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x /= np.maximum(norms, 1e-12)
        return ((np.tanh(x @ w1.T + b1) @ w2.T + b2)[:, : int(self.factors)]).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return self._decode(self.encode(rows), None)

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_latent_
