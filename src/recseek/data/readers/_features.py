"""Item features: a numeric item x feature matrix aligned to an item vocabulary.

Three layouts are read by :func:`read_item_features`:

``"dense"``
    one line per item: the item id, then one number per feature (CSV, TSV, ``;`` or
    space separated; a header line naming the columns is optional and recognised by
    its non-numeric feature names);
``"triples"``
    one line per (item, feature) pair: ``item feature value`` (the value may be left
    out and is then 1); features are names or integer ids;
``"array"``
    a ``.npy`` matrix (one row per item) with its item ids in a text file (one id per
    line), or a ``.npz`` holding ``features`` (or a scipy sparse matrix saved with
    ``scipy.sparse.save_npz``), optionally ``ids`` and ``names``.

:func:`genre_features` builds features from an item table instead (MovieLens genres
and title words); :func:`read_item_relations` reads item-item relations (the related
products RankVFCD factorises).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ...errors import DataError, ParameterError
from .._vocab import Vocabulary
from ._text import (
    ID,
    NUMBER,
    TEXT,
    _lines,
    check_file,
    first_line,
    id_array,
    looks_numeric,
    plain_suffix,
    read_delimited,
    sep_name,
    sniff_sep,
    unify_ids,
)

if TYPE_CHECKING:
    import pandas as pd

    from .._interactions import Interactions

#: Layouts understood by :func:`read_item_features`.
FEATURE_FORMATS = ("dense", "triples", "array")
_UNKNOWN = ("error", "skip")
_SEPS = ("\t", ",", ";", " ")
#: Lines looked at when the layout of a text file is guessed.
_SNIFF_LINES = 2000


def read_item_features(
    path: str | Path,
    items: Vocabulary,
    *,
    format: str | None = None,
    sep: str | None = None,
    header: bool | None = None,
    ids: str | Path | None = None,
    unknown: str = "error",
) -> tuple[sp.csr_array, np.ndarray]:
    """Read item features for the items of ``items``.

    Parameters
    ----------
    path : path
        A text file (``"dense"`` or ``"triples"``) or a ``.npy`` / ``.npz`` file.
    items : Vocabulary
        The item vocabulary of the interaction data; row ``k`` of the result belongs to
        item index ``k``. Items the file does not mention get an empty row.
    format : {"dense", "triples", "array"}, optional
        The layout. Guessed when None: ``.npy``/``.npz`` are arrays; a text file whose
        lines have two or three fields and whose first column repeats an item id on
        another line, or whose second field is never a number (a feature name; the
        first line may be a header), is a triple list; anything else a dense table.
    sep : str, optional
        Field separator of a text file (guessed from the first line when None).
    header : bool, optional
        Whether a text file starts with a header line (guessed when None: the first
        line is a header when one of its feature fields is not a number).
    ids : path, optional
        For a ``.npy`` matrix: the text file of its item ids, one per line (default: a
        file beside it named ``<stem>.ids.txt`` or ``<stem>.ids``). For ``.npz``: used
        when the archive holds no ``ids`` array.
    unknown : {"error", "skip"}
        What to do with an item id that is not in ``items``: stop with an error naming
        the line, or leave the line out.

    Returns
    -------
    features : scipy.sparse.csr_array, shape (len(items), n_features), float32
        Sorted indices, no duplicates. A dense table keeps every one of its values
        (zeros included); a triple list keeps the pairs it lists.
    feature_names : ndarray of str, shape (n_features,)
        Column names (the header, the feature ids of a triple list, ``f0, f1 ...``
        otherwise).

    Raises
    ------
    DataError
        One sentence naming the file and, for text files, the line: a line with too
        few or too many fields (a missing column), an unknown item id, a value that
        is not a finite number, an item or (item, feature) pair given twice.
    """
    p = check_file(path)
    if unknown not in _UNKNOWN:
        raise ParameterError(f"read_item_features: unknown must be 'error' or 'skip', got {unknown!r}")
    if not isinstance(items, Vocabulary):
        raise ParameterError(f"read_item_features: items must be a Vocabulary, got {type(items).__name__}")
    if format is None:
        format = guess_feature_format(p, sep)
    if format not in FEATURE_FORMATS:
        raise ParameterError(f"unknown item feature format {format!r}; expected one of {', '.join(FEATURE_FORMATS)}")
    if format == "array":
        return _read_array(p, items, ids, unknown)
    if ids is not None:
        raise ParameterError("read_item_features: ids= only applies to .npy / .npz files")
    sep = _separator(p, sep)
    if format == "dense":
        return _read_dense(p, items, sep, header, unknown)
    return _read_triples(p, items, sep, header, unknown)


def with_item_features(data: Interactions, path: str | Path, **options) -> Interactions:
    """``data`` with the features of :func:`read_item_features` attached
    (``item_features`` and ``meta["item_feature_names"]``)."""
    features, names = read_item_features(path, data.items, **options)
    return replace(data, item_features=features, meta={**data.meta, "item_feature_names": names})


def guess_feature_format(path: str | Path, sep: str | None = None) -> str:
    """The layout of a feature file (see :func:`read_item_features`)."""
    p = Path(path)
    if plain_suffix(p) in (".npy", ".npz"):
        return "array"
    sep = _separator(p, sep)
    first_ids: set[str] = set()
    widths = set()
    numeric_second = 0
    for n, (_lineno, line) in enumerate(_lines(p, "utf-8")):
        if n >= _SNIFF_LINES:
            break
        if not line.strip():
            continue
        fields = line.split(sep)
        widths.add(len(fields))
        if len(fields) > 3:
            return "dense"
        key = fields[0].strip()
        if key in first_ids:
            return "triples"
        first_ids.add(key)
        if len(first_ids) > 1 and len(fields) > 1 and looks_numeric(fields[1].strip()):
            numeric_second += 1
    # a dense table has numbers after the id; second fields that are never numbers name features
    return "dense" if numeric_second or len(first_ids) < 2 else "triples"


# ---------------------------------------------------------------------- text layouts
def _separator(path: Path, sep: str | None) -> str:
    if sep is not None:
        if not isinstance(sep, str) or sep == "":
            raise ParameterError(f"read_item_features: sep must be a non-empty string, got {sep!r}")
        return sep
    return sniff_sep(first_line(path), _SEPS)


def _has_header(line: str, sep: str, header: bool | None, first_numeric_from: int) -> bool:
    if header is not None:
        return bool(header)
    fields = line.split(sep)
    return any(not looks_numeric(f.strip()) for f in fields[first_numeric_from:])


def _item_rows(path: Path, items: Vocabulary, raw: np.ndarray, lines: np.ndarray, unknown: str) -> np.ndarray:
    """Item index of every record (-1 where skipped); DataError naming the line of an unknown id."""
    raw_ids, _ = unify_ids(id_array(raw), items.ids)
    idx = items.indices(raw_ids, missing="negative")
    if unknown == "error" and (idx < 0).any():
        k = int(np.flatnonzero(idx < 0)[0])
        raise DataError(f"{path}, line {int(lines[k])}: unknown item id {str(raw[k])!r} (not in the interaction data)")
    return idx


def _data_lines(path: Path, skip: int) -> np.ndarray:
    """Line numbers of the non-blank data lines (after ``skip`` header lines)."""
    out = []
    for lineno, line in _lines(path, "utf-8"):
        if lineno > skip and line.strip():
            out.append(lineno)
    return np.asarray(out, dtype=np.int64)


def _read_dense(path: Path, items: Vocabulary, sep: str, header: bool | None,
                unknown: str) -> tuple[sp.csr_array, np.ndarray]:
    head = first_line(path)
    fields = head.split(sep)
    if len(fields) < 2:
        raise DataError(f"{path}, line 1: expected an item id and at least one feature separated by "
                        f"{sep_name(sep)}, found {len(fields)} field")
    skip = 1 if _has_header(head, sep, header, 1) else 0
    n_features = len(fields) - 1
    if skip:
        names = np.array([f.strip() for f in fields[1:]], dtype=str)
        if len(set(names.tolist())) != len(names):
            raise DataError(f"{path}, line 1: the header names a feature column twice")
    else:
        names = np.array([f"f{j}" for j in range(n_features)], dtype=str)
    cols = [f"c{j}" for j in range(n_features)]
    labels = {c: f"feature {str(names[j])!r} value" for j, c in enumerate(cols)}
    labels["item"] = "item id"
    kinds = {"item": ID, **dict.fromkeys(cols, NUMBER)}
    parsed = read_delimited(path, sep=sep, names=["item", *cols], kinds=kinds, skip_rows=skip, labels=labels)
    raw = np.asarray([s.strip() for s in parsed["item"]], dtype=object)
    values = np.column_stack([parsed[c] for c in cols]).astype(np.float32) if cols else np.zeros((len(raw), 0))
    lines = _data_lines(path, skip)
    rows = _item_rows(path, items, raw, lines, unknown)
    keep = rows >= 0
    rows, values, lines = rows[keep], values[keep], lines[keep]
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    dup = np.flatnonzero(sorted_rows[1:] == sorted_rows[:-1])
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise DataError(f"{path}, line {int(lines[b])}: item {str(items.id(int(rows[b])))!r} already has "
                        f"features on line {int(lines[a])}")
    # every value of a listed item is stored (zeros included), unlisted items have empty rows
    counts = np.zeros(len(items), dtype=np.int64)
    counts[rows] = n_features
    indptr = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    data = values[order].reshape(-1)
    indices = np.tile(np.arange(n_features, dtype=np.int32), len(rows))
    return _finish(data, indices, indptr, len(items), n_features), names


def _read_triples(path: Path, items: Vocabulary, sep: str, header: bool | None,
                  unknown: str) -> tuple[sp.csr_array, np.ndarray]:
    head = first_line(path)
    n_fields = len(head.split(sep))
    if n_fields not in (2, 3):
        raise DataError(f"{path}, line 1: expected 'item feature value' (3 fields, or 2 without the value) "
                        f"separated by {sep_name(sep)}, found {n_fields}")
    skip = 1 if header else 0
    if header is None and n_fields == 3:
        skip = 1 if not looks_numeric(head.split(sep)[2].strip()) else 0
    names_in = ["item", "feature", "value"][:n_fields]
    kinds = {"item": ID, "feature": TEXT}
    if n_fields == 3:
        kinds["value"] = NUMBER
    parsed = read_delimited(path, sep=sep, names=names_in, kinds=kinds, skip_rows=skip,
                            labels={"item": "item id", "value": "feature value"})
    raw = np.asarray([s.strip() for s in parsed["item"]], dtype=object)
    feats = np.asarray([s.strip() for s in parsed["feature"]], dtype=object)
    lines = _data_lines(path, skip)
    empty = np.flatnonzero(feats == "")
    if empty.size:
        raise DataError(f"{path}, line {int(lines[empty[0]])}: feature (column 2) is empty")
    values = parsed["value"].astype(np.float32) if n_fields == 3 else np.ones(len(raw), dtype=np.float32)
    rows = _item_rows(path, items, raw, lines, unknown)
    keep = rows >= 0
    rows, feats, values, lines = rows[keep], feats[keep], values[keep], lines[keep]
    fid = id_array(feats)
    names_sorted, cols = np.unique(fid, return_inverse=True)
    cols = cols.reshape(-1)
    key = rows * np.int64(max(len(names_sorted), 1)) + cols
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise DataError(f"{path}, line {int(lines[b])}: feature {str(feats[b])!r} of item {str(raw[keep][b])!r} "
                        f"is already given on line {int(lines[a])}")
    rows, cols, values = rows[order], cols[order], values[order]
    counts = np.bincount(rows, minlength=len(items)) if len(rows) else np.zeros(len(items), dtype=np.int64)
    indptr = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    names = np.array([str(x) for x in names_sorted], dtype=str)
    return _finish(values, cols.astype(np.int32), indptr, len(items), len(names)), names


# ---------------------------------------------------------------------- item relations
def read_item_relations(
    path: str | Path,
    items: Vocabulary,
    *,
    sep: str | None = None,
    header: bool | None = None,
    unknown: str = "error",
) -> sp.csr_array:
    """Read item-item relations (``item related_item [value]`` per line, value 1 when absent).

    The related-pair lists of RankVFCD (the "bought together" products of JStarCraft's
    ``relation.txt``). A header line is recognised by a non-numeric value field (or
    set ``header``). Returns a float32 CSR of shape (len(items), len(items)); a pair
    given twice, an unknown item id (with ``unknown="error"``), a missing field or a
    value that is not a number raise a DataError naming the file and line.
    """
    p = check_file(path)
    if unknown not in _UNKNOWN:
        raise ParameterError(f"read_item_relations: unknown must be 'error' or 'skip', got {unknown!r}")
    sep = _separator(p, sep)
    head = first_line(p)
    n_fields = len(head.split(sep))
    if n_fields not in (2, 3):
        raise DataError(f"{p}, line 1: expected 'item related_item value' (3 fields, or 2 without the value) "
                        f"separated by {sep_name(sep)}, found {n_fields}")
    skip = 1 if header else 0
    if header is None and n_fields == 3:
        skip = 1 if not looks_numeric(head.split(sep)[2].strip()) else 0
    names_in = ["item", "related", "value"][:n_fields]
    kinds = {"item": ID, "related": ID}
    if n_fields == 3:
        kinds["value"] = NUMBER
    parsed = read_delimited(p, sep=sep, names=names_in, kinds=kinds, skip_rows=skip,
                            labels={"item": "item id", "related": "related item id", "value": "relation value"})
    lines = _data_lines(p, skip)
    left = np.asarray([x.strip() for x in parsed["item"]], dtype=object)
    right = np.asarray([x.strip() for x in parsed["related"]], dtype=object)
    rows = _item_rows(p, items, left, lines, unknown)
    cols = _item_rows(p, items, right, lines, unknown)
    values = parsed["value"].astype(np.float32) if n_fields == 3 else np.ones(len(left), dtype=np.float32)
    keep = (rows >= 0) & (cols >= 0)
    rows, cols, values, lines = rows[keep], cols[keep], values[keep], lines[keep]
    key = rows * np.int64(len(items)) + cols
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise DataError(f"{p}, line {int(lines[b])}: the pair ({str(left[keep][b])!r}, {str(right[keep][b])!r}) "
                        f"is already given on line {int(lines[a])}")
    m = sp.csr_array((values, (rows, cols)), shape=(len(items), len(items)))
    m.sort_indices()
    return m


def with_item_relations(data: Interactions, path: str | Path, **options) -> Interactions:
    """``data`` with :func:`read_item_relations` attached as ``meta["item_relations"]`` (RankVFCD)."""
    return replace(data, meta={**data.meta, "item_relations": read_item_relations(path, data.items, **options)})


# ---------------------------------------------------------------------- arrays
def _read_ids_file(path: Path) -> np.ndarray:
    check_file(path)
    out = []
    for lineno, line in _lines(path, "utf-8"):
        s = line.strip()
        if not s:
            raise DataError(f"{path}, line {lineno}: empty item id")
        out.append(s)
    return np.asarray(out, dtype=object)


def _default_ids(p: Path) -> Path:
    stem = p.name[: -len(plain_suffix(p))] if plain_suffix(p) else p.name
    for name in (f"{stem}.ids.txt", f"{stem}.ids"):
        if (p.parent / name).exists():
            return p.parent / name
    raise DataError(f"{p}: no item id file found beside it ({stem}.ids.txt); pass ids= with the file of its "
                    "item ids, one per line")


def _read_array(p: Path, items: Vocabulary, ids: str | Path | None,
                unknown: str) -> tuple[sp.csr_array, np.ndarray]:
    names = None
    id_source = None
    try:
        loaded = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{p}: cannot be read as a NumPy file ({str(exc).splitlines()[0]})") from None
    if isinstance(loaded, np.ndarray):
        matrix: np.ndarray | sp.csr_array = loaded
    else:
        with loaded as z:
            keys = set(z.files)
            if {"data", "indices", "indptr", "shape"} <= keys:
                shape = tuple(int(x) for x in z["shape"])
                try:
                    matrix = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=shape)
                except ValueError as exc:
                    raise DataError(f"{p}: the sparse matrix is damaged ({exc})") from None
                if "format" in keys and np.asarray(z["format"]).item() not in (b"csr", "csr"):
                    raise DataError(f"{p}: a sparse matrix in {np.asarray(z['format']).item()!r} format; save a CSR")
            elif "features" in keys:
                matrix = z["features"]
            else:
                raise DataError(f"{p}: the archive holds no 'features' array (found {', '.join(sorted(keys))})")
            if "ids" in keys:
                id_values = np.asarray(z["ids"])
                id_source = f"{p} array 'ids'"
            if "names" in keys:
                names = np.asarray(z["names"]).astype(str)
    if id_source is None:
        id_path = Path(ids) if ids is not None else _default_ids(p)
        id_values = _read_ids_file(id_path)
        id_source = str(id_path)
    if matrix.ndim != 2:
        raise DataError(f"{p}: the feature matrix must have two dimensions, found {matrix.ndim}")
    n_rows, n_features = matrix.shape
    if len(id_values) != n_rows:
        raise DataError(f"{p}: {n_rows} feature rows but {len(id_values)} item ids in {id_source}")
    if isinstance(matrix, np.ndarray):
        if matrix.dtype.kind not in "iuf":
            raise DataError(f"{p}: the feature matrix must be numeric, found dtype {matrix.dtype}")
        bad = ~np.isfinite(matrix)
        if bad.any():
            r, c = (int(x[0]) for x in np.nonzero(bad))
            raise DataError(f"{p}: the value in row {r + 1}, column {c + 1} is not a finite number")
    else:
        if matrix.data.dtype.kind not in "iuf":
            raise DataError(f"{p}: the feature matrix must be numeric, found dtype {matrix.data.dtype}")
        if not np.isfinite(matrix.data).all():
            raise DataError(f"{p}: the sparse feature matrix holds a value that is not a finite number")
    if names is None:
        names = np.array([f"f{j}" for j in range(n_features)], dtype=str)
    elif names.shape != (n_features,):
        raise DataError(f"{p}: 'names' has {names.size} entries for {n_features} feature columns")
    raw = np.asarray([str(x).strip() for x in id_values.tolist()], dtype=object)
    raw_ids, _ = unify_ids(id_array(raw), items.ids)
    rows = items.indices(raw_ids, missing="negative")
    if unknown == "error" and (rows < 0).any():
        k = int(np.flatnonzero(rows < 0)[0])
        where = f"line {k + 1}" if id_source != f"{p} array 'ids'" else f"entry {k + 1}"
        raise DataError(f"{id_source}, {where}: unknown item id {str(raw[k])!r} (not in the interaction data)")
    keep = np.flatnonzero(rows >= 0)
    rows = rows[keep]
    uniq, first = np.unique(rows, return_index=True)
    if len(uniq) != len(rows):
        seen = np.zeros(len(rows), dtype=bool)
        seen[first] = True
        k = int(keep[np.flatnonzero(~seen)[0]])
        raise DataError(f"{id_source}: item id {str(raw[k])!r} is listed twice")
    if isinstance(matrix, np.ndarray):
        sub = matrix[keep].astype(np.float32)
        counts = np.zeros(len(items), dtype=np.int64)
        counts[rows] = n_features
        order = np.argsort(rows, kind="stable")
        indptr = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        data = sub[order].reshape(-1)
        indices = np.tile(np.arange(n_features, dtype=np.int32), len(rows))
        return _finish(data, indices, indptr, len(items), n_features), names
    m = sp.csr_array(matrix)[keep]
    m.sum_duplicates()
    perm = sp.csr_array((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))), shape=(len(items), len(rows)))
    out = sp.csr_array(perm @ m.astype(np.float32))
    return _finish(out.data, out.indices, out.indptr, len(items), n_features), names


def _finish(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_items: int,
            n_features: int) -> sp.csr_array:
    m = sp.csr_array((np.asarray(data, dtype=np.float32), np.asarray(indices), np.asarray(indptr)),
                     shape=(n_items, n_features))
    m.sort_indices()
    return m


# ---------------------------------------------------------------------- from item tables
def genre_features(
    item_data: pd.DataFrame,
    *,
    genres: str = "genres",
    title: str | None = "title",
    min_count: int = 2,
    genre_sep: str = "|",
    stopwords: str | Sequence[str] | None = "english",
) -> tuple[sp.csr_array, np.ndarray]:
    """Binary item features from an item table: one column per genre and per title word.

    Parameters
    ----------
    item_data : pandas.DataFrame
        One row per item in index order (``Interactions.item_data``), e.g. the
        MovieLens item table with ``genres`` ("Comedy|Drama") and ``title``.
    genres : str
        Column of ``genre_sep``-separated genre lists.
    title : str or None
        Column of titles, analysed into words by the search analyzer (lowercase,
        ``stopwords`` dropped, no stemming; numbers left out). None: genres only.
    min_count : int
        Title words used by fewer items are left out (a word of one title tells
        nothing about any other item).
    genre_sep : str
        Separator of the genre lists.

    Returns
    -------
    features : scipy.sparse.csr_array, shape (len(item_data), n_features), float32
        1 where the item has the genre or the word.
    feature_names : ndarray of str
        ``"genre:<name>"`` then ``"title:<word>"``, each block sorted.
    """
    import pandas as pd

    from ...search.analysis import Analyzer

    if not isinstance(item_data, pd.DataFrame):
        raise ParameterError(f"genre_features: item_data must be a pandas DataFrame, got {type(item_data).__name__}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ParameterError(f"genre_features: min_count must be a positive integer, got {min_count!r}")
    for col in (genres, title):
        if col is not None and col not in item_data.columns:
            found = ", ".join(map(str, item_data.columns))
            raise DataError(f"genre_features: the item table has no column {col!r} (columns: {found})")
    n = len(item_data)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    names: list[str] = []
    g = item_data[genres].astype("string").fillna("")
    lists = [[x.strip() for x in s.split(genre_sep) if x.strip()] for s in g.tolist()]
    vocab = sorted({x for lst in lists for x in lst})
    gid = {x: k for k, x in enumerate(vocab)}
    r = np.repeat(np.arange(n), [len(lst) for lst in lists])
    c = np.array([gid[x] for lst in lists for x in lst], dtype=np.int64)
    rows.append(r)
    cols.append(c)
    names += [f"genre:{x}" for x in vocab]
    if title is not None:
        analyzer = Analyzer(stopwords=stopwords, stemmer=None)
        texts = item_data[title].astype("string").fillna("").tolist()
        words = [sorted({w for w in analyzer.analyze(t) if not w.isdigit()}) for t in texts]
        count: dict[str, int] = {}
        for ws in words:
            for w in ws:
                count[w] = count.get(w, 0) + 1
        kept = sorted(w for w, k in count.items() if k >= min_count)
        wid = {w: len(names) + k for k, w in enumerate(kept)}
        words = [[w for w in ws if w in wid] for ws in words]
        rows.append(np.repeat(np.arange(n), [len(ws) for ws in words]))
        cols.append(np.array([wid[w] for ws in words for w in ws], dtype=np.int64))
        names += [f"title:{w}" for w in kept]
    rr = np.concatenate(rows).astype(np.int64)
    cc = np.concatenate(cols).astype(np.int64)
    m = sp.csr_array((np.ones(len(rr), dtype=np.float32), (rr, cc)), shape=(n, len(names)))
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m, np.array(names, dtype=str)


__all__ = ["FEATURE_FORMATS", "genre_features", "guess_feature_format", "read_item_features",
           "read_item_relations", "with_item_features", "with_item_relations"]
