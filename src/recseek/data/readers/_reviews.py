"""Ratings with reviews: word ids, aspect:sentiment pairs or raw text per record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import DataError, ParameterError
from .._interactions import Interactions
from ._jstarcraft import read_jstarcraft
from ._text import (
    ID,
    NUMBER,
    TEXT,
    build_interactions,
    check_duplicates,
    check_file,
    existing,
    id_array,
    open_text,
    read_delimited,
)

#: Kinds of review understood by :func:`read_reviews`.
REVIEW_KINDS = ("auto", "words", "aspects", "text")
_LABELS = {"user": "user id", "item": "item id", "text": "review text", "score": "score"}


def read_reviews(path: str | Path, *, kind: str = "auto", duplicates: str = "last", analyzer=None) -> Interactions:
    """Read ratings that carry a review, ``user,item,review,score`` one per line.

    Kinds of review
    ---------------
    ``"words"``
        A colon-separated list of word ids (``musical_instruments.txt``:
        ``0,0,12:7:12:40,5.0``; an empty review is allowed). ``meta["review_words"]``
        holds the word counts of every stored record, a float32 CSR array of shape
        (nnz, n_words) aligned with ``matrix.data``; ``meta["review_vocabulary"]`` the
        word ids (unicode, first-seen order) naming its columns.
    ``"aspects"``
        Space-separated ``aspect:sentiment`` pairs (``dc_dense.txt``:
        ``94,33,效果:1 性价比:-1,4``). ``meta["review_aspects"]`` (nnz, n_aspects) float32
        holds the summed sentiment per mentioned aspect (an aspect mentioned with a net
        sentiment of 0 keeps an explicit zero entry), ``meta["review_aspect_mentions"]``
        the number of mentions, ``meta["aspect_names"]`` the aspect names.
    ``"text"``
        Raw review text (a CSV field, quoted when it holds commas or line breaks),
        tokenised with ``analyzer`` (default: :class:`recseek.search.Analyzer` with its
        defaults: lower case, English stop words, Snowball stemming) into
        ``meta["review_words"]`` / ``meta["review_vocabulary"]`` as for ``"words"``.
    ``"auto"`` (default)
        ``"words"`` when every review token is a non-negative integer, else
        ``"aspects"``; raw text is never guessed.

    Every per-record entry is cut with the records by :meth:`Interactions.subset`, so a
    split keeps each review with its rating. ``meta["comments"]`` keeps the review strings
    (not for ``"text"``); ``meta["review_kind"]`` names the kind read.

    Errors
    ------
    :class:`~recseek.errors.DataError` naming the file and line: a line without four
    fields, an empty id, a score that is not a number, an aspect token that is not
    ``name:number``, or a word list holding an empty word (``3::4``).
    """
    if kind not in REVIEW_KINDS:
        raise ParameterError(f"read_reviews: kind must be one of {', '.join(REVIEW_KINDS)}, got {kind!r}")
    check_duplicates(duplicates)
    p = check_file(existing(path))
    if kind == "text":
        return _read_text(p, duplicates, analyzer)
    data = read_jstarcraft(p, duplicates=duplicates)
    if "comments" not in data.meta:
        raise DataError(
            f"{p}: has no review column; expected four comma-separated fields user,item,review,score per line"
        )
    comments = pd.Series(np.asarray(data.meta["comments"]).astype(object), dtype=object)
    if kind == "auto":
        kind = _guess_kind(comments)
    meta = dict(data.meta)
    meta["review_kind"] = kind
    if kind == "words":
        words, vocab = _word_matrix(comments, p, data.order)
        meta["review_words"], meta["review_vocabulary"] = words, vocab
    else:
        sentiment, mentions, names = _aspect_matrices(comments, p, data.order)
        meta["review_aspects"], meta["review_aspect_mentions"], meta["aspect_names"] = sentiment, mentions, names
    return replace(data, meta=meta)


def _guess_kind(comments: pd.Series) -> str:
    tokens = comments.str.split(":").explode()
    tokens = tokens[tokens.notna() & (tokens != "")]
    return "words" if bool(tokens.str.fullmatch(r"\d+").all()) else "aspects"


def _line_of(path: Path, record: int) -> int:
    """Line number (1-based) of the ``record``-th (0-based) non-blank line of ``path``."""
    seen = -1
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                seen += 1
                if seen == record:
                    return lineno
    return record + 1


def _record_line(path: Path, order: np.ndarray | None, row: int) -> int:
    return _line_of(path, int(order[row]) if order is not None else row)


def _count_matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    m = sp.coo_array((values.astype(np.float32), (rows, cols)), shape=shape).tocsr()
    m.sum_duplicates()
    m.sort_indices()
    return sp.csr_array(m)


def _word_matrix(comments: pd.Series, path: Path, order: np.ndarray | None) -> tuple[sp.csr_array, np.ndarray]:
    tokens = comments.str.split(":").explode()
    nonempty_review = comments.reindex(tokens.index) != ""
    bad = nonempty_review & (tokens == "")
    if bad.any():
        row = int(tokens.index[np.flatnonzero(bad.to_numpy())[0]])
        raise DataError(
            f"{path}, line {_record_line(path, order, row)}: the review {comments.iloc[row]!r} holds an empty "
            "word id (two colons in a row, or a colon at an end)"
        )
    tokens = tokens[nonempty_review.to_numpy()]
    codes, uniques = pd.factorize(tokens.to_numpy(dtype=str))
    rows = tokens.index.to_numpy(dtype=np.int64)
    matrix = _count_matrix(rows, codes, np.ones(len(codes)), (len(comments), len(uniques)))
    return matrix, np.asarray(uniques, dtype=str)


def _aspect_matrices(comments: pd.Series, path: Path, order: np.ndarray | None
                     ) -> tuple[sp.csr_array, sp.csr_array, np.ndarray]:
    tokens = comments.str.split(" ").explode()
    tokens = tokens[tokens.notna() & (tokens != "")]
    parts = tokens.str.rpartition(":")
    names, sep, raw = parts[0], parts[1], parts[2]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = (sep != ":").to_numpy() | (names == "").to_numpy() | ~np.isfinite(values)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        row = int(tokens.index[k])
        raise DataError(
            f"{path}, line {_record_line(path, order, row)}: {tokens.iloc[k]!r} is not an aspect:sentiment pair "
            "(expected a name, a colon and a number, e.g. 'battery:-1')"
        )
    codes, uniques = pd.factorize(names.to_numpy(dtype=str))
    rows = tokens.index.to_numpy(dtype=np.int64)
    shape = (len(comments), len(uniques))
    mentions = _count_matrix(rows, codes, np.ones(len(codes)), shape)
    # the sentiment matrix keeps the mention pattern: an aspect whose sentiments cancel stays stored as 0
    # (coo -> csr sums duplicates without dropping zeros, so both matrices share one pattern)
    sentiment = _count_matrix(rows, codes, values, shape)
    return sentiment, mentions, np.asarray(uniques, dtype=str)


def _read_text(path: Path, duplicates: str, analyzer) -> Interactions:
    from ...search.analysis import Analyzer

    if analyzer is None:
        analyzer = Analyzer()
    elif not isinstance(analyzer, Analyzer):
        raise ParameterError(f"read_reviews: analyzer must be a recseek.search.Analyzer, got {type(analyzer).__name__}")
    names = ["user", "item", "text", "score"]
    cols = read_delimited(path, sep=",", names=names, kinds={"user": ID, "item": ID, "text": TEXT, "score": NUMBER},
                          quote=True, labels=_LABELS)
    data = build_interactions(id_array(cols["user"]), id_array(cols["item"]), cols["score"], None,
                              duplicates=duplicates, source=str(path))
    texts = np.asarray(cols["text"], dtype=object)[data.order]
    terms = analyzer.analyze_batch([str(t) for t in texts])
    lengths = np.fromiter((len(t) for t in terms), dtype=np.int64, count=len(terms))
    flat = [w for t in terms for w in t]
    codes, uniques = pd.factorize(np.asarray(flat, dtype=str)) if flat else (np.zeros(0, np.int64), np.zeros(0, str))
    rows = np.repeat(np.arange(len(terms), dtype=np.int64), lengths)
    words = _count_matrix(rows, codes, np.ones(len(codes)), (len(terms), len(uniques)))
    meta = {"source": str(path), "format": "reviews", "review_kind": "text",
            "review_words": words, "review_vocabulary": np.asarray(uniques, dtype=str)}
    return replace(data, meta=meta)

