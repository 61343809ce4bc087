"""FCF, FedAvg, PFedRec and FedCA: federated recommenders trained by recseek's federation
simulator, one client per user, and afterwards ordinary models (save, load, evaluate,
serve).

Every model's clients keep their own vector (and bias) and never upload it, nor their
interactions; what they upload is set by the method (changed item rows or item gradients)
and by the privacy settings (``privacy``, ``epsilon``, ``delta``, ``clip``,
``fake_items``; see :mod:`recseek.federated.privacy`).

Hyperparameter names follow the federated-recommendation papers: ``rounds`` (global
rounds), ``local_epochs``, ``clients_per_round`` (a share of the clients or a count).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError, ModelFileError
from .._params import Choice, Float, Int, UsedWhen
from ..base import Array, Recommender, StateSpec
from ..registry import register

_PRIVACY_RULES: dict[str, Any] = {
    "rounds": Int(lo=1),
    "local_epochs": Int(lo=1),
    "clients_per_round": Float(lo=0.0, lo_open=True),
    "negatives": Int(lo=0),
    "init_std": Float(lo=0.0),
    "privacy": Choice(("none", "laplace", "gaussian")),
    "epsilon": UsedWhen("privacy", ("laplace", "gaussian"), Float(lo=0.0, lo_open=True)),
    "delta": UsedWhen("privacy", ("gaussian",), Float(lo=0.0, hi=1.0, lo_open=True)),
    "clip": UsedWhen("privacy", ("laplace", "gaussian"), Float(lo=0.0, lo_open=True)),
    "fake_items": Int(lo=0),
}


_BACKBONE_RULES: dict[str, Any] = {
    "backbone": Choice(("pmf", "ncf")),
    "tower_layers": UsedWhen("backbone", ("ncf",), Int(lo=0, hi=8)),
}
_HEAD_RULES: dict[str, Any] = {
    "mlp_learning_rate": UsedWhen("backbone", ("ncf",), Float(lo=0.0, lo_open=True)),
    "mlp_reg": UsedWhen("backbone", ("ncf",), Float(lo=0.0)),
}


class FederatedRanker(Recommender):
    """Shared machinery: run the federation, then score like a factor model.

    Learned state: ``user_factors_`` (n_users, factors) and ``user_bias_`` (n_users,), the
    clients' own parts; ``item_factors_`` (n_items, factors), the server's item table;
    for personalised methods ``personal_scores_`` (n_users, n_items), each client's scores
    from its own item table (the tables themselves, n_users x n_items x factors, stay
    with the clients); ``round_loss_`` (rounds,), the mean local loss of every round;
    with ``backbone="ncf"`` and a shared head (FedAvg) ``mlp_`` (n_mlp,), the server's
    MLP head (:mod:`recseek.federated.ncf`; numpy scores it, no torch needed).
    """

    family: ClassVar[str] = "federated"
    task: ClassVar[str] = "ranking"
    divergence_hint = "lower learning_rate"
    personal: ClassVar[bool] = False
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "user_bias_": Array("float32", ("n_users",)),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "personal_scores_": Array("float32", ("n_users", "n_items"), optional=True),
        "round_loss_": Array("float64", ("rounds",), history=True),
        "mlp_": Array("float32", ("n_mlp",), optional=True),
    }
    #: Fold-in of a new user (a new client): BPR steps per interaction on the server table.
    fold_in_steps: ClassVar[int] = 150
    fold_in_learning_rate: ClassVar[float] = 0.05

    # ------------------------------------------------------------ settings
    @property
    def _ncf(self) -> bool:
        return getattr(self, "backbone", "pmf") == "ncf"

    def _hidden(self) -> tuple[int, ...]:
        from ...federated.ncf import tower

        return tower(int(self.factors), int(self.tower_layers))

    def _head_sizes(self) -> np.ndarray:
        from ...federated.ncf import head_layout

        return head_layout(int(self.factors), self._hidden())[0]

    def _backbone_settings(self) -> dict[str, Any]:
        """The LocalTraining settings of the backbone."""
        if not self._ncf:
            return {"backbone": "pmf"}
        return {"backbone": "ncf", "mlp_layers": self._hidden(),
                "lr_head": float(getattr(self, "mlp_learning_rate", self.learning_rate)),
                "reg_head": float(getattr(self, "mlp_reg", getattr(self, "reg", 0.0)))}

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        super().check_state(params, history)
        head = params.get("mlp_")
        if head is not None:
            if not self._ncf:
                raise ModelFileError(f"{self.display_name} state mlp_ is only used with backbone='ncf'")
            from ...federated.ncf import head_layout

            n = head_layout(int(self.factors), self._hidden())[3]
            if head.shape[0] != n:
                raise ModelFileError(f"{self.display_name} state mlp_ has {head.shape[0]} values, but an NCF head "
                                     f"of factors={self.factors} and tower_layers={self.tower_layers} has {n}")

    def _privacy(self):
        from ...federated.privacy import Privacy

        return Privacy(self.privacy, float(self.epsilon), float(self.delta), float(self.clip), int(self.fake_items))

    def _local(self, train: Interactions):
        raise NotImplementedError

    def _strategy(self):
        raise NotImplementedError

    def federation(self, train: Interactions):
        """The :class:`~recseek.federated.simulator.Federation` this model's ``fit`` runs."""
        from ...federated.simulator import Federation

        cpr = self.clients_per_round
        return Federation(self._strategy(), self._local(train), rounds=int(self.rounds),
                          clients_per_round=int(cpr) if cpr > 1 else float(cpr), privacy=self._privacy(),
                          seed=int(self.seed or 0), verbose=bool(self.verbose))

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        fed = self.federation(train)
        fed.fit(train, on_round=getattr(self, "_on_round", None))
        self._adopt(fed)

    def _adopt(self, fed) -> None:
        """Take the learned state of a finished federation."""
        st = fed.state
        self.user_factors_ = np.ascontiguousarray(st.U, dtype=np.float32)
        self.user_bias_ = np.ascontiguousarray(st.ub, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(st.V, dtype=np.float32)
        self.round_loss_ = np.asarray([h.get("loss", np.nan) for h in fed.history], dtype=np.float64)
        if st.tables is not None:
            users = np.arange(st.U.shape[0])
            self.personal_scores_ = np.vstack([fed.scores(users[s: s + 512]) for s in range(0, len(users), 512)])
        else:
            self.personal_scores_ = None
        self.mlp_ = np.ascontiguousarray(st.head, dtype=np.float32) if st.head is not None and st.heads is None \
            else None
        self._check_finite(int(self.rounds), self.user_factors_, self.item_factors_)
        self.history_rounds = fed.history

    # ------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        ps = getattr(self, "personal_scores_", None)
        if ps is not None:
            out = ps[users] if items is None else ps[np.ix_(users, items)]
            return np.asarray(out, dtype=np.float32)
        V = self.item_factors_ if items is None else self.item_factors_[items]
        if getattr(self, "mlp_", None) is not None:
            from ...federated.ncf import ncf_logits

            return ncf_logits(self.user_factors_[users], V, self.mlp_, self._head_sizes())
        out = self.user_factors_[users] @ V.T + self.user_bias_[users][:, None]
        return out.astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        """A new client trains its own vector on the server's item table (BPR steps)."""
        from ..ranking._kernels import bpr_fold_in

        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        if getattr(self, "mlp_", None) is not None:
            return self._ncf_fold_in(rows)
        zero = np.zeros(self.n_items_, dtype=np.float32)
        U = bpr_fold_in(np.asarray(rows.indptr, dtype=np.int64), np.asarray(rows.indices, dtype=np.int32),
                        self.item_factors_, zero, False, int(self.item_factors_.shape[1]), int(self.fold_in_steps),
                        np.float32(self.fold_in_learning_rate), np.float32(0.01), int(self.seed or 0))
        return (U @ self.item_factors_.T).astype(np.float32)

    def _ncf_fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """NCF backbone: each new client trains only its own vector (Adam on its BCE, the
        server's item table and head fixed), all new clients in one kernel call."""
        from ...federated._kernels import OPT_ADAM, local_train_ncf
        from ...federated.ncf import head_layout, ncf_logits

        n_new, n_items = rows.shape
        d = int(self.factors)
        sizes, woff, boff, _ = head_layout(d, self._hidden())
        rng = np.random.default_rng([int(self.seed or 0), 7])
        indptr = np.asarray(rows.indptr, dtype=np.int64)
        counts = np.diff(indptr)
        k = max(int(getattr(self, "negatives", 4)), 1)
        owner_pos = np.repeat(np.arange(n_new), counts)
        owner_neg = np.repeat(owner_pos, k)
        neg = rng.integers(0, n_items, len(owner_neg))
        # redraw negatives that are among the user's items
        seen = owner_pos.astype(np.int64) * n_items + rows.indices.astype(np.int64)  # sorted
        for _ in range(64):
            key = owner_neg.astype(np.int64) * n_items + neg
            pos = np.minimum(np.searchsorted(seen, key), max(len(seen) - 1, 0))
            bad = seen[pos] == key if len(seen) else np.zeros(len(key), dtype=bool)
            if not bad.any():
                break
            neg[bad] = rng.integers(0, n_items, int(bad.sum()))
        owner = np.concatenate([owner_pos, owner_neg])
        items = np.concatenate([rows.indices.astype(np.int64), neg]).astype(np.int64)
        labels = np.concatenate([np.ones(len(owner_pos)), np.zeros(len(owner_neg))]).astype(np.float32)
        srt = np.argsort(owner, kind="stable")
        owner, items, labels = owner[srt], items[srt], labels[srt]
        sptr = np.zeros(n_new + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=n_new), out=sptr[1:])
        key = owner * n_items + items
        ukey, s_pos = np.unique(key, return_inverse=True)
        t_owner = ukey // n_items
        t_items = (ukey % n_items).astype(np.int64)
        tptr = np.zeros(n_new + 1, dtype=np.int64)
        np.cumsum(np.bincount(t_owner, minlength=n_new), out=tptr[1:])
        s_local = (s_pos - tptr[owner]).astype(np.int64)
        epochs = int(self.fold_in_steps) // 3
        local = np.arange(len(owner)) - sptr[owner]
        order = np.empty((epochs, len(owner)), dtype=np.int64)
        for e in range(epochs):
            perm = np.lexsort((rng.random(len(owner)), owner))
            order[e] = local[perm]
        U = (rng.standard_normal((n_new, d)) * 0.01).astype(np.float32)
        heads_out = np.empty((n_new, len(self.mlp_)), dtype=np.float32)
        rows_out = np.empty((len(t_items), d), dtype=np.float32)
        losses = np.zeros(n_new)
        f32 = np.float32
        local_train_ncf(np.arange(n_new, dtype=np.int64), sptr, s_local, labels, order, tptr, t_items,
                        self.item_factors_[None], np.zeros(n_new, dtype=np.int64), U, self.mlp_[None],
                        np.zeros(n_new, dtype=np.int64), heads_out, sizes, woff, boff, rows_out, losses, epochs,
                        int(getattr(self, "batch_size", 256)), OPT_ADAM, f32(self.fold_in_learning_rate), f32(0.0),
                        f32(0.0), f32(0.0), f32(0.0), f32(0.0), f32(0.9), f32(0.999), f32(1e-8), 0.0, False)
        return ncf_logits(U, self.item_factors_, self.mlp_, sizes)


#: The NCF head's settings, shared by the docstrings of the methods that train one.
_NCF_HEAD_DOC = """    tower_layers : int
        Hidden layers of the NCF head, a tower whose widths halve: ``2 factors ->
        factors -> factors / 2 -> ... -> 1`` (2: FedCA's ``mlp_layers`` [32, 16, 8, 1] at
        ``latent_dim`` 16; 0: one affine layer).
    mlp_learning_rate : float
        Adam step of the NCF head (``--lr_structure``).
    mlp_reg : float
        L2 weight decay of the NCF head, added to its gradient (``--weight_decay``).
"""

_COMMON_DOC = """
    privacy : {"none", "laplace", "gaussian"}
        Local differential privacy of every uploaded row (clipped to ``clip``, then
        Laplace or Gaussian noise; see :mod:`recseek.federated.privacy`).
    epsilon, delta : float
        The privacy budget per uploaded row and round (``delta``: Gaussian only).
    clip : float
        Norm bound of an uploaded row (L1 for Laplace, L2 for Gaussian).
    fake_items : int
        Items a client never interacted with that it also trains on (labels drawn from its
        own prediction) and uploads each round, to hide which items it rated.
    seed : int
        Seed of the initialisation, client sampling, negatives and noise.
    verbose : bool
        Progress bar over rounds with the mean local loss.
"""


class _LocalSGD(FederatedRanker):
    """Methods whose clients train locally with mini-batch Adam or SGD on BCE."""

    def _local(self, train: Interactions):
        from ...federated.simulator import LocalTraining

        lr = float(self.learning_rate)
        return LocalTraining(factors=int(self.factors), local_epochs=int(self.local_epochs),
                             negatives=int(self.negatives), batch_size=int(self.batch_size), optimizer="adam",
                             lr_user=lr, lr_item=lr, threshold=float(self.threshold), init_std=float(self.init_std),
                             **self._backbone_settings())


@register(aliases=("FedAvgMF",))
class FedAvg(_LocalSGD):
    __doc__ = """Federated averaging (FedAvg) over a matrix-factorisation backbone.

    Each client holds its user vector ``u`` and scores ``sigmoid(<u, v_i>)``; per round
    the sampled clients start from the server's item table ``V``, minimise the binary
    cross-entropy of their positives and ``negatives`` sampled negatives per positive with
    Adam for ``local_epochs`` (early stop at relative loss change ``threshold``), and
    upload their changed item rows; the server sets ``V`` to the sample-weighted average
    of the clients' tables (``client_weighting="uniform"``: plain average). The user vector never
    leaves the client.

    Same maths as the authors' FedCA code run with ``--alpha 0 --beta 0
    --agg_clients_ratio 1.0 --interpolation 0`` (its "FedAvg" baseline).

    Parameters
    ----------
    factors : int
        Latent dimensions (FedCA's ``latent_dim``).
    rounds : int
        Communication rounds (``global_round``).
    local_epochs : int
        Local passes per round (``local_epoch``).
    clients_per_round : float
        Share of the clients (<= 1) or number of clients (> 1) sampled per round.
    negatives : int
        Local negatives per positive, redrawn each round (``num_negative``).
    batch_size : int
        Local mini-batch size.
    learning_rate : float
        Adam step of the user vector and the item rows (``lr_embedding``).
    threshold : float
        Local early stop on the relative change of the running mean loss.
    init_std : float
        Standard deviation of the initial vectors (1.0: torch's Embedding default).
    client_weighting : {"samples", "uniform"}
        Weights of the clients' tables (and NCF heads) in the average.
    backbone : {"pmf", "ncf"}
        Score function: "pmf" the dot product above; "ncf" ``sigmoid(f([u; v_i]))``
        with an MLP ``f`` (the tower below, ReLU between
        layers), FedCA's FedNCF backbone (:mod:`recseek.federated.ncf`).
""" + _NCF_HEAD_DOC + _COMMON_DOC + """
    Reference: McMahan, Moore, Ramage, Hampson, Aguera y Arcas. Communication-Efficient
    Learning of Deep Networks from Decentralized Data. AISTATS 2017.
    """

    name = "FedAvg"
    paper = ("McMahan, Moore, Ramage, Hampson, Aguera y Arcas. Communication-Efficient Learning of Deep Networks "
             "from Decentralized Data. AISTATS 2017")
    rules = {**_PRIVACY_RULES, **_BACKBONE_RULES, **_HEAD_RULES, "threshold": Float(lo=0.0),
             "client_weighting": Choice(("samples", "uniform"))}
    test_params = {"factors": 8, "rounds": 15, "local_epochs": 5, "learning_rate": 0.05, "init_std": 0.1}
    required_when = {"mlp_": ("backbone", ("ncf",))}

    def __init__(self, factors: int = 16, rounds: int = 100, local_epochs: int = 10, clients_per_round: float = 1.0,
                 negatives: int = 4, batch_size: int = 256, learning_rate: float = 0.01, threshold: float = 1e-4,
                 init_std: float = 1.0, client_weighting: str = "samples", backbone: str = "pmf",
                 tower_layers: int = 2, mlp_learning_rate: float = 0.01,
                 mlp_reg: float = 0.001, privacy: str = "none", epsilon: float = 1.0, delta: float = 1e-5,
                 clip: float = 0.5, fake_items: int = 0, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.rounds = rounds
        self.local_epochs = local_epochs
        self.clients_per_round = clients_per_round
        self.negatives = negatives
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.threshold = threshold
        self.init_std = init_std
        self.client_weighting = client_weighting
        self.backbone = backbone
        self.tower_layers = tower_layers
        self.mlp_learning_rate = mlp_learning_rate
        self.mlp_reg = mlp_reg
        self.privacy = privacy
        self.epsilon = epsilon
        self.delta = delta
        self.clip = clip
        self.fake_items = fake_items
        self.seed = seed
        self.verbose = verbose

    def _strategy(self):
        from ...federated.aggregation import FedAvg as Strategy

        return Strategy(weighting=self.client_weighting)


@register
class FedCA(_LocalSGD):
    __doc__ = """FedCA: personalised federated recommendation with composite aggregation.

    Clients train as in :class:`FedAvg` but keep personal item tables. Per round a share
    ``aggregated_share`` of the participants is aggregated: client ``i`` receives
    ``A_i = sum_j W_ij T_j`` over the aggregated clients' tables ``T_j``, where row
    ``W_i`` minimises ``||w||^2 - 2 w.(p + alpha c_i + beta s_i)`` on the probability
    simplex (``p``: sample shares; ``c_ij``: cosine of the mean principal angle between
    the clients' ``principal_k``-dimensional principal subspaces of their trained item
    rows, computed on the clients: complementarity; ``s_ij = 1 / (1 + ||z_i - z_j||)``
    for the first-principal-component scores ``z`` of the tables: similarity), solved
    exactly as a Euclidean projection onto the simplex. The client's table becomes
    ``interpolation * T_i + (1 - interpolation) * A_i`` and it scores with it.

    Parameters
    ----------
    factors, rounds, local_epochs, clients_per_round, negatives, batch_size, learning_rate, threshold, init_std
        As in :class:`FedAvg` (the authors' defaults: 16, 100, 10, 1.0, 4, 256, 0.01, 1e-4).
    alpha : float
        Weight of complementarity (the authors' ``--alpha``).
    beta : float
        Weight of similarity (``--beta``).
    aggregated_share : float
        Share of the round's clients that are aggregated (``--agg_clients_ratio``).
    interpolation : float
        Weight of a client's own table against its aggregate (``--interpolation``).
    principal_k : int
        Dimension of each client's principal item subspace (``--k_principal``).
    backbone : {"pmf", "ncf"}
        Score function: "pmf" the dot product above; "ncf" ``sigmoid(f([u; v_i]))``
        with an MLP ``f`` (the tower below, ReLU between
        layers), FedCA's FedNCF backbone; the heads are mixed with
        the same weights as the tables and interpolated likewise (:mod:`recseek.federated.ncf`).
""" + _NCF_HEAD_DOC + _COMMON_DOC + """
    Reference: Zhang, Long, Zhou, Zhang, Zhang, Yang. Beyond Similarity: Personalized
    Federated Recommendation with Composite Aggregation. arXiv:2406.03933, 2024.
    """

    name = "FedCA"
    paper = ("Zhang, Long, Zhou, Zhang, Zhang, Yang. Beyond Similarity: Personalized Federated Recommendation "
             "with Composite Aggregation. arXiv:2406.03933, 2024")
    personal = True
    #: a personalised method always keeps every client's scores from its own item table
    state: ClassVar[dict[str, StateSpec]] = {
        "personal_scores_": Array("float32", ("n_users", "n_items")),
    }
    rules = {**_PRIVACY_RULES, **_BACKBONE_RULES, **_HEAD_RULES, "threshold": Float(lo=0.0), "alpha": Float(lo=0.0),
             "beta": Float(lo=0.0),
             "aggregated_share": Float(lo=0.0, hi=1.0), "interpolation": Float(lo=0.0, hi=1.0),
             "principal_k": Int(lo=1)}
    test_params = {"factors": 8, "rounds": 8, "local_epochs": 10, "learning_rate": 0.05, "init_std": 0.1,
                   "aggregated_share": 1.0, "interpolation": 0.2}

    def __init__(self, factors: int = 16, rounds: int = 100, local_epochs: int = 10, clients_per_round: float = 1.0,
                 negatives: int = 4, batch_size: int = 256, learning_rate: float = 0.01, threshold: float = 1e-4,
                 init_std: float = 1.0, alpha: float = 0.3, beta: float = 0.3, aggregated_share: float = 0.1,
                 interpolation: float = 0.9, principal_k: int = 4, backbone: str = "pmf",
                 tower_layers: int = 2, mlp_learning_rate: float = 0.01,
                 mlp_reg: float = 0.001, privacy: str = "none", epsilon: float = 1.0, delta: float = 1e-5,
                 clip: float = 0.5, fake_items: int = 0, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.rounds = rounds
        self.local_epochs = local_epochs
        self.clients_per_round = clients_per_round
        self.negatives = negatives
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.threshold = threshold
        self.init_std = init_std
        self.alpha = alpha
        self.beta = beta
        self.aggregated_share = aggregated_share
        self.interpolation = interpolation
        self.principal_k = principal_k
        self.backbone = backbone
        self.tower_layers = tower_layers
        self.mlp_learning_rate = mlp_learning_rate
        self.mlp_reg = mlp_reg
        self.privacy = privacy
        self.epsilon = epsilon
        self.delta = delta
        self.clip = clip
        self.fake_items = fake_items
        self.seed = seed
        self.verbose = verbose

    def _strategy(self):
        from ...federated.aggregation import FedCA as Strategy

        return Strategy(alpha=float(self.alpha), beta=float(self.beta), aggregated_share=float(self.aggregated_share),
                        interpolation=float(self.interpolation), principal_k=int(self.principal_k))


@register
class PFedRec(FederatedRanker):
    __doc__ = """PFedRec: personalised federated recommendation with a per-client score function.

    Each client scores ``sigmoid(<w, v_i> + b)`` with its own score function ``(w, b)``
    (kept on the client). Per round the sampled clients receive the server's item table,
    and per mini-batch take an SGD step on ``(w, b)`` (step ``learning_rate``), then, on a
    fresh forward pass, an SGD step on the item rows (step ``learning_rate * n_items *
    eta``; the batch-mean loss makes a row's gradient small); they score with their
    fine-tuned table and upload it; the server averages the tables uniformly.

    Parameters
    ----------
    factors : int
        Latent dimensions (the authors' ``latent_dim``, 32).
    rounds, local_epochs, clients_per_round, negatives, batch_size
        As in :class:`FedAvg` (the authors' defaults: 100, 1, 1.0, 4, 256).
    learning_rate : float
        SGD step of the score function (``--lr``, 0.1).
    eta : float
        Item step multiplier (``--lr_eta``, 80).
    reg : float
        L2 weight decay of both steps (``--l2_regularization``, 0).
    init_std : float
        Standard deviation of the initial item rows (torch's default: 1.0) and the score
        function weights.
    backbone : {"pmf", "ncf"}
        Score function: "pmf" the affine score above; "ncf" ``sigmoid(f([u; v_i]))``
        with an MLP ``f`` (the tower below, ReLU between
        layers); the MLP and ``u`` are the client's
        personal score function (stepped with ``learning_rate``, decay ``reg``), never
        uploaded (:mod:`recseek.federated.ncf`).
    tower_layers : int
        Hidden layers of the NCF head, a tower whose widths halve: ``2 factors ->
        factors -> factors / 2 -> ... -> 1`` (2: FedCA's ``mlp_layers`` [32, 16, 8, 1] at
        ``latent_dim`` 16; 0: one affine layer).
""" + _COMMON_DOC + """
    Reference: Zhang, Long, Zhou, Zhang, Zhang, Yang. Dual Personalization on Federated
    Recommendation. IJCAI 2023.
    """

    name = "PFedRec"
    paper = ("Zhang, Long, Zhou, Zhang, Zhang, Yang. Dual Personalization on Federated Recommendation. IJCAI 2023")
    personal = True
    #: a personalised method always keeps every client's scores from its own item table
    state: ClassVar[dict[str, StateSpec]] = {
        "personal_scores_": Array("float32", ("n_users", "n_items")),
    }
    rules = {**_PRIVACY_RULES, **_BACKBONE_RULES, "eta": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "rounds": 25, "local_epochs": 2, "init_std": 0.1, "eta": 0.25, "negatives": 2,
                   "learning_rate": 1.0}

    def __init__(self, factors: int = 32, rounds: int = 100, local_epochs: int = 1, clients_per_round: float = 1.0,
                 negatives: int = 4, batch_size: int = 256, learning_rate: float = 0.1, eta: float = 80.0,
                 reg: float = 0.0, init_std: float = 1.0, backbone: str = "pmf",
                 tower_layers: int = 2, privacy: str = "none", epsilon: float = 1.0,
                 delta: float = 1e-5, clip: float = 0.5, fake_items: int = 0, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.rounds = rounds
        self.local_epochs = local_epochs
        self.clients_per_round = clients_per_round
        self.negatives = negatives
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta = eta
        self.reg = reg
        self.init_std = init_std
        self.backbone = backbone
        self.tower_layers = tower_layers
        self.privacy = privacy
        self.epsilon = epsilon
        self.delta = delta
        self.clip = clip
        self.fake_items = fake_items
        self.seed = seed
        self.verbose = verbose

    def _local(self, train: Interactions):
        from ...federated.simulator import LocalTraining

        lr = float(self.learning_rate)
        return LocalTraining(factors=int(self.factors), local_epochs=int(self.local_epochs),
                             negatives=int(self.negatives), batch_size=int(self.batch_size), optimizer="sgd",
                             lr_user=lr, lr_item=lr * train.n_items * float(self.eta), reg_user=float(self.reg),
                             reg_item=float(self.reg), threshold=0.0, use_bias=not self._ncf, two_step=True,
                             init_std=float(self.init_std), **self._backbone_settings())

    def _strategy(self):
        from ...federated.aggregation import PFedRec as Strategy

        return Strategy()


@register
class FCF(FederatedRanker):
    __doc__ = """Federated collaborative filtering (FCF): implicit-feedback matrix factorisation
    whose user factors never leave the clients and whose item factors are updated by the
    server from the clients' aggregated gradients.

    Objective (Hu, Koren & Volinsky 2008): ``sum_{u,i} c_ui (p_ui - <x_u, y_i>)^2 + reg
    (sum_u ||x_u||^2 + sum_i ||y_i||^2)`` with ``p_ui = 1`` for an interaction (else 0)
    and confidence ``c_ui = 1 + alpha * p_ui``. Per round each sampled client solves its
    ``x_u`` in closed form against the current ``Y`` and uploads the gradient of its
    loss in ``Y``, ``-2 sum_i c_ui (p_ui - <x_u, y_i>) x_u`` for every item (all items,
    so the upload names none in particular); the server sums the gradients, adds
    ``2 reg Y`` and takes an Adam step. At the end every client solves its vector once
    more against the final ``Y``.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    rounds : int
        Communication rounds.
    clients_per_round : float
        Share of the clients (<= 1) or number of clients (> 1) sampled per round.
    learning_rate : float
        The server's Adam step.
    reg : float
        L2 penalty of user and item factors.
    alpha : float
        Confidence of an observed interaction.
    init_std : float
        Standard deviation of the initial item factors.
""" + _COMMON_DOC.replace("""    fake_items : int
        Items a client never interacted with that it also trains on (labels drawn from its
        own prediction) and uploads each round, to hide which items it rated.
""", """    fake_items : int
        Must stay 0: an FCF client already uploads a gradient for every item.
""") + """
    Reference: Ammad-ud-din, Ivannikova, Khan, Oyomno, Fu, Tan, Flanagan. Federated
    Collaborative Filtering for Privacy-Preserving Personalized Recommendation System.
    arXiv:1901.09888, 2019.
    """

    name = "FCF"
    paper = ("Ammad-ud-din, Ivannikova, Khan, Oyomno, Fu, Tan, Flanagan. Federated Collaborative Filtering for "
             "Privacy-Preserving Personalized Recommendation System. arXiv:1901.09888, 2019")
    rules = {**_PRIVACY_RULES, "alpha": Float(lo=0.0), "fake_items": Int(lo=0, hi=0)}
    test_params = {"factors": 8, "rounds": 30, "learning_rate": 0.1}

    def __init__(self, factors: int = 16, rounds: int = 100, clients_per_round: float = 1.0,
                 learning_rate: float = 0.05, reg: float = 1.0, alpha: float = 10.0, init_std: float = 0.1,
                 privacy: str = "none", epsilon: float = 1.0, delta: float = 1e-5, clip: float = 0.5,
                 fake_items: int = 0, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.rounds = rounds
        self.clients_per_round = clients_per_round
        self.learning_rate = learning_rate
        self.reg = reg
        self.alpha = alpha
        self.init_std = init_std
        self.privacy = privacy
        self.epsilon = epsilon
        self.delta = delta
        self.clip = clip
        self.fake_items = fake_items
        self.seed = seed
        self.verbose = verbose

    def _local(self, train: Interactions):
        from ...federated.simulator import LocalTraining

        return LocalTraining(factors=int(self.factors), negatives=0, reg_user=float(self.reg),
                             confidence=float(self.alpha), init_std=float(self.init_std))

    def _strategy(self):
        from ...federated.aggregation import FCF as Strategy

        return Strategy(learning_rate=float(self.learning_rate), reg=float(self.reg))
