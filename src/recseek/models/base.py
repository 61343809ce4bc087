"""The recommender contract shared by every model.

A model stores its hyperparameters in ``__init__`` (keyword arguments with defaults),
learns state ending in ``_`` in ``fit`` and scores with integer indices only. Every
``recommend`` goes through :func:`recseek.models._topk.topk`.

Subclasses implement :meth:`Recommender._fit` and :meth:`Recommender._score`; rating
models may also implement :meth:`RatingPredictor._predict` for pairs.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from ..data._interactions import Interactions
from ..data._vocab import Vocabulary
from ..errors import DataError, NotFittedError, ParameterError, TrainingError, UnsupportedError
from ._params import STANDARD_RULES, check_effects, renamed_params
from ._topk import Ranking, topk

#: Bytes of score matrix computed at once when recommending for many users.
SCORE_BLOCK_BYTES = 64 * 1024 * 1024


class Recommender(ABC):
    """Base class of all recommenders (top-N ranking over items).

    Class attributes describe the model for the registry and ``recseek models``:
    ``name`` (JStarCraft-style name), ``task`` ("ranking" or "rating"), ``family`` and
    ``paper`` (the reference the algorithm comes from). ``rules`` maps hyperparameter
    names to checks; standard names (``factors``, ``reg``, ...) are checked by default.
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = "ranking"
    family: ClassVar[str] = "baseline"
    paper: ClassVar[str] = ""
    rules: ClassVar[dict[str, Any]] = {}
    #: Small, fast hyperparameters used by the conformance tests (e.g. few epochs).
    test_params: ClassVar[dict[str, Any]] = {}
    #: The conformance test's "beats RandomGuess" check is skipped when False (models
    #: that need side data the sample lacks, e.g. a trust graph).
    conformance_quality: ClassVar[bool] = True
    #: Advice appended to the error raised when training produces NaN or infinite values.
    divergence_hint: ClassVar[str] = "lower learning_rate or raise reg"

    # ------------------------------------------------------------ hyperparameters
    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {
            n: p.default
            for n, p in sig.parameters.items()
            if n != "self" and p.default is not inspect.Parameter.empty
        }

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to the constructor."""
        return {n: getattr(self, n) for n in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self.param_names())
        params = renamed_params(self.display_name, params, valid)
        for k, v in params.items():
            if k not in valid:
                raise ParameterError(_unknown_param(self.display_name, k, valid))
            setattr(self, k, v)
        return self

    def check_params(self) -> None:
        """Raise :class:`ParameterError` for the first out-of-range hyperparameter."""
        rules = {**STANDARD_RULES, **self.rules}
        for n, v in self.get_params().items():
            rule = rules.get(n)
            if rule is not None:
                rule.check(self.display_name, n, v)
        check_effects(self, rules)

    @property
    def display_name(self) -> str:
        return self.name or type(self).__name__

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------ training
    def fit(self, train: Interactions) -> Self:
        """Learn from ``train``; returns ``self``."""
        self.check_params()
        if not isinstance(train, Interactions):
            raise DataError(f"{self.display_name}.fit expects Interactions, got {type(train).__name__}")
        if train.nnz == 0 or not np.any(train.matrix.data != 0):
            raise DataError(f"{self.display_name}: the training data is empty (no non-zero interactions)")
        self.users_: Vocabulary = train.users
        self.items_: Vocabulary = train.items
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        seen = sp.csr_array(
            (np.ones(train.nnz, dtype=np.float32), train.matrix.indices, train.matrix.indptr),
            shape=train.shape,
        )
        self.seen_ = seen
        self._fit(train)
        return self

    @abstractmethod
    def _fit(self, train: Interactions) -> None:
        """Learn state from ``train`` (vocabularies and ``seen_`` already stored)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "seen_"):
            raise NotFittedError(f"{self.display_name} is not fitted yet; call fit first")

    # ------------------------------------------------------------ scoring
    @abstractmethod
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Scores of known ``users`` (valid indices) for ``items`` (valid indices) or all.

        Returns float32 of shape (len(users), len(items) or n_items); NaN = cannot score.
        """

    def score(self, users: Iterable[int] | np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Score matrix of shape (n_users, n_items or len(items)).

        Unknown users (index < 0 or >= n_users) and unknown items get NaN.
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        n_cols = self.n_items_ if items is None else len(items)
        out = np.full((users.shape[0], n_cols), np.nan, dtype=np.float32)
        known = (users >= 0) & (users < self.n_users_)
        if items is not None:
            items = np.atleast_1d(np.asarray(items, dtype=np.int64))
            item_ok = (items >= 0) & (items < self.n_items_)
            if not known.any() or not item_ok.any():
                return out
            block = self._score(users[known], items[item_ok])
            out[np.ix_(known, item_ok)] = block
            return out
        if known.any():
            out[known] = self._score(users[known], None)
        return out

    def recommend(
        self,
        users: Iterable[int] | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | list[np.ndarray] | None = None,
        exclude: sp.csr_array | None = None,
    ) -> Ranking:
        """Top-``k`` items for each of ``users`` (item indices).

        Parameters
        ----------
        users : int array
            User indices; unknown users get a row of ``-1`` ids.
        k : int
            Items per user (>= 1).
        exclude_seen : bool
            Never return items the user interacted with in training.
        candidates : int array or list of int arrays, optional
            Restrict to these items: one array shared by all users, or one per user.
        exclude : csr (n_users_in_batch x n_items), optional
            Extra items to exclude per user (e.g. business rules).
        """
        self._check_fitted()
        k = check_k(k, "k")
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        shared = None
        per_user = None
        if candidates is not None:
            if isinstance(candidates, list | tuple) and candidates and np.ndim(candidates[0]) == 1 and not np.isscalar(candidates[0]):
                if len(candidates) != len(users):
                    raise ParameterError("candidates: one array per user is needed")
                per_user = [np.asarray(c, dtype=np.int64) for c in candidates]
            else:
                shared = np.unique(np.asarray(candidates, dtype=np.int64))
                shared = shared[(shared >= 0) & (shared < self.n_items_)]
        n_cols = self.n_items_ if shared is None else len(shared)
        block = max(1, SCORE_BLOCK_BYTES // (4 * max(n_cols, 1)))
        ids_parts, score_parts = [], []
        for start in range(0, len(users), block):
            ub = users[start : start + block]
            scores = self.score(ub, shared)
            known = (ub >= 0) & (ub < self.n_users_)
            ex = None
            if exclude_seen:
                ex = _rows_or_empty(self.seen_, ub, known)
                if shared is not None:
                    ex = ex[:, shared]
            if exclude is not None:
                extra = exclude[start : start + block]
                if shared is not None:
                    extra = extra[:, shared]
                ex = extra if ex is None else ex + extra
            allowed = None
            if per_user is not None:
                allowed = np.zeros(scores.shape, dtype=bool)
                for r, c in enumerate(per_user[start : start + block]):
                    c = c[(c >= 0) & (c < self.n_items_)]
                    allowed[r, c] = True
            ranking = topk(scores, k, exclude=None if ex is None else sp.csr_array(ex), allowed=allowed, item_ids=shared)
            ids_parts.append(ranking.ids)
            score_parts.append(ranking.scores)
        if not ids_parts:
            return Ranking(np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32))
        return Ranking(np.vstack(ids_parts), np.vstack(score_parts))

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Rating prediction; only rating models (:class:`RatingPredictor`) have it."""
        raise UnsupportedError(f"{self.display_name} is a ranking model and cannot predict ratings")

    # ------------------------------------------------------------ new users
    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        """Scores for users not seen in training, from their interaction rows.

        ``rows`` has shape (n_new, n_items). Models that support fold-in override this.
        """
        raise UnsupportedError(f"{self.display_name} cannot recommend for users outside its training data")

    def recommend_new(
        self,
        items: list[np.ndarray] | np.ndarray,
        values: list[np.ndarray] | np.ndarray | None = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
    ) -> Ranking:
        """Fold-in: top-``k`` for new users given their item indices (and values)."""
        self._check_fitted()
        k = check_k(k, "k")
        rows = interactions_rows(items, values, self.n_items_)
        scores = np.asarray(self._score_new(rows), dtype=np.float32)
        return topk(scores, k, exclude=rows if exclude_seen else None)

    # ------------------------------------------------------------ similarity
    def item_vectors(self) -> np.ndarray:
        """Item embeddings (n_items, d) for models that have them."""
        raise UnsupportedError(f"{self.display_name} has no item embeddings or similarities")

    def user_vectors(self) -> np.ndarray:
        """User embeddings (n_users, d) for models that have them."""
        raise UnsupportedError(f"{self.display_name} has no user embeddings or similarities")

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Similarity of ``items`` to every item, shape (len(items), n_items)."""
        return _cosine_rows(self.item_vectors(), items)

    def user_similarity(self, users: np.ndarray) -> np.ndarray:
        """Similarity of ``users`` to every user, shape (len(users), n_users)."""
        return _cosine_rows(self.user_vectors(), users)

    def similar_items(self, items: Iterable[int] | np.ndarray, k: int = 10) -> Ranking:
        """The ``k`` most similar items to each of ``items`` (the item itself excluded)."""
        self._check_fitted()
        k = check_k(k, "k")
        items = _check_indices(items, self.n_items_, "item")
        sims = np.asarray(self.item_similarity(items), dtype=np.float32)
        sims[np.arange(len(items)), items] = -np.inf
        return topk(sims, k)

    def similar_users(self, users: Iterable[int] | np.ndarray, k: int = 10) -> Ranking:
        """The ``k`` most similar users to each of ``users`` (the user itself excluded)."""
        self._check_fitted()
        k = check_k(k, "k")
        users = _check_indices(users, self.n_users_, "user")
        sims = np.asarray(self.user_similarity(users), dtype=np.float32)
        sims[np.arange(len(users)), users] = -np.inf
        return topk(sims, k)

    # ------------------------------------------------------------ parameters
    def get_parameters(self) -> dict[str, np.ndarray]:
        """Learned state as a flat dict of arrays (sparse and vocabularies expanded)."""
        self._check_fitted()
        out: dict[str, np.ndarray] = {}
        for name, value in vars(self).items():
            if not name.endswith("_") or name.startswith("_"):
                continue
            if isinstance(value, Vocabulary):
                out[f"{name}.ids"] = value.ids
            elif sp.issparse(value):
                m = sp.csr_array(value)
                out[f"{name}.data"] = m.data
                out[f"{name}.indices"] = m.indices
                out[f"{name}.indptr"] = m.indptr
                out[f"{name}.shape"] = np.asarray(m.shape, dtype=np.int64)
            elif isinstance(value, np.ndarray):
                if value.dtype == object:
                    raise TrainingError(f"{self.display_name}: state {name} has object dtype and cannot be saved")
                out[name] = value
            elif isinstance(value, bool | int | float | np.number | np.bool_):
                out[name] = np.asarray(value)
            elif value is None:
                continue
            else:
                raise TrainingError(
                    f"{self.display_name}: state {name} of type {type(value).__name__} cannot be saved"
                )
        return out

    def set_parameters(self, params: dict[str, np.ndarray]) -> None:
        """Restore state produced by :meth:`get_parameters`."""
        groups: dict[str, dict[str, np.ndarray]] = {}
        for key, arr in params.items():
            base, _, part = key.partition(".")
            if part:
                groups.setdefault(base, {})[part] = arr
            elif np.ndim(arr) == 0:
                setattr(self, key, np.asarray(arr).item())
            else:
                setattr(self, key, np.asarray(arr))
        for base, parts in groups.items():
            if "ids" in parts:
                setattr(self, base, Vocabulary(parts["ids"], base.rstrip("s_")))
            else:
                shape = tuple(int(x) for x in parts["shape"])
                setattr(self, base, sp.csr_array((parts["data"], parts["indices"], parts["indptr"]), shape=shape))

    def save(self, path: str | Path) -> Path:
        """Save to directory ``path`` as ``arrays.npz`` + ``manifest.json`` (no pickle)."""
        from ..persistence import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved with :meth:`save`."""
        from ..persistence import load_model

        model = load_model(path)
        if cls is not Recommender and cls is not RatingPredictor and not isinstance(model, cls):
            raise ParameterError(f"{path} holds a {model.display_name} model, not {cls.__name__}")
        return model

    # ------------------------------------------------------------ helpers for subclasses
    def _progress(self, iterable: Iterable[Any], total: int | None = None, desc: str | None = None) -> Iterator[Any]:
        """Wrap ``iterable`` in a progress bar when the model's ``verbose`` is true."""
        if not getattr(self, "verbose", False):
            yield from iterable
            return
        from tqdm.auto import tqdm

        yield from tqdm(iterable, total=total, desc=desc or self.display_name, leave=False)

    def _check_finite(self, epoch: int, *arrays: np.ndarray) -> None:
        """Raise :class:`TrainingError` naming the epoch if any array is not finite."""
        for a in arrays:
            if not np.all(np.isfinite(a)):
                raise TrainingError(
                    f"{self.display_name}: training diverged at epoch {epoch} (NaN or infinite values);"
                    f" {self.divergence_hint}"
                )


class RatingPredictor(Recommender):
    """A recommender that also predicts explicit ratings.

    ``score`` gives predicted ratings; ``predict`` gives ratings for (user, item) pairs,
    falling back to :meth:`_fallback` (the global mean by default) for unknown users or
    items, and for users or items without any training rating, then clipping to the
    training rating range.
    """

    task: ClassVar[str] = "rating"

    def fit(self, train: Interactions) -> Self:
        if isinstance(train, Interactions) and train.nnz:
            data = train.matrix.data
            self.rating_min_ = float(data.min())
            self.rating_max_ = float(data.max())
            self.global_mean_ = float(data.mean())
            # users/items without any training rating cannot be scored: they go to _fallback
            self.user_rated_ = np.diff(train.matrix.indptr) > 0
            self.item_rated_ = np.bincount(train.matrix.indices, minlength=train.n_items) > 0
        return super().fit(train)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for pairs ``(users[j], items[j])``, float32 shape (n,)."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        if users.shape != items.shape:
            raise ParameterError(f"predict: users and items must have the same length ({len(users)} vs {len(items)})")
        ok = (users >= 0) & (users < self.n_users_) & (items >= 0) & (items < self.n_items_)
        ok[ok] = self.user_rated_[users[ok]] & self.item_rated_[items[ok]]
        out = np.empty(users.shape[0], dtype=np.float32)
        if ok.any():
            out[ok] = self._predict(users[ok], items[ok])
        if (~ok).any():
            out[~ok] = self._fallback(users[~ok], items[~ok])
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = self._fallback(users[bad], items[bad])
        return np.clip(out, self.rating_min_, self.rating_max_)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Ratings for known pairs. Default: gather from :meth:`_score` per user block."""
        out = np.empty(users.shape[0], dtype=np.float32)
        uniq, inv = np.unique(users, return_inverse=True)
        block = max(1, SCORE_BLOCK_BYTES // (4 * max(self.n_items_, 1)))
        for start in range(0, len(uniq), block):
            sel = (inv >= start) & (inv < start + block)
            rows = self._score(uniq[start : start + block], None)
            out[sel] = rows[inv[sel] - start, items[sel]]
        return out

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Prediction when a pair cannot be scored: the global mean rating."""
        return np.full(users.shape[0], self.global_mean_, dtype=np.float32)


# ---------------------------------------------------------------- module helpers
def check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ParameterError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def _unknown_param(model: str, key: str, valid: Iterable[str]) -> str:
    names = ", ".join(sorted(valid)) or "none"
    return f"{model} has no hyperparameter {key!r} (valid: {names})"


def _check_indices(idx: Iterable[int] | np.ndarray, n: int, what: str) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    bad = (idx < 0) | (idx >= n)
    if bad.any():
        raise DataError(f"unknown {what} index {int(idx[bad][0])} (valid: 0..{n - 1})")
    return idx


def _rows_or_empty(m: sp.csr_array, users: np.ndarray, known: np.ndarray) -> sp.csr_array:
    """Rows of ``m`` for ``users``; unknown users get empty rows."""
    if known.all():
        return m[users]
    safe = np.where(known, users, 0)
    rows = sp.csr_array(m[safe])
    counts = np.diff(rows.indptr) * known
    keep = np.repeat(known, np.diff(rows.indptr))
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_array((rows.data[keep], rows.indices[keep], indptr), shape=rows.shape)


def _cosine_rows(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    norms[norms == 0] = 1.0
    return (v[idx] @ v.T) / (norms[idx, None] * norms[None, :])


def interactions_rows(
    items: list[np.ndarray] | np.ndarray, values: list[np.ndarray] | np.ndarray | None, n_items: int
) -> sp.csr_array:
    """CSR rows (one per new user) from per-user item index arrays."""
    if isinstance(items, np.ndarray) and items.ndim == 1 and items.dtype.kind in "iu":
        items = [items]
        values = None if values is None else [np.asarray(values)]
    items = [np.asarray(x, dtype=np.int64) for x in items]
    if values is None:
        values = [np.ones(len(x), dtype=np.float32) for x in items]
    vals = [np.asarray(v, dtype=np.float32) for v in values]
    for x, v in zip(items, vals, strict=True):
        if len(x) != len(v):
            raise ParameterError("each user's items and values must have the same length")
        if len(x) and (x.min() < 0 or x.max() >= n_items):
            raise DataError(f"item index out of range (valid: 0..{n_items - 1})")
    u = np.repeat(np.arange(len(items)), [len(x) for x in items])
    i = np.concatenate(items) if items else np.zeros(0, dtype=np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0, dtype=np.float32)
    m = sp.csr_array((v, (u, i)), shape=(len(items), n_items))
    m.sum_duplicates()
    return m
