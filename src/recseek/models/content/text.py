"""Recommendation from item text embeddings: content KNN, text-to-factor maps, hybrids.

Item texts (the ``text_columns`` of ``item_data``: titles, genres, descriptions, ...)
are embedded by :class:`recseek.text.TextEncoder` -- by default the offline
all-MiniLM-L6-v2 sentence model of dense search, or the built-in hashing / TF-IDF
embeddings (``encoder="hashing"`` / ``"tfidf"``), which need no model file. Items
without any text get a zero embedding and cannot be scored by text.

- :class:`ItemTextKNN`: a user's items' embeddings score the catalogue (the centroid,
  or the largest similarity to any of them).
- :class:`TextToCF`: a trained factor model (WRMF, BPR, iALS++ ...) gives item factors;
  a ridge or small-MLP map from text embeddings to those factors gives every item
  without interactions (a cold item, or one added at run time with :meth:`add_items`)
  factors of its own, so it is ranked with the warm items.
- :class:`HybridText`: a factor model and text similarity blended per item by its
  number of training interactions.

Every model recommends for a user outside the training data from a few interactions
(``recommend_new``) or from a text alone (``recommend_text``: "light comedies from the
nineties").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import DataError, ParameterError
from ...text import ENCODERS, TextEncoder, item_texts
from .._params import Choice, Float, Int
from .._topk import Ranking, topk
from ..base import Array, Recommender, Scalar, Sparse, StateSpec, check_k
from ..registry import register

#: Bytes of the (profile item x candidate) similarity block of the max-similarity variant.
_BLOCK_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------- parameter rules
class _Columns:
    def check(self, model: str, name: str, value: Any) -> None:
        if value is None or (isinstance(value, str) and value):
            return
        if isinstance(value, list | tuple) and value and all(isinstance(c, str) and c for c in value):
            return
        raise ParameterError(f"{model}: {name} must be None (the usual text columns), a column name or a "
                             f"non-empty list of column names, got {value!r}")


class _OptionalPath:
    def check(self, model: str, name: str, value: Any) -> None:
        if value is None or (isinstance(value, str | os.PathLike) and os.fspath(value)):
            return
        raise ParameterError(f"{model}: {name} must be None (the offline default model) or a model folder or "
                             f"hub name, got {value!r}")


class _OptionalDict:
    def check(self, model: str, name: str, value: Any) -> None:
        if value is None or (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
            return
        raise ParameterError(f"{model}: {name} must be None or a table of hyperparameters of the base model, "
                             f"got {value!r}")


_TEXT_RULES: dict[str, Any] = {"encoder": Choice(ENCODERS), "text_columns": _Columns(), "text_model": _OptionalPath()}


# ---------------------------------------------------------------- shared text machinery
class _TextModel(Recommender):
    """Item text embeddings shared by the text models (not registered)."""

    family = "content"
    requires: ClassVar[tuple[str, ...]] = ("item_text",)
    state: ClassVar[dict[str, StateSpec]] = {
        "text_embeddings_": Array("float32", ("n_items", "dim")),
        "has_text_": Array("bool", ("n_items",)),
        "idf_": Array("float32", ("dim",), optional=True),
    }
    required_when: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {"idf_": ("encoder", ("tfidf",))}

    # ------------------------------------------------------------ encoding
    def _encoder_object(self) -> TextEncoder:
        enc = getattr(self, "_text_encoder", None)
        if enc is None:
            enc = TextEncoder(self.encoder, self.text_model, verbose=bool(getattr(self, "verbose", False)),
                              idf=getattr(self, "idf_", None))
            self._text_encoder = enc
        return enc

    def _embed_catalogue(self, train: Interactions) -> None:
        self._text_encoder = None
        self.__dict__.pop("idf_", None)
        texts = item_texts(train, self.text_columns, self.display_name)
        if not any(t.strip() for t in texts):
            raise DataError(f"{self.display_name}: no item has any text in the columns it reads")
        enc = self._encoder_object()
        enc.fit([t for t in texts if t.strip()])
        emb = enc.encode(texts)
        self.text_embeddings_ = np.ascontiguousarray(emb, dtype=np.float32)
        self.has_text_ = np.linalg.norm(emb, axis=1) > 0
        if enc.idf is not None:
            self.idf_ = np.asarray(enc.idf, dtype=np.float32)

    def embed_texts(self, texts: Sequence[str] | str, *, query: bool = True) -> np.ndarray:
        """Embeddings (n, dim) of ``texts`` with the encoder the model was trained with."""
        self._check_fitted()
        texts = [texts] if isinstance(texts, str) else list(texts)
        for j, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise DataError(f"{self.display_name}: text {j} is empty or not a string")
        emb = self._encoder_object().encode(texts, query=query)
        if emb.shape[1] != self.text_embeddings_.shape[1]:
            raise DataError(f"{self.display_name}: the encoder gives {emb.shape[1]} dimensions but the model was "
                            f"trained with {self.text_embeddings_.shape[1]}")
        return emb

    # ------------------------------------------------------------ text queries
    def _score_query(self, q: np.ndarray) -> np.ndarray:
        """Scores (n_queries, n_items) of users described by query embeddings ``q``."""
        s = q @ self.text_embeddings_.T
        s[:, ~self.has_text_] = np.nan
        return s

    def score_text(self, queries: Sequence[str] | str) -> np.ndarray:
        """Scores (n_queries, n_items) for users described only by text."""
        return np.asarray(self._score_query(self.embed_texts(queries, query=True)), dtype=np.float32)

    def recommend_text(self, queries: Sequence[str] | str, k: int = 10) -> Ranking:
        """Top-``k`` items (indices) for each user described only by a text."""
        k = check_k(k, "k")
        return topk(self.score_text(queries), k)

    # ------------------------------------------------------------ new items at run time
    def add_items(self, ids: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """Add items known only by their text; returns their new indices.

        The items have no interactions; each model scores them from the text (TextToCF
        through the mapped factors). ``ids`` must be new raw item ids.
        """
        self._check_fitted()
        ids = list(ids)
        texts = [texts] if isinstance(texts, str) else list(texts)
        if len(ids) != len(texts):
            raise ParameterError(f"{self.display_name}.add_items: {len(ids)} ids but {len(texts)} texts")
        if not ids:
            return np.zeros(0, dtype=np.int64)
        known = self.items_.indices(ids, missing="negative")
        if (known >= 0).any():
            raise DataError(f"{self.display_name}.add_items: item {ids[int(np.flatnonzero(known >= 0)[0])]!r} "
                            "is already known")
        if len({str(i) for i in ids}) != len(ids):
            raise DataError(f"{self.display_name}.add_items: an item id appears twice")
        emb = self.embed_texts(texts, query=False)
        items = self.items_.extend(ids)
        if len(items) != self.n_items_ + len(ids):
            raise DataError(f"{self.display_name}.add_items: the ids could not all be added")
        m = len(ids)
        self._grow_items(emb)
        self.text_embeddings_ = np.vstack([self.text_embeddings_, emb]).astype(np.float32)
        self.has_text_ = np.concatenate([self.has_text_, np.linalg.norm(emb, axis=1) > 0])
        for name in ("seen_", "profile_"):
            mat = getattr(self, name, None)
            if mat is not None:
                setattr(self, name, sp.csr_array((mat.data, mat.indices, mat.indptr),
                                                 shape=(mat.shape[0], mat.shape[1] + m)))
        self.items_ = items
        self.n_items_ += m
        return np.arange(self.n_items_ - m, self.n_items_, dtype=np.int64)

    def _grow_items(self, emb: np.ndarray) -> None:
        """Extend the model's own per-item state for new items with embeddings ``emb``."""

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.text_embeddings_


def _binary_profile(train: Interactions) -> sp.csr_array:
    m = train.matrix
    return sp.csr_array((np.ones(m.nnz, dtype=np.float32), m.indices.copy(), m.indptr.copy()), shape=train.shape)


def _centroid_scores(profile: sp.csr_array, emb: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosine of each profile row's mean embedding with ``emb[cols]``."""
    # float64 products rounded to float32: a user's scores do not depend on the batch
    # it is scored in (BLAS sums blocks in different orders), so ties break alike
    e = emb.astype(np.float64)
    c = np.asarray(profile.astype(np.float64) @ e)
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    c = c / np.maximum(norms, 1e-12)
    return (c @ e[cols].T).astype(np.float32)


def _max_scores(profile: sp.csr_array, emb: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per profile row, the largest similarity of each ``emb[cols]`` to any profile item.

    The similarities of the distinct profile items to the candidates are computed once
    (in blocks of profile items when that table would exceed ``_BLOCK_BYTES``); each
    row then takes ``np.maximum.reduceat`` over its items' rows of the table.
    """
    target = emb[cols].astype(np.float64)
    n, n_cols = profile.shape[0], target.shape[0]
    out = np.zeros((n, n_cols), dtype=np.float32)
    counts = np.diff(profile.indptr)
    nonempty = np.flatnonzero(counts > 0)
    if not nonempty.size or not n_cols:
        return out
    items, inverse = np.unique(profile.indices[profile.indptr[0]:profile.indptr[-1]], return_inverse=True)
    inverse = inverse.ravel()
    per_item = max(1, 4 * n_cols)
    step = max(1, _BLOCK_BYTES // per_item)
    if items.size <= step:
        # one table (distinct profile items x candidates), gathered per row
        table = (emb[items].astype(np.float64) @ target.T).astype(np.float32)
        start = 0
        while start < n:
            csum = np.cumsum(counts[start:])
            end = start + max(1, int(np.searchsorted(csum, step, side="right")))
            lo, hi = int(profile.indptr[start]), int(profile.indptr[end])
            if hi > lo:
                rows = np.arange(start, end)
                full = rows[counts[start:end] > 0]
                out[full] = np.maximum.reduceat(table[inverse[lo:hi]], profile.indptr[full] - lo, axis=0)
            start = end
        return out
    # a large catalogue: the running maximum over blocks of distinct items
    out[nonempty] = -np.inf
    user_of = np.repeat(np.arange(n), counts)
    for b0 in range(0, items.size, step):
        block = (emb[items[b0:b0 + step]].astype(np.float64) @ target.T).astype(np.float32)
        mine = (inverse >= b0) & (inverse < b0 + step)
        pair_users, pair_items = user_of[mine], inverse[mine] - b0
        order = np.argsort(pair_users, kind="stable")
        pair_users, pair_items = pair_users[order], pair_items[order]
        if not pair_users.size:
            continue
        starts = np.flatnonzero(np.r_[True, pair_users[1:] != pair_users[:-1]])
        who = pair_users[starts]
        out[who] = np.maximum(out[who], np.maximum.reduceat(block[pair_items], starts, axis=0))
    return out


# ---------------------------------------------------------------- ItemTextKNN
@register
class ItemTextKNN(_TextModel):
    """Content-based recommendation from the text embeddings of the user's items.

    Lops, de Gemmis & Semeraro, "Content-based Recommender Systems: State of the Art
    and Trends", Recommender Systems Handbook 2011 (the profile-centroid and
    nearest-item content recommenders); the embeddings are Sentence-BERT's (Reimers &
    Gurevych, EMNLP 2019) or hashed TF-IDF bags of words.

    With ``e_i`` the L2-normalised text embedding of item ``i`` and ``I_u`` the items of
    user ``u`` in training (every stored interaction counts once):

    - ``variant="centroid"``: ``score(u, j) = cos(sum_{i in I_u} e_i, e_j)``;
    - ``variant="max"``: ``score(u, j) = max_{i in I_u} e_i . e_j`` (the nearest item).

    Items without text score NaN; a user without items scores 0 everywhere. Nothing is
    learned beyond the embeddings, so any item with text -- cold or added at run time
    with :meth:`add_items` -- is ranked at once.

    Parameters
    ----------
    variant : {"centroid", "max"}
        How a user's item embeddings are combined.
    text_columns : str or list of str, optional
        ``item_data`` columns forming the item text (joined by ". "); None: those of
        ``title, year, genres, tags, description, text`` that exist.
    encoder : {"sentence", "hashing", "tfidf"}
        The text embedding (see :mod:`recseek.text`); "sentence" is the default
        all-MiniLM-L6-v2 model (or ``text_model``).
    text_model : str, optional
        A sentence-transformers folder or hub name for ``encoder="sentence"``.
    verbose : bool
        Progress bar while embedding the item texts.

    Learned state: ``text_embeddings_`` (n_items, dim) float32, ``has_text_``
    (n_items,) bool, ``profile_`` (n_users, n_items) the binary training matrix, and
    ``idf_`` (dim,) for ``encoder="tfidf"``.
    """

    name = "ItemTextKNN"
    paper = ("P. Lops, M. de Gemmis, G. Semeraro: Content-based Recommender Systems: State of the Art and Trends, "
             "Recommender Systems Handbook, Springer 2011; N. Reimers, I. Gurevych: Sentence-BERT: Sentence "
             "Embeddings using Siamese BERT-Networks, EMNLP 2019")
    rules = {**_TEXT_RULES, "variant": Choice(("centroid", "max"))}
    # TF-IDF over titles and genres: on the MovieLens sample of the conformance suite the
    # release year only adds noise (most films are from the 1990s) and, without idf,
    # common genre words swamp the rest; pure content is then close to random there.
    test_params = {"encoder": "tfidf", "text_columns": ["title", "genres"]}
    state: ClassVar[dict[str, StateSpec]] = {
        "profile_": Sparse(("n_users", "n_items"), "float32", nnz="n_profile"),
    }

    def __init__(self, variant: str = "centroid", text_columns: str | list[str] | None = None,
                 encoder: str = "sentence", text_model: str | None = None, verbose: bool = False) -> None:
        self.variant = variant
        self.text_columns = text_columns
        self.encoder = encoder
        self.text_model = text_model
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        self._embed_catalogue(train)
        self.profile_ = _binary_profile(train)

    def _scores_from(self, profile: sp.csr_array, items: np.ndarray | None) -> np.ndarray:
        cols = np.arange(self.n_items_) if items is None else np.asarray(items, dtype=np.int64)
        emb = self.text_embeddings_
        s = _centroid_scores(profile, emb, cols) if self.variant == "centroid" else _max_scores(profile, emb, cols)
        s = np.asarray(s, dtype=np.float32)
        s[:, ~self.has_text_[cols]] = np.nan
        return s

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._scores_from(sp.csr_array(self.profile_[users]), items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows)
        binary = sp.csr_array((np.ones(rows.nnz, dtype=np.float32), rows.indices, rows.indptr), shape=rows.shape)
        return self._scores_from(binary, None)


# ---------------------------------------------------------------- factor models underneath
#: Fitted factor models by (name, settings, training data), while :func:`shared_base_fits` is active.
_BASE_FITS: dict[tuple[str, str, str], Any] | None = None


@contextlib.contextmanager
def shared_base_fits() -> Iterator[dict[tuple[str, str, str], Any]]:
    """Within the block, a factor model fitted with the same registry name and settings on
    the same training data (same users, items and records) is trained once and reused:
    by every text model's ``base`` (TextToCF's validation fit included) and by
    :func:`fit_base_model`. A reused model is bit for bit the one a fresh fit gives
    (fixed seed), so an evaluation that trains WRMF alone and TextToCF over WRMF on one
    split trains it once. Outside the block every fit is fresh."""
    global _BASE_FITS
    outer = _BASE_FITS
    _BASE_FITS = {} if outer is None else outer
    try:
        yield _BASE_FITS
    finally:
        _BASE_FITS = outer


def _data_digest(train: Interactions) -> str:
    m = train.matrix
    h = hashlib.sha1(repr(m.shape).encode())
    for a in (m.indptr, m.indices, m.data):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps([len(train.users), len(train.items)]).encode())
    return h.hexdigest()


def fit_base_model(name: str, params: dict[str, Any], train: Interactions) -> Any:
    """A fitted registry model ``name(**params)`` on ``train``; reused inside
    :func:`shared_base_fits` (callers must not modify its arrays)."""
    from .. import registry

    if _BASE_FITS is None:
        return registry.create(name, **params).fit(train)
    key = (name, json.dumps(params, sort_keys=True, default=repr), _data_digest(train))
    model = _BASE_FITS.get(key)
    if model is None:
        model = _BASE_FITS[key] = registry.create(name, **params).fit(train)
    return model


class _FactorBacked(_TextModel):
    """A trained factor model's user and item factors, with ALS fold-in (not registered)."""

    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "rank")),
        "item_factors_": Array("float32", ("n_items", "rank")),
        "item_counts_": Array("int64", ("n_items",)),
        "foldin_alpha_": Scalar(float),
        "foldin_reg_": Scalar(float),
    }

    def _fit_base(self, train: Interactions) -> None:
        u, v, model = self._base_factors(train)
        self.user_factors_ = u
        self.item_factors_ = v
        self.item_counts_ = np.bincount(train.matrix.indices, minlength=train.n_items).astype(np.int64)
        used = model.get_params()
        self.foldin_alpha_ = float(self.alpha if self.alpha is not None else _number(used.get("alpha"), 1.0))
        self.foldin_reg_ = float(self.foldin_reg if self.foldin_reg is not None else _number(used.get("reg"), 1.0))

    def _base_factors(self, train: Interactions) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(user factors, item factors, fitted model)`` of the base model on ``train``
        (an item bias as one more factor)."""
        from .. import registry

        params = dict(self.base_params or {})
        cls = registry.get(self.base)
        if "item_text" in getattr(cls, "requires", ()):
            raise ParameterError(f"{self.display_name}: base must be a collaborative factor model, not {cls.name}")
        names = cls.param_names()
        for key, value in (("seed", self.seed), ("verbose", self.verbose)):
            if key in names:
                params.setdefault(key, value)
        model = fit_base_model(self.base, params, train)
        try:
            # copies: the arrays are changed below (mapped cold items) and a shared fit is reused
            u = np.array(model.user_vectors(), dtype=np.float32, order="C")
            v = np.array(model.item_vectors(), dtype=np.float32, order="C")
        except Exception as e:  # noqa: BLE001 - any model without vectors is refused the same way
            raise ParameterError(f"{self.display_name}: base {cls.name} has no user and item factors ({e})") from None
        probe = np.arange(min(8, train.n_users))
        scored = np.nan_to_num(np.asarray(model.score(probe), dtype=np.float32))
        if u.shape[1] == v.shape[1]:
            # an item bias (BPR's) shows as the same offset of every probed user: it becomes
            # one more factor, 1 on the user side and the bias on the item side
            offset = scored - u[probe] @ v.T
            scale = float(np.abs(scored).max()) + 1e-6
            if np.abs(offset).max() > 1e-4 * scale and np.allclose(offset, offset[0], rtol=1e-3, atol=1e-4 * scale):
                u = np.hstack([u, np.ones((u.shape[0], 1), dtype=np.float32)])
                v = np.hstack([v, offset[0][:, None].astype(np.float32)])
        direct = u[probe] @ v.T if u.shape[1] == v.shape[1] else None
        scale = float(np.abs(scored).max()) + 1e-6
        if direct is None or not np.allclose(scored, direct, rtol=1e-3, atol=1e-4 * scale):
            raise ParameterError(f"{self.display_name}: base {cls.name} does not score by the dot product of its "
                                 "user and item factors (plus an item bias); use WRMF, BPR, IALSPlusPlus, EALS or "
                                 "another such model")
        return u, v, model

    def _fold_in(self, rows: sp.csr_array, extra: np.ndarray | None = None) -> np.ndarray:
        """User factors minimising the WRMF objective over ``rows`` with the item factors fixed:
        ``(V^T V + alpha V_I^T V_I + reg I)^-1 (1 + alpha) V_I^T 1``.

        ``extra`` (m, rank) adds pseudo-items (a text query mapped to factors): row ``r``
        of ``rows`` may then hold column ``n_items + j`` for pseudo-item ``j``.
        """
        from ..factorization._implicit_kernels import solve_rows

        v = self.item_factors_ if extra is None else np.vstack([self.item_factors_, extra]).astype(np.float32)
        rows = sp.csr_array(rows)
        vals = np.asarray(rows.data, dtype=np.float32)
        if vals.size and vals.min() < 0:
            raise DataError(f"{self.display_name}: interaction values must be non-negative")
        vals = np.where(vals > 0, 1.0, 0.0).astype(np.float32)
        a = np.float32(self.foldin_alpha_)
        base = (self.item_factors_.T.astype(np.float64) @ self.item_factors_.astype(np.float64))
        base[np.diag_indices_from(base)] += self.foldin_reg_
        out = np.zeros((rows.shape[0], v.shape[1]), dtype=np.float32)
        if rows.shape[0]:
            solve_rows(np.asarray(rows.indptr, np.int64), np.asarray(rows.indices, np.int32), a * vals,
                       (1 + a) * vals, v, base.astype(np.float32), np.zeros(rows.shape[0], dtype=np.float32),
                       np.arange(rows.shape[0], dtype=np.int64), out)
        return out

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        return self.user_factors_[users] @ v.T

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _ridge(x: np.ndarray, y: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` minimising ``||x W + b - y||^2 + reg ||W||^2`` (the bias is not penalised)."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    mx, my = x64.mean(axis=0), y64.mean(axis=0)
    xc, yc = x64 - mx, y64 - my
    gram = xc.T @ xc
    gram[np.diag_indices_from(gram)] += reg
    w = np.linalg.solve(gram, xc.T @ yc) if reg > 0 else np.linalg.lstsq(xc, yc, rcond=None)[0]
    return w.astype(np.float32), (my - mx @ w).astype(np.float32)


def _apply_map_params(emb: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    """``e W + b`` (``params = [W, b]``) or ``relu(e W1 + b1) W2 + b2`` (``[W1, b1, W2, b2]``)."""
    e = np.asarray(emb, dtype=np.float32)
    if len(params) == 4:
        e = np.maximum(e @ params[0] + params[1], 0.0)
    return np.ascontiguousarray(e @ params[-2] + params[-1], dtype=np.float32)


def mlp_loss_grad(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, reg: float) -> tuple[float, list[np.ndarray]]:
    """Loss and gradients of the one-hidden-layer ReLU map ``relu(x W1 + b1) W2 + b2``.

    ``L = sum_i ||yhat_i - y_i||^2 / n + reg (||W1||^2 + ||W2||^2) / n`` (per-item mean,
    so ``reg`` weighs like the ridge penalty relative to the data term).
    """
    w1, b1, w2, b2 = params
    n = max(1, x.shape[0])
    pre = x @ w1 + b1
    h = np.maximum(pre, 0.0)
    err = h @ w2 + b2 - y
    loss = float((err * err).sum() / n + reg * ((w1 * w1).sum() + (w2 * w2).sum()) / n)
    g_out = 2.0 * err / n
    g_w2 = h.T @ g_out + 2.0 * reg * w2 / n
    g_b2 = g_out.sum(axis=0)
    g_h = (g_out @ w2.T) * (pre > 0)
    g_w1 = x.T @ g_h + 2.0 * reg * w1 / n
    g_b1 = g_h.sum(axis=0)
    return loss, [g_w1, g_b1, g_w2, g_b2]


#: Share of the eligible items held out as pseudo-cold items by TextToCF's validation split.
VALIDATION_ITEMS = 0.2
#: Share of each user's remaining records held out as warm validation targets.
VALIDATION_RECORDS = 0.2
#: Per validation user, the top-scored warm and the top-scored cold candidates the calibration is fitted on.
CALIBRATION_DEPTH = 50
#: Smallest spread of calibrated mapped scores, as a share of the warm scores' spread
#: (so that float32 scores still resolve the mapped items' order).
MIN_COLD_SPREAD = 0.1


def platt(scores: np.ndarray, labels: np.ndarray, reg: float = 1e-6, iterations: int = 100) -> tuple[float, float]:
    """``(a, b)`` of the logistic model ``P(relevant | s) = 1 / (1 + exp(-(a s + b)))``
    fitted by Newton's method with step halving (Platt, "Probabilistic Outputs for
    Support Vector Machines", 1999): the targets are Platt's smoothed labels
    ``(N+ + 1) / (N+ + 2)`` for a relevant pair and ``1 / (N- + 2)`` for the others, so
    that separable data keeps a finite slope, plus a ``reg`` ridge on ``a`` and ``b``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.size != y.size or not s.size:
        raise DataError(f"platt: {s.size} scores but {y.size} labels")
    n_pos = float(y.sum())
    t = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (y.size - n_pos + 2.0))
    # standardised scores: the Newton steps are then well scaled whatever the score range
    mu, sd = float(s.mean()), float(s.std()) or 1.0
    x = np.stack([(s - mu) / sd, np.ones_like(s)], axis=1)

    def loss(w: np.ndarray) -> float:
        m = x @ w
        # -sum t log p + (1 - t) log(1 - p), with log(1 + e^m) computed stably
        return float(np.sum(np.logaddexp(0.0, m) - t * m) + 0.5 * reg * w @ w)

    w = np.array([0.0, np.log(t.mean() / (1.0 - t.mean()))])
    current = loss(w)
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x @ w)))
        grad = x.T @ (p - t) + reg * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + (reg + 1e-12) * np.eye(2)
        step = np.linalg.solve(hess, grad)
        lr = 1.0
        while lr > 1e-8:
            trial = w - lr * step
            value = loss(trial)
            if value <= current:
                break
            lr *= 0.5
        else:
            break
        w, done = trial, current - value < 1e-12 * max(1.0, abs(current))
        current = value
        if done:
            break
    a = w[0] / sd
    return float(a), float(w[1] - a * mu)


def _top_pairs(scores: np.ndarray, labels: sp.csr_array, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and 0/1 labels of each row's ``depth`` best-scored columns (-inf = not a candidate)."""
    depth = min(depth, scores.shape[1])
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    s = np.take_along_axis(scores, top, axis=1)
    y = np.asarray(labels.todense(), dtype=bool)
    y = np.take_along_axis(y, top, axis=1)
    ok = np.isfinite(s)
    return s[ok], y[ok].astype(np.float64)


@register
class TextToCF(_FactorBacked):
    """Cold-start factors from item text: a map from text embeddings to a factor model's items.

    Gantner, Drumond, Freudenthaler, Rendle & Schmidt-Thieme, "Learning Attribute-to-
    Feature Mappings for Cold-Start Recommendations", ICDM 2010; Barkan, Koenigstein,
    Yogev & Katz, "CB2CF: A Neural Multiview Content-to-Collaborative Filtering Model
    for Completely Cold Item Recommendations", RecSys 2019; the dropout-free half of
    Volkovs, Yu & Poutanen, "DropoutNet", NeurIPS 2017.

    A factor model ``base`` (WRMF by default) is trained on the interactions, giving
    user factors ``U`` (n_users, r) and item factors ``V`` (n_items, r). A map ``f``
    from an item's text embedding ``e`` (dim,) to factors is fitted on the items with at
    least ``min_count`` training interactions:

    - ``mapping="ridge"``: ``f(e) = e W + b``, minimising
      ``sum_i ||e_i W + b - v_i||^2 + reg ||W||^2`` (closed form; ``b`` unpenalised);
    - ``mapping="mlp"``: ``f(e) = relu(e W1 + b1) W2 + b2`` with ``hidden`` units,
      minimising ``(sum_i ||f(e_i) - v_i||^2 + reg (||W1||^2 + ||W2||^2)) / n`` by
      full-batch Adam (``epochs`` steps of ``learning_rate``).

    Items with fewer than ``min_count`` interactions (and text) take ``f(e_i)`` as their
    factors (the mapped items). A new user's factors come from the WRMF objective with
    the item factors fixed (``recommend_new``); a text-only user is folded in with the
    text mapped to a pseudo-item (``recommend_text``).

    Scores: ``u . v`` for an item with its own factors, ``c_scale (u . f(e)) + c_shift``
    for a mapped item, so that a cold item enters a top-k of warm items only when its
    score is comparable to theirs. Both numbers come from the training data alone:
    ``VALIDATION_ITEMS`` = 20% of the items that train the map (popularity strata,
    seeded) are held out as pseudo-cold items, and for each user the
    ``CALIBRATION_DEPTH`` = 50 best-scored of them it has not interacted with are the
    validation pairs. ``calibration`` says what the scores are made comparable to:

    - ``"scores"`` (default): to the base model's own scores. The map is refitted
      without the pseudo-cold items and gives them factors ``f'(e_i)``; ``c_scale`` and
      ``c_shift`` are the least-squares line ``u . v_i ~ c_scale (u . f'(e_i)) +
      c_shift`` over the validation pairs (``v_i`` the item's own factors): a cold
      item's score is the base model's expected score for it had it been warm. Costs
      one more map fit.
    - ``"relevance"``: to the probability of relevance. The pseudo-cold items also lose
      their records, ``VALIDATION_RECORDS`` = 20% of each user's other records are held
      out, the base model and the map are refitted on what remains, and a logistic
      model ``P(relevant | s) = sigma(a s + b)`` (Platt 1999) is fitted on the
      validation users' 50 best-scored warm candidates against their held-out warm
      records (``a_w, b_w``) and on their 50 best-scored pseudo-cold items against those
      items' records (``a_c, b_c``); equal probabilities give equal scores with
      ``c_scale = a_c / a_w``, ``c_shift = (b_c - b_w) / a_w``. The probabilities carry
      the split's own base rates (every record of a cold item is a target, a fifth of a
      warm item's), which can favour cold items heavily. Costs a second base-model fit.
    - ``"none"``: ``c_scale = 1``, ``c_shift = 0``.

    ``c_scale`` is kept positive and large enough that the calibrated mapped scores
    spread at least ``MIN_COLD_SPREAD`` = 10% as widely as the warm ones over the
    validation pairs (at that floor the shift keeps the median mapped score where the
    fitted line puts it), so within the mapped items -- the cold-item ranking -- the
    order is that of ``u . f(e)`` whatever the calibration, and float32 still resolves
    it.

    Parameters
    ----------
    base : str
        Registry name of the factor model. It must score by ``u . v`` or ``u . v + b_i``;
        an item bias ``b_i`` (BPR's) becomes one more factor (1 for every user, ``b_i``
        for the item), which the map learns like the others.
    base_params : dict, optional
        Its hyperparameters (``seed`` and ``verbose`` default to this model's).
    mapping : {"ridge", "mlp"}
        The text-to-factor map.
    reg : float
        L2 penalty of the map's weights.
    hidden : int
        Hidden units of the MLP map.
    epochs, learning_rate : int, float
        Adam steps and step size of the MLP map (unused by ridge).
    min_count : int
        Fewest training interactions of an item whose own factors are kept (and that
        trains the map).
    calibration : {"scores", "relevance", "none"}
        How mapped items' scores are put on the warm items' scale (see above).
    alpha : float, optional
        Fold-in confidence ``1 + alpha`` of an observed item; None: the base model's
        ``alpha`` (1 when it has none).
    foldin_reg : float, optional
        Fold-in L2 penalty; None: the base model's ``reg`` (1 when it has none).
    text_columns, encoder, text_model : see :class:`ItemTextKNN`.
    seed : int
        Seed of the MLP initialisation (and the base model's default seed).
    verbose : bool
        Progress bars (embedding, the base model, the MLP steps with their loss).

    Learned state: ``user_factors_`` (n_users, r), ``item_factors_`` (n_items, r),
    ``cf_known_`` (n_items,) bool (the item kept its own factors), ``map_weights_``
    (dim or hidden, r), ``map_bias_`` (r,), for the MLP ``map_hidden_weights_``
    (dim, hidden) and ``map_hidden_bias_`` (hidden,), ``cold_scale_`` and
    ``cold_shift_`` (``c_scale``, ``c_shift``), plus the text embeddings. After
    ``fit``, :attr:`calibration_details` (not saved) holds the calibration's fitted
    slopes, intercepts and pair counts.
    """

    name = "TextToCF"
    paper = ("Z. Gantner, L. Drumond, C. Freudenthaler, S. Rendle, L. Schmidt-Thieme: Learning Attribute-to-Feature "
             "Mappings for Cold-Start Recommendations, ICDM 2010; O. Barkan, N. Koenigstein, E. Yogev, O. Katz: "
             "CB2CF: A Neural Multiview Content-to-Collaborative Filtering Model for Completely Cold Item "
             "Recommendations, RecSys 2019")
    rules = {**_TEXT_RULES, "mapping": Choice(("ridge", "mlp")), "base_params": _OptionalDict(),
             "hidden": Int(lo=1), "min_count": Int(lo=1), "calibration": Choice(("scores", "relevance", "none")),
             "alpha": Float(lo=0.0, none_ok=True), "foldin_reg": Float(lo=0.0, none_ok=True)}
    test_params = {"encoder": "hashing", "base_params": {"factors": 8, "epochs": 5}}
    state: ClassVar[dict[str, StateSpec]] = {
        "cf_known_": Array("bool", ("n_items",)),
        "map_weights_": Array("float32", ("map_in", "rank")),
        "map_bias_": Array("float32", ("rank",)),
        "map_hidden_weights_": Array("float32", ("dim", "hidden"), optional=True),
        "map_hidden_bias_": Array("float32", ("hidden",), optional=True),
        "cold_scale_": Scalar(float),
        "cold_shift_": Scalar(float),
    }
    required_when: ClassVar[dict[str, tuple[str, tuple[Any, ...]]]] = {
        "idf_": ("encoder", ("tfidf",)),
        "map_hidden_weights_": ("mapping", ("mlp",)),
        "map_hidden_bias_": ("mapping", ("mlp",)),
    }

    def __init__(self, base: str = "WRMF", base_params: dict[str, Any] | None = None, mapping: str = "ridge",
                 reg: float = 1.0, hidden: int = 256, epochs: int = 200, learning_rate: float = 0.01,
                 min_count: int = 1, calibration: str = "scores", alpha: float | None = None,
                 foldin_reg: float | None = None, text_columns: str | list[str] | None = None,
                 encoder: str = "sentence", text_model: str | None = None, seed: int = 0,
                 verbose: bool = False) -> None:
        self.base = base
        self.base_params = base_params
        self.mapping = mapping
        self.reg = reg
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.min_count = min_count
        self.calibration = calibration
        self.alpha = alpha
        self.foldin_reg = foldin_reg
        self.text_columns = text_columns
        self.encoder = encoder
        self.text_model = text_model
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        self._embed_catalogue(train)
        self._fit_base(train)
        warm = (self.item_counts_ >= int(self.min_count)) & self.has_text_
        if warm.sum() < 2:
            raise DataError(f"{self.display_name}: fewer than two items have text and at least "
                            f"min_count={self.min_count} interactions; the map cannot be fitted")
        for name in ("map_hidden_weights_", "map_hidden_bias_"):
            self.__dict__.pop(name, None)
        params = self._fit_map(self.text_embeddings_[warm], self.item_factors_[warm])
        self.map_weights_, self.map_bias_ = params[-2], params[-1]
        if len(params) == 4:
            self.map_hidden_weights_, self.map_hidden_bias_ = params[0], params[1]
        self.cf_known_ = self.item_counts_ >= int(self.min_count)
        cold = ~self.cf_known_ & self.has_text_
        if cold.any():
            self.item_factors_[cold] = self._apply_map(self.text_embeddings_[cold])
        self.cold_scale_, self.cold_shift_ = 1.0, 0.0
        self._calibration_fit: dict[str, float] = {}
        if self.calibration == "relevance":
            self.cold_scale_, self.cold_shift_ = self._calibrate_relevance(train)
        elif self.calibration == "scores":
            self.cold_scale_, self.cold_shift_ = self._calibrate_scores(train)

    @property
    def calibration_details(self) -> dict[str, float]:
        """The last fit's calibration: the fitted line (``"scores"``) or the Platt slopes
        and intercepts of warm and cold validation pairs (``"relevance"``), with the
        numbers of pairs (empty without calibration or after load)."""
        return dict(getattr(self, "_calibration_fit", {}))

    def _fit_map(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """The map's parameters: ``[W, b]`` (ridge) or ``[W1, b1, W2, b2]`` (MLP)."""
        if self.mapping == "ridge":
            return list(_ridge(x, y, float(self.reg)))
        return self._fit_mlp(x, y)

    def _pseudo_cold(self, train: Interactions) -> np.ndarray:
        """Mask of the validation's pseudo-cold items (popularity-stratified, seeded)."""
        from ...evaluation.coldstart import cold_item_folds

        eligible = (self.item_counts_ >= int(self.min_count)) & self.has_text_
        folds = max(2, round(1 / VALIDATION_ITEMS))
        if eligible.sum() < 2 * folds:
            raise DataError(f"{self.display_name}: only {int(eligible.sum())} items can train the map, too few to "
                            "carve a validation split for the calibration; use calibration='none'")
        return (cold_item_folds(train, folds, int(self.seed), 10) == 0) & eligible

    def _calibrate_scores(self, train: Interactions) -> tuple[float, float]:
        """``(c_scale, c_shift)``: mapped scores regressed onto the model's own (see the class docstring)."""
        pseudo = self._pseudo_cold(train)
        rest = (self.item_counts_ >= int(self.min_count)) & self.has_text_ & ~pseudo
        if rest.sum() < 2:
            raise DataError(f"{self.display_name}: the calibration leaves fewer than two items to train the map; use "
                            "calibration='none'")
        params = self._fit_map(self.text_embeddings_[rest], self.item_factors_[rest])
        items = np.flatnonzero(pseudo)
        u = self.user_factors_.astype(np.float64)
        mapped = u @ _apply_map_params(self.text_embeddings_[items], params).T.astype(np.float64)
        own = u @ self.item_factors_[items].T.astype(np.float64)
        seen = sp.csr_array(self.seen_[:, items])
        r, c = seen.nonzero()
        mapped[r, c] = -np.inf
        depth = min(CALIBRATION_DEPTH, items.size)
        top = np.argpartition(-mapped, depth - 1, axis=1)[:, :depth]
        x = np.take_along_axis(mapped, top, axis=1).ravel()
        y = np.take_along_axis(own, top, axis=1).ravel()
        ok = np.isfinite(x)
        x, y = x[ok], y[ok]
        if x.size < 2 or not np.std(x) > 0:
            raise DataError(f"{self.display_name}: the calibration found no spread of mapped scores to fit; use "
                            "calibration='none'")
        slope = float(np.cov(x, y, bias=True)[0, 1] / np.var(x))
        intercept = float(y.mean() - slope * x.mean())
        self._calibration_fit = {"slope": slope, "intercept": intercept, "pairs": float(x.size),
                                 "r2": float(np.corrcoef(x, y)[0, 1] ** 2)}
        return self._floored(slope, intercept, float(np.std(y)), x)

    def _floored(self, scale: float, shift: float, warm_sd: float, cold: np.ndarray) -> tuple[float, float]:
        """``(scale, shift)`` with the scale at least the floor ``MIN_COLD_SPREAD * warm_sd / sd(cold)``
        (at the floor, the median ``cold`` score keeps its fitted value)."""
        floor = MIN_COLD_SPREAD * warm_sd / max(float(np.std(cold)), 1e-30)
        if scale >= floor:
            return float(scale), float(shift)
        mid = float(np.median(cold))
        return float(floor), float(scale * mid + shift - floor * mid)

    def _calibrate_relevance(self, train: Interactions) -> tuple[float, float]:
        """``(c_scale, c_shift)`` from Platt fits on a validation split (see the class docstring)."""
        from ...evaluation.coldstart import _split_on_cold

        pseudo = self._pseudo_cold(train)
        try:
            val = _split_on_cold(train, pseudo, VALIDATION_RECORDS, int(self.seed))
        except DataError as e:
            raise DataError(f"{self.display_name}: cannot carve the calibration's validation split ({e}); use "
                            "calibration='none'") from None
        u, v, _ = self._base_factors(val.train)
        counts = np.bincount(val.train.matrix.indices, minlength=train.n_items)
        warm = (counts >= int(self.min_count)) & self.has_text_
        if warm.sum() < 2:
            raise DataError(f"{self.display_name}: the calibration's validation split leaves fewer than two items to "
                            "train the map; use calibration='none'")
        params = self._fit_map(self.text_embeddings_[warm], v[warm])
        cold_items = np.flatnonzero(pseudo)
        warm_items = np.flatnonzero(counts >= int(self.min_count))
        held = sp.csr_array(val.cold_test.matrix + val.warm_test.matrix)
        users = np.flatnonzero(np.diff(held.indptr) > 0)
        sw = (u[users].astype(np.float64) @ v[warm_items].T.astype(np.float64))
        seen = sp.csr_array(val.train.matrix[users][:, warm_items])
        r, c = seen.nonzero()
        sw[r, c] = -np.inf
        f = _apply_map_params(self.text_embeddings_[cold_items], params)
        sc = u[users].astype(np.float64) @ f.T.astype(np.float64)
        warm_rel = sp.csr_array(val.warm_test.matrix[users][:, warm_items])
        cold_rel = sp.csr_array(val.cold_test.matrix[users][:, cold_items])
        s_w, y_w = _top_pairs(sw, warm_rel, CALIBRATION_DEPTH)
        s_c, y_c = _top_pairs(sc, cold_rel, CALIBRATION_DEPTH)
        if not y_w.any() or not y_c.any():
            raise DataError(f"{self.display_name}: the calibration's validation split has no relevant "
                            f"{'warm' if not y_w.any() else 'cold'} item among the top candidates; use "
                            "calibration='none'")
        a_w, b_w = platt(s_w, y_w)
        a_c, b_c = platt(s_c, y_c)
        self._calibration_fit = {"warm_slope": a_w, "warm_intercept": b_w, "cold_slope": a_c, "cold_intercept": b_c,
                            "warm_pairs": float(y_w.size), "cold_pairs": float(y_c.size),
                            "warm_relevant": float(y_w.sum()), "cold_relevant": float(y_c.sum())}
        if not a_w > 0:
            raise DataError(f"{self.display_name}: on the calibration's validation split the base model's scores do "
                            f"not rise with relevance (slope {a_w:.3g}); use calibration='none'")
        return self._floored(a_c / a_w, (b_c - b_w) / a_w, float(np.std(s_w)), s_c)

    def _fit_mlp(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        d, r, h = x.shape[1], y.shape[1], int(self.hidden)
        params = [
            (rng.standard_normal((d, h)) * np.sqrt(2.0 / d)).astype(np.float32),
            np.zeros(h, dtype=np.float32),
            (rng.standard_normal((h, r)) * np.sqrt(1.0 / h)).astype(np.float32),
            y.mean(axis=0).astype(np.float32),
        ]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, float(self.learning_rate)
        bar = self._progress(range(int(self.epochs)), total=int(self.epochs), desc=f"{self.display_name} map")
        for t in bar:
            loss, grads = mlp_loss_grad(params, x, y, float(self.reg))
            if not np.isfinite(loss):
                self._check_finite(t, np.asarray([loss]))
            for j, g in enumerate(grads):
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                mh = m[j] / (1 - b1 ** (t + 1))
                vh = v[j] / (1 - b2 ** (t + 1))
                params[j] = (params[j] - lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss:.4g}")
        self._check_finite(int(self.epochs), *params)
        return params

    # ------------------------------------------------------------ the map
    def map_text(self, emb: np.ndarray) -> np.ndarray:
        """Factors (n, r) the map gives to text embeddings ``emb`` (n, dim)."""
        self._check_fitted()
        return self._apply_map(emb)

    def _apply_map(self, emb: np.ndarray) -> np.ndarray:
        params = [self.map_weights_, self.map_bias_]
        if getattr(self, "map_hidden_weights_", None) is not None:
            params = [self.map_hidden_weights_, self.map_hidden_bias_, *params]
        return _apply_map_params(emb, params)

    def _calibrated(self, s: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """``s`` with the mapped items' scores turned into ``c_scale s + c_shift``."""
        scale, shift = float(self.cold_scale_), float(self.cold_shift_)
        if scale == 1.0 and shift == 0.0:
            return s
        mapped = ~self.cf_known_ & self.has_text_
        if items is not None:
            mapped = mapped[items]
        if mapped.any():
            s = np.array(s, dtype=np.float32)
            s[:, mapped] = scale * s[:, mapped] + shift
        return s

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._calibrated(super()._score(users, items), items)

    def _grow_items(self, emb: np.ndarray) -> None:
        self.item_factors_ = np.vstack([self.item_factors_, self.map_text(emb)]).astype(np.float32)
        self.item_counts_ = np.concatenate([self.item_counts_, np.zeros(len(emb), dtype=np.int64)])
        self.cf_known_ = np.concatenate([self.cf_known_, np.zeros(len(emb), dtype=bool)])

    # ------------------------------------------------------------ new users
    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return self._calibrated(self._fold_in(rows) @ self.item_factors_.T, None)

    def _score_query(self, q: np.ndarray) -> np.ndarray:
        n = q.shape[0]
        rows = sp.csr_array((np.ones(n, dtype=np.float32), np.arange(self.n_items_, self.n_items_ + n),
                             np.arange(n + 1)), shape=(n, self.n_items_ + n))
        return self._calibrated(self._fold_in(rows, extra=self.map_text(q)) @ self.item_factors_.T, None)


@register
class HybridText(_FactorBacked):
    """A factor model and text similarity blended per item by its interaction count.

    Burke, "Hybrid Recommender Systems: Survey and Experiments", UMUAI 12(4), 2002
    (weighted hybrid); the per-item weight follows the count-based shrinkage of
    Koren, "Factorization meets the neighborhood", KDD 2008.

    For user ``u`` and item ``j``: ``cf(u, j) = u . v_j`` of the factor model ``base``
    and ``txt(u, j) = cos(sum_{i in I_u} e_i, e_j)`` (ItemTextKNN's centroid), each
    standardised over the items of the user's row (``z``: minus the row mean, divided
    by the row standard deviation), then

    ``score(u, j) = w_j z(cf)(u, j) + (1 - w_j) z(txt)(u, j)``,
    ``w_j = n_j / (n_j + blend_count)``

    with ``n_j`` the item's training interactions: popular items are ranked by
    collaborative filtering, cold ones by text. Items without text use ``w_j = 1``.

    Parameters
    ----------
    base, base_params, alpha, foldin_reg : see :class:`TextToCF`.
    blend_count : float
        Interactions at which an item's two parts weigh the same.
    text_columns, encoder, text_model : see :class:`ItemTextKNN`.
    seed, verbose : the base model's defaults; ``verbose`` also shows embedding progress.

    Learned state: the base model's ``user_factors_`` / ``item_factors_``,
    ``item_counts_``, the binary ``profile_`` and the text embeddings.
    """

    name = "HybridText"
    paper = ("R. Burke: Hybrid Recommender Systems: Survey and Experiments, User Modeling and User-Adapted "
             "Interaction 12(4), 2002; Y. Koren: Factorization Meets the Neighborhood, KDD 2008")
    rules = {**_TEXT_RULES, "base_params": _OptionalDict(), "blend_count": Float(lo=0.0),
             "alpha": Float(lo=0.0, none_ok=True), "foldin_reg": Float(lo=0.0, none_ok=True)}
    test_params = {"encoder": "hashing", "base_params": {"factors": 8, "epochs": 5}}
    state: ClassVar[dict[str, StateSpec]] = {
        "profile_": Sparse(("n_users", "n_items"), "float32", nnz="n_profile"),
    }

    def __init__(self, base: str = "WRMF", base_params: dict[str, Any] | None = None, blend_count: float = 10.0,
                 alpha: float | None = None, foldin_reg: float | None = None,
                 text_columns: str | list[str] | None = None, encoder: str = "sentence",
                 text_model: str | None = None, seed: int = 0, verbose: bool = False) -> None:
        self.base = base
        self.base_params = base_params
        self.blend_count = blend_count
        self.alpha = alpha
        self.foldin_reg = foldin_reg
        self.text_columns = text_columns
        self.encoder = encoder
        self.text_model = text_model
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        self._embed_catalogue(train)
        self._fit_base(train)
        self.profile_ = _binary_profile(train)

    def _grow_items(self, emb: np.ndarray) -> None:
        self.item_factors_ = np.vstack([self.item_factors_, np.zeros((len(emb), self.item_factors_.shape[1]),
                                                                     dtype=np.float32)])
        self.item_counts_ = np.concatenate([self.item_counts_, np.zeros(len(emb), dtype=np.int64)])

    def _weights(self) -> np.ndarray:
        n = self.item_counts_.astype(np.float64)
        w = n / np.maximum(n + float(self.blend_count), 1e-12)
        return np.where(self.has_text_, w, 1.0).astype(np.float32)

    def _blend(self, cf: np.ndarray, txt: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        s = self._weights()[None, :] * _standardise(cf) + (1 - self._weights()[None, :]) * _standardise(txt)
        s = s.astype(np.float32)
        return s if items is None else s[:, items]

    def _text_part(self, profile: sp.csr_array) -> np.ndarray:
        txt = _centroid_scores(profile, self.text_embeddings_, np.arange(self.n_items_))
        return np.where(self.has_text_[None, :], txt, 0.0)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        cf = self.user_factors_[users].astype(np.float64) @ self.item_factors_.T.astype(np.float64)
        return self._blend(cf, self._text_part(sp.csr_array(self.profile_[users])), items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows)
        binary = sp.csr_array((np.ones(rows.nnz, dtype=np.float32), rows.indices, rows.indptr), shape=rows.shape)
        cf = self._fold_in(rows) @ self.item_factors_.T
        return self._blend(cf, self._text_part(binary), None)

    def _score_query(self, q: np.ndarray) -> np.ndarray:
        # a text-only user has no interactions: the text part alone ranks (w = 0 for every item)
        return np.where(self.has_text_[None, :], q @ self.text_embeddings_.T, np.nan)


def _standardise(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    mean = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    return (s - mean) / np.where(sd > 1e-12, sd, 1.0)


__all__ = ["HybridText", "ItemTextKNN", "TextToCF", "fit_base_model", "mlp_loss_grad", "platt", "shared_base_fits"]
