"""The Flower adapter: a small federation run through Flower's simulation engine
(``flwr.simulation.run_simulation``, one supernode per user) gives the simulator's model
and metrics for the same seed and settings."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.data._vocab import Vocabulary
from recseek.federated.aggregation import FCF, FedAvg, FedCA, PFedRec
from recseek.federated.privacy import Privacy
from recseek.federated.protocol import evaluate_scores, leave_one_out
from recseek.federated.simulator import Federation, LocalTraining
from recseek.testing.fixtures import planted_blocks

pytest.importorskip("flwr", reason="the Flower adapter test needs the federated,ray extras (flwr[simulation])")


def _small_split(n_users: int = 12):
    data = planted_blocks().for_task("ranking")[0]
    u, i, _, _ = data.to_coo()
    keep = u < n_users
    small = Interactions.from_arrays(data.users.ids[u[keep]], data.items.ids[i[keep]],
                                     item_vocab=Vocabulary(data.items.ids, "item"))
    return leave_one_out(small, order="random", negatives=10, min_interactions=5, seed=0)


def _both(strategy, privacy=None, rounds=3, **local):
    from recseek.federated.flower import run_flower_simulation

    split = _small_split()

    def make():
        return Federation(strategy, LocalTraining(**{"factors": 4, "local_epochs": 2, "init_std": 0.1,
                                                     "confidence": 2.0, **local}),
                          rounds=rounds, clients_per_round=0.75, privacy=privacy, seed=5)

    sim = make().fit(split.train)
    res = run_flower_simulation(make(), split.train)
    users = np.arange(split.n_users)
    return split, sim, sim.scores(users), res


def _same_metrics(split, ref, got):
    a = evaluate_scores(lambda u: ref[u], split, "test", k=3)
    b = evaluate_scores(lambda u: got[u], split, "test", k=3)
    for x, y in zip((a.hr, a.ndcg, a.full_hr, a.full_ndcg), (b.hr, b.ndcg, b.full_hr, b.full_ndcg), strict=True):
        assert x == pytest.approx(y, abs=1e-6)


@pytest.mark.slow  # Ray starts and runs 12 supernodes: about 2 minutes on the shared 2-core machine
def test_flower_fedca_matches_the_simulator():
    """FedCA (personal tables in the clients' Context, composite weights, interpolation)."""
    split, sim, ref, res = _both(FedCA(aggregated_share=0.5, interpolation=0.5))
    np.testing.assert_allclose(res.scores, ref, atol=1e-4)
    np.testing.assert_allclose(res.round_loss, [h["loss"] for h in sim.history], rtol=1e-6)
    _same_metrics(split, ref, res.scores)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["FedAvg", "PFedRec", "FCF", "FedAvg+laplace+fake"])
def test_flower_other_methods_match_the_simulator(name):
    strategy = {"FedAvg": FedAvg(), "PFedRec": PFedRec(), "FCF": FCF(learning_rate=0.1),
                "FedAvg+laplace+fake": FedAvg()}[name]
    privacy = Privacy("laplace", epsilon=5.0, clip=0.5, fake_items=3) if "laplace" in name else None
    split, sim, ref, res = _both(strategy, privacy)
    np.testing.assert_allclose(res.scores, ref, atol=1e-4)
    _same_metrics(split, ref, res.scores)


def test_only_own_row_reaches_a_client():
    """The data a Flower client trains on is its own row of the matrix."""
    from recseek.federated.flower import FlowerFederation

    split = _small_split()
    ff = FlowerFederation(Federation(FedAvg(), LocalTraining(factors=4), rounds=1), split.train)
    shadow = ff._shadow(3)
    m = sp.csr_array((np.ones(len(shadow.indices)), shadow.indices, shadow.indptr), shape=split.train.shape)
    rows = np.flatnonzero(np.diff(m.indptr))
    assert rows.tolist() == [3]
    np.testing.assert_array_equal(np.sort(shadow.indices), np.sort(split.train.items_of(3)))


@pytest.mark.slow  # Ray start-up and 12 supernodes per method
@pytest.mark.parametrize("name", ["FedAvg", "FedCA", "PFedRec+laplace"])
def test_flower_ncf_backbone_matches_the_simulator(name):
    """The NCF backbone: the server's head travels with the item table, FedCA's clients keep
    and mix their heads, PFedRec's heads never leave the clients."""
    strategy = {"FedAvg": FedAvg(), "FedCA": FedCA(aggregated_share=0.5, interpolation=0.5),
                "PFedRec+laplace": PFedRec()}[name]
    privacy = Privacy("laplace", epsilon=5.0, clip=0.5) if "laplace" in name else None
    local = dict(backbone="ncf", mlp_layers=(4,), init_std=1.0, lr_user=0.05, lr_item=0.05, lr_head=0.05)
    if name.startswith("PFedRec"):
        local.update(optimizer="sgd", two_step=True)
    split, sim, ref, res = _both(strategy, privacy, **local)
    np.testing.assert_allclose(res.scores, ref, atol=1e-4)
    np.testing.assert_allclose(res.round_loss, [h["loss"] for h in sim.history], rtol=1e-6)
    _same_metrics(split, ref, res.scores)
