"""Federated recommenders as ordinary recseek models (training runs
:class:`recseek.federated.simulator.Federation`, one client per user)."""

from .fedrec import FCF, FedAvg, FedCA, PFedRec

__all__ = ["FCF", "FedAvg", "FedCA", "PFedRec"]
