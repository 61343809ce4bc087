"""The federation simulator: one client per user, rounds of local training and aggregation.

Each round the server samples ``clients_per_round`` of the clients; every sampled client
draws fresh local negatives (``negatives`` per positive, among the items outside its
training row), trains its part of the model for ``local_epochs`` on its own data only, and
uploads what its strategy asks for (changed item rows, or item gradients for FCF) through
its privacy mechanism; the server aggregates (:mod:`recseek.federated.aggregation`).

Vectorised over clients: the negatives, the mini-batch orders and the bookkeeping of a
round are array operations over all participating clients together, and the local
training of all of them is one numba call with one client per ``prange`` iteration
(:func:`recseek.federated._kernels.local_train_dot`). A round costs
``O(local_epochs * sum_c (n_c / batch_size) * m_c * factors)`` for client sample counts
``n_c`` and touched items ``m_c`` (Adam moves every touched row at every step, as
torch's dense Adam does) plus the aggregation (FedCA: ``O(C^2 * n_items)`` for the
similarity and the mixing of ``C`` aggregated tables); measured times per round are in
``benchmarks/bench_federated.py``.

Seeded: the same seed and settings give the same model, on any number of threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data._interactions import Interactions
from ..errors import DataError, ParameterError, TrainingError
from .aggregation import FCF, FedCA, RoundUploads, Strategy
from .ncf import head_layout, hidden_sizes, init_head, ncf_logits
from .privacy import Privacy

OPTIMIZERS = {"sgd": 0, "adam": 1}
BACKBONES = ("pmf", "ncf")

# streams of the clients' counter-based random numbers
_NEG, _ORDER, _FAKE, _FAKE_LABEL, _NOISE = 1, 2, 3, 4, 5


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (uint64 in, uint64 out; wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def client_uniform(seed: int, stream: int, rnd: int, client: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1) that depend only on (seed, stream, round, client, index).

    Every random draw a client makes comes from here, so a client computes the same
    numbers whether it trains inside the vectorised simulator (all clients at once) or
    alone on its device (the Flower adapter): both give the same model for one seed.
    """
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(stream))
        h = _mix(h ^ np.uint64(rnd))
        h = _mix(h ^ np.asarray(client).astype(np.uint64))
        h = _mix(h ^ np.asarray(index).astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _local_index(owner: np.ndarray) -> np.ndarray:
    """Position of each entry within its (sorted) owner group."""
    if len(owner) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    counts = np.diff(np.r_[starts, len(owner)])
    return np.arange(len(owner)) - np.repeat(starts, counts)


@dataclass
class LocalTraining:
    """What a client does locally (the dot-product backbone: ``sigmoid(<u, v_i> + b)``).

    ``lr_user`` / ``lr_item`` are the steps of the client's own part (user vector, bias)
    and of the item rows; ``reg_user`` / ``reg_item`` L2 weight decay (SGD only);
    ``threshold`` stops the local epochs early when the running mean loss changes by less
    (relative); ``two_step``: per batch, step the user part, then the item rows on a
    fresh forward pass (PFedRec).
    """

    factors: int = 16
    local_epochs: int = 10
    negatives: int = 4
    batch_size: int = 256
    optimizer: str = "adam"
    lr_user: float = 0.01
    lr_item: float = 0.01
    reg_user: float = 0.0
    reg_item: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    threshold: float = 1e-4
    use_bias: bool = False
    two_step: bool = False
    init_std: float = 1.0
    #: FCF only: confidence of an observed interaction, c = 1 + confidence * r
    confidence: float = 1.0
    #: every client starts from the same initial user vector, the one in the model the
    #: server sends out first (as in FedCA's and PFedRec's code); else one draw per client
    shared_user_init: bool = True
    #: "pmf": the dot product above; "ncf": ``sigmoid(f([u; v_i]))`` with an MLP head ``f``
    #: of hidden widths ``mlp_layers`` (:mod:`recseek.federated.ncf`), trained with step
    #: ``lr_head`` and L2 weight decay ``reg_head`` (FedCA's ``lr_structure``, ``weight_decay``)
    backbone: str = "pmf"
    mlp_layers: tuple[int, ...] = (16, 8)
    lr_head: float = 0.01
    reg_head: float = 0.001

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        for name in ("factors", "local_epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.negatives, bool) or not isinstance(self.negatives, int | np.integer) or self.negatives < 0:
            raise ParameterError(f"negatives must be a non-negative integer, got {self.negatives!r}")
        if self.backbone not in BACKBONES:
            raise ParameterError(f"backbone must be one of {', '.join(map(repr, BACKBONES))}, got {self.backbone!r}")
        self.mlp_layers = hidden_sizes(self.mlp_layers)
        if self.backbone == "ncf" and self.use_bias:
            raise ParameterError("the NCF backbone has no separate user bias (its head has biases); "
                                 "use_bias must be False")

    @property
    def ncf(self) -> bool:
        return self.backbone == "ncf"

    def head_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The NCF head's ``(sizes, weight_offsets, bias_offsets, n_params)``."""
        return head_layout(self.factors, self.mlp_layers)


@dataclass
class FederationState:
    """Server and client state of a simulated federation.

    ``V`` (n_items, d) the server's item table; ``U`` (n_users, d) and ``ub`` (n_users,)
    the clients' own vectors and biases (never uploaded); ``tables`` (n_users, n_items, d)
    the clients' personal item tables (personal strategies only). NCF backbone only:
    ``head`` (P,) the server's MLP head and ``heads`` (n_users, P) the clients' own heads
    (personal strategies only).
    """

    V: np.ndarray
    U: np.ndarray
    ub: np.ndarray
    tables: np.ndarray | None = None
    exact_deltas: np.ndarray | None = None
    #: clients that have taken part in a round (FedCA: the others hold no table of their own yet)
    joined: np.ndarray | None = None
    server_opt: dict[str, Any] = field(default_factory=dict)
    head: np.ndarray | None = None
    heads: np.ndarray | None = None


def participants_per_round(clients_per_round: float | int, n_clients: int) -> int:
    """A share in (0, 1] of the clients (rounded down, at least 1) or a count > 1."""
    c = clients_per_round
    if isinstance(c, bool) or not isinstance(c, int | float | np.integer | np.floating) or c <= 0:
        raise ParameterError(f"clients_per_round must be a share in (0, 1] or a count, got {c!r}")
    if c <= 1 and not (isinstance(c, int | np.integer) and c == 1 and n_clients == 1):
        return max(1, int(n_clients * float(c)))
    if float(c) != int(c):
        raise ParameterError(f"clients_per_round above 1 must be a whole number of clients, got {c!r}")
    return min(int(c), n_clients)


class Federation:
    """A simulated federation of one client per user.

    Parameters
    ----------
    strategy : Strategy
        Server aggregation (:class:`~recseek.federated.aggregation.FedAvg`, ``PFedRec``,
        ``FedCA``, ``FCF``).
    local : LocalTraining
        Client-side training settings.
    rounds : int
        Communication rounds.
    clients_per_round : float or int
        Share of the clients (<= 1) or number of clients sampled each round.
    privacy : Privacy
        What clients do to their uploads.
    seed : int
        Seed of the initialisation, the sampling and the privacy noise.
    verbose : bool
        Progress bar over rounds showing the mean local loss.
    """

    def __init__(self, strategy: Strategy, local: LocalTraining | None = None, *, rounds: int = 100,
                 clients_per_round: float | int = 1.0, privacy: Privacy | None = None, seed: int = 0,
                 verbose: bool = False) -> None:
        if isinstance(rounds, bool) or not isinstance(rounds, int | np.integer) or rounds < 1:
            raise ParameterError(f"rounds must be a positive integer, got {rounds!r}")
        self.strategy = strategy
        self.local = local or LocalTraining()
        self.rounds = int(rounds)
        self.clients_per_round = clients_per_round
        self.privacy = privacy or Privacy()
        self.seed = int(seed or 0)
        self.verbose = verbose
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------ set-up
    def init_state(self, train: Interactions, never_negative: sp.csr_array | None = None) -> None:
        rng = np.random.default_rng([self.seed, 0])
        d = int(self.local.factors)
        std = np.float32(self.local.init_std)
        V = rng.standard_normal((train.n_items, d), dtype=np.float32) * std
        if self.local.shared_user_init:
            # the server's initial model, user part included, goes to every client
            U = np.tile(rng.standard_normal((1, d), dtype=np.float32) * std, (train.n_users, 1))
        else:
            U = rng.standard_normal((train.n_users, d), dtype=np.float32) * std
        tables = None
        if self.strategy.personal:
            tables = np.broadcast_to(V, (train.n_users, *V.shape)).copy()
        self.state = FederationState(V, U, np.zeros(train.n_users, dtype=np.float32), tables,
                                     joined=np.zeros(train.n_users, dtype=bool))
        if self.local.ncf:
            if self.strategy.gradients:
                raise ParameterError(f"{self.strategy.name}: clients solve their vectors in closed form against "
                                     "the item table, which needs the dot-product backbone (backbone='pmf')")
            # drawn after V and U, so the dot-product backbone's initial model is unchanged
            self.state.head = init_head(rng, self.local.head_layout()[0])
            if self.strategy.personal:
                self.state.heads = np.tile(self.state.head, (train.n_users, 1))
        m = sp.csr_array(train.matrix)
        self.indptr = np.asarray(m.indptr, dtype=np.int64)
        self.indices = np.asarray(m.indices, dtype=np.int64)
        self.n_users, self.n_items = train.shape
        self.clients = np.flatnonzero(np.diff(self.indptr) > 0).astype(np.int64)
        if len(self.clients) == 0:
            raise DataError("federation: no user has a training interaction")
        self._keys = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr)) * self.n_items \
            + self.indices
        if never_negative is not None:
            extra = sp.coo_array(never_negative)
            if extra.shape != train.shape:
                raise DataError(f"never_negative has shape {extra.shape}, expected {train.shape}")
            more = extra.row.astype(np.int64) * self.n_items + extra.col.astype(np.int64)
            self._keys = np.unique(np.concatenate([self._keys, more]))

    def _in_train(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        key = users * self.n_items + items
        pos = np.searchsorted(self._keys, key)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == key

    def _draw_outside(self, users: np.ndarray, stream: int, rnd: int) -> np.ndarray:
        """One item per entry of ``users`` (grouped by user), uniformly among the items outside
        the user's training row (and ``never_negative``); counter-based draws."""
        slot = _local_index(users)
        items = np.empty(len(users), dtype=np.int64)
        todo = np.arange(len(users))
        for attempt in range(64):
            u = client_uniform(self.seed, stream, rnd, users[todo], slot[todo] * 64 + attempt)
            items[todo] = np.minimum((u * self.n_items).astype(np.int64), self.n_items - 1)
            todo = todo[self._in_train(users[todo], items[todo])]
            if len(todo) == 0:
                return items
        raise DataError("federation: a client has interacted with (nearly) every item; no negatives to draw")

    # ------------------------------------------------------------ training
    def fit(self, train: Interactions, on_round: Callable[[Federation, int], dict[str, float] | None] | None = None,
            *, never_negative: sp.csr_array | None = None) -> Federation:
        """Run every round on ``train``; ``on_round(self, r)`` may return figures to record.

        ``never_negative`` (n_users, n_items), optional: items that are never drawn as a
        client's local negatives besides its training items. FedCA's and PFedRec's code
        draws local negatives outside *all* of a user's interactions, validation and test
        items included, which a real client could not know; pass the held-out items here
        to reproduce it (the default draws outside the training row only).
        """
        self.init_state(train, never_negative)
        self.history = []
        n_part = participants_per_round(self.clients_per_round, len(self.clients))
        rounds = range(self.rounds)
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(rounds, desc=self.strategy.name or "federation", leave=False)
            rounds = bar
        for r in rounds:
            rng = np.random.default_rng([self.seed, 1, r])
            t0 = time.perf_counter()
            parts = np.sort(rng.choice(self.clients, n_part, replace=False))
            if self.strategy.gradients:
                info = self._gradient_round(parts, r, rng)
            else:
                info = self._local_round(parts, r, rng)
            for a in (self.state.V, self.state.U, self.state.head):
                if a is not None and not np.isfinite(a).all():
                    raise TrainingError(f"{self.strategy.name}: training diverged in round {r + 1} (NaN or infinite "
                                        "values); lower the learning rates")
            info = {"round": r + 1, **info, "seconds": time.perf_counter() - t0}
            if on_round is not None:
                extra = on_round(self, r)
                if extra:
                    info.update(extra)
            self.history.append(info)
            if bar is not None:
                bar.set_postfix(loss=f"{info.get('loss', float('nan')):.4f}")
        if self.strategy.gradients:
            # every client solves its own vector against the final item table (a local step)
            self.state.U[self.clients] = self._solve_users(self.clients)
        if self.strategy.personal:
            # clients that never took part score with the server's table (and head)
            self.state.tables[~self.state.joined] = self.state.V[None]
            if self.state.heads is not None:
                self.state.heads[~self.state.joined] = self.state.head
        return self

    def _samples(self, parts: np.ndarray, rnd: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(owner, items, labels)`` of the round's local samples, grouped by client
        (``owner`` indexes ``parts``)."""
        counts = np.diff(self.indptr)[parts]
        owner_pos = np.repeat(np.arange(len(parts)), counts)
        pos_items = self.indices[_row_positions(self.indptr, parts)]
        k = int(self.local.negatives)
        owner_neg = np.repeat(owner_pos, k)
        neg_items = self._draw_outside(parts[owner_neg], _NEG, rnd) if k else np.zeros(0, dtype=np.int64)
        owner = [owner_pos, owner_neg]
        items = [pos_items, neg_items]
        labels = [np.ones(len(pos_items), dtype=np.float32), np.zeros(len(neg_items), dtype=np.float32)]
        f = int(self.privacy.fake_items)
        if f:
            owner_fake = np.repeat(np.arange(len(parts)), f)
            fake = self._draw_outside(parts[owner_fake], _FAKE, rnd)
            tables, table_of = self.strategy.start_tables(self.state, parts)
            rows = tables[table_of[owner_fake], fake]
            if self.local.ncf:
                heads, head_of = self._start_heads(parts)
                sizes = self.local.head_layout()[0]
                # one "user" per fake row, with its client's vector and head
                z = ncf_logits(self.state.U[parts[owner_fake]], rows[:, None, :],
                               heads[head_of[owner_fake]], sizes)[:, 0]
            else:
                z = np.einsum("td,td->t", rows, self.state.U[parts[owner_fake]]) + self.state.ub[parts[owner_fake]]
            prob = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
            draw = client_uniform(self.seed, _FAKE_LABEL, rnd, parts[owner_fake], _local_index(owner_fake))
            owner.append(owner_fake)
            items.append(fake)
            labels.append((draw < prob).astype(np.float32))
        owner = np.concatenate(owner)
        items = np.concatenate(items).astype(np.int64)
        labels = np.concatenate(labels)
        srt = np.argsort(owner, kind="stable")
        return owner[srt], items[srt], labels[srt]

    def client_step(self, parts: np.ndarray, rnd: int) -> tuple[RoundUploads, dict[str, Any]]:
        """Local training of the clients ``parts`` in round ``rnd`` (0-based), all at once.

        Updates the clients' own vectors (and personal tables) in place and returns what
        they upload, plus the exact (unperturbed) changes for the simulator's bookkeeping.
        """
        from ._kernels import local_train_dot

        loc = self.local
        st = self.state
        owner, items, labels = self._samples(parts, rnd)
        C = len(parts)
        sptr = np.zeros(C + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=C), out=sptr[1:])
        # touched items per client and each sample's position among them
        key = owner * self.n_items + items
        ukey, s_pos = np.unique(key, return_inverse=True)
        t_owner = ukey // self.n_items
        t_items = (ukey % self.n_items).astype(np.int64)
        tptr = np.zeros(C + 1, dtype=np.int64)
        np.cumsum(np.bincount(t_owner, minlength=C), out=tptr[1:])
        s_local = (s_pos - tptr[owner]).astype(np.int64)
        # a fresh sample order per client and local epoch
        E = int(loc.local_epochs)
        order = np.empty((E, len(owner)), dtype=np.int64)
        local = _local_index(owner)
        for e in range(E):
            keys = client_uniform(self.seed, _ORDER, rnd, parts[owner], local + (e << 32))
            perm = np.argsort(owner + keys, kind="stable")
            order[e] = perm - sptr[owner[perm]]
        if self.strategy.personal and st.joined is not None:
            # a client taking part for the first time starts from the server's current table
            new = parts[~st.joined[parts]]
            st.tables[new] = st.V[None]
            if st.heads is not None:
                st.heads[new] = st.head
            st.joined[new] = True
        tables, table_of = self.strategy.start_tables(st, parts)
        tables = np.ascontiguousarray(tables, dtype=np.float32)
        start_rows = tables[table_of[t_owner], t_items]
        out_rows = np.empty((len(t_items), loc.factors), dtype=np.float32)
        losses = np.zeros(C, dtype=np.float64)
        f32 = np.float32
        heads = None
        if loc.ncf:
            from ._kernels import local_train_ncf

            sizes, woff, boff, n_params = loc.head_layout()
            start_heads, head_of = self._start_heads(parts)
            start_heads = np.ascontiguousarray(start_heads, dtype=np.float32)
            heads = np.empty((C, n_params), dtype=np.float32)
            local_train_ncf(parts, sptr, s_local, labels.astype(np.float32), order, tptr, t_items, tables,
                            table_of.astype(np.int64), st.U, start_heads, head_of, heads, sizes, woff, boff,
                            out_rows, losses, E, int(loc.batch_size), OPTIMIZERS[loc.optimizer], f32(loc.lr_user),
                            f32(loc.lr_item), f32(loc.lr_head), f32(loc.reg_user), f32(loc.reg_item),
                            f32(loc.reg_head), f32(loc.beta1), f32(loc.beta2), f32(loc.eps), float(loc.threshold),
                            bool(loc.two_step))
        else:
            local_train_dot(parts, sptr, s_local, labels.astype(np.float32), order, tptr, t_items, tables,
                            table_of.astype(np.int64), st.U, st.ub, out_rows, losses, E, int(loc.batch_size),
                            OPTIMIZERS[loc.optimizer], f32(loc.lr_user), f32(loc.lr_item), f32(loc.reg_user),
                            f32(loc.reg_item), f32(loc.beta1), f32(loc.beta2), f32(loc.eps), float(loc.threshold),
                            bool(loc.use_bias), bool(loc.two_step))
        exact = out_rows - start_rows
        deltas = self._perturb(exact, parts[t_owner], _local_index(t_owner), rnd) if self.privacy.noisy else exact
        uploaded_heads = None
        if heads is not None:
            if st.heads is not None:
                st.heads[parts] = heads
            if self.strategy.shares_head:
                uploaded_heads = heads
                if self.privacy.noisy:
                    # the head's change is one more uploaded row, perturbed like the item rows
                    change = heads - start_heads[head_of]
                    noisy = self._perturb(change, parts, np.full(C, self.n_items, dtype=np.int64), rnd)
                    uploaded_heads = (start_heads[head_of] + noisy).astype(np.float32)
        if self.strategy.personal:
            if not isinstance(self.strategy, FedCA):
                # PFedRec: the client's table is the server's, fine-tuned on its own rows
                st.tables[parts] = st.V[None]
            st.tables[parts[t_owner], t_items] = out_rows
        bases = None
        if getattr(self.strategy, "alpha", 0):
            bases = _client_bases(out_rows, t_owner, C, int(getattr(self.strategy, "principal_k", 4)))
        up = RoundUploads(parts, t_owner, t_items, deltas, np.diff(sptr), bases, heads=uploaded_heads)
        return up, {"exact": exact if self.privacy.noisy else None, "losses": losses}

    def _start_heads(self, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(heads, head_of_client)`` the clients ``parts`` start from (NCF backbone): their
        own heads under a personal strategy, else the server's."""
        st = self.state
        if st.heads is not None:
            return st.heads, parts.astype(np.int64)
        return st.head[None], np.zeros(len(parts), dtype=np.int64)

    def _perturb(self, rows: np.ndarray, clients: np.ndarray, row_index: np.ndarray, rnd: int) -> np.ndarray:
        """The privacy mechanism on uploaded rows (row ``t`` is the ``row_index[t]``-th row of
        client ``clients[t]``), from the clients' counter-based random numbers."""
        d = rows.shape[1]
        idx = (row_index[:, None] * d + np.arange(d)[None, :]) * 2
        cl = np.broadcast_to(clients[:, None], idx.shape)
        u1 = client_uniform(self.seed, _NOISE, rnd, cl, idx)
        u2 = client_uniform(self.seed, _NOISE, rnd, cl, idx + 1)
        return self.privacy.perturb_with(rows, u1, u2)

    def _local_round(self, parts: np.ndarray, rnd: int, rng: np.random.Generator) -> dict[str, float]:
        up, extra = self.client_step(parts, rnd)
        self.state.exact_deltas = extra["exact"]
        info = self.strategy.aggregate(self.state, up, rng)
        self.state.exact_deltas = None
        return {"loss": float(extra["losses"].mean()), **info}

    # ------------------------------------------------------------ FCF
    def _solve_users(self, users: np.ndarray) -> np.ndarray:
        """Each client's least-squares vector under confidence weights (Hu et al. 2008):
        ``(Y'Y + Y'(C_u - I)Y + reg I)^-1 Y' C_u p_u``, batched over clients."""
        loc = self.local
        Y = self.state.V.astype(np.float64)
        d = Y.shape[1]
        a = float(loc.confidence)
        out = np.empty((len(users), d), dtype=np.float32)
        YtY = Y.T @ Y
        YY = np.einsum("id,ie->ide", Y, Y).reshape(len(Y), d * d)
        for s in range(0, len(users), 1024):
            blk = users[s: s + 1024]
            R = _dense_rows(self.indptr, self.indices, blk, self.n_items)
            A = YtY[None] + a * (R @ YY).reshape(len(blk), d, d) + float(loc.reg_user) * np.eye(d)[None]
            b = (1.0 + a) * (R @ Y)
            out[s: s + 1024] = np.linalg.solve(A, b[..., None])[..., 0]
        return out

    def _gradient_round(self, parts: np.ndarray, rnd: int, rng: np.random.Generator) -> dict[str, float]:
        st = self.state
        a = float(self.local.confidence)
        X = self._solve_users(parts)
        st.U[parts] = X
        Y = st.V.astype(np.float64)
        grad = np.zeros_like(Y)
        loss = 0.0
        for s in range(0, len(parts), 256):
            blk = parts[s: s + 256]
            R = _dense_rows(self.indptr, self.indices, blk, self.n_items)
            Xb = X[s: s + 256].astype(np.float64)
            err = R - Xb @ Y.T
            E = (1.0 + a * R) * err
            loss += float((E * err).sum())
            if self.privacy.noisy:
                g = (-2.0 * E[:, :, None] * Xb[:, None, :]).reshape(-1, Y.shape[1])
                owners = np.repeat(blk, self.n_items)
                rows = np.tile(np.arange(self.n_items), len(blk))
                grad += self._perturb(g, owners, rows, rnd).reshape(len(blk), self.n_items, -1).sum(axis=0)
            else:
                grad += -2.0 * E.T @ Xb
        counts = np.diff(self.indptr)[parts]
        up = RoundUploads(parts, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                          np.zeros((0, Y.shape[1]), dtype=np.float32), counts, None, grad)
        info = self.strategy.aggregate(st, up, rng)
        return {"loss": loss / len(parts), **info}

    # ------------------------------------------------------------ scoring
    def scores(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Each client's scores (logits) of ``items`` (default all), float32 (len(users), n)."""
        st = self.state
        users = np.asarray(users, dtype=np.int64)
        U = st.U[users]
        if self.local.ncf:
            sizes = self.local.head_layout()[0]
            head = st.heads[users] if st.heads is not None else st.head
            if st.tables is not None:
                T = st.tables[users] if items is None else st.tables[users][:, items]
            else:
                T = st.V if items is None else st.V[items]
            return ncf_logits(U, T, head, sizes)
        if st.tables is not None:
            T = st.tables[users] if items is None else st.tables[users][:, items]
            out = np.einsum("uid,ud->ui", T, U)
        else:
            V = st.V if items is None else st.V[items]
            out = U @ V.T
        if self.local.use_bias:
            out = out + st.ub[users][:, None]
        return out.astype(np.float32)


def _row_positions(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in the CSR arrays of every entry of ``rows``, in row order."""
    counts = indptr[rows + 1] - indptr[rows]
    starts = np.repeat(indptr[rows] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return starts + np.arange(counts.sum())


def _dense_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, n_cols: int) -> np.ndarray:
    out = np.zeros((len(rows), n_cols))
    pos = _row_positions(indptr, rows)
    out[np.repeat(np.arange(len(rows)), indptr[rows + 1] - indptr[rows]), indices[pos]] = 1.0
    return out


def _client_bases(rows: np.ndarray, owner: np.ndarray, n_clients: int, k: int) -> np.ndarray:
    """Each client's ``k`` leading principal directions of its trained item rows, (C, k, d),
    computed on the client (batched: per-client covariance, then one batched eigh)."""
    d = rows.shape[1]
    x = rows.astype(np.float64)
    n = np.bincount(owner, minlength=n_clients).astype(np.float64)
    mean = np.zeros((n_clients, d))
    np.add.at(mean, owner, x)
    mean /= np.maximum(n, 1)[:, None]
    xc = x - mean[owner]
    cov = np.zeros((n_clients, d * d))
    for s in range(0, len(xc), 8192):
        part = xc[s: s + 8192]
        ind = sp.csr_array((np.ones(len(part)), (owner[s: s + 8192], np.arange(len(part)))),
                           shape=(n_clients, len(part)))
        cov += ind @ (part[:, :, None] * part[:, None, :]).reshape(len(part), d * d)
    cov = cov.reshape(n_clients, d, d)
    _, vecs = np.linalg.eigh(cov)
    basis = np.transpose(vecs[:, :, ::-1][:, :, :k], (0, 2, 1))
    # fix each direction's sign: its largest-magnitude component is positive
    big = np.take_along_axis(basis, np.argmax(np.abs(basis), axis=2)[:, :, None], axis=2)
    return np.ascontiguousarray(basis * np.where(big < 0, -1.0, 1.0))


__all__ = ["Federation", "FederationState", "LocalTraining", "FCF", "participants_per_round"]
