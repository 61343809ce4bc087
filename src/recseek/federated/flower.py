"""Deployment on Flower (``flwr``): the simulator's methods as a ``ServerApp`` and a ``ClientApp``.

Each Flower node is one client (one user). A client keeps its own vector, bias and (for
PFedRec and FedCA) its personal item table between rounds in Flower's ``Context.state``
and trains with exactly the code of the simulator (:meth:`Federation.client_step` on its
own row only), drawing its random numbers from the same counter-based streams, so a
federation run on Flower gives the simulator's model for the same seed and settings
(within float tolerance). The server runs the same aggregation strategies.

Messages: a ``query`` handshake (each client names its client index and whether it has
training data), then per round one ``train`` message to each sampled client (the server's
item table, the client's pending FedCA aggregate; with the NCF backbone also the server's
MLP head and the pending aggregate of the client's head) and its reply (changed item rows,
or the full table for FedCA, or item gradients for FCF, after the privacy mechanism, the
trained head where the method shares it, and the sample count), and a final ``query`` in which every client folds in its last aggregate and
scores the catalogue on the device (the scores come back for evaluation; in production a
client would keep them).

Flower is an optional extra: ``pip install "recseek[federated]"`` (the ``ray`` extra adds
Flower's simulation engine, needed by :func:`run_flower_simulation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data._interactions import Interactions
from ..errors import ParameterError, UnsupportedError
from .aggregation import FedCA, RoundUploads
from .ncf import init_head
from .simulator import Federation, FederationState, participants_per_round

_KEY = "recseek"


def _flwr():
    try:
        import flwr
    except ImportError:
        raise UnsupportedError('the Flower adapter needs flwr: pip install "recseek[federated]" '
                               '(and "recseek[federated,ray]" for Flower\'s simulation engine)') from None
    return flwr


@dataclass
class FlowerResult:
    """What the server app collects: the clients' final scores (n_users, n_items), the
    server's item table and the mean local loss per round."""

    scores: np.ndarray | None = None
    V: np.ndarray | None = None
    U: np.ndarray | None = None
    round_loss: list[float] = field(default_factory=list)


class FlowerFederation:
    """Builds a Flower ``ServerApp`` / ``ClientApp`` pair from a configured
    :class:`~recseek.federated.simulator.Federation`.

    ``train`` is every client's data as one matrix for a local simulation; a client reads
    only its own row (``client_of_partition`` maps Flower's ``partition-id`` to a user
    index; default: the identity). On real devices each client would load its own row.
    """

    def __init__(self, federation: Federation, train: Interactions,
                 client_of_partition: np.ndarray | None = None) -> None:
        if not federation.local.shared_user_init:
            raise ParameterError("the Flower adapter sends the server's initial user vector to every client; "
                                 "use LocalTraining(shared_user_init=True)")
        self.fed = federation
        self.train = train
        self.client_of_partition = (np.arange(train.n_users) if client_of_partition is None
                                    else np.asarray(client_of_partition, dtype=np.int64))
        self.result = FlowerResult()

    # ------------------------------------------------------------ client
    def _shadow(self, c: int) -> Federation:
        """A federation that knows only client ``c``'s row (what a device holds)."""
        m = sp.csr_array(self.train.matrix)
        lo, hi = int(m.indptr[c]), int(m.indptr[c + 1])
        indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
        indptr[c + 1:] = hi - lo
        own = sp.csr_array((m.data[lo:hi].copy(), m.indices[lo:hi].copy(), indptr), shape=m.shape)
        data = Interactions(own, self.train.users, self.train.items)
        fed = Federation(self.fed.strategy, self.fed.local, rounds=self.fed.rounds,
                         clients_per_round=self.fed.clients_per_round, privacy=self.fed.privacy, seed=self.fed.seed)
        fed.init_state(data)
        return fed

    def client_app(self):
        flwr = _flwr()
        from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
        from flwr.clientapp import ClientApp

        app = ClientApp()
        me = self

        def client_index(context: Context) -> int:
            return int(me.client_of_partition[int(context.node_config["partition-id"])])

        def load(context: Context, fed: Federation, c: int, content: RecordDict) -> None:
            arrays = content["arrays"]
            st = fed.state
            st.V[:] = arrays["V"].numpy()
            if st.head is not None:
                st.head[:] = arrays["head"].numpy()
            if _KEY in context.state:
                mine = context.state[_KEY]
                st.U[c] = mine["u"].numpy()
                st.ub[c] = float(mine["ub"].numpy()[0])
                if st.tables is not None:
                    st.tables[c] = mine["table"].numpy()
                if st.heads is not None:
                    st.heads[c] = mine["head"].numpy()
            else:
                st.U[c] = arrays["u0"].numpy()
                if st.tables is not None:
                    st.tables[c] = arrays["V"].numpy()
                if st.heads is not None:
                    st.heads[c] = arrays["head"].numpy()
            if st.joined is not None:
                st.joined[c] = True  # its table is set above (the server's on first contact)
            if "aggregate" in arrays and isinstance(fed.strategy, FedCA):
                lam = np.float32(fed.strategy.interpolation)
                st.tables[c] = lam * st.tables[c] + (1.0 - lam) * arrays["aggregate"].numpy()
                if st.heads is not None:
                    st.heads[c] = lam * st.heads[c] + (1.0 - lam) * arrays["aggregate_head"].numpy()

        def store(context: Context, fed: Federation, c: int) -> None:
            mine = {"u": Array(fed.state.U[c].copy()), "ub": Array(np.array([fed.state.ub[c]], dtype=np.float32))}
            if fed.state.tables is not None:
                mine["table"] = Array(fed.state.tables[c].copy())
            if fed.state.heads is not None:
                mine["head"] = Array(fed.state.heads[c].copy())
            context.state[_KEY] = ArrayRecord(array_dict=mine)

        @app.query()
        def query(msg: Message, context: Context) -> Message:
            c = client_index(context)
            if "arrays" not in msg.content:  # handshake
                has = bool(me.train.matrix.indptr[c + 1] > me.train.matrix.indptr[c])
                return Message(RecordDict({"config": ConfigRecord({"client": c, "active": has})}), reply_to=msg)
            fed = me._shadow(c)
            load(context, fed, c, msg.content)
            if fed.strategy.gradients:
                fed.state.U[c] = fed._solve_users(np.array([c]))[0]
            store(context, fed, c)
            scores = fed.scores(np.array([c]))[0]
            return Message(RecordDict({"arrays": ArrayRecord(array_dict={"scores": Array(scores),
                                                                          "u": Array(fed.state.U[c].copy())}),
                                       "config": ConfigRecord({"client": c})}), reply_to=msg)

        @app.train()
        def train(msg: Message, context: Context) -> Message:
            c = client_index(context)
            rnd = int(msg.content["config"]["round"])
            fed = me._shadow(c)
            load(context, fed, c, msg.content)
            parts = np.array([c], dtype=np.int64)
            out: dict[str, Any] = {}
            if fed.strategy.gradients:
                grad, n, loss = _client_gradient(fed, c, rnd)
                out["gradient"] = Array(grad)
            else:
                up, extra = fed.client_step(parts, rnd)
                loss = float(extra["losses"][0])
                n = int(up.n_samples[0])
                out["items"] = Array(up.items.astype(np.int64))
                out["deltas"] = Array(up.deltas.astype(np.float32))
                if isinstance(fed.strategy, FedCA):
                    table = fed.state.tables[c].copy()
                    if extra["exact"] is not None:
                        table[up.items] += up.deltas - extra["exact"]
                    out["table"] = Array(table)
                if up.bases is not None:
                    out["bases"] = Array(up.bases[0])
                if up.heads is not None:
                    out["head"] = Array(np.ascontiguousarray(up.heads[0]))
            store(context, fed, c)
            return Message(RecordDict({"arrays": ArrayRecord(array_dict=out),
                                       "config": ConfigRecord({"client": c, "n_samples": n, "loss": loss})}),
                           reply_to=msg)

        del flwr
        return app

    # ------------------------------------------------------------ server
    def server_app(self):
        _flwr()
        from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MessageType, RecordDict
        from flwr.serverapp import Grid, ServerApp

        app = ServerApp()
        me = self

        @app.main()
        def main(grid: Grid, context: Context) -> None:
            fed = me.fed
            n_users, n_items = me.train.shape
            import time

            nodes: list[int] = []
            for _ in range(600):
                nodes = list(grid.get_node_ids())
                if len(nodes) >= len(me.client_of_partition):
                    break
                time.sleep(0.1)
            hello = [grid.create_message(RecordDict({"config": ConfigRecord({"hello": 1})}), MessageType.QUERY, n,
                                         "handshake") for n in nodes]
            node_of: dict[int, int] = {}
            active = []
            for rep in grid.send_and_receive(hello):
                cfg = rep.content["config"]
                node_of[int(cfg["client"])] = rep.metadata.src_node_id
                if cfg["active"]:
                    active.append(int(cfg["client"]))
            clients = np.array(sorted(active), dtype=np.int64)
            # the server's initial model: the simulator's initialisation for this seed
            rng0 = np.random.default_rng([fed.seed, 0])
            d = int(fed.local.factors)
            std = np.float32(fed.local.init_std)
            V = rng0.standard_normal((n_items, d), dtype=np.float32) * std
            u0 = rng0.standard_normal((1, d), dtype=np.float32)[0] * std
            state = FederationState(V, np.zeros((0, d), np.float32), np.zeros(0, np.float32))
            if fed.local.ncf:
                # the server's initial head: drawn after V and u0, as the simulator draws it
                state.head = init_head(rng0, fed.local.head_layout()[0])
            pending: dict[int, np.ndarray] = {}
            pending_head: dict[int, np.ndarray] = {}
            n_part = participants_per_round(fed.clients_per_round, len(clients))

            def payload(c: int, extra: dict[str, Any]) -> RecordDict:
                arrays = {"V": Array(state.V), "u0": Array(u0)}
                if state.head is not None:
                    arrays["head"] = Array(state.head)
                if c in pending:
                    arrays["aggregate"] = Array(pending.pop(c))
                if c in pending_head:
                    arrays["aggregate_head"] = Array(pending_head.pop(c))
                return RecordDict({"arrays": ArrayRecord(array_dict=arrays), "config": ConfigRecord(extra)})

            for r in range(fed.rounds):
                rng = np.random.default_rng([fed.seed, 1, r])
                parts = np.sort(rng.choice(clients, n_part, replace=False))
                msgs = [grid.create_message(payload(int(c), {"round": r}), MessageType.TRAIN, node_of[int(c)],
                                            str(r)) for c in parts]
                replies = {int(m.content["config"]["client"]): m for m in grid.send_and_receive(msgs)}
                got = [replies[int(c)] for c in parts]
                n_samples = np.array([int(m.content["config"]["n_samples"]) for m in got], dtype=np.int64)
                me.result.round_loss.append(float(np.mean([float(m.content["config"]["loss"]) for m in got])))
                if fed.strategy.gradients:
                    grad = sum(m.content["arrays"]["gradient"].numpy().astype(np.float64) for m in got)
                    up = RoundUploads(parts, np.zeros(0, np.int64), np.zeros(0, np.int64),
                                      np.zeros((0, d), np.float32), n_samples, None, grad)
                    fed.strategy.aggregate(state, up, rng)
                    continue
                items = [m.content["arrays"]["items"].numpy() for m in got]
                owner = np.repeat(np.arange(len(parts)), [len(x) for x in items])
                deltas = np.concatenate([m.content["arrays"]["deltas"].numpy() for m in got])
                heads = (np.stack([m.content["arrays"]["head"].numpy() for m in got])
                         if "head" in got[0].content["arrays"] else None)
                if isinstance(fed.strategy, FedCA):
                    uploaded = np.stack([m.content["arrays"]["table"].numpy() for m in got])
                    bases = (np.stack([m.content["arrays"]["bases"].numpy() for m in got])
                             if "bases" in got[0].content["arrays"] else None)
                    pick, mixed, p = fed.strategy.mix(uploaded, n_samples, bases, rng)
                    for j, row in zip(pick, mixed, strict=True):
                        pending[int(parts[j])] = row
                    if len(pick):
                        state.V[:] = np.tensordot(p.astype(np.float32), uploaded[pick], axes=1)
                        if heads is not None:
                            picked, mixed_heads = fed.strategy.mix_heads(heads[pick])
                            state.head[:] = np.tensordot(p.astype(np.float32), picked, axes=1)
                            for j, row in zip(pick, mixed_heads, strict=True):
                                pending_head[int(parts[j])] = row
                else:
                    up = RoundUploads(parts, owner, np.concatenate(items), deltas, n_samples, heads=heads)
                    fed.strategy.aggregate(state, up, rng)
            # every client folds in its last aggregate and scores the catalogue on the device
            final = [grid.create_message(payload(int(c), {"final": 1}), MessageType.QUERY, node_of[int(c)], "final")
                     for c in range(n_users) if c in node_of]
            scores = np.full((n_users, n_items), np.nan, dtype=np.float32)
            U = np.full((n_users, d), np.nan, dtype=np.float32)
            for rep in grid.send_and_receive(final):
                c = int(rep.content["config"]["client"])
                scores[c] = rep.content["arrays"]["scores"].numpy()
                U[c] = rep.content["arrays"]["u"].numpy()
            me.result.U = U
            me.result.scores = scores
            me.result.V = state.V.copy()

        return app


def _client_gradient(fed: Federation, c: int, rnd: int) -> tuple[np.ndarray, int, float]:
    """FCF on one device: solve the own vector, then the gradient of the own loss in Y."""
    x = fed._solve_users(np.array([c]))[0].astype(np.float64)
    fed.state.U[c] = x
    Y = fed.state.V.astype(np.float64)
    r = np.zeros(fed.n_items)
    r[fed.indices[fed.indptr[c]: fed.indptr[c + 1]]] = 1.0
    err = r - Y @ x
    e = (1.0 + float(fed.local.confidence) * r) * err
    grad = -2.0 * e[:, None] * x[None, :]
    if fed.privacy.noisy:
        grad = fed._perturb(grad, np.full(fed.n_items, c), np.arange(fed.n_items), rnd).astype(np.float64)
    return grad, int(r.sum()), float((e * err).sum())


def run_flower_simulation(federation: Federation, train: Interactions, *, backend_config: dict | None = None,
                          verbose: bool = False) -> FlowerResult:
    """Run ``federation`` on ``train`` through Flower's simulation engine
    (``flwr.simulation.run_simulation``, one supernode per user) and return what the
    server collected."""
    _flwr()
    from flwr.simulation import run_simulation

    ff = FlowerFederation(federation, train)
    config = backend_config or {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    run_simulation(ff.server_app(), ff.client_app(), num_supernodes=train.n_users, backend_config=config,
                   verbose_logging=verbose)
    return ff.result
