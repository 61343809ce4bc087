"""SASRec: self-attentive sequential recommendation (Kang & McAuley 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...data._interactions import Interactions
from ...errors import ParameterError, UnsupportedError
from .._params import Float, Int
from .._topk import Ranking, topk
from ..base import Array, Recommender, StateSpec, check_k, interactions_rows
from ..registry import register
from ._train import DEVICE_RULE, NeuralModel, train_epochs, unpack

#: Histories scored at once by the numpy forward pass.
_HISTORY_BLOCK = 256
#: torch's LayerNorm epsilon (the network's layer norms keep the default).
_LN_EPS = 1e-5


def user_sequences(train: Interactions, max_length: int) -> list[np.ndarray]:
    """Each user's items in time order (ties in input order), the most recent ``max_length + 1`` kept."""
    m = train.matrix
    ts = train.timestamps if train.timestamps is not None else np.zeros(train.nnz)
    order = train.order if train.order is not None else np.arange(train.nnz)
    users = train.user_index()
    idx = np.lexsort((order, ts, users))
    items = m.indices[idx].astype(np.int64)
    bounds = m.indptr
    return [items[bounds[u]:bounds[u + 1]][-(max_length + 1):] for u in range(train.n_users)]


def network_shapes(n_items: int, factors: int, blocks: int, max_length: int) -> list[tuple[int, ...]]:
    """Shapes of the network's weights in torch's ``state_dict`` order (the layout of
    ``network_``): item and position embeddings, per block the attention's input and
    output projections, the two feed-forward layers and the two layer norms, then the
    final layer norm."""
    d = factors
    block = [(3 * d, d), (3 * d,), (d, d), (d,), (d, d), (d,), (d, d), (d,), (d,), (d,), (d,), (d,)]
    return [(n_items + 1, d), (max_length, d), *(block * blocks), (d,), (d,)]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + _LN_EPS) * w + b


def numpy_forward(weights: list[np.ndarray], seq: np.ndarray, heads: int) -> np.ndarray:
    """Last-step hidden states (batch, factors) of left-padded index sequences (0 = padding),
    the network of :func:`_build` in eval mode (no dropout) recomputed with numpy.

    Per block (pre-norm): ``x += MHA(LN1(x))`` with the causal and padding mask, ``x += W2 relu(W1
    LN2(x) + b1) + b2``, padding positions zeroed; then the final layer norm.
    """
    emb, pos = weights[0], weights[1]
    batch, length = seq.shape
    d = emb.shape[1]
    dh = d // heads
    keep = (seq > 0)[..., None].astype(np.float32)
    x = (emb[seq] * np.float32(np.sqrt(d)) + pos[:length]) * keep
    blocked = np.triu(np.ones((length, length), dtype=bool), 1)[None] | (
        (seq == 0)[:, None, :] & ~np.eye(length, dtype=bool)[None])
    n_blocks = (len(weights) - 4) // 12
    for b in range(n_blocks):
        w_in, b_in, w_out, b_out, w1, b1, w2, b2, n1w, n1b, n2w, n2b = weights[2 + 12 * b: 14 + 12 * b]
        h = _layer_norm(x, n1w, n1b)
        qkv = h @ w_in.T + b_in
        q, k, v = (qkv[..., j * d:(j + 1) * d].reshape(batch, length, heads, dh).transpose(0, 2, 1, 3)
                   for j in range(3))
        att = (q / np.float32(np.sqrt(dh))) @ k.transpose(0, 1, 3, 2)
        att[np.broadcast_to(blocked[:, None], att.shape)] = -np.inf
        att -= att.max(axis=-1, keepdims=True)
        np.exp(att, out=att)
        att /= att.sum(axis=-1, keepdims=True)
        o = (att @ v).transpose(0, 2, 1, 3).reshape(batch, length, d)
        x = x + (o @ w_out.T + b_out)
        h = _layer_norm(x, n2w, n2b)
        x = (x + (np.maximum(h @ w1.T + b1, 0) @ w2.T + b2)) * keep
    return _layer_norm(x[:, -1], weights[-2], weights[-1]).astype(np.float32)


def _build(t: Any, n_items: int, factors: int, blocks: int, heads: int, max_length: int, dropout: float) -> Any:
    nn = t.nn

    class SASRecNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, factors, padding_idx=0)
            self.positions = nn.Embedding(max_length, factors)
            nn.init.normal_(self.items.weight, std=0.02)
            nn.init.normal_(self.positions.weight, std=0.02)
            with t.no_grad():
                self.items.weight[0].zero_()
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(factors, heads, dim_feedforward=factors, dropout=dropout,
                                           activation="relu", batch_first=True, norm_first=True)
                for _ in range(blocks))
            self.norm = nn.LayerNorm(factors)
            self.register_buffer("causal", t.triu(t.ones(max_length, max_length, dtype=t.bool), diagonal=1))

        def forward(self, seq: Any) -> Any:
            """Hidden states (batch, max_length, factors) of left-padded item sequences (0 = padding)."""
            keep = (seq > 0).unsqueeze(-1).to(self.items.weight.dtype)
            length = seq.shape[1]
            pos = t.arange(length, device=seq.device)
            x = self.drop(self.items(seq) * (self.items.embedding_dim ** 0.5) + self.positions(pos)) * keep
            # no step attends to a later step or to padding (a padding step attends to itself
            # only, so that no row of the mask is empty; its output is zeroed)
            pad = (seq == 0).unsqueeze(1) & ~t.eye(length, dtype=t.bool, device=seq.device)
            mask = (self.causal[:length, :length] | pad).repeat_interleave(heads, dim=0)
            for block in self.blocks:
                x = block(x, src_mask=mask) * keep
            return self.norm(x)

    return SASRecNet()


@register
class SASRec(NeuralModel, Recommender):
    """SASRec: a causal Transformer over each user's items in time order predicts the next item.

    A user's history ``s_1 .. s_n`` (the most recent ``max_length``) is embedded as item
    plus position embeddings and passed through ``blocks`` self-attention blocks (multi-head
    attention that sees neither later steps nor the padding of a short history, as in
    the paper and RecBole, and a point-wise feed-forward layer, each with layer
    normalisation, dropout and a residual connection); the hidden state ``F_t`` at step
    t scores item ``i`` by ``F_t . M_i`` with the shared item embedding ``M``. Training
    minimises the cross-entropy of the next item over the whole catalogue at every step
    of every training sequence (RecBole's default; the paper samples one negative per
    step with a log loss), with Adam.

    The score of a known user is ``F_n . M_i`` at the last step of the user's training
    history, kept after fitting (``user_state_``). A new user is folded in by reading
    their history as the input sequence (:meth:`recommend_new`, :meth:`score_histories`):
    nothing is refitted, the network runs forward on the items in the order given. Both
    need numpy only (the forward pass is recomputed from ``network_``), so a saved model
    scores and folds in without torch. Evaluate with the sequential protocol of
    :mod:`recseek.evaluation.sequential` (leave the last item out by time, full ranking).

    Parameters
    ----------
    factors : int
        Embedding and hidden dimension d.
    blocks, heads : int
        Self-attention blocks and attention heads per block (``factors % heads == 0``).
    max_length : int
        Longest history read (n in the paper).
    dropout : float
        Dropout rate on the embeddings, attention weights and feed-forward layers.
    epochs, batch_size, learning_rate, reg : int, int, float, float
        Passes over the users' sequences, sequences per Adam step, Adam's step and its
        L2 weight decay.
    device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Learned state: ``item_factors_`` (n_items, factors) M, ``user_state_`` (n_users,
    factors) the final hidden state of each training history, ``network_`` every weight
    of the network as one flat float32 array (torch's ``state_dict`` order).

    Reference: Kang, McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    """

    name = "SASRec"
    family = "neural"
    paper = "Kang, McAuley. Self-Attentive Sequential Recommendation. ICDM 2018"
    requires: ClassVar[tuple[str, ...]] = ("timestamps",)
    rules = {"blocks": Int(lo=1), "heads": Int(lo=1), "max_length": Int(lo=1), "dropout": Float(lo=0.0, hi=0.99),
             "device": DEVICE_RULE}
    test_params = {"factors": 16, "blocks": 1, "heads": 1, "max_length": 10, "epochs": 20, "batch_size": 32,
                   "learning_rate": 0.01, "dropout": 0.1, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "item_factors_": Array("float32", ("n_items", "factors")),
        "user_state_": Array("float32", ("n_users", "factors")),
        "network_": Array("float32", ("n_network",)),
    }

    def __init__(
        self,
        factors: int = 64,
        blocks: int = 2,
        heads: int = 1,
        max_length: int = 50,
        dropout: float = 0.2,
        epochs: int = 200,
        batch_size: int = 128,
        learning_rate: float = 0.001,
        reg: float = 0.0,
        device: str = "auto",
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.blocks = blocks
        self.heads = heads
        self.max_length = max_length
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def check_params(self) -> None:
        super().check_params()
        if int(self.factors) % int(self.heads):
            raise ParameterError(f"{self.display_name}: factors ({self.factors}) must be a multiple of heads "
                                 f"({self.heads})")

    def _net(self, t: Any) -> Any:
        return _build(t, self.n_items_, int(self.factors), int(self.blocks), int(self.heads), int(self.max_length),
                      float(self.dropout))

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        length = int(self.max_length)
        seqs = user_sequences(train, length)
        active = np.array([u for u, s in enumerate(seqs) if len(s) >= 2], dtype=np.int64)
        inputs = np.zeros((train.n_users, length), dtype=np.int64)
        targets = np.zeros((train.n_users, length), dtype=np.int64)
        for u in active:
            s = seqs[u] + 1
            inputs[u, length - len(s) + 1:] = s[:-1]
            targets[u, length - len(s) + 1:] = s[1:]
        with self._seeded():
            net = self._net(t).to(device)
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg))

        def batch_loss(idx: Any, epoch: int) -> Any:
            users = active[idx.numpy()]
            x = t.from_numpy(inputs[users]).to(device)
            y = t.from_numpy(targets[users]).to(device)
            h = net(x)
            logits = h @ net.items.weight[1:].T
            mask = y > 0
            return t.nn.functional.cross_entropy(logits[mask], y[mask] - 1)

        if len(active):
            with self._seeded():
                train_epochs(self, net, opt, len(active), batch_loss, epochs=int(self.epochs),
                             batch_size=int(self.batch_size), generator=self._generator())
        last = np.zeros((train.n_users, length), dtype=np.int64)
        for u, s in enumerate(seqs):
            s = s[-length:] + 1
            if len(s):
                last[u, length - len(s):] = s
        state = np.zeros((train.n_users, int(self.factors)), dtype=np.float32)
        net.eval()
        with t.no_grad():
            for start in range(0, train.n_users, 512):
                x = t.from_numpy(last[start:start + 512]).to(device)
                state[start:start + 512] = net(x)[:, -1].cpu().numpy()
        has = np.array([len(s) > 0 for s in seqs])
        state[~has] = 0.0
        self.user_state_ = state
        self.item_factors_ = np.ascontiguousarray(net.items.weight[1:].detach().cpu().numpy().astype(np.float32))
        self.network_ = np.concatenate([v.detach().cpu().numpy().astype(np.float32).ravel()
                                        for k, v in net.state_dict().items() if k != "causal"])
        self._check_finite(int(self.epochs), self.user_state_, self.item_factors_)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        return (self.user_state_[users] @ v.T).astype(np.float32)

    def _weights(self) -> list[np.ndarray]:
        shapes = network_shapes(self.n_items_, int(self.factors), int(self.blocks), int(self.max_length))
        return unpack(self.network_, shapes, self.display_name, "network_")

    def score_histories(self, histories: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Scores (len(histories), n_items) of item-index histories, each in time order
        (oldest first; the most recent ``max_length`` are read). An empty history scores
        0 everywhere. numpy only: works on a loaded model without torch.

        The history of a training user, in the order of its training records, gives that
        user's trained scores (:meth:`score`)."""
        self._check_fitted()
        if isinstance(histories, np.ndarray) and histories.ndim == 1:
            histories = [histories]
        length = int(self.max_length)
        x = np.zeros((len(histories), length), dtype=np.int64)
        for r, h in enumerate(histories):
            h = np.asarray(h)
            if h.ndim != 1 or (h.size and h.dtype.kind not in "iu"):
                raise ParameterError(f"{self.display_name}.score_histories: history {r} must be a one-dimensional "
                                     f"array of item indices")
            h = h.astype(np.int64)
            if h.size and (h.min() < 0 or h.max() >= self.n_items_):
                raise ParameterError(f"{self.display_name}.score_histories: history {r} names an item index outside "
                                     f"0..{self.n_items_ - 1}")
            h = h[-length:] + 1
            if h.size:
                x[r, length - h.size:] = h
        weights = self._weights()
        state = np.zeros((len(histories), int(self.factors)), dtype=np.float32)
        for start in range(0, len(histories), _HISTORY_BLOCK):
            state[start:start + _HISTORY_BLOCK] = numpy_forward(weights, x[start:start + _HISTORY_BLOCK],
                                                                int(self.heads))
        state[(x > 0).sum(axis=1) == 0] = 0.0
        return (state @ self.item_factors_.T).astype(np.float32)

    def recommend_new(
        self,
        items: list[np.ndarray] | np.ndarray,
        values: list[np.ndarray] | np.ndarray | None = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
    ) -> Ranking:
        """Fold-in: top-``k`` for new users from their histories (:meth:`score_histories`).

        ``items`` holds one array of item indices per new user (or one array for a single
        user) **in time order, oldest first**: an interaction row (a user x item matrix)
        carries no order, so SASRec takes the order from these arrays exactly as given
        and never sorts them. ``values`` are accepted for the common signature and not
        used (SASRec reads which items came in which order, not how much). With
        ``exclude_seen`` the history's items are left out of the lists.
        """
        self._check_fitted()
        k = check_k(k, "k")
        rows = interactions_rows(items, values, self.n_items_)
        if isinstance(items, np.ndarray) and items.ndim == 1 and items.dtype.kind in "iu":
            items = [items]
        scores = self.score_histories([np.asarray(h, dtype=np.int64) for h in items])
        return topk(scores, k, exclude=rows if exclude_seen else None)

    def _score_new(self, rows: Any) -> np.ndarray:
        raise UnsupportedError(f"{self.display_name} reads a history in time order and an interaction row carries "
                               f"no order; pass each new user's items in time order to recommend_new or "
                               f"score_histories")

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_
