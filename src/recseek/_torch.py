"""torch, imported only when a neural model or a device path needs it.

``import recseek`` and listing the models never import torch: every use goes through
:func:`torch`, which raises one sentence naming the ``neural`` extra when torch is not
installed, and :func:`resolve_device` turns a ``device`` setting into a ``torch.device``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .errors import ParameterError

__all__ = ["DEVICES", "resolve_device", "seeded_generator", "torch"]

#: Accepted values of every ``device`` hyperparameter (``"cuda:1"`` style indices too).
DEVICES = ("auto", "cpu", "cuda", "mps")


def torch(purpose: str = "neural models") -> ModuleType:
    """The torch module, or :class:`~recseek._optional.MissingDependencyError` naming ``recseek[neural]``."""
    from ._optional import require

    return require("torch", purpose=purpose)


def check_device_name(owner: str, device: Any) -> str:
    """``device`` as a string, or a ParameterError naming ``owner``'s ``device`` setting."""
    if not isinstance(device, str) or device.split(":", 1)[0] not in DEVICES:
        raise ParameterError(f"{owner}: device must be one of {', '.join(DEVICES)} (optionally 'cuda:N'), "
                             f"got {device!r}")
    if ":" in device and (device.split(":", 1)[0] != "cuda" or not device.split(":", 1)[1].isdigit()):
        raise ParameterError(f"{owner}: device {device!r} is not a valid device name (use 'cuda:N')")
    return device


def resolve_device(device: str, owner: str = "recseek") -> Any:
    """The ``torch.device`` for a ``device`` setting.

    ``"auto"`` picks CUDA when torch sees a GPU, then Apple's MPS, else the CPU. Asking
    for a device torch cannot use raises a ParameterError saying so.
    """
    device = check_device_name(owner, device)
    t = torch()
    kind = device.split(":", 1)[0]
    if kind == "auto":
        if t.cuda.is_available():
            return t.device("cuda")
        mps = getattr(t.backends, "mps", None)
        if mps is not None and mps.is_available():
            return t.device("mps")
        return t.device("cpu")
    if kind == "cuda" and not t.cuda.is_available():
        raise ParameterError(f"{owner}: device {device!r} was asked for, but torch sees no CUDA GPU here "
                             "(use device='cpu' or 'auto')")
    if kind == "cuda" and ":" in device and int(device.split(":", 1)[1]) >= t.cuda.device_count():
        raise ParameterError(f"{owner}: device {device!r} does not exist (torch sees "
                             f"{t.cuda.device_count()} GPU(s))")
    if kind == "mps":
        mps = getattr(t.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ParameterError(f"{owner}: device 'mps' was asked for, but torch sees no Apple GPU here "
                                 "(use device='cpu' or 'auto')")
    return t.device(device)


def seeded_generator(seed: int | None, device: Any = "cpu") -> Any:
    """A ``torch.Generator`` on ``device``: seeded when ``seed`` is given, else from fresh entropy."""
    t = torch()
    gen = t.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen
