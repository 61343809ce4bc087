"""Server aggregation strategies of the federation simulator (and of the Flower adapter).

Every strategy receives one round's uploads, all participating clients at once, and
updates the server state with array operations over clients (no loop per client):

* :class:`FedAvg` (McMahan et al., AISTATS 2017): the item table becomes the average of the
  clients' trained tables, weighted by their number of training samples (or uniformly).
  Every client started from the same table, so this is the table plus the weighted sum of
  the sparse row changes.
* :class:`PFedRec` (Zhang et al., IJCAI 2023): a uniform average of the clients' fine-tuned
  item tables; each client keeps its own fine-tuned table (and its score function) to
  score with.
* :class:`FedCA` (Zhang et al., "Beyond Similarity: Personalized Federated Recommendation
  with Composite Aggregation", 2024): client ``i`` gets ``sum_j W_ij T_j``, the tables of
  the aggregated clients mixed with weights from ``min_w ||w||^2 - 2 w.(p_i + alpha c_i +
  beta s_i)`` on the probability simplex (``p`` the sample shares, ``c`` complementarity
  of the clients' principal item subspaces, ``s`` similarity of their tables), which is
  the Euclidean projection of ``p_i + alpha c_i + beta s_i`` onto the simplex
  (:func:`project_simplex`, exact, batched); then interpolates its own table with it.
* :class:`FCF` (Ammad-ud-din et al. 2019): clients upload item-factor gradients, the
  server sums them and takes an Adam step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ParameterError


# ---------------------------------------------------------------- maths
def project_simplex(y: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``y`` onto the probability simplex.

    ``argmin_x ||x - y||^2`` subject to ``x >= 0, sum(x) = 1`` (Held, Wolfe & Crowder
    1974; the sort-based algorithm of Duchi et al., ICML 2008), shape kept.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    n = y.shape[1]
    s = -np.sort(-y, axis=1)
    css = np.cumsum(s, axis=1) - 1.0
    idx = np.arange(1, n + 1, dtype=np.float64)
    cond = s - css / idx > 0
    rho = n - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(y.shape[0]), rho] / (rho + 1.0)
    return np.maximum(y - theta[:, None], 0.0)


def first_component_scores(tables: np.ndarray) -> np.ndarray:
    """Scores of each table's rows on its first principal component, shape (n, rows).

    ``tables`` (n, rows, d); the columns are centred per table, the sign is fixed so that
    the largest-magnitude loading is positive.
    """
    x = tables.astype(np.float64) - tables.mean(axis=1, keepdims=True)
    cov = np.swapaxes(x, 1, 2) @ x
    _, vecs = np.linalg.eigh(cov)
    w = vecs[:, :, -1]
    sign = np.sign(w[np.arange(len(w)), np.argmax(np.abs(w), axis=1)])
    sign[sign == 0] = 1.0
    w = w * sign[:, None]
    return (x @ w[:, :, None])[:, :, 0]


def similarity_matrix(tables: np.ndarray) -> np.ndarray:
    """FedCA's table similarity ``1 / (1 + ||z_i - z_j||)`` of first-component scores
    ``z`` (values of 0.9 and above become 1), shape (n, n)."""
    z = first_component_scores(tables)
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)
    sim = 1.0 / (1.0 + np.sqrt(d2))
    sim[sim >= 0.9] = 1.0
    return sim


def principal_basis(rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading principal directions (orthonormal rows, (k, d)) of ``rows`` (m, d)."""
    x = np.asarray(rows, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = np.zeros((k, x.shape[1]))
    out[: min(k, vt.shape[0])] = vt[:k]
    return out


def complementarity_matrix(bases: np.ndarray) -> np.ndarray:
    """FedCA's complementarity: ``cos`` of the mean angle between the clients' principal
    subspaces, (n, n).

    ``bases`` (n, k, d) with orthonormal rows. As in the authors' code, the ``k`` angles
    between subspaces i and j come from a greedy matching of basis vectors: the largest
    cosine ``<b_i^a, b_j^b>`` is taken, its row and column are removed, ``k`` times (for
    aligned bases these are the principal angles). Vectorised over all pairs.
    """
    n, k, _ = bases.shape
    out = np.empty((n, n))
    block = max(1, 2_000_000 // max(n * k * k, 1))
    for s in range(0, n, block):
        cos = np.tensordot(bases[s: s + block], bases, axes=([2], [2])).transpose(0, 2, 1, 3).reshape(-1, k * k)
        picked = np.empty((cos.shape[0], k))
        rows = np.arange(cos.shape[0])
        for a in range(k):
            best = np.argmax(cos, axis=1)
            picked[:, a] = cos[rows, best]
            r, c = best // k, best % k
            grid = cos.reshape(-1, k, k)
            grid[rows, r, :] = -np.inf
            grid[rows, :, c] = -np.inf
        phi = np.arccos(np.clip(picked, -1.0, 1.0))
        out[s: s + block] = np.cos(phi.mean(axis=1)).reshape(-1, n)
    return out


def composite_weights(p: np.ndarray, comp: np.ndarray | None, sim: np.ndarray | None,
                      alpha: float, beta: float) -> np.ndarray:
    """FedCA's aggregation weights: row ``i`` minimises ``||w||^2 - 2 w.(p + alpha c_i +
    beta s_i)`` over the simplex, i.e. the projection of ``p + alpha c_i + beta s_i``;
    entries below 1e-20 are zeroed and rows renormalised (as FedCA's code does)."""
    n = len(p)
    target = np.tile(np.asarray(p, dtype=np.float64), (n, 1))
    if alpha and comp is not None:
        target += alpha * comp
    if beta and sim is not None:
        target += beta * sim
    w = project_simplex(target)
    w[np.abs(w) < 1e-20] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def scatter_rows(out: np.ndarray, items: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> None:
    """``out[items[t]] += weights[t] * rows[t]`` for every ``t`` (repeated items add up)."""
    np.add.at(out, items, rows * weights[:, None].astype(rows.dtype))


# ---------------------------------------------------------------- strategies
@dataclass
class RoundUploads:
    """What the participating clients of one round upload (never their interactions).

    ``clients`` (C,); row ``t`` of ``deltas`` (T, d) is the change of item ``items[t]``
    by client ``clients[owner[t]]`` (after the privacy mechanism); ``n_samples`` (C,) the
    clients' local sample counts (FedAvg's weights); ``bases`` (C, k, d) the clients'
    principal item subspaces (FedCA only) and ``gradients`` (n_items, d) the summed item
    gradient (FCF only); ``heads`` (C, P) the clients' trained MLP heads (NCF backbone,
    strategies that share the head; after the privacy mechanism).
    """

    clients: np.ndarray
    owner: np.ndarray
    items: np.ndarray
    deltas: np.ndarray
    n_samples: np.ndarray
    bases: np.ndarray | None = None
    gradients: np.ndarray | None = None
    heads: np.ndarray | None = None


@dataclass
class Strategy:
    """Base class: how the server combines a round's uploads and what clients score with."""

    name: ClassVar[str] = ""
    #: clients keep personal item tables (scored with) next to the server's
    personal: ClassVar[bool] = False
    #: clients upload gradients (FCF) instead of trained rows
    gradients: ClassVar[bool] = False
    #: NCF backbone: the MLP head is uploaded and aggregated with the item table (else it
    #: stays on the client, a personal score function)
    shares_head: ClassVar[bool] = True

    def start_tables(self, state: Any, clients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(tables, table_of_client)`` the clients start local training from."""
        return state.V[None], np.zeros(len(clients), dtype=np.int64)

    def aggregate(self, state: Any, up: RoundUploads, rng: np.random.Generator) -> dict[str, float]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name}


@dataclass
class FedAvg(Strategy):
    """Weighted averaging of the clients' trained item tables (``weighting``: "samples" or
    "uniform")."""

    name: ClassVar[str] = "FedAvg"
    weighting: str = "samples"

    def __post_init__(self) -> None:
        if self.weighting not in ("samples", "uniform"):
            raise ParameterError(f"weighting must be 'samples' or 'uniform', got {self.weighting!r}")

    def weights(self, up: RoundUploads) -> np.ndarray:
        if self.weighting == "uniform":
            return np.full(len(up.clients), 1.0 / len(up.clients))
        n = up.n_samples.astype(np.float64)
        return n / n.sum()

    def aggregate(self, state: Any, up: RoundUploads, rng: np.random.Generator) -> dict[str, float]:
        p = self.weights(up)
        change = np.zeros_like(state.V)
        scatter_rows(change, up.items, up.deltas, p[up.owner])
        state.V += change
        if up.heads is not None and self.shares_head:
            state.head[:] = np.tensordot(p.astype(np.float32), up.heads, axes=1)
        return {}


@dataclass
class PFedRec(FedAvg):
    """PFedRec's server: the uniform average of the fine-tuned item tables; each client
    keeps its own fine-tuned table (held by the simulator in ``state.tables``)."""

    name: ClassVar[str] = "PFedRec"
    personal: ClassVar[bool] = True
    #: the score function (NCF: the MLP head) is the client's own and is never uploaded
    shares_head: ClassVar[bool] = False
    weighting: str = "uniform"


@dataclass
class FedCA(Strategy):
    """Composite aggregation (see the module docstring).

    ``alpha`` weighs complementarity, ``beta`` similarity; ``aggregated_share`` of the
    round's clients (drawn at random) are aggregated; an aggregated client's table becomes
    ``interpolation * own + (1 - interpolation) * aggregate``. With ``alpha = beta = 0``,
    ``aggregated_share = 1`` and ``interpolation = 0`` this is FedAvg over personal tables.
    """

    name: ClassVar[str] = "FedCA"
    personal: ClassVar[bool] = True
    alpha: float = 0.3
    beta: float = 0.3
    aggregated_share: float = 0.1
    interpolation: float = 0.9
    principal_k: int = 4
    last_weights: np.ndarray | None = field(default=None, repr=False)

    def start_tables(self, state: Any, clients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return state.tables, clients.astype(np.int64)

    def pick(self, n_clients: int, rng: np.random.Generator) -> np.ndarray:
        """Positions (sorted) of the round's clients that are aggregated."""
        n_agg = int(n_clients * self.aggregated_share)
        if n_agg < 1:
            return np.zeros(0, dtype=np.int64)
        return np.sort(rng.choice(n_clients, n_agg, replace=False))

    def mix(self, uploaded: np.ndarray, n_samples: np.ndarray, bases: np.ndarray | None,
            rng: np.random.Generator, pick: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Server side of one round: ``(picked, mixed, p)``.

        ``uploaded`` (C, n_items, d) are the round's uploaded tables, ``n_samples`` (C,)
        their sample counts, ``bases`` (C, k, d) their principal subspaces. ``picked``
        (positions into the round's clients) are the aggregated clients, ``mixed`` their
        aggregates ``W @ T`` and ``p`` their sample shares. With ``pick`` given (from
        :meth:`pick`), ``uploaded`` holds only the picked clients' tables.
        """
        if pick is None:
            pick = self.pick(len(uploaded), rng)
            tables, n_samples = uploaded[pick], n_samples[pick]
            bases = None if bases is None else bases[pick]
        else:
            tables = uploaded
        n_agg = len(pick)
        if n_agg < 1:
            return pick, uploaded[:0], np.zeros(0)
        n = n_samples.astype(np.float64)
        p = n / n.sum()
        sim = similarity_matrix(tables) if self.beta else None
        comp = complementarity_matrix(bases) if self.alpha and bases is not None else None
        w = composite_weights(p, comp, sim, self.alpha, self.beta)
        self.last_weights = w
        mixed = (w.astype(np.float32) @ tables.reshape(n_agg, -1)).reshape(tables.shape)
        return pick, mixed, p

    def aggregate(self, state: Any, up: RoundUploads, rng: np.random.Generator) -> dict[str, float]:
        # the uploaded tables (the simulator holds each client's exact table; under a
        # privacy mechanism the server sees the perturbed changes instead of the exact ones)
        pick = self.pick(len(up.clients), rng)
        if len(pick) == 0:
            return {}
        agg_clients = up.clients[pick]
        uploaded = state.tables[agg_clients]
        if state.exact_deltas is not None:
            slot = np.full(len(up.clients), -1, dtype=np.int64)
            slot[pick] = np.arange(len(pick))
            rows = slot[up.owner] >= 0
            np.add.at(uploaded, (slot[up.owner][rows], up.items[rows]), up.deltas[rows] - state.exact_deltas[rows])
        bases = None if up.bases is None else up.bases[pick]
        pick, mixed, p = self.mix(uploaded, up.n_samples[pick], bases, rng, pick)
        # the server's own table (what a client outside the federation gets): FedAvg of the uploads
        state.V[:] = np.tensordot(p.astype(np.float32), uploaded, axes=1)
        lam = np.float32(self.interpolation)
        state.tables[agg_clients] = lam * state.tables[agg_clients] + (1.0 - lam) * mixed
        if up.heads is not None:
            # NCF: the heads are mixed with the same weights (as FedCA's code does)
            heads, mixed_heads = self.mix_heads(up.heads[pick])
            state.head[:] = np.tensordot(p.astype(np.float32), heads, axes=1)
            state.heads[agg_clients] = lam * state.heads[agg_clients] + (1.0 - lam) * mixed_heads
        return {"aggregated": float(len(pick))}

    def mix_heads(self, heads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The aggregated clients' uploaded heads (k, P) and their mixes with the weights of
        the last :meth:`mix` (NCF backbone)."""
        heads = np.asarray(heads, dtype=np.float32)
        return heads, (self.last_weights.astype(np.float32) @ heads).astype(np.float32)


@dataclass
class FCF(Strategy):
    """Federated collaborative filtering's server: Adam on the summed item gradients."""

    name: ClassVar[str] = "FCF"
    gradients: ClassVar[bool] = True
    learning_rate: float = 0.05
    reg: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def aggregate(self, state: Any, up: RoundUploads, rng: np.random.Generator) -> dict[str, float]:
        g = up.gradients + 2.0 * self.reg * state.V
        st = state.server_opt
        st["t"] = st.get("t", 0) + 1
        m = st.setdefault("m", np.zeros_like(state.V))
        v = st.setdefault("v", np.zeros_like(state.V))
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        t = st["t"]
        step = self.learning_rate * (m / (1.0 - self.beta1 ** t)) / (np.sqrt(v / (1.0 - self.beta2 ** t)) + self.eps)
        state.V -= step.astype(np.float32)
        return {"gradient_norm": float(np.linalg.norm(g))}
