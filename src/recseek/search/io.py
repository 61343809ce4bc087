"""Readers and writers for search collections: BEIR, TREC, SMART (Cranfield), JSONL and CSV.

Documents are returned as dicts ``{"id": str, "title": str, "text": str, ...metadata}``
ready for a retriever's ``index``; queries as ``{query_id: text}`` (insertion-ordered);
relevance judgements (qrels) as ``{query_id: {doc_id: gain}}``.

Every reader raises :class:`~recseek.errors.DataError` with one sentence naming the file
(and the line, or the byte offset of bad UTF-8) when the input is malformed, and when a
collection has no documents.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = [
    "read_text",
    "read_jsonl",
    "read_jsonl_documents",
    "read_csv_documents",
    "read_beir",
    "read_beir_queries",
    "read_beir_qrels",
    "read_trec_qrels",
    "read_trec_run",
    "write_trec_run",
    "read_smart",
    "read_smart_queries",
    "read_cranfield_qrels",
    "read_smart_qrels",
    "QRELS_FORMATS",
    "guess_qrels_format",
    "read_documents",
    "read_queries",
    "read_qrels",
    "DOCUMENT_FORMATS",
    "align_qrels",
]

DOCUMENT_FORMATS = ("jsonl", "csv", "beir", "smart")
#: Judgement formats read by :func:`read_qrels` (``auto`` guesses).
QRELS_FORMATS = ("auto", "trec", "smart", "cranfield", "beir")


def read_text(path: str | Path) -> str:
    """Whole file as text; non-UTF-8 content is a DataError naming the file and byte offset."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path} is not valid UTF-8 text (byte offset {e.start}, line {line})") from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; a malformed line is a DataError naming its number."""
    out = []
    for no, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}, line {no}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}, line {no}: expected a JSON object, got {type(obj).__name__}")
        out.append(obj)
    return out


def _doc_id(obj: Mapping[str, Any], path: Any, where: str) -> str:
    for key in ("id", "_id", "docid", "doc_id"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], bool | dict | list):
            v = obj[key]
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            s = str(v)
            if s:
                return s
    raise DataError(f"{path}, {where}: document has no id (expected an 'id' or '_id' field)")


def _normalise_doc(obj: Mapping[str, Any], path: Any, where: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": _doc_id(obj, path, where)}
    for k, v in obj.items():
        if k in ("id", "_id", "docid", "doc_id"):
            continue
        if k == "metadata" and isinstance(v, Mapping):
            for mk, mv in v.items():
                if isinstance(mv, str | int | float) and not isinstance(mv, bool) and mk not in doc:
                    doc[mk] = mv
            continue
        if v is None or isinstance(v, bool) or not isinstance(v, str | int | float):
            continue  # nested values are not indexable text or filterable metadata
        doc[k] = v
    return doc


def _nonempty(docs: list[dict[str, Any]], path: Any) -> list[dict[str, Any]]:
    if not docs:
        raise DataError(f"{path} holds no documents (empty corpus)")
    return docs


def read_jsonl_documents(path: str | Path) -> list[dict[str, Any]]:
    """Documents from JSONL: ``id`` (or ``_id``), text fields, scalar metadata (BEIR ``metadata`` flattened)."""
    rows = read_jsonl(path)
    return _nonempty([_normalise_doc(r, path, f"record {i + 1}") for i, r in enumerate(rows)], path)


def read_csv_documents(path: str | Path, delimiter: str | None = None) -> list[dict[str, Any]]:
    """Documents from CSV/TSV with a header row holding an ``id`` column.

    Columns other than ``id`` are kept as strings, except that columns whose every value
    is a number are converted to numbers (for range filters).
    """
    text = read_text(path)
    if delimiter is None:
        delimiter = "\t" if str(path).endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path} is empty (expected a header row)") from None
    idcol = next((i for i, h in enumerate(header) if h.strip().lower() in ("id", "_id", "docid", "doc_id")), None)
    if idcol is None:
        raise DataError(f"{path}, line 1: no 'id' column in the header ({', '.join(header)})")
    rows = []
    for no, row in enumerate(reader, 2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{path}, line {no}: {len(row)} columns, the header has {len(header)}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path} holds no documents (empty corpus)")
    cols = list(zip(*rows, strict=True))
    converted: list[Sequence[Any]] = []
    for i, col in enumerate(cols):
        if i == idcol:
            converted.append(col)
            continue
        try:
            nums = [float(v) for v in col]
            converted.append([int(x) if x.is_integer() else x for x in nums])
        except ValueError:
            converted.append(col)
    docs = []
    for r in range(len(rows)):
        d: dict[str, Any] = {"id": rows[r][idcol]}
        if not d["id"]:
            raise DataError(f"{path}, line {r + 2}: empty id")
        for i, h in enumerate(header):
            if i != idcol:
                d[h] = converted[i][r]
        docs.append(d)
    return docs


# ---------------------------------------------------------------- BEIR


def read_beir_queries(path: str | Path) -> dict[str, str]:
    """BEIR ``queries.jsonl``: ``{"_id": ..., "text": ...}`` per line."""
    out: dict[str, str] = {}
    for i, obj in enumerate(read_jsonl(path)):
        qid = _doc_id(obj, path, f"record {i + 1}")
        text = obj.get("text")
        if not isinstance(text, str):
            raise DataError(f"{path}, record {i + 1}: query {qid!r} has no 'text'")
        out[qid] = text
    return out


def read_beir_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """BEIR qrels TSV: ``query-id  corpus-id  score`` (header optional)."""
    qrels: dict[str, dict[str, float]] = {}
    for no, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if no == 1 and parts[0].lower() in ("query-id", "query_id", "qid"):
            continue
        if len(parts) != 3:
            raise DataError(f"{path}, line {no}: expected 'query-id corpus-id score', got {len(parts)} columns")
        qrels.setdefault(parts[0], {})[parts[1]] = _number(parts[2], path, no)
    return qrels


def read_beir(folder: str | Path, split: str = "test") -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, float]]]:
    """A BEIR dataset folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

    Returns documents, the queries that have judgements in ``split`` and the qrels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a BEIR folder (not a directory)")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).exists():
            raise DataError(f"{folder} is not a BEIR folder (no {name})")
    docs = read_jsonl_documents(folder / "corpus.jsonl")
    queries = read_beir_queries(folder / "queries.jsonl")
    qpath = folder / "qrels" / f"{split}.tsv"
    if not qpath.exists():
        raise DataError(f"{folder}: no qrels for split {split!r} ({qpath} missing)")
    qrels = read_beir_qrels(qpath)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return docs, queries, qrels


# ---------------------------------------------------------------- TREC


def _number(s: str, path: Any, no: int) -> float:
    try:
        v = float(s)
    except ValueError:
        raise DataError(f"{path}, line {no}: {s!r} is not a number") from None
    if not math.isfinite(v):
        raise DataError(f"{path}, line {no}: {s!r} is not a finite number")
    return v


def read_trec_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """TREC qrels: ``qid iteration docid relevance`` per line."""
    qrels: dict[str, dict[str, float]] = {}
    for no, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataError(f"{path}, line {no}: expected 'qid iter docid relevance', got {len(parts)} columns")
        qrels.setdefault(parts[0], {})[parts[2]] = _number(parts[3], path, no)
    return qrels


def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """TREC run: ``qid Q0 docid rank score tag``; each query's list sorted by score (desc)."""
    run: dict[str, list[tuple[str, float]]] = {}
    for no, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DataError(f"{path}, line {no}: expected 'qid Q0 docid rank score tag', got {len(parts)} columns")
        run.setdefault(parts[0], []).append((parts[2], _number(parts[4], path, no)))
    for qid in run:
        run[qid].sort(key=lambda x: -x[1])
    return run


def write_trec_run(
    path: str | Path, query_ids: Sequence[str], ids: np.ndarray, scores: np.ndarray, tag: str = "recseek"
) -> Path:
    """Write search results (e.g. ``Hits.ids`` / ``Hits.scores``) as a TREC run file; padding skipped."""
    path = Path(path)
    ids = np.asarray(ids)
    scores = np.asarray(scores)
    if ids.shape != scores.shape or ids.ndim != 2 or ids.shape[0] != len(query_ids):
        raise DataError(f"cannot write {path}: ids {ids.shape}, scores {scores.shape} and {len(query_ids)} query ids disagree")
    if not tag or any(c.isspace() for c in tag):
        raise DataError(f"run tag must be a non-empty word without spaces, got {tag!r}")
    lines = []
    for q, qid in enumerate(query_ids):
        rank = 0
        for d, s in zip(ids[q].tolist(), scores[q].tolist(), strict=True):
            if d == "":
                continue
            rank += 1
            lines.append(f"{qid} Q0 {d} {rank} {s:.6f} {tag}\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- SMART / Cranfield

_SMART_FIELDS = {"T": "title", "A": "author", "B": "biblio", "W": "text", "X": "xrefs", "K": "keywords"}


def _smart_records(path: str | Path) -> list[tuple[str, dict[str, str], int]]:
    records: list[tuple[str, dict[str, str], int]] = []
    cur: dict[str, list[str]] | None = None
    field: str | None = None
    rid = ""
    start = 0
    for no, line in enumerate(read_text(path).splitlines(), 1):
        if line.startswith(".I"):
            if cur is not None:
                records.append((rid, {_SMART_FIELDS.get(f, f.lower()): " ".join(v).strip() for f, v in cur.items()}, start))
            rid = line[2:].strip()
            if not rid:
                raise DataError(f"{path}, line {no}: '.I' without an id")
            cur, field, start = {}, None, no
        elif len(line) >= 2 and line[0] == "." and line[1].isalpha() and line[2:].strip() == "":
            if cur is None:
                raise DataError(f"{path}, line {no}: field {line.strip()!r} before the first '.I'")
            field = line[1]
            cur.setdefault(field, [])
        else:
            if cur is None:
                if line.strip():
                    raise DataError(f"{path}, line {no}: text before the first '.I'")
                continue
            if field is None:
                if line.strip():
                    raise DataError(f"{path}, line {no}: text outside a field (expected .T, .A, .B or .W)")
                continue
            cur[field].append(line.strip())
    if cur is not None:
        records.append((rid, {_SMART_FIELDS.get(f, f.lower()): " ".join(v).strip() for f, v in cur.items()}, start))
    return records


def read_smart(path: str | Path) -> list[dict[str, Any]]:
    """Documents of a SMART collection (``.I id``, ``.T`` title, ``.A`` author, ``.B`` source, ``.W`` text).

    Title and text are text fields; author and source come along as metadata strings.
    """
    docs = []
    seen: set[str] = set()
    for rid, fields, line in _smart_records(path):
        if rid in seen:
            raise DataError(f"{path}, line {line}: document id {rid!r} occurs twice")
        seen.add(rid)
        docs.append({"id": rid, "title": fields.pop("title", ""), "text": fields.pop("text", ""), **fields})
    return _nonempty(docs, path)


def read_smart_queries(path: str | Path, renumber: bool = True) -> dict[str, str]:
    """Queries of a SMART collection (``.W`` text).

    With ``renumber`` the i-th query gets id ``str(i)`` (1-based), as Cranfield's qrels
    expect; otherwise the ``.I`` value is kept.
    """
    out: dict[str, str] = {}
    for i, (rid, fields, _line) in enumerate(_smart_records(path), 1):
        out[str(i) if renumber else rid] = fields.get("text", "")
    if not out:
        raise DataError(f"{path} holds no queries")
    return out


def read_cranfield_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """Cranfield ``cranqrel``: ``qid docid code``; gain = 5 - code for codes 1-4, code -1 dropped."""
    qrels: dict[str, dict[str, float]] = {}
    for no, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise DataError(f"{path}, line {no}: expected 'qid docid code', got {len(parts)} columns")
        code = _number(parts[2], path, no)
        if code == -1:
            continue
        if code not in (1, 2, 3, 4, 5):
            raise DataError(f"{path}, line {no}: relevance code {parts[2]!r} is not one of -1, 1, 2, 3, 4, 5")
        gain = 5.0 - code
        if gain > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = gain
    return qrels


def read_smart_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """SMART ``.REL`` judgements (CISI, MED, CACM ...): ``qid docid 0 0.0``; every listed pair is relevant (gain 1)."""
    qrels: dict[str, dict[str, float]] = {}
    for no, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (2, 4):
            raise DataError(f"{path}, line {no}: expected 'qid docid 0 0.0', got {len(parts)} columns")
        qrels.setdefault(parts[0], {})[parts[1]] = 1.0
    return qrels


def _looks_smart(rows: list[list[str]]) -> bool:
    """Four columns whose last two are always zero (``qid docid 0 0.0``): SMART, not TREC (``qid iter docid rel``)."""
    try:
        return all(len(r) == 4 and float(r[2]) == 0 and float(r[3]) == 0 for r in rows) and \
            len({r[1] for r in rows}) > 1
    except ValueError:
        return False


def guess_qrels_format(path: str | Path) -> str:
    """``cranfield`` for a file named ``cranqrel*``; 4 columns: ``smart`` when the last two are
    always zero, else ``trec``; otherwise ``beir``."""
    path = Path(path)
    if path.name.lower().startswith("cranqrel"):
        return "cranfield"
    rows = [ln.split() for ln in read_text(path).splitlines() if ln.strip()]
    if rows and len(rows[0]) == 4:
        return "smart" if _looks_smart(rows) else "trec"
    return "beir"


# ---------------------------------------------------------------- dispatch


def _guess_format(path: Path) -> str:
    if path.is_dir():
        return "beir"
    name = path.name.lower()
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    head = read_text(path)[:200].lstrip()
    if head.startswith(".I"):
        return "smart"
    raise DataError(f"cannot tell the format of {path}; pass one of {', '.join(DOCUMENT_FORMATS)}")


def read_documents(path: str | Path, format: str | None = None) -> list[dict[str, Any]]:
    """Documents from ``path`` in ``format`` (``jsonl``, ``csv``, ``beir`` or ``smart``; guessed when None)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    fmt = format or _guess_format(path)
    if fmt == "jsonl":
        return read_jsonl_documents(path)
    if fmt == "csv":
        return read_csv_documents(path)
    if fmt == "beir":
        corpus = path / "corpus.jsonl" if path.is_dir() else path
        return read_jsonl_documents(corpus)
    if fmt == "smart":
        return read_smart(path)
    raise DataError(f"unknown document format {fmt!r}; known: {', '.join(DOCUMENT_FORMATS)}")


def read_queries(path: str | Path) -> dict[str, str]:
    """Queries from BEIR/JSONL (``_id``/``id`` + ``text``), TSV (``qid<TAB>text``) or SMART (``.I``/``.W``)."""
    path = Path(path)
    text = read_text(path)
    head = text.lstrip()[:2]
    if head.startswith(".I"):
        return read_smart_queries(path)
    if head.startswith("{"):
        return read_beir_queries(path)
    out: dict[str, str] = {}
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        qid, sep, q = line.partition("\t")
        if not sep:
            raise DataError(f"{path}, line {no}: expected 'query-id<TAB>text'")
        out[qid.strip()] = q.strip()
    if not out:
        raise DataError(f"{path} holds no queries")
    return out


def read_qrels(path: str | Path, format: str | None = None) -> dict[str, dict[str, float]]:
    """Qrels in ``trec`` (``qid iter docid rel``), ``smart`` (``qid docid 0 0.0``), ``beir`` (TSV,
    3 columns) or ``cranfield`` (codes) format; ``None`` or ``"auto"`` guesses (:func:`guess_qrels_format`).
    """
    path = Path(path)
    if format is None or format == "auto":
        format = guess_qrels_format(path)
    readers = {"trec": read_trec_qrels, "smart": read_smart_qrels, "beir": read_beir_qrels,
               "cranfield": read_cranfield_qrels}
    if format not in readers:
        raise DataError(f"unknown qrels format {format!r}; known: {', '.join(QRELS_FORMATS)}")
    return readers[format](path)


def align_qrels(query_ids: Iterable[str], qrels: Mapping[str, Mapping[str, float]]) -> list[dict[str, float]]:
    """One qrels dict per query id (empty for unjudged queries), for :mod:`recseek.search.metrics`."""
    return [dict(qrels.get(q, {})) for q in query_ids]
