"""Lexical retrieval: the BM25 family and TF-IDF cosine, updatable and memory-mappable.

Both retrievers precompute one impact score per (term, document) posting, as bm25s does,
so that a query's score for a document is the sum of its terms' impacts (times the
number of times the term occurs in the query). Queries are scored in batches by a
multi-core numba kernel.

Multi-field documents
    Fields are combined BM25F-style (Robertson, Zaragoza & Taylor 2004, in the simple
    form of Lucene's ``CombinedFieldQuery``): a term's frequency is the weighted sum of
    its frequencies in the fields, a document's length the weighted sum of the field
    lengths, and document frequency counts documents having the term in any field. With
    all weights 1 this equals indexing the concatenated fields.

Updates
    The index is a list of segments, each holding raw (weighted) term frequencies in
    term-major order. ``add`` appends a segment, ``delete`` marks rows deleted
    (tombstones); collection statistics (number of live documents N, average length,
    document frequencies) are kept exact, and the impacts are recomputed from them
    before the next search (one pass over the postings, no re-analysis). Scores
    therefore equal those of an index built from scratch on the same documents.
    ``compact`` merges segments and drops tombstones.

Document ids
    Ids are strings. ``index`` with a repeated id raises :class:`DataError` naming it;
    ``add`` of an id already indexed replaces that document (a repeated id inside one
    ``add`` batch is an error too); ``delete`` of an unknown id is an error.

Scoring (Kamphuis et al. 2020, "Which BM25 do you mean?"); tf is the BM25F frequency,
dl the document length, L = 1 - b + b * dl / avgdl:

==========  ===============================  ====================================
method      idf                              term-frequency part (tf > 0)
==========  ===============================  ====================================
lucene      ln(1 + (N - df + .5)/(df + .5))  tf / (tf + k1 L)
robertson   ln((N - df + .5)/(df + .5)), >=0 tf / (tf + k1 L)
atire       ln(N / df)                       tf (k1 + 1) / (tf + k1 L)
bm25l       ln((N + 1)/(df + .5))            (k1 + 1)(c + delta)/(k1 + c + delta), c = tf / L
bm25+       ln((N + 1)/df)                   tf (k1 + 1)/(tf + k1 L) + delta
==========  ===============================  ====================================

A term absent from a document contributes nothing (for bm25l and bm25+ this follows the
papers of Lv & Zhai 2011; bm25s instead shifts every score by a per-term constant).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import DataError, ModelFileError, ParameterError, RecseekError
from ..models._params import Bool, Choice, Float
from .analysis import Analyzer
from .base import Document, Hits, as_doc_ids, as_queries, check_k
from .base import doc_id as as_doc_id
from .filters import MetadataStore


def _kernels():
    """The index's kernels: compiled with numba when it is installed, else the numpy ones (same results)."""
    import importlib.util

    try:
        compiled = importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):
        compiled = False
    if not compiled:
        from . import _lexical_numpy as K
    else:
        from . import _lexical_kernels as K
    return K

if TYPE_CHECKING:
    from ._checks import IndexFile

__all__ = ["BM25", "TFIDF", "LexicalRetriever", "parse_documents"]

_METHODS = {"lucene": 0, "robertson": 1, "atire": 2, "bm25l": 3, "bm25+": 4}
_DEFAULT_DELTA = {"lucene": 0.0, "robertson": 0.0, "atire": 0.0, "bm25l": 0.5, "bm25+": 1.0}


def parse_documents(
    docs: Iterable[Document | Mapping[str, Any]], fields: Sequence[str]
) -> tuple[list[str], dict[str, list[str]], list[dict[str, Any]]]:
    """Split documents into ids, the texts of each field and metadata.

    A mapping's ``"id"`` is the id, keys in ``fields`` are text, every other key is
    metadata. A :class:`Document`'s ``fields`` are text (those not in ``fields`` ignored)
    and its ``metadata`` is metadata.
    """
    ids: list[str] = []
    texts: dict[str, list[str]] = {f: [] for f in fields}
    metas: list[dict[str, Any]] = []
    seen_field = False
    for pos, d in enumerate(docs):
        if isinstance(d, Document):
            raw_id, src, meta = d.id, d.fields, dict(d.metadata or {})
        elif isinstance(d, Mapping):
            if "id" not in d:
                raise DataError(f"document {pos} has no 'id'")
            raw_id, src = d["id"], d
            meta = {k: v for k, v in d.items() if k != "id" and k not in texts}
        else:
            raise DataError(f"document {pos} must be a Document or a dict, got {type(d).__name__}")
        doc_id = as_doc_id(raw_id, f"the id of document {pos}")
        ids.append(doc_id)
        for f in fields:
            v = src.get(f)
            if v is None:
                v = ""
            elif not isinstance(v, str):
                raise DataError(f"field {f!r} of document {doc_id!r} must be text, got {type(v).__name__}")
            else:
                seen_field = True
            texts[f].append(v)
        metas.append(meta)
    if ids and not seen_field:
        raise DataError(f"none of the documents has a text field among: {', '.join(fields)}")
    return ids, texts, metas


class _Segment:
    """Term-major postings of a run of rows: indptr (n_terms + 1), global rows, tf."""

    __slots__ = ("indptr", "rows", "tf", "impacts", "lo", "hi")

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, tf: np.ndarray, lo: int, hi: int,
                 impacts: np.ndarray | None = None):
        self.lo = lo  # the segment holds rows lo .. hi - 1
        self.hi = hi
        self.indptr = indptr
        self.rows = rows
        self.tf = tf
        self.impacts = impacts

    @property
    def n_terms(self) -> int:
        return int(self.indptr.shape[0] - 1)


class _View:
    """What one search reads: an immutable snapshot of the index taken after the last change.

    Writers never modify the arrays a view holds (they build new ones), so a search that
    took a view keeps answering from one consistent state while another thread updates
    the index.
    """

    __slots__ = ("n_rows", "n_live", "n_terms", "flat", "ids", "meta", "terms", "idf")

    def __init__(self, n_rows: int, n_live: int, n_terms: int, flat: tuple[np.ndarray, ...] | None,
                 ids: np.ndarray, meta: MetadataStore, terms: dict[str, int] | tuple[np.ndarray, np.ndarray],
                 idf: np.ndarray | None) -> None:
        self.n_rows = n_rows
        self.n_live = n_live
        self.n_terms = n_terms
        self.flat = flat
        self.ids = ids
        self.meta = meta
        self.terms = terms  # the growing term -> id dict, or (sorted terms, their ids) after loading
        self.idf = idf

    def term_ids(self, terms: list[str]) -> np.ndarray:
        """Ids of terms (-1 when unknown to this snapshot)."""
        if isinstance(self.terms, dict):
            get = self.terms.get
            out = np.fromiter((get(t, -1) for t in terms), dtype=np.int64, count=len(terms))
        else:
            sorted_terms, ids = self.terms
            if not terms or sorted_terms.shape[0] == 0:
                return np.full(len(terms), -1, dtype=np.int64)
            q = np.asarray(terms, dtype=str)
            pos = np.minimum(np.searchsorted(sorted_terms, q), sorted_terms.shape[0] - 1)
            out = np.where(sorted_terms[pos] == q, ids[pos], -1).astype(np.int64)
        # terms the dict gained after this snapshot was taken are unknown to it
        out[out >= self.n_terms] = -1
        return out


class LexicalRetriever:
    """Shared machinery of :class:`BM25` and :class:`TFIDF` (segments, updates, search, persistence).

    Thread safety: ``index``, ``add``, ``delete`` and ``compact`` take a lock; ``search``
    reads an immutable snapshot of the index, so searches never see a half-done update and
    do not wait for one (except the first search after an update, which builds the new
    snapshot). Each search answers from the state before or after every update.
    """

    name: ClassVar[str] = ""
    rules: ClassVar[dict[str, Any]] = {}

    analyzer: Analyzer
    fields: dict[str, float]

    # ------------------------------------------------------------------ setup
    def _init_common(self, fields: Mapping[str, float] | Sequence[str] | None, analyzer: Analyzer | None) -> None:
        if fields is None:
            fields = {"title": 1.0, "text": 1.0}
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, Mapping):
            fields = dict.fromkeys(fields, 1.0)
        if not fields:
            raise ParameterError(f"{self.name}: fields must name at least one text field")
        for f, w in fields.items():
            if not isinstance(f, str) or isinstance(w, bool) or not isinstance(w, int | float) or not np.isfinite(w) or w < 0:
                raise ParameterError(f"{self.name}: field weight of {f!r} must be a non-negative number, got {w!r}")
        if not any(w > 0 for w in fields.values()):
            raise ParameterError(f"{self.name}: at least one field weight must be positive")
        if analyzer is None:
            analyzer = Analyzer()
        if not isinstance(analyzer, Analyzer):
            raise ParameterError(f"{self.name}: analyzer must be an Analyzer, got {type(analyzer).__name__}")
        self.fields = {f: float(w) for f, w in fields.items()}
        self.analyzer = analyzer
        self._lock = threading.RLock()
        self._reset()

    def _check_params(self) -> None:
        for name, rule in self.rules.items():
            rule.check(self.name, name, getattr(self, name))

    def _reset(self) -> None:
        self._vocab: dict[str, int] | None = {}
        # after loading: terms sorted (unicode) and their ids; the dict is built on first update
        self._terms_sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._memo = None
        self._ids: list[str] | None = []
        self._ids_arr: np.ndarray | None = None
        self._row_of: dict[str, int] | None = {}
        self._lengths = np.zeros(0, dtype=np.float64)
        self._df = np.zeros(0, dtype=np.int64)
        self._meta = MetadataStore()
        self._segments: list[_Segment] = []
        self._n_live = 0
        self._total_len = 0.0
        self._dirty = True
        self._view: _View | None = None

    # ------------------------------------------------------------------ lazy maps
    def _vocab_map(self) -> dict[str, int]:
        if self._vocab is None:
            assert self._terms_sorted is not None
            terms, ids = self._terms_sorted
            self._vocab = dict(zip(terms.tolist(), ids.tolist(), strict=True))
            self._terms_sorted = None
        return self._vocab

    def _rows(self) -> dict[str, int]:
        if self._row_of is None:
            ids = self._id_list()
            alive = ~self._meta.deleted
            self._row_of = {ids[r]: r for r in np.flatnonzero(alive).tolist()}
        return self._row_of

    def _id_list(self) -> list[str]:
        """Row -> id as a list (call before changing it, then drop ``_ids_arr``)."""
        if self._ids is None:
            assert self._ids_arr is not None
            self._ids = self._ids_arr.tolist()
        return self._ids

    def _id_array(self) -> np.ndarray:
        if self._ids_arr is None:
            ids = self._id_list()
            self._ids_arr = np.asarray(ids, dtype=str) if ids else np.zeros(0, dtype="<U1")
        return self._ids_arr

    @property
    def n_docs(self) -> int:
        """Number of live (not deleted) documents."""
        return self._n_live

    @property
    def n_segments(self) -> int:
        return len(self._segments)

    def __len__(self) -> int:
        return self._n_live

    def __contains__(self, doc_id: object) -> bool:
        if isinstance(doc_id, bool) or not isinstance(doc_id, str | int | np.integer):
            return False
        with self._lock:
            return str(doc_id) in self._rows()

    # ------------------------------------------------------------------ building
    def index(self, docs: Iterable[Document | Mapping[str, Any]]) -> LexicalRetriever:
        """Build the index from scratch (replacing any previous content)."""
        self._check_params()
        ids, texts, metas = parse_documents(docs, list(self.fields))
        if not ids:
            raise DataError("no documents to index (the corpus is empty)")
        _first_duplicate(ids, "index")
        with self._lock:
            self._reset()
            self._append(ids, texts, metas)
        return self

    def add(self, docs: Iterable[Document | Mapping[str, Any]]) -> LexicalRetriever:
        """Add documents without rebuilding; an id already indexed is replaced."""
        self._check_params()
        ids, texts, metas = parse_documents(docs, list(self.fields))
        if not ids:
            return self
        _first_duplicate(ids, "add")
        with self._lock:
            self._meta.check(metas)  # a bad batch changes nothing (not even the documents it replaces)
            rows = self._rows()
            replaced = [i for i in ids if i in rows]
            if replaced:
                self._delete_rows(np.asarray([rows[i] for i in replaced], dtype=np.int64))
            self._append(ids, texts, metas)
        return self

    def delete(self, ids: Sequence[str] | str) -> LexicalRetriever:
        """Delete documents by id (strings, or integers as ``index`` accepts); tombstones until :meth:`compact`."""
        wanted = as_doc_ids(ids, "delete")
        with self._lock:
            rows = self._rows()
            out = []
            for i in wanted:
                r = rows.get(i)
                if r is None:
                    raise DataError(f"cannot delete document {i!r}: no such id in the index")
                out.append(r)
            if out:
                self._delete_rows(np.unique(np.asarray(out, dtype=np.int64)))
        return self

    def _append(self, ids: list[str], texts: dict[str, list[str]], metas: list[dict[str, Any]]) -> None:
        K = _kernels()

        vocab = self._vocab_map()
        if self._memo is None or self._memo.vocab is not vocab:
            self._memo = self.analyzer.term_ids(vocab)
        id_list = self._id_list()
        rows = self._rows()
        n0 = len(self._meta)
        n = len(ids)
        # metadata first: it validates values before anything changes
        self._meta.append(metas)
        lengths = np.zeros(n, dtype=np.float64)
        rows_l, terms_l, w_l = [], [], []
        row_range = np.arange(n0, n0 + n, dtype=np.int32)
        for f, w in self.fields.items():
            if w == 0:
                continue
            lens, tids = self.analyzer.encode(texts[f], vocab, memo=self._memo)
            lens_a = np.asarray(lens, dtype=np.int64)
            lengths += w * lens_a
            rows_l.append(np.repeat(row_range, lens_a))
            terms_l.append(np.asarray(tids, dtype=np.int64))
            w_l.append(np.full(len(tids), w))
        n_terms = len(vocab)
        indptr, prow, tf = K.build_postings(
            np.concatenate(rows_l), np.concatenate(terms_l), np.concatenate(w_l), n0, n, n_terms
        )
        self._segments.append(_Segment(indptr, prow, tf, n0, n0 + n))
        id_list.extend(ids)
        self._ids_arr = None
        for j, i in enumerate(ids):
            rows[i] = n0 + j
        self._lengths = np.concatenate([self._lengths, lengths])
        self._df = _padded(self._df, n_terms) + np.diff(indptr)
        self._n_live += n
        self._total_len += float(lengths.sum())
        self._changed()

    def _delete_rows(self, rows: np.ndarray) -> None:
        K = _kernels()

        ids = self._id_list()
        row_of = self._rows()
        gone = np.zeros(len(self._meta), dtype=np.bool_)
        gone[rows] = True
        dec = np.zeros(self._df.shape[0], dtype=np.int64)
        for seg in self._segments:
            if gone[seg.lo : seg.hi].any():
                part = np.zeros(seg.n_terms, dtype=np.int64)
                K.doc_freqs(seg.indptr, seg.rows, gone, part)
                dec[: seg.n_terms] += part
        self._df = self._df - dec
        self._meta.mark_deleted(rows)
        for r in rows.tolist():
            row_of.pop(ids[r], None)
        self._n_live -= int(rows.size)
        self._total_len -= float(self._lengths[rows].sum())
        if self._n_live == 0:
            self._total_len = 0.0
        self._changed()

    def _changed(self) -> None:
        """Mark the scores stale; the next search builds a new snapshot (the old one stays valid)."""
        self._dirty = True
        self._view = None

    def compact(self) -> LexicalRetriever:
        """Merge all segments into one and drop deleted documents (rows renumbered)."""
        K = _kernels()

        with self._lock:
            alive = ~self._meta.deleted
            keep = np.flatnonzero(alive)
            if len(self._segments) <= 1 and keep.size == alive.size:
                return self
            remap = np.full(alive.size, -1, dtype=np.int64)
            remap[keep] = np.arange(keep.size)
            seg_ptr, seg_nterms, indptr_all, rows_all, tf_all = self._concat([s.tf for s in self._segments])
            indptr, rows, tf = K.merge_segments(seg_ptr, seg_nterms, indptr_all, rows_all, tf_all, remap,
                                                self._df.shape[0])
            ids = self._id_list()
            self._ids = [ids[r] for r in keep.tolist()]
            self._ids_arr = None
            self._row_of = {d: r for r, d in enumerate(self._ids)}
            self._lengths = self._lengths[keep]
            self._meta = self._meta.take(keep)
            self._segments = [_Segment(indptr, rows, tf, 0, int(keep.size))]
            self._changed()
        return self

    def _concat(self, values: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """Segment table + concatenated postings (no copy for a single segment)."""
        segs = self._segments
        seg_nterms = np.asarray([s.n_terms for s in segs], dtype=np.int64)
        if len(segs) == 1:
            s = segs[0]
            return np.zeros(1, dtype=np.int64), seg_nterms, s.indptr, s.rows, values[0]
        seg_ptr = np.zeros(len(segs), dtype=np.int64)
        parts, off, pos = [], 0, 0
        for i, s in enumerate(segs):
            seg_ptr[i] = pos
            parts.append(np.asarray(s.indptr) + off)
            pos += s.n_terms + 1
            off += s.rows.shape[0]
        indptr_all = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        rows_all = np.concatenate([s.rows for s in segs]) if segs else np.zeros(0, dtype=np.int32)
        vals = np.concatenate(values) if segs else np.zeros(0, dtype=np.float32)
        return seg_ptr, seg_nterms, indptr_all, rows_all, vals

    # ------------------------------------------------------------------ scoring state
    def _refresh(self) -> None:
        """Recompute impacts from the current collection statistics when they changed (lock held)."""
        if self._dirty:
            if self._segments:
                self._compute_impacts()
            self._dirty = False
            self._view = None

    def _current_view(self) -> _View:
        """The snapshot searches read; built under the lock when an update made it stale."""
        view = self._view
        if view is not None:
            return view
        with self._lock:
            if self._view is None:
                self._refresh()
                terms = self._vocab if self._vocab is not None else self._terms_sorted
                assert terms is not None
                flat = self._concat([s.impacts for s in self._segments]) if self._segments else None
                self._view = _View(len(self._meta), self._n_live, int(self._df.shape[0]), flat, self._id_array(),
                                   self._meta.frozen(), terms, self._query_idf())
            return self._view

    def refresh(self) -> None:
        """Bring scores up to date now (otherwise done by the next search)."""
        self._current_view()

    def _compute_impacts(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _query_idf(self) -> np.ndarray | None:
        """IDF the query weights need (None when queries are weighted by term counts only)."""
        return None

    def _query_weights(self, view: _View, q_terms: np.ndarray, q_counts: np.ndarray, q_of: np.ndarray,
                       nq: int) -> np.ndarray:
        return q_counts.astype(np.float32)

    # ------------------------------------------------------------------ search
    def search(
        self, queries: str | Sequence[str], k: int = 10, *, filter: Mapping[str, Any] | None = None
    ) -> Hits:
        """Best ``k`` documents for each query.

        Parameters
        ----------
        queries : str or sequence of str
        k : int
            Results per query (>= 1); more than the documents in the index is clipped to their number.
        filter : dict, optional
            Metadata conditions (see :mod:`recseek.search.filters`) applied before top-k.

        Returns
        -------
        Hits
            ids (n_queries, min(k, n_docs)) padded with ``""``, scores float32 padded with ``-inf``.
            Documents with no query term (score 0) are never returned.
        """
        queries = as_queries(queries)
        k = check_k(k)
        view = self._current_view()
        analyzed = self.analyzer.analyze_batch(queries)
        lengths = np.fromiter((len(a) for a in analyzed), dtype=np.int64, count=len(analyzed))
        ids = view.term_ids([t for a in analyzed for t in a])
        return self._search_view(view, lengths, ids, k, filter)

    def search_encoded(
        self, lengths: np.ndarray, term_ids: np.ndarray, k: int = 10, *, filter: Mapping[str, Any] | None = None
    ) -> Hits:
        """Search with queries already turned into term ids (as by ``analyzer.encode``).

        ``lengths[q]`` terms of ``term_ids`` belong to query ``q``; ids ``< 0`` (unknown
        terms) and ids the index does not know are ignored.
        """
        lengths = np.asarray(lengths)
        term_ids = np.asarray(term_ids)
        if lengths.ndim != 1 or term_ids.ndim != 1 or lengths.dtype.kind not in "iu" or \
                (term_ids.size and term_ids.dtype.kind not in "iu"):
            raise ParameterError("search_encoded needs one-dimensional integer arrays of lengths and term ids")
        if (lengths < 0).any() or int(lengths.sum()) != term_ids.shape[0]:
            raise ParameterError(f"query lengths must be non-negative and sum to the {term_ids.shape[0]} term ids")
        k = check_k(k)
        view = self._current_view()
        tids = term_ids.astype(np.int64)
        tids[tids >= view.n_terms] = -1
        return self._search_view(view, lengths.astype(np.int64), tids, k, filter)

    def _search_view(self, view: _View, lengths: np.ndarray, term_ids: np.ndarray, k: int,
                     filter: Mapping[str, Any] | None) -> Hits:
        K = _kernels()

        nq = int(lengths.shape[0])
        allowed = view.meta.mask(filter)
        k = min(k, view.n_live)  # never more results than documents
        empty_ids = np.full((nq, k), "", dtype=view.ids.dtype if view.n_rows else "<U1")
        if nq == 0 or k == 0 or view.flat is None:
            return Hits(empty_ids, np.full((nq, k), -np.inf, dtype=np.float32))
        q_of = np.repeat(np.arange(nq, dtype=np.int64), lengths)
        keep = term_ids >= 0
        q_of, term_ids = q_of[keep], term_ids[keep]
        n_terms = max(view.n_terms, 1)
        key, counts = np.unique(q_of * n_terms + term_ids, return_counts=True)
        q_of, q_terms = key // n_terms, key % n_terms
        weights = self._query_weights(view, q_terms, counts, q_of, nq)
        q_indptr = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(np.bincount(q_of, minlength=nq), out=q_indptr[1:])
        seg_ptr, seg_nterms, indptr_all, rows_all, imp_all = view.flat
        n_chunks = max(1, min(nq, K.get_num_threads()))
        with K.launch_guard():
            rows, scores = K.search(seg_ptr, seg_nterms, indptr_all, rows_all, imp_all, q_indptr, q_terms,
                                    weights.astype(np.float32), allowed, view.n_rows, k, n_chunks)
        out_ids = np.where(rows >= 0, view.ids[np.maximum(rows, 0)], "")
        return Hits(out_ids, scores)

    def metadata_fields(self) -> dict[str, str]:
        """Filterable metadata fields and their kinds (``"number"`` or ``"string"``)."""
        meta = self._current_view().meta
        return {f: meta.kind(f) for f in meta.fields}

    def get_metadata(self, doc_id: str) -> dict[str, Any]:
        """Metadata stored for one document."""
        key = as_doc_id(doc_id, "get_metadata(): id")
        with self._lock:
            r = self._rows().get(key)
            if r is None:
                raise DataError(f"no document {doc_id!r} in the index")
            return self._meta.get(r)

    # ------------------------------------------------------------------ persistence
    def _params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _term_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Terms sorted (unicode) and the id of each, from wherever the mapping lives now."""
        if self._terms_sorted is not None:
            return self._terms_sorted
        vocab = self._vocab_map()
        if not vocab:
            return np.zeros(0, dtype="<U1"), np.zeros(0, dtype=np.int64)
        terms = np.asarray(list(vocab.keys()), dtype=str)
        ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
        order = np.argsort(terms, kind="stable")
        return terms[order], ids[order]

    def save(self, path: str | Path) -> Path:
        """Save as a directory (``manifest.json``, ``arrays.npz`` and one ``.npy`` per big array).

        The term -> id mapping is stored explicitly (terms sorted, with their ids).
        """
        from ..persistence import write_bundle

        with self._lock:
            self._refresh()
            terms, term_ids = self._term_table()
            meta_arrays, meta_info = self._meta.to_arrays("meta")
            df = _padded(self._df, terms.shape[0])
            arrays = {"lengths": self._lengths, "df": df, **meta_arrays}
            extra = {"terms_sorted": terms, "terms_ids": term_ids, "ids": self._id_array()}
            for i, s in enumerate(self._segments):
                extra[f"seg{i}.indptr"] = np.asarray(s.indptr)
                extra[f"seg{i}.rows"] = np.asarray(s.rows)
                extra[f"seg{i}.tf"] = np.asarray(s.tf)
                extra[f"seg{i}.impacts"] = np.asarray(s.impacts)
            manifest = {
                "kind": "search-index",
                "retriever": self.name,
                "params": self._params(),
                "fields": self.fields,
                "analyzer": self.analyzer.to_dict(),
                "segment_rows": [[s.lo, s.hi] for s in self._segments],
                "metadata": meta_info,
                "n_live": self._n_live,
                "total_length": self._total_len,
            }
            return write_bundle(path, arrays, manifest, extra_files=extra)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False) -> LexicalRetriever:
        """Load a saved index; ``mmap=True`` memory-maps postings, terms and ids.

        Every array is checked (dtype, shape, bounds, and consistency with the others: document
        frequencies and impact scores are recomputed and compared) before any kernel reads it; a
        damaged or inconsistent index is a :class:`ModelFileError`.
        """
        from ._checks import IndexFile, read_index_bundle

        manifest, arrays = read_index_bundle(path, mmap=mmap)
        if manifest.get("kind") != "search-index":
            raise ModelFileError(f"{path} holds a {manifest.get('kind')!r}, not a search index")
        kind = manifest.get("retriever")
        target = {"BM25": BM25, "TFIDF": TFIDF}.get(kind)  # type: ignore[call-overload]
        if target is None:
            raise ModelFileError(f"{path}: unknown lexical retriever {kind!r}")
        if cls is not LexicalRetriever and target is not cls:
            raise ModelFileError(f"{path} holds a {kind} index, not {cls.name}")
        f = IndexFile(path, manifest, arrays)
        try:
            obj = target(**f.entry("params", dict), fields=f.entry("fields", (dict, list)),
                         analyzer=Analyzer.from_dict(f.entry("analyzer", dict)))
        except (RecseekError, TypeError) as e:
            raise ModelFileError(f"{path}: the saved settings are invalid ({e})") from None
        _restore(obj, f)
        return obj


def _padded(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` (int64) extended with zeros to length ``n``."""
    if a.shape[0] >= n:
        return a
    out = np.zeros(n, dtype=np.int64)
    out[: a.shape[0]] = a
    return out


def _restore(obj: LexicalRetriever, f: IndexFile) -> None:
    """Fill ``obj`` from a saved index after checking every array (a ModelFileError otherwise)."""
    K = _kernels()

    ids = f.array("ids", "U", (None,))
    n_rows = ids.shape[0]
    lengths = f.array("lengths", np.float64, (n_rows,))
    f.finite("lengths", lengths, 0.0)
    df = f.array("df", np.int64, (None,))
    n_terms = df.shape[0]
    terms = f.array("terms_sorted", "U", (n_terms,))
    term_ids = f.array("terms_ids", np.int64, (n_terms,))
    if n_terms and (np.any(terms[1:] <= terms[:-1]) or not np.array_equal(np.sort(term_ids), np.arange(n_terms))):
        raise f.fail("the term table is not sorted or does not map terms one-to-one onto ids 0..n-1")
    try:
        meta = MetadataStore.from_arrays(f.arrays, f.entry("metadata", dict), "meta")
    except DataError as e:
        raise f.fail(str(e)) from None
    if len(meta) != n_rows:
        raise f.fail(f"metadata covers {len(meta)} documents but there are {n_rows} ids")
    live = ~meta.deleted
    f.unique_ids("ids", ids, live)
    n_live = f.count("n_live")
    if n_live != int(live.sum()):
        raise f.fail(f"n_live is {n_live} but {int(live.sum())} documents are not deleted")
    total = f.entry("total_length", (int, float))
    if not np.isclose(float(total), float(lengths[live].sum()), rtol=1e-6, atol=1e-6):
        raise f.fail("total_length disagrees with the document lengths")
    segments = _restore_segments(f, n_rows, n_terms)
    alive = live.astype(np.bool_)
    recount = np.zeros(n_terms, dtype=np.int64)
    for s in segments:
        part = np.zeros(s.n_terms, dtype=np.int64)
        K.doc_freqs(s.indptr, s.rows, alive, part)
        recount[: s.n_terms] += part
    if not np.array_equal(recount, df):
        raise f.fail("document frequencies disagree with the postings")
    obj._vocab = None
    obj._terms_sorted = (terms, term_ids)
    obj._ids = None
    obj._ids_arr = ids
    obj._row_of = None
    obj._lengths = np.asarray(lengths, dtype=np.float64)
    obj._df = np.asarray(df, dtype=np.int64)
    obj._meta = meta
    obj._n_live = n_live
    obj._total_len = float(total)
    saved = [s.impacts for s in segments]
    obj._segments = segments
    obj._compute_impacts()
    for i, (s, stored) in enumerate(zip(segments, saved, strict=True)):
        if not np.allclose(s.impacts, stored, rtol=1e-5, atol=1e-6):
            raise f.fail(f"seg{i}.impacts disagree with the postings and statistics")
        s.impacts = stored
    obj._dirty = False
    obj._view = None


def _restore_segments(f: IndexFile, n_rows: int, n_terms: int) -> list[_Segment]:
    """The saved segments, each checked: offsets, rows inside the segment and ascending per term, tf > 0."""
    spans = f.entry("segment_rows", list)
    segments = []
    expect_lo = 0
    for i, span in enumerate(spans):
        if (not isinstance(span, list) or len(span) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in span)
                or span[0] != expect_lo or span[1] < span[0]):
            raise f.fail(f"segment {i} covers rows {span!r}, expected [{expect_lo}, end >= {expect_lo}]")
        lo, hi = span
        expect_lo = hi
        indptr = f.array(f"seg{i}.indptr", np.int64, (None,))
        if not 1 <= indptr.shape[0] <= n_terms + 1:
            raise f.fail(f"seg{i}.indptr covers {indptr.shape[0] - 1} terms, the index has {n_terms}")
        rows = f.array(f"seg{i}.rows", np.int32, (None,))
        nnz = rows.shape[0]
        f.indptr(f"seg{i}.indptr", indptr, nnz)
        f.within(f"seg{i}.rows", rows, lo, hi)
        step = np.diff(rows.astype(np.int64))
        starts = np.zeros(max(nnz - 1, 0), dtype=bool)
        inner = indptr[1:-1]
        starts[inner[(inner > 0) & (inner < nnz)] - 1] = True
        if (step <= 0)[~starts].any():
            raise f.fail(f"seg{i}.rows are not ascending within a term")
        tf = f.array(f"seg{i}.tf", np.float32, (nnz,))
        f.finite(f"seg{i}.tf", tf, 0.0)
        impacts = f.array(f"seg{i}.impacts", np.float32, (nnz,))
        f.finite(f"seg{i}.impacts", impacts)
        segments.append(_Segment(indptr, rows, tf, lo, hi, impacts))
    if expect_lo != n_rows:
        raise f.fail(f"segments cover rows 0..{expect_lo - 1} but there are {n_rows} documents")
    return segments


def _first_duplicate(ids: list[str], what: str) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                raise DataError(f"document id {i!r} occurs more than once in the documents given to {what}()")
            seen.add(i)


class BM25(LexicalRetriever):
    """Okapi BM25 and its variants (Robertson & Zaragoza 2009; Kamphuis et al. 2020).

    Parameters
    ----------
    method : {"lucene", "robertson", "atire", "bm25l", "bm25+"}
    k1 : float
        Term-frequency saturation (>= 0).
    b : float
        Length normalisation in [0, 1].
    delta : float or None
        Lower-bound shift of bm25l (default 0.5) and bm25+ (default 1.0); unused otherwise.
    fields : dict field -> weight, or list of fields (weight 1)
        Text fields and their BM25F weights; default ``{"title": 1.0, "text": 1.0}``.
    analyzer : Analyzer
        Turns text into terms (saved with the index).
    """

    name: ClassVar[str] = "BM25"
    rules: ClassVar[dict[str, Any]] = {
        "method": Choice(tuple(_METHODS)),
        "k1": Float(lo=0.0),
        "b": Float(lo=0.0, hi=1.0),
        "delta": Float(lo=0.0, none_ok=True),
    }

    def __init__(
        self,
        method: str = "lucene",
        k1: float = 1.2,
        b: float = 0.75,
        delta: float | None = None,
        fields: Mapping[str, float] | Sequence[str] | None = None,
        analyzer: Analyzer | None = None,
    ) -> None:
        self.method = method
        self.k1 = k1
        self.b = b
        self.delta = delta
        self._check_params()
        self._init_common(fields, analyzer)

    def _params(self) -> dict[str, Any]:
        return {"method": self.method, "k1": self.k1, "b": self.b, "delta": self.delta}

    def idf(self) -> np.ndarray:
        """IDF of every term under the current statistics (float64, by term id)."""
        n = float(self._n_live)
        df = self._df.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.method == "lucene":
                idf = np.log1p((n - df + 0.5) / (df + 0.5))
            elif self.method == "robertson":
                idf = np.log(np.maximum((n - df + 0.5) / (df + 0.5), 1.0))
            elif self.method == "atire":
                idf = np.log(n / df)
            elif self.method == "bm25l":
                idf = np.log((n + 1.0) / (df + 0.5))
            else:
                idf = np.log((n + 1.0) / df)
        idf[df <= 0] = 0.0
        return idf

    def _compute_impacts(self) -> None:
        K = _kernels()

        idf = self.idf()
        avgdl = self._total_len / self._n_live if self._n_live else 1.0
        if avgdl <= 0:
            avgdl = 1.0
        lnorm = 1.0 - self.b + self.b * self._lengths / avgdl
        if self.method == "bm25l":
            lnorm = np.maximum(lnorm, 1e-12)  # an empty document with b = 1
        delta = _DEFAULT_DELTA[self.method] if self.delta is None else float(self.delta)
        code = _METHODS[self.method]
        for s in self._segments:
            s.impacts = K.bm25_impacts(s.indptr, s.rows, s.tf, idf[: s.n_terms], lnorm, float(self.k1), delta, code)


class TFIDF(LexicalRetriever):
    """TF-IDF vectors compared by cosine similarity (Salton & Buckley 1988).

    A document's weight for term t is ``tf_w * idf`` with ``tf_w = 1 + ln(tf)`` when
    ``sublinear_tf`` (for tf >= 1; smaller BM25F-weighted frequencies are kept as they are)
    or ``tf`` otherwise, and ``idf = ln((1 + N) / (1 + df)) + 1``; document and query
    vectors are L2-normalised, so scores are cosines in [0, 1].

    Parameters
    ----------
    sublinear_tf : bool
    fields, analyzer : as for :class:`BM25`.
    """

    name: ClassVar[str] = "TFIDF"
    rules: ClassVar[dict[str, Any]] = {"sublinear_tf": Bool()}

    def __init__(
        self,
        sublinear_tf: bool = True,
        fields: Mapping[str, float] | Sequence[str] | None = None,
        analyzer: Analyzer | None = None,
    ) -> None:
        self.sublinear_tf = sublinear_tf
        self._check_params()
        self._init_common(fields, analyzer)

    def _params(self) -> dict[str, Any]:
        return {"sublinear_tf": self.sublinear_tf}

    def idf(self) -> np.ndarray:
        n = float(self._n_live)
        df = self._df.astype(np.float64)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        idf[df <= 0] = 0.0
        return idf

    def _compute_impacts(self) -> None:
        K = _kernels()

        idf = self.idf()
        sq = np.zeros(len(self._meta), dtype=np.float64)
        for s in self._segments:
            K.tfidf_sqnorms(s.indptr, s.rows, s.tf, idf[: s.n_terms], self.sublinear_tf, sq)
        with np.errstate(divide="ignore"):
            inv = np.where(sq > 0, 1.0 / np.sqrt(sq), 0.0)
        for s in self._segments:
            s.impacts = K.tfidf_impacts(s.indptr, s.rows, s.tf, idf[: s.n_terms], inv, self.sublinear_tf)

    def _query_idf(self) -> np.ndarray:
        return self.idf()

    def _query_weights(self, view: _View, q_terms: np.ndarray, q_counts: np.ndarray, q_of: np.ndarray,
                       nq: int) -> np.ndarray:
        idf = view.idf
        assert idf is not None
        f = q_counts.astype(np.float64)
        tfw = np.where(f >= 1, 1.0 + np.log(np.maximum(f, 1.0)), f) if self.sublinear_tf else f
        w = tfw * idf[q_terms]
        sq = np.bincount(q_of, weights=w * w, minlength=nq)
        norm = np.sqrt(sq)[q_of]
        return np.where(norm > 0, w / np.where(norm > 0, norm, 1.0), 0.0)
