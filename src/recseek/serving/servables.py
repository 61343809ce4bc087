"""What the server runs: a loaded model or search index and its batch executor.

Requests are validated and turned into indices on the event loop (raw id -> index through
the model's vocabularies); a batch of them is then executed in a worker thread with one
call per kind of operation: every ``recommend`` of the batch is one
``model.recommend(users, k_max, ...)``, every fold-in one ``model.recommend_new``, every
rating pair one ``model.predict``, every query with the same filter one ``search``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import DataError, ParameterError, RecseekError
from .batching import Job

__all__ = ["Conflict", "IndexServable", "ModelServable", "NotFound", "ItemCategories"]

#: Text candidates re-ranked per personalised query (ItemSearch ``depth``).
PERSONAL_DEPTH = 100


class NotFound(RecseekError):
    """An unknown model, version, index, user or item (HTTP 404)."""


class Conflict(RecseekError):
    """The request contradicts the server's state, e.g. a version registered twice (HTTP 409)."""


# ---------------------------------------------------------------- item categories
_TOKEN_SPLIT = re.compile(r"[|,\s]+")


class ItemCategories:
    """Titles and category fields of items, for responses and recommendation filters.

    Read from a CSV (``,``), TSV / RecBole ``.item`` (tab) or Parquet file whose first
    column holds item ids (RecBole type suffixes such as ``genre:token_seq`` are dropped),
    or from the item data saved inside a model bundle. A column named ``title`` (or
    ``movie_title``) gives response titles. A filter ``{"genre": ["Comedy", "Drama"]}``
    keeps items whose ``genre`` equals one of the values or contains one of them as a
    token (values split on ``|``, ``,`` and spaces); conditions on several fields must all hold.
    """

    def __init__(self, columns: Mapping[str, dict[str, np.ndarray]], n_items: int, source: str,
                 titles: np.ndarray | None = None) -> None:
        self.columns = dict(columns)
        self.n_items = n_items
        self.source = source
        self.titles = titles

    @classmethod
    def read(cls, path: Path, items: Any) -> ItemCategories:
        import pandas as pd

        if not path.is_file():
            raise DataError(f"item_data file {path} does not exist")
        suffix = path.suffix.lower()
        try:
            if suffix in (".parquet", ".pq"):
                df = pd.read_parquet(path)
            else:
                sep = "," if suffix == ".csv" else "\t"
                df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8",
                                 encoding_errors="replace")
        except Exception as e:
            raise DataError(f"item_data file {path} cannot be read: {e}") from None
        if df.shape[1] < 2:
            raise DataError(f"item_data file {path} needs an item id column and at least one category column")
        df.columns = [str(c).split(":", 1)[0] for c in df.columns]
        return cls.from_frame(df.set_index(df.columns[0]), items, str(path))

    @classmethod
    def from_bundle(cls, path: Path, items: Any) -> ItemCategories | None:
        """The item data saved inside the model bundle at ``path`` (None when it has none)."""
        from .. import persistence

        reader = getattr(persistence, "read_item_data", None)
        if reader is None:
            return None
        df = reader(path)
        return None if df is None or df.shape[1] == 0 else cls.from_frame(df, items, f"{path.name}/item data")

    @classmethod
    def from_frame(cls, df: Any, items: Any, source: str) -> ItemCategories:
        """From a DataFrame indexed by raw item id (rows of unknown items are ignored)."""
        idx = items.indices(df.index.tolist(), missing="negative")
        keep = idx >= 0
        rows_known = idx[keep]
        n_items = len(items)
        title_col = next((c for c in df.columns if str(c) == "title"),
                         next((c for c in df.columns if str(c) == "movie_title"), None))
        titles = None
        columns: dict[str, dict[str, np.ndarray]] = {}
        for col in df.columns:
            values = np.asarray([_text(v) for v in df[col].to_numpy()[keep]], dtype=object)
            if col == title_col:
                titles = np.full(n_items, None, dtype=object)
                titles[rows_known] = values
                continue
            table: dict[str, list[int]] = {}
            for row, raw in zip(rows_known, values, strict=True):
                raw = raw.strip()
                if not raw:
                    continue
                for t in {raw, *[t for t in _TOKEN_SPLIT.split(raw) if t]}:
                    table.setdefault(t, []).append(int(row))
            columns[str(col)] = {t: np.asarray(r, dtype=np.int64) for t, r in table.items()}
        return cls(columns, n_items, source, titles)

    def allowed(self, flt: Mapping[str, Any]) -> np.ndarray:
        """Boolean mask over items for a filter ``{field: value or [values]}``."""
        mask = np.ones(self.n_items, dtype=bool)
        for field, want in flt.items():
            col = self.columns.get(field)
            if col is None:
                known = ", ".join(sorted(self.columns)) or "none"
                raise ParameterError(f"filter: unknown item field {field!r} (known: {known})")
            values = want if isinstance(want, list | tuple) else [want]
            hit = np.zeros(self.n_items, dtype=bool)
            for v in values:
                rows = col.get(str(v))
                if rows is not None:
                    hit[rows] = True
            mask &= hit
        return mask


def _text(v: Any) -> str:
    """A cell as text; missing values (None, NaN) as the empty string."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v)


# ---------------------------------------------------------------- models
class ModelServable:
    """A loaded recommender of one version."""

    kind = "model"

    def __init__(self, model: Any, name: str, version: str, path: Path,
                 categories: ItemCategories | None = None) -> None:
        self.model = model
        self.name = name
        self.version = version
        self.path = path
        self.categories = categories
        self.users = model.users_
        self.items = model.items_
        self.n_items = int(model.n_items_)
        self.n_users = int(model.n_users_)
        self.algorithm = model.display_name
        self.task = model.task
        self._item_ids = np.asarray(model.items_.ids)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "algorithm": self.algorithm, "task": self.task, "users": self.n_users,
                "items": self.n_items, "path": self.path.name,
                "filters": sorted(self.categories.columns) if self.categories else []}

    # ------------------------------------------------------------ id mapping (event loop)
    def user_index(self, raw: Any) -> int:
        """Index of a raw user id, -1 when the model does not know the user."""
        lookup = self.users._map()
        key = self.users._key(raw)
        return lookup.get(key, -1)

    def item_index(self, raw: Any) -> int:
        lookup = self.items._map()
        return lookup.get(self.items._key(raw), -1)

    def item_indices(self, raws: Sequence[Any]) -> np.ndarray:
        return self.items.indices(list(raws), missing="negative")

    def require_item(self, raw: Any) -> int:
        i = self.item_index(raw)
        if i < 0:
            raise NotFound(f"unknown item {raw!r} for model {self.name} version {self.version}")
        return i

    def exclusion(self, exclude: Sequence[Any] | None, flt: Mapping[str, Any] | None) -> np.ndarray | None:
        """Item indices a request must never get (explicit ids + items failing the filter)."""
        parts = []
        if exclude:
            idx = self.item_indices(exclude)
            parts.append(idx[idx >= 0])
        if flt:
            if self.categories is None:
                raise ParameterError(f"filter: model {self.name} has no item_data configured, so it cannot filter")
            parts.append(np.flatnonzero(~self.categories.allowed(flt)))
        if not parts:
            return None
        return np.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0]

    # ------------------------------------------------------------ batch execution (worker thread)
    def execute(self, jobs: Sequence[Job]) -> list[Any]:
        results: list[Any] = [None] * len(jobs)
        groups: dict[str, list[int]] = {}
        for n, j in enumerate(jobs):
            groups.setdefault(j.op, []).append(n)
        for op, rows in groups.items():
            fn = {"recommend": self._recommend, "recommend_new": self._recommend_new, "similar": self._similar,
                  "predict": self._predict}.get(op)
            try:
                if fn is None:
                    raise ParameterError(f"model {self.name} cannot run operation {op!r}")
                out = fn([jobs[r].payload for r in rows])
            except RecseekError as e:
                out = [e] * len(rows)
            for r, o in zip(rows, out, strict=True):
                results[r] = o
        return results

    def _rows(self, ids: np.ndarray, scores: np.ndarray, ks: Sequence[int]) -> list[dict[str, list]]:
        out = []
        safe = np.clip(ids, 0, None)
        raw = self._item_ids[safe]
        titles = self.categories.titles if self.categories is not None else None
        for r, k in enumerate(ks):
            keep = ids[r, :k] >= 0
            row = {"items": raw[r, :k][keep].tolist(), "scores": scores[r, :k][keep].tolist()}
            if titles is not None:
                row["titles"] = titles[safe[r, :k][keep]].tolist()
            out.append(row)
        return out

    def warm(self) -> None:
        """Run one small call of each operation the model supports (compiles and loads what it needs)."""
        if self.n_users == 0 or self.n_items == 0:
            return
        k = min(10, self.n_items)
        self.model.recommend(np.zeros(1, dtype=np.int64), k)
        if self.task == "rating":
            self.model.predict(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
        one = np.zeros(1, dtype=np.int64)
        for op, args in (("similar_items", (one, k)),
                         ("recommend_new", ([one], [np.ones(1, dtype=np.float32)], k))):
            if hasattr(self.model, op):
                try:
                    getattr(self.model, op)(*args)
                except RecseekError:
                    pass  # a model without this operation says so; requests get the same answer

    def _exclude_csr(self, users: np.ndarray, seen: Sequence[bool], extra: Sequence[np.ndarray | None],
                     include_seen: bool) -> sp.csr_array:
        """Rows of item indices to exclude (extra ones and, when asked, the user's training items)."""
        # a model saved without its training history knows no seen items (nothing to leave out)
        seen_m = self.model.seen_ if getattr(self.model, "has_history", True) else None
        cols = []
        for r, u in enumerate(users):
            c = []
            if include_seen and seen[r] and seen_m is not None and 0 <= u < self.n_users:
                c.append(seen_m.indices[seen_m.indptr[u]:seen_m.indptr[u + 1]])
            if extra[r] is not None:
                c.append(extra[r])
            cols.append(np.concatenate(c).astype(np.int64) if c else np.zeros(0, dtype=np.int64))
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in cols], out=indptr[1:])
        indices = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        m = sp.csr_array((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(users), self.n_items))
        m.sum_duplicates()
        return m

    def _recommend(self, payloads: list[dict[str, Any]]) -> list[Any]:
        users = np.fromiter((p["user"] for p in payloads), dtype=np.int64, count=len(payloads))
        ks = [p["k"] for p in payloads]
        kmax = max(ks)
        seen = [p["exclude_seen"] for p in payloads]
        extra = [p.get("exclude") for p in payloads]
        any_extra = any(e is not None for e in extra)
        if all(seen) or not any(seen):
            ex = self._exclude_csr(users, seen, extra, include_seen=False) if any_extra else None
            ranking = self.model.recommend(users, kmax, exclude_seen=seen[0], exclude=ex)
        else:
            ex = self._exclude_csr(users, seen, extra, include_seen=True)
            ranking = self.model.recommend(users, kmax, exclude_seen=False, exclude=ex)
        return self._rows(ranking.ids, ranking.scores, ks)

    def _recommend_new(self, payloads: list[dict[str, Any]]) -> list[Any]:
        ks = [p["k"] for p in payloads]
        items = [p["items"] for p in payloads]
        values = [p["values"] for p in payloads]
        # explicit exclusions: give them the lowest possible score after fold-in
        ranking = self.model.recommend_new(items, values, max(ks) + max(
            (len(p["exclude"]) for p in payloads if p.get("exclude") is not None), default=0),
            exclude_seen=True)
        ids, scores = ranking.ids, ranking.scores
        for r, p in enumerate(payloads):
            if p.get("exclude") is not None:
                drop = np.isin(ids[r], p["exclude"])
                kept_ids = np.concatenate([ids[r][~drop], np.full(drop.sum(), -1)])
                kept_scores = np.concatenate([scores[r][~drop], np.full(drop.sum(), -np.inf, dtype=np.float32)])
                ids[r], scores[r] = kept_ids, kept_scores
        return self._rows(ids, scores, ks)

    def _similar(self, payloads: list[dict[str, Any]]) -> list[Any]:
        items = np.fromiter((p["item"] for p in payloads), dtype=np.int64, count=len(payloads))
        ks = [p["k"] for p in payloads]
        ranking = self.model.similar_items(items, max(ks))
        return self._rows(ranking.ids, ranking.scores, ks)

    def _predict(self, payloads: list[dict[str, Any]]) -> list[Any]:
        lengths = [len(p["users"]) for p in payloads]
        users = np.concatenate([p["users"] for p in payloads])
        items = np.concatenate([p["items"] for p in payloads])
        pred = self.model.predict(users, items)
        out, start = [], 0
        for n in lengths:
            out.append(pred[start:start + n].tolist())
            start += n
        return out


# ---------------------------------------------------------------- search indexes
class IndexServable:
    """A loaded search index of one version (lexical, dense, hybrid or a lexical+dense folder)."""

    kind = "index"

    def __init__(self, retriever: Any, name: str, version: str, path: Path, hybrid: Any = None,
                 personalize: str | None = None) -> None:
        self.retriever = retriever
        self.hybrid = hybrid
        self.name = name
        self.version = version
        self.path = path
        self.personalize = personalize
        self.algorithm = type(retriever).__name__ if hybrid is None else f"{type(retriever).__name__}+hybrid"
        # Served indexes are never changed in place, but searching is not thread-safe either: a
        # loaded lexical index builds its scoring arrays on the first search, a dense one loads
        # its encoder then and shares one tokenizer, which refuses concurrent use. Batches of
        # one index version (several workers) therefore search one at a time.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, name: str, version: str, personalize: str | None = None) -> IndexServable:
        from ..persistence import MANIFEST
        from ..search.hybrid import load_retriever

        if (path / MANIFEST).is_file():
            return cls(load_retriever(path), name, version, path, personalize=personalize)
        if (path / "lexical").is_dir():
            from ..search.lexical import LexicalRetriever

            lexical = LexicalRetriever.load(path / "lexical", mmap=True)
            hybrid = None
            if (path / "dense").is_dir():
                from ..search.dense import DenseRetriever
                from ..search.hybrid import HybridRetriever

                hybrid = HybridRetriever([lexical, DenseRetriever.load(path / "dense")], method="rrf")
            return cls(lexical, name, version, path, hybrid=hybrid, personalize=personalize)
        raise DataError(f"{path} is neither a saved model or index nor an index folder with lexical/ inside")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "algorithm": self.algorithm, "path": self.path.name,
                               "hybrid": self.hybrid is not None or type(self.retriever).__name__ == "HybridRetriever"}
        n = getattr(self.retriever, "n_docs", None)
        if isinstance(n, int):
            out["documents"] = n
        if self.personalize:
            out["personalize"] = self.personalize
        return out

    def warm(self) -> None:
        """Search once with every retriever of this version (builds scoring state, loads encoders)."""
        for retriever in {id(r): r for r in (self.retriever, self.hybrid) if r is not None}.values():
            with self._lock:
                retriever.search(["warm up"], k=1)

    def pick(self, hybrid: bool | None) -> Any:
        if hybrid and self.hybrid is None and type(self.retriever).__name__ != "HybridRetriever":
            raise ParameterError(f"hybrid: index {self.name} has no dense part to fuse with")
        return self.hybrid if (hybrid and self.hybrid is not None) else self.retriever

    def execute(self, jobs: Sequence[Job]) -> list[Any]:
        """One ``search`` per (filter, hybrid, personalisation) group of the batch.

        Personalised queries go through :class:`recseek.search.personalized.ItemSearch`
        with the user's model version resolved when the request arrived.
        """
        import json

        results: list[Any] = [None] * len(jobs)
        groups: dict[tuple[str, bool, int, float], list[int]] = {}
        for n, j in enumerate(jobs):
            p = j.payload
            personal = p.get("personal")
            key = (json.dumps(p.get("filter"), sort_keys=True, default=str), bool(p.get("hybrid")),
                   0 if personal is None else id(personal[0]), -1.0 if personal is None else float(personal[2]))
            groups.setdefault(key, []).append(n)
        for (_, hybrid, _, _), rows in groups.items():
            payloads = [jobs[r].payload for r in rows]
            try:
                retriever = self.pick(hybrid)
                with self._lock:
                    hits = self._search(retriever, payloads)
                out = []
                for q, p in enumerate(payloads):
                    ids, scores = hits.ids[q, : p["k"]], hits.scores[q, : p["k"]]
                    keep = ids != ""
                    out.append({"items": ids[keep].tolist(), "scores": scores[keep].astype(np.float64).tolist()})
            except RecseekError as e:
                out = [e] * len(rows)
            for r, o in zip(rows, out, strict=True):
                results[r] = o
        return results

    @staticmethod
    def _search(retriever: Any, payloads: list[dict[str, Any]]) -> Any:
        queries = [p["query"] for p in payloads]
        k = max(p["k"] for p in payloads)
        flt = payloads[0].get("filter")
        personal = payloads[0].get("personal")
        if personal is None:
            return retriever.search(queries, k=k, filter=flt)
        from ..search.personalized import ItemSearch

        model: ModelServable = personal[0]
        searcher = ItemSearch(retriever, model.model, model.items, weight=personal[2], depth=PERSONAL_DEPTH)
        return searcher.search(queries, user=[p["personal"][1] for p in payloads], k=k, filter=flt)
