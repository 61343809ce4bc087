"""The recommender contract shared by every model.

A model stores its hyperparameters in ``__init__`` (keyword arguments with defaults),
learns state ending in ``_`` in ``fit`` and scores with integer indices only. Every
``recommend`` goes through :func:`recseek.models._topk.topk`.

Subclasses implement :meth:`Recommender._fit` and :meth:`Recommender._score`; rating
models may also implement :meth:`RatingPredictor._predict` for pairs.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from ..data._interactions import Interactions
from ..data._vocab import Vocabulary
from ..errors import DataError, ModelFileError, NotFittedError, ParameterError, TrainingError, UnsupportedError
from ._params import STANDARD_RULES, check_effects, renamed_params
from ._topk import Ranking, topk

#: Bytes of score matrix computed at once when recommending for many users.
SCORE_BLOCK_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------- declared learned state
@dataclass(frozen=True)
class Scalar:
    """A learned number (saved as a 0-d array).

    ``kind`` is ``int``, ``float`` or ``bool``; ``symbol`` names the dimension it sets
    (``n_users_`` sets ``"n_users"``). ``finite=False`` allows NaN and infinities.
    """

    kind: type
    symbol: str | None = None
    finite: bool = True
    optional: bool = False
    history: bool = False


@dataclass(frozen=True)
class Array:
    """A learned dense array of dtype ``dtype`` and ``shape`` (ints or dimension symbols).

    A symbol that names a hyperparameter of the model (``"factors"``) must equal its
    value; ``n_users``/``n_items`` come from the state; any other symbol must agree
    between the arrays that use it. ``bounds`` (a symbol) makes an integer array an
    index array whose values lie in ``0 .. bounds - 1``. ``finite=False`` allows NaN.
    ``optional`` arrays may be absent; ``history`` arrays are part of the training
    history and are left out by ``save(include_history=False)``.
    """

    dtype: str
    shape: tuple[str | int, ...]
    finite: bool = True
    bounds: str | None = None
    optional: bool = False
    history: bool = False


@dataclass(frozen=True)
class Sparse:
    """A learned CSR matrix: ``shape`` in symbols, ``dtype`` of its values.

    Saved as ``<name>.data``, ``.indices``, ``.indptr`` and ``.shape``; loading checks
    the index arrays (monotone ``indptr``, column indices in range, sorted and distinct
    within each row). ``nnz`` names a symbol bound to the number of stored entries.
    """

    shape: tuple[str | int, str | int]
    dtype: str = "float32"
    nnz: str | None = None
    finite: bool = True
    optional: bool = False
    history: bool = False


@dataclass(frozen=True)
class Vocab:
    """A vocabulary of distinct raw ids (int64 or unicode), saved as ``<name>.ids``."""

    symbol: str
    optional: bool = False
    history: bool = False


StateSpec = Scalar | Array | Sparse | Vocab
_SPARSE_PARTS = ("data", "indices", "indptr", "shape")


def _keys(name: str, spec: StateSpec) -> list[str]:
    if isinstance(spec, Vocab):
        return [f"{name}.ids"]
    if isinstance(spec, Sparse):
        return [f"{name}.{p}" for p in _SPARSE_PARTS]
    return [name]


class _StateCheck:
    """Checks flat state arrays against a model's declaration (raises ModelFileError)."""

    def __init__(self, model: str, params: dict[str, Any]) -> None:
        self.model = model
        self.params = params
        self.dims: dict[str, int] = {}

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.model} state {what}")

    def bind(self, symbol: str | int, value: int, where: str) -> None:
        if isinstance(symbol, int):
            if value != symbol:
                raise self.fail(f"{where} has size {value}, expected {symbol}")
            return
        if symbol not in self.dims:
            p = self.params.get(symbol)
            if isinstance(p, int | np.integer) and not isinstance(p, bool):
                self.dims[symbol] = int(p)
        expected = self.dims.setdefault(symbol, value)
        if value != expected:
            raise self.fail(f"{where} has size {value}, but {symbol} is {expected}")

    def scalar(self, name: str, spec: Scalar, a: np.ndarray) -> None:
        dtype = {int: np.int64, float: np.float64, bool: np.bool_}[spec.kind]
        if a.ndim != 0 or a.dtype != dtype:
            raise self.fail(f"{name} must be a single {spec.kind.__name__}, got {a.dtype} of shape {a.shape}")
        if spec.kind is float and spec.finite and not np.isfinite(a):
            raise self.fail(f"{name} is not finite")
        if spec.symbol is not None:
            if int(a) < 0:
                raise self.fail(f"{name} is negative")
            self.bind(spec.symbol, int(a), name)

    def dense(self, name: str, spec: Array, a: np.ndarray) -> None:
        if a.dtype != np.dtype(spec.dtype) or a.ndim != len(spec.shape):
            raise self.fail(
                f"{name} must be {spec.dtype} with {len(spec.shape)} dimension(s), got {a.dtype} of shape {a.shape}"
            )
        for d, (sym, size) in enumerate(zip(spec.shape, a.shape, strict=True)):
            self.bind(sym, int(size), f"{name} dimension {d}")
        if a.dtype.kind == "f" and spec.finite and not np.isfinite(a).all():
            raise self.fail(f"{name} holds NaN or infinite values")
        if spec.bounds is not None:
            if spec.bounds not in self.dims:
                raise self.fail(f"{name}: the bound {spec.bounds!r} is not set by any earlier state")
            self.index_values(name, a, self.dims[spec.bounds])

    def index_values(self, name: str, a: np.ndarray, n: int) -> None:
        if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
            raise self.fail(f"{name} holds an index outside 0..{n - 1}")

    def vocab(self, name: str, spec: Vocab, ids: np.ndarray) -> None:
        if ids.ndim != 1 or not (ids.dtype == np.int64 or ids.dtype.kind == "U"):
            raise self.fail(f"{name}.ids must be a one-dimensional int64 or unicode array, got {ids.dtype}")
        self.bind(spec.symbol, ids.shape[0], f"{name}.ids")
        if np.unique(ids).shape[0] != ids.shape[0]:
            raise self.fail(f"{name}.ids lists an id more than once")

    def sparse(self, name: str, spec: Sparse, parts: dict[str, np.ndarray]) -> None:
        data, indices, indptr, shape = (parts[p] for p in _SPARSE_PARTS)
        if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
            raise self.fail(f"{name}.shape must hold two non-negative integers")
        rows, cols = (int(x) for x in shape)
        self.bind(spec.shape[0], rows, f"{name} rows")
        self.bind(spec.shape[1], cols, f"{name} columns")
        for part, arr in (("indices", indices), ("indptr", indptr)):
            if arr.ndim != 1 or arr.dtype not in (np.int32, np.int64):
                raise self.fail(f"{name}.{part} must be a one-dimensional int32 or int64 array, got {arr.dtype}")
        if data.ndim != 1 or data.dtype != np.dtype(spec.dtype):
            raise self.fail(f"{name}.data must be a one-dimensional {spec.dtype} array, got {data.dtype}")
        nnz = data.shape[0]
        if indices.shape[0] != nnz or indptr.shape[0] != rows + 1:
            raise self.fail(f"{name}: data, indices and indptr have inconsistent lengths")
        if indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any():
            raise self.fail(f"{name}.indptr is not a valid row pointer (0 .. {nnz}, non-decreasing)")
        self.index_values(f"{name}.indices", indices, cols)
        step = np.diff(indices.astype(np.int64))
        starts = np.zeros(nnz, dtype=bool)
        starts[indptr[1:-1][indptr[1:-1] < nnz]] = True
        if nnz > 1 and (step[~starts[1:]] <= 0).any():
            raise self.fail(f"{name}.indices are not sorted and distinct within each row")
        if spec.finite and data.dtype.kind == "f" and not np.isfinite(data).all():
            raise self.fail(f"{name}.data holds NaN or infinite values")
        if spec.nnz is not None:
            self.bind(spec.nnz, nnz, f"{name} entries")


def check_state(model: str, schema: dict[str, StateSpec], params: dict[str, Any],
                arrays: dict[str, np.ndarray], history: bool) -> None:
    """Raise :class:`ModelFileError` unless ``arrays`` is exactly the declared state.

    ``history`` says whether the arrays include the training history (the ``history``
    entries of ``schema``).
    """
    check = _StateCheck(model, params)
    expected: set[str] = set()
    ordered = sorted(schema.items(), key=lambda kv: not isinstance(kv[1], Scalar))
    for name, spec in ordered:
        keys = _keys(name, spec)
        present = [k in arrays for k in keys]
        if spec.history and not history:
            if any(present):
                raise check.fail(f"{name} is training history, which this file says it does not include")
            continue
        if not all(present):
            if spec.optional and not any(present):
                continue
            missing = keys[present.index(False)]
            raise check.fail(f"lacks the declared array {missing!r}")
        expected.update(keys)
        if isinstance(spec, Scalar):
            check.scalar(name, spec, np.asarray(arrays[name]))
        elif isinstance(spec, Array):
            check.dense(name, spec, np.asarray(arrays[name]))
        elif isinstance(spec, Vocab):
            check.vocab(name, spec, np.asarray(arrays[keys[0]]))
        else:
            check.sparse(name, spec, {p: np.asarray(arrays[f"{name}.{p}"]) for p in _SPARSE_PARTS})
    extra = sorted(set(arrays) - expected)
    if extra:
        raise check.fail(f"has an undeclared array {extra[0]!r}")


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
    #: Side data the model needs at fit (kinds of :data:`recseek.data.SIDE_DATA`: "trust",
    #: "timestamps", "item_features", "item_locations", "item_text", "reviews", "aspects").
    requires: ClassVar[tuple[str, ...]] = ()
    #: Optional state arrays that certain settings always produce: array name ->
    #: (hyperparameter, values); with those settings the array is required on load.
    required_when: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {}
    #: Advice appended to the error raised when training produces NaN or infinite values.
    divergence_hint: ClassVar[str] = "lower learning_rate or raise reg"
    #: Learned state this class adds (attribute name -> :class:`Array`, :class:`Sparse`,
    #: :class:`Vocab` or :class:`Scalar`); subclasses declare only what they add and
    #: :meth:`state_schema` merges the declarations along the class hierarchy. Loading
    #: accepts exactly the declared state, with the declared dtypes and shapes.
    state: ClassVar[dict[str, StateSpec]] = {
        "users_": Vocab("n_users"),
        "items_": Vocab("n_items"),
        "n_users_": Scalar(int, "n_users"),
        "n_items_": Scalar(int, "n_items"),
        # the training matrix, used to leave out seen items (and by incremental training)
        "seen_": Sparse(("n_users", "n_items"), "float32", nnz="n_seen", history=True),
    }

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
        self._check_side_data(train)
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

    def _check_side_data(self, train: Interactions) -> None:
        from ..data._interactions import SIDE_DATA

        for kind in self.requires:
            if not train.has(kind):
                raise DataError(f"{self.display_name} needs {SIDE_DATA[kind]}, and the training data has none")

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
            Never return items the user interacted with in training. A model loaded
            from a file saved with ``include_history=False`` does not know them and
            leaves nothing out (pass ``exclude=`` instead).
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
    @classmethod
    def state_schema(cls) -> dict[str, StateSpec]:
        """The declared learned state of this class, base classes' declarations included."""
        schema: dict[str, StateSpec] = {}
        for klass in reversed(cls.__mro__):
            schema.update(klass.__dict__.get("state", {}))
        return schema

    @property
    def has_history(self) -> bool:
        """Whether the training history (``seen_``) is known: False for a model loaded
        from a file saved with ``include_history=False``."""
        return getattr(self, "_history", True)

    def _require_history(self, what: str) -> None:
        """Raise :class:`UnsupportedError` when the training history is not available."""
        self._check_fitted()
        if not self.has_history:
            raise UnsupportedError(
                f"{self.display_name} was saved without its training history, so {what} is not possible"
            )

    def get_parameters(self, include_history: bool = True) -> dict[str, np.ndarray]:
        """Learned state as a flat dict of arrays (sparse and vocabularies expanded).

        ``include_history=False`` leaves out the state declared as training history.
        """
        self._check_fitted()
        schema = self.state_schema()
        skip = {n for n, spec in schema.items() if spec.history and not (include_history and self.has_history)}
        out: dict[str, np.ndarray] = {}
        for name, value in vars(self).items():
            if not name.endswith("_") or name.startswith("_") or name in skip:
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

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        """Raise :class:`ModelFileError` unless ``params`` is exactly the declared state.

        Checks names, dtypes, shapes (against each other and the hyperparameters),
        index bounds of vocabularies, CSR matrices and index arrays, and finiteness.
        """
        check_state(self.display_name, self.instance_schema(), self.get_params(), params, history)

    def instance_schema(self) -> dict[str, StateSpec]:
        """The declared state for this model's settings: :meth:`state_schema`, with the
        optional arrays that these settings always produce made required (see
        :attr:`required_when`), so a file that lacks them is refused."""
        schema = self.state_schema()
        params = self.get_params()
        for name, (param, values) in self.required_when.items():
            spec = schema.get(name)
            if spec is not None and getattr(spec, "optional", False) and params.get(param) in values:
                schema[name] = dataclasses.replace(spec, optional=False)
        return schema

    def set_parameters(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        """Restore state produced by :meth:`get_parameters`, after :meth:`check_state`.

        With ``history=False`` (state saved without the training history) ``seen_`` is
        an empty matrix: recommendations then leave out no items unless ``exclude=`` is
        given, and incremental training is refused.
        """
        self.check_state(params, history)
        schema = self.state_schema()
        for name, spec in schema.items():
            keys = _keys(name, spec)
            if keys[0] not in params:
                continue
            if isinstance(spec, Vocab):
                setattr(self, name, Vocabulary(np.array(params[keys[0]]), name.rstrip("s_")))
            elif isinstance(spec, Sparse):
                data, indices, indptr, shape = (np.array(params[k]) for k in keys)
                setattr(self, name, sp.csr_array((data, indices, indptr), shape=tuple(int(x) for x in shape)))
            elif isinstance(spec, Scalar):
                setattr(self, name, spec.kind(np.asarray(params[name]).item()))
            else:
                setattr(self, name, np.array(params[name]))
        self._history = history
        if not history:
            self.seen_ = sp.csr_array((self.n_users_, self.n_items_), dtype=np.float32)

    def save(self, path: str | Path, *, include_history: bool = True, item_data: Any = None) -> Path:
        """Save to directory ``path`` (``arrays.npz`` + ``manifest.json``; no pickle).

        Parameters
        ----------
        path : path
            The model folder; missing parent folders are created, an existing folder is
            replaced atomically.
        include_history : bool
            Also store the training history (``seen_``, the user x item matrix of
            training interactions, and any state declared as history). Without it the
            file is smaller, and the loaded model recommends for known users without
            leaving out the items they saw in training unless ``exclude=`` is given;
            incremental training is then refused. State a model needs for scoring
            (e.g. the user rows of neighbourhood models or EASE) is always kept. The
            manifest records the choice (``"history"``).
        item_data : pandas.DataFrame, optional
            Item side data indexed by raw item id (columns such as ``title``,
            ``genres``; values str, int, float, None or lists of str). Rows for items
            the model does not know are left out. Stored as ``item_data.json`` and read
            back with :func:`recseek.persistence.read_item_data`.
        """
        from ..persistence import save_model

        return save_model(self, path, include_history=include_history, item_data=item_data)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved with :meth:`save`; every file is verified and the state
        checked against the declaration before the model is built."""
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
    state: ClassVar[dict[str, StateSpec]] = {
        "rating_min_": Scalar(float),
        "rating_max_": Scalar(float),
        "global_mean_": Scalar(float),
        "user_rated_": Array("bool", ("n_users",)),
        "item_rated_": Array("bool", ("n_items",)),
    }

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
