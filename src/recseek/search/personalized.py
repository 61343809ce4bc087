"""Personalised item search: text retrieval re-ranked by a fitted recommender.

The items of a recommendation data set (e.g. MovieLens titles and genres) are indexed as
documents whose ids are the raw item ids. A query retrieves ``depth`` candidates by text;
when a user is given, each candidate's score becomes

    (1 - weight) * minmax(text score) + weight * minmax(recommender score for the user)

with both normalised over the query's candidates (an item the recommender cannot score
counts as its lowest). Without a user the result is the plain text search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data import Interactions, Vocabulary
from ..errors import DataError, ParameterError
from ..models._params import Float, Int
from .base import Document, Hits, as_queries, check_k

__all__ = ["ItemSearch", "item_documents"]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    try:
        import pandas as pd

        if value is pd.NA:
            return ""
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if isinstance(value, list | tuple | np.ndarray):
        return " ".join(str(v) for v in value)
    return str(value).replace("|", " ")


def item_documents(items: Interactions, title: str = "title", text: Sequence[str] = ("genres",),
                   metadata: Sequence[str] = ("year",)) -> list[dict[str, Any]]:
    """One document per item of ``items.item_data``: ``{"id", "title", "text", <metadata>}``.

    ``text`` columns are joined by spaces (``|``-separated genre lists become words);
    numeric ``metadata`` columns become filterable fields. Missing columns are skipped;
    a table with neither ``title`` nor any ``text`` column is an error.
    """
    data = items.item_data
    if data is None:
        raise DataError("the interactions have no item_data (titles, genres); pass docs to ItemSearch.index")
    if len(data) != items.n_items:
        raise DataError(f"item_data has {len(data)} rows but there are {items.n_items} items")
    text_cols = [c for c in text if c in data.columns]
    if title not in data.columns and not text_cols:
        raise DataError(f"item_data has none of the text columns {[title, *text]}; it has {list(data.columns)}")
    titles = [_text(v) for v in data[title].tolist()] if title in data.columns else [""] * len(data)
    bodies = [[_text(v) for v in data[c].tolist()] for c in text_cols]
    metas = {}
    for c in metadata:
        if c in data.columns:
            import pandas as pd

            col = pd.to_numeric(data[c], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
            if np.isfinite(col).any():
                metas[c] = col
    docs = []
    for i in range(items.n_items):
        doc: dict[str, Any] = {"id": str(items.items.id(i)), "title": titles[i],
                               "text": " ".join(b[i] for b in bodies if b[i])}
        for c, col in metas.items():
            if np.isfinite(col[i]):
                doc[c] = float(col[i])
        docs.append(doc)
    return docs


class ItemSearch:
    """Search over items, personalised by a fitted recommender.

    Parameters
    ----------
    retriever : retriever
        Any retriever (BM25, DenseRetriever, HybridRetriever ...), indexed by :meth:`index`.
    recommender : Recommender
        A fitted recseek model; its ``score`` re-ranks the candidates for a user.
    items : Interactions or Vocabulary
        The items searched: interactions with ``item_data`` (documents are built from
        ``title`` and ``genres``) or an item vocabulary (then pass documents to :meth:`index`).
    weight : float in [0, 1]
        Share of the recommender score in the final score (0 = plain text search).
    depth : int
        Text candidates re-ranked per query.
    """

    rules = {"weight": Float(lo=0.0, hi=1.0), "depth": Int(lo=1)}

    def __init__(self, retriever: Any, recommender: Any, items: Interactions | Vocabulary,
                 weight: float = 0.5, depth: int = 100) -> None:
        self.retriever = retriever
        self.recommender = recommender
        self.items = items
        self.weight = weight
        self.depth = depth
        for name, rule in self.rules.items():
            rule.check("ItemSearch", name, getattr(self, name))
        if not callable(getattr(retriever, "search", None)):
            raise ParameterError(f"ItemSearch: retriever must have a search method, got {type(retriever).__name__}")
        if not isinstance(items, Interactions | Vocabulary):
            raise ParameterError(f"ItemSearch: items must be Interactions or a Vocabulary, got {type(items).__name__}")
        if not hasattr(recommender, "items_") or not callable(getattr(recommender, "score", None)):
            raise ParameterError("ItemSearch: recommender must be a fitted recseek model (call fit first)")

    @property
    def vocabulary(self) -> Vocabulary:
        return self.items.items if isinstance(self.items, Interactions) else self.items

    def index(self, docs: Sequence[Document | Mapping[str, Any]] | None = None) -> None:
        """Index the items: ``docs`` (ids = raw item ids), or documents built from ``item_data``."""
        if docs is None:
            if not isinstance(self.items, Interactions):
                raise DataError("ItemSearch.index needs docs when items is a Vocabulary")
            docs = item_documents(self.items)
        else:
            docs = list(docs)
            vocab = self.vocabulary
            ids = [d.id if isinstance(d, Document) else d.get("id") for d in docs]
            unknown = [i for i in ids if i not in vocab]
            if unknown:
                raise DataError(f"document id {unknown[0]!r} is not an item id of the data ({len(unknown)} unknown)")
        self.retriever.index(docs)

    def search(self, query: str | Sequence[str], user: Any = None, k: int = 10, *,
               filter: Mapping[str, Any] | None = None) -> Hits:
        """Top-``k`` items (raw ids) for ``query``, re-ranked for ``user`` (a raw user id).

        With several queries, ``user`` is None, one id for all, or one id (or None) per query.
        """
        k = check_k(k)
        qs = as_queries(query)
        users = self._users(user, len(qs))
        hits = self.retriever.search(qs, k=max(self.depth, k), filter=filter)
        k = min(k, hits.ids.shape[1])  # the retriever clips k to its collection
        if self.weight == 0 or (users < 0).all():
            return Hits(hits.ids[:, :k], hits.scores[:, :k])
        return self._rerank(hits, users, k)

    def _users(self, user: Any, n: int) -> np.ndarray:
        vocab = self.recommender.users_
        if user is None:
            return np.full(n, -1, dtype=np.int64)
        many = isinstance(user, list | tuple | np.ndarray)
        raw = list(user) if many else [user] * n
        if len(raw) != n:
            raise ParameterError(f"user must be one id or one per query ({n}), got {len(raw)}")
        out = np.full(n, -1, dtype=np.int64)
        for i, u in enumerate(raw):
            if u is not None:
                if u not in vocab:
                    raise DataError(f"unknown user id {u!r}: the recommender was not trained on this user")
                out[i] = vocab.index(u)
        return out

    def _rerank(self, hits: Hits, users: np.ndarray, k: int) -> Hits:
        from .hybrid import _normalize

        valid = hits.ids != ""
        text, _ = _normalize(hits.scores, valid, "minmax")
        item_idx = self.recommender.items_.indices(hits.ids.ravel().tolist(), missing="negative").reshape(hits.ids.shape)
        item_idx = np.where(valid, item_idx, -1)
        cand = np.unique(item_idx[item_idx >= 0])
        personal = users >= 0
        uniq_users, urow = np.unique(users[personal], return_inverse=True)
        rec = np.full(hits.ids.shape, np.nan, dtype=np.float64)
        if cand.size and uniq_users.size:
            block = np.asarray(self.recommender.score(uniq_users, cand), dtype=np.float64)
            col = np.searchsorted(cand, np.clip(item_idx[personal], 0, None))
            got = block[urow.ravel()[:, None], col]
            rec[personal] = np.where(item_idx[personal] >= 0, got, np.nan)
        rec_ok = valid & np.isfinite(rec)
        rec_norm, _ = _normalize(np.where(rec_ok, rec, 0.0), rec_ok, "minmax")
        w = np.where(personal, self.weight, 0.0)[:, None]
        final = np.where(valid, (1 - w) * text + w * rec_norm, -np.inf)
        # stable: ties keep the text order
        order = np.argsort(-final, axis=1, kind="stable")[:, :k]
        ids = np.take_along_axis(hits.ids, order, axis=1)
        scores = np.take_along_axis(final, order, axis=1).astype(np.float32)
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            ids = np.hstack([ids, np.full((ids.shape[0], pad), "", dtype=ids.dtype)])
            scores = np.hstack([scores, np.full((ids.shape[0], pad), -np.inf, dtype=np.float32)])
        return Hits(np.where(np.isfinite(scores), ids, ""), scores)
