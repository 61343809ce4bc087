"""The ``[federated]`` table of an experiment file.

It sets the federated methods' common settings once, so that ``recseek run`` trains them
beside the centralised models of the same file and reports all of them in one table::

    [federated]
    method = ["FedAvg", "FedCA"]    # added as models (optional)
    backbone = "pmf"                # the dot-product backbone, or "ncf" (an MLP head)
    rounds = 100
    local_epochs = 10
    clients_per_round = 1.0         # a share of the clients, or a count
    privacy = "none"                # or "laplace" / "gaussian", or a table:
    # privacy = { mechanism = "laplace", epsilon = 1.0, clip = 0.5, fake_items = 20 }

``backbone`` ("pmf", also spelt "mf", or "ncf") becomes the ``backbone`` hyperparameter of
FedAvg, PFedRec and FedCA; FCF solves its clients' vectors in closed form and has only the
dot product, so ``backbone = "ncf"`` with FCF among the methods is refused. Every other
key except ``method`` and ``privacy`` is a hyperparameter name of the
federated models (``factors``, ``learning_rate``, ``negatives``, ``tower_layers``, ``seed`` ...). The
settings are defaults: a ``[[models]]`` table of a federated model (FCF, FedAvg, PFedRec,
FedCA) overrides them, and a setting a method does not have (FCF has no local epochs) is
left out for that method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParameterError

METHODS = ("FCF", "FedAvg", "PFedRec", "FedCA")
BACKBONES = ("pmf", "mf", "ncf")
_PRIVACY_KEYS = {"mechanism": "privacy", "epsilon": "epsilon", "delta": "delta", "clip": "clip",
                 "fake_items": "fake_items"}


def _fail(source: str, msg: str) -> ParameterError:
    return ParameterError(f"{source}: [federated] {msg}")


def federated_settings(source: str, table: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """``(methods, settings)`` of a ``[federated]`` table (checked).

    ``methods``: registry names of the methods to add as models; ``settings``:
    hyperparameter defaults for every federated model.
    """
    from ..models import registry

    if not isinstance(table, Mapping):
        raise _fail(source, "must be a table")
    table = dict(table)
    method = table.pop("method", [])
    methods = [method] if isinstance(method, str) else method
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise _fail(source, f"method must be a method name or a list of them, got {method!r}")
    names = []
    for m in methods:
        try:
            cls = registry.get(m)
        except ParameterError:
            cls = None
        if cls is None or cls.family != "federated":
            raise _fail(source, f"method {m!r} is not a federated method (choose from {', '.join(METHODS)})")
        names.append(cls.name)
    backbone = table.pop("backbone", None)
    settings: dict[str, Any] = {}
    if backbone is not None:
        if backbone not in BACKBONES:
            raise _fail(source, f"backbone {backbone!r} is not available (choose 'pmf', the dot product, or "
                                "'ncf', an MLP head)")
        settings["backbone"] = "pmf" if backbone == "mf" else backbone
        if settings["backbone"] == "ncf" and "FCF" in names:
            raise _fail(source, "backbone 'ncf' does not apply to FCF (its clients solve their vectors in closed "
                                "form, which needs the dot product); list FCF in a [[models]] table instead")
    privacy = table.pop("privacy", None)
    if isinstance(privacy, str):
        settings["privacy"] = privacy
    elif isinstance(privacy, Mapping):
        for k, v in privacy.items():
            if k not in _PRIVACY_KEYS:
                raise _fail(source, f"privacy has no setting {k!r} (valid: {', '.join(_PRIVACY_KEYS)})")
            settings[_PRIVACY_KEYS[k]] = v
    elif privacy is not None:
        raise _fail(source, f"privacy must be a mechanism name or a table, got {privacy!r}")
    settings.update(table)
    known = set().union(*(registry.get(m).param_names() for m in METHODS))
    for k in settings:
        if k not in known:
            raise _fail(source, f"has no setting {k!r} (the federated methods' settings: {', '.join(sorted(known))})")
    return names, settings


def settings_for(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``settings`` that model ``name`` accepts as hyperparameters."""
    from ..models import registry

    valid = set(registry.get(name).param_names())
    return {k: v for k, v in settings.items() if k in valid}
