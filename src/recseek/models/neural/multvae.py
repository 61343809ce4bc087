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


def _build(t: Any, n_items: int, hidden: int, factors: int) -> Any:
    """The encoder and decoder, initialised as in the paper's code: Glorot-uniform weights,
    biases from a normal of standard deviation 0.001 (cut at two deviations)."""
    nn = t.nn

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # the first encoder layer as an (n_items, hidden) table: a user's row is sparse,
            # so its product with the layer is a weighted sum of the rows of its items
            self.enc1 = nn.Parameter(t.empty(n_items, hidden))
            self.enc1_bias = nn.Parameter(t.empty(hidden))
            self.enc2 = nn.Linear(hidden, 2 * factors)
            self.dec1 = nn.Linear(factors, hidden)
            self.dec2 = nn.Linear(hidden, n_items)
            for w in (self.enc1, self.enc2.weight, self.dec1.weight, self.dec2.weight):
                nn.init.xavier_uniform_(w)
            for b in (self.enc1_bias, self.enc2.bias, self.dec1.bias, self.dec2.bias):
                nn.init.trunc_normal_(b, std=0.001, a=-0.002, b=0.002)

        def encode(self, cols: Any, offsets: Any, values: Any) -> tuple[Any, Any]:
            """``(mu, logvar)`` of the rows given as CSR pieces (item ids, row starts, values)."""
            h = t.nn.functional.embedding_bag(cols, self.enc1, offsets, mode="sum", per_sample_weights=values)
            out = self.enc2(t.tanh(h + self.enc1_bias))
            return out[:, :factors], out[:, factors:]

        def decode(self, z: Any) -> Any:
            return self.dec2(t.tanh(self.dec1(z)))

    return VAE()


def _gather(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR pieces of ``users``' rows: (item ids, start of each row, row lengths)."""
    n = indptr[users + 1] - indptr[users]
    starts = np.zeros(len(users), dtype=np.int64)
    np.cumsum(n[:-1], out=starts[1:])
    pos = np.arange(int(n.sum()), dtype=np.int64) + np.repeat(indptr[users] - starts, n)
    return indices[pos], starts, n


def multinomial_nll(t: Any, logits: Any, cols: Any, lengths: np.ndarray) -> Any:
    """``-sum_u sum_i x_ui log softmax_i(logits_u)`` for binary rows given as the item ids
    ``cols`` of each row in turn (``lengths[u]`` of them): ``n_u logsumexp_i f_ui`` minus
    the row's logits, without a dense copy of the rows."""
    row = t.from_numpy(np.repeat(np.arange(len(lengths)), lengths)).to(logits.device)
    n = t.from_numpy(np.asarray(lengths, dtype=np.float32)).to(logits.device)
    return (n * t.logsumexp(logits, dim=1)).sum() - logits[row, cols].sum()


def _adam(t: Any, params: Any, lr: float, weight_decay: float, device: Any) -> Any:
    """Adam; torch's fused kernel where the device has it (several times faster on the CPU
    for these layer sizes, where the optimiser step over the two n_items x hidden layers
    costs as much as the batch itself)."""
    fused = device.type in ("cpu", "cuda")
    return t.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)


@register
class MultVAE(NeuralModel, Recommender):
    """Variational autoencoder for collaborative filtering with a multinomial likelihood.

    Each user's (binary) row ``x_u`` over the catalogue, L2-normalised and dropped out,
    is encoded by a ``tanh`` layer to a Gaussian ``q(z_u | x_u) = N(mu_u, diag sigma_u^2)``;
    a sample ``z_u = mu_u + noise_std * eps * sigma_u`` (``eps ~ N(0, I)``) is decoded by a
    ``tanh`` layer to logits ``f(z_u)`` whose softmax ``pi(z_u)`` is the multinomial over
    items. Training maximises the annealed evidence lower bound with Adam, averaged over
    the users of a mini-batch::

        sum_i x_ui log pi_i(z_u)  -  beta_t KL(q(z_u | x_u) || N(0, I)),
        beta_t = min(beta, step / anneal_steps)

    One epoch is one pass over the users with at least one training item, in shuffled
    mini-batches of ``batch_size`` users. Scores are the decoder logits of the encoder
    mean ``mu_u`` (the softmax keeps their order). Folding in a new user runs the encoder
    on the user's row.

    The defaults are the paper's (its ML-20M settings: the architecture
    ``n_items -> 600 -> 200 -> 600 -> n_items``, dropout 0.5 on the input, batches of 500
    users, Adam with step 1e-3 and no weight decay, the KL weight annealed towards 0.2 over
    200,000 steps, 200 epochs, Glorot-uniform weights and biases of deviation 0.001).
    RecBole 1.2.1's MultiVAE differs in three of them: its ``latent_dimension: 128``
    is the width of the encoder output, so ``z`` has 64 dimensions (``factors=64``); it
    scales the sampling noise by 0.01 (``noise_std=0.01``); and its user data loader takes
    ``train_batch_size: 2048`` users per step, so on a catalogue of fewer users an epoch
    is one full-batch step (``batch_size >= n_users``).

    Training runs torch on all of recseek's threads (``large_batches``): a step is three
    dense products over the whole catalogue for hundreds of users, which two threads train
    1.7x faster than one on ML-100K. One thread and two give the same model to the last
    digit (tested): torch's CPU matrix products share out rows and columns of the result
    between threads, not the sums that make up one entry.

    Parameters
    ----------
    factors : int
        Dimension of the latent code ``z`` (200).
    hidden_units : int
        Width of the one hidden ``tanh`` layer of the encoder and of the decoder (600).
    dropout : float
        Dropout rate on the entries of the normalised input rows (0.5; kept entries are
        scaled by ``1 / (1 - dropout)``).
    beta : float
        Cap of the KL weight (0.2).
    anneal_steps : int
        Mini-batch steps over which the KL weight grows linearly from 0 to ``beta`` (200000).
    noise_std : float
        Scale of the reparameterisation noise while training (1: the paper's sampling of
        ``q``; 0: a deterministic autoencoder whose KL term only shrinks ``mu``).
    epochs, batch_size, learning_rate : int, int, float
        Passes over the users (200), users per Adam step (500), Adam's step (1e-3).
    reg : float
        L2 weight decay of Adam on every weight (0).
    patience : int, optional
        Early stopping: hold out a tenth of each user's training items, stop after this
        many epochs without a better validation NDCG@10 and keep the best weights
        (None: train ``epochs`` passes on everything).
    device : {"auto", "cpu", "cuda", "mps"}
        Where training runs; scoring a fitted model needs numpy only.
    seed, verbose
        Seed of the initialisation, dropout, sampling and batches; progress bar with
        the loss per epoch.

    The input layer is applied to the sparse rows directly (a weighted sum of the layer's
    rows of the user's items), never to dense ``n_items``-wide copies, and the likelihood
    of a binary row is ``n_u logsumexp_i f_i - sum_{i in row} f_i``: an epoch costs the
    decoder's products over every user and item, and little more.

    Learned state: ``user_latent_`` (n_users, factors) the encoder means of the training
    users; ``encoder_`` and ``decoder_``, the weights of the two halves as flat float32
    arrays (torch's ``(out, in)`` layout: n_items -> hidden -> 2 factors, and
    factors -> hidden -> n_items).

    Reference: Liang, Krishnan, Hoffman, Jebara, "Variational Autoencoders for
    Collaborative Filtering", WWW 2018.
    """

    name = "MultVAE"
    family = "neural"
    large_batches = True
    paper = ("Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for Collaborative Filtering. "
             "WWW 2018")
    rules = {"hidden_units": Int(lo=1), "dropout": Float(lo=0.0, hi=0.99), "beta": Float(lo=0.0),
             "anneal_steps": Int(lo=1), "noise_std": Float(lo=0.0), "patience": PATIENCE_RULE, "device": DEVICE_RULE}
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
        epochs: int = 200,
        batch_size: int = 500,
        learning_rate: float = 0.001,
        reg: float = 0.0,
        noise_std: float = 1.0,
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
        self.noise_std = noise_std
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
        n_items, hidden, k = train.n_items, int(self.hidden_units), int(self.factors)
        with self._seeded():
            net = _build(t, n_items, hidden, k).to(device)
        opt = _adam(t, net.parameters(), float(self.learning_rate), float(self.reg), device)
        gen = self._generator()
        keep, noise = 1.0 - float(self.dropout), float(self.noise_std)
        beta, anneal = float(self.beta), int(self.anneal_steps)
        rows = sp.csr_array(fit.matrix)
        indptr, indices = rows.indptr.astype(np.int64), rows.indices.astype(np.int64)
        active = np.flatnonzero(np.diff(indptr) > 0)
        step = [0]

        def encode_rows(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, drop: bool) -> Any:
            cols, starts, n = _gather(indptr, indices, users)
            # the L2-normalised binary rows, then dropout on their entries (kept ones scaled by 1 / keep)
            value = t.from_numpy(np.repeat(1.0 / np.sqrt(np.maximum(n, 1)), n).astype(np.float32))
            if drop and keep < 1.0:
                value = value * (t.rand(value.shape, generator=gen) < keep).to(t.float32) * (1.0 / keep)
            tcols = t.from_numpy(cols).to(device)
            mu, logvar = net.encode(tcols, t.from_numpy(starts).to(device), value.to(device))
            return mu, logvar, tcols, n

        def batch_loss(idx: Any, epoch: int) -> Any:
            users = active[idx.numpy()]
            mu, logvar, tcols, n = encode_rows(indptr, indices, users, True)
            eps = t.randn(mu.shape, generator=gen).to(device)
            logits = net.decode(mu + noise * eps * t.exp(0.5 * logvar))
            nll = multinomial_nll(t, logits, tcols, n)
            kl = 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum()
            weight = min(beta, step[0] / anneal)
            step[0] += 1
            return (nll + weight * kl) / len(users)

        def validate() -> float:
            def score(users: np.ndarray) -> np.ndarray:
                return net.decode(encode_rows(indptr, indices, users, False)[0]).cpu().numpy()

            return validation_ndcg(score, fit, valid)

        train_epochs(self, net, opt, len(active), batch_loss, epochs=int(self.epochs),
                     batch_size=int(self.batch_size), generator=gen,
                     validate=validate if valid is not None else None, patience=self.patience)
        full = sp.csr_array(binary.matrix)
        f_ptr, f_idx = full.indptr.astype(np.int64), full.indices.astype(np.int64)
        latent = np.zeros((train.n_users, k), dtype=np.float32)
        with t.no_grad():
            for start in range(0, train.n_users, 4096):
                users = np.arange(start, min(start + 4096, train.n_users))
                latent[users] = encode_rows(f_ptr, f_idx, users, False)[0].cpu().numpy()
        self.user_latent_ = latent
        self.encoder_ = pack([net.enc1.T, net.enc1_bias, net.enc2.weight, net.enc2.bias])
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
