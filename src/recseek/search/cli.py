"""``recseek index``, ``recseek search`` and ``recseek search-eval``.

An index directory holds ``lexical/`` (a saved :class:`~recseek.search.lexical.BM25`)
and, when built with ``--dense``, ``dense/`` (a saved
:class:`~recseek.search.dense.DenseRetriever`); ``--hybrid`` fuses both with reciprocal
rank fusion.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import click

from ..errors import DataError, ParameterError

LEXICAL, DENSE = "lexical", "dense"
_OPS = (">=", "<=", "!=", ">", "<", "=")
_OP_NAMES = {">=": "gte", "<=": "lte", "!=": "ne", ">": "gt", "<": "lt"}


def _load_retriever(directory: Path, hybrid: bool) -> Any:
    from .lexical import LexicalRetriever

    if not (directory / LEXICAL).is_dir():
        raise DataError(f"{directory} is not a recseek index directory (no {LEXICAL}/ inside; build one with recseek index)")
    lexical = LexicalRetriever.load(directory / LEXICAL, mmap=True)
    if not hybrid:
        return lexical, lexical
    if not (directory / DENSE).is_dir():
        raise DataError(f"{directory} has no dense index for --hybrid (build it with recseek index --dense)")
    from .dense import DenseRetriever
    from .hybrid import HybridRetriever

    dense = DenseRetriever.load(directory / DENSE)
    return HybridRetriever([lexical, dense], method="rrf"), lexical


def _parse_filters(items: tuple[str, ...], lexical: Any) -> dict[str, Any] | None:
    """``field=value``, ``field>=value`` ... -> a filter dict; values typed by the field."""
    if not items:
        return None
    kinds = lexical.metadata_fields()
    out: dict[str, Any] = {}
    for item in items:
        op = next((o for o in _OPS if o in item), None)
        if op is None:
            raise ParameterError(f"--filter {item!r} must look like field=value (or field>=value, field<value, ...)")
        field, _, raw = item.partition(op)
        field, raw = field.strip(), raw.strip()
        if not field:
            raise ParameterError(f"--filter {item!r} names no field")
        kind = kinds.get(field)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none"
            raise ParameterError(f"unknown filter field {field!r}; known metadata fields: {known}")
        if kind == "number":
            try:
                value: Any = float(raw)
            except ValueError:
                raise ParameterError(f"--filter {item!r}: {field} holds numbers, {raw!r} is not one") from None
        else:
            value = raw
        cond = out.setdefault(field, {})
        if not isinstance(cond, dict):
            raise ParameterError(f"--filter gives {field!r} twice")
        if op == "=":
            cond.setdefault("in", []).append(value)
        else:
            cond[_OP_NAMES[op]] = value
    return out


def _check_judged_documents(qrels_path: Path, qids: list[str], qrels: dict[str, dict[str, float]], lexical: Any) -> None:
    """A DataError when no relevant judged document of the evaluated queries is in the index
    (typically qrels read in the wrong format, or judgements of another collection)."""
    judged = {d for q in qids for d, g in qrels[q].items() if g > 0}
    if not judged:
        raise DataError(f"{qrels_path} judges no document relevant for the evaluated queries (check --qrels-format)")
    if not any(d in lexical for d in judged):
        example = next(iter(sorted(judged)))
        raise DataError(
            f"none of the {len(judged)} documents judged relevant in {qrels_path} (e.g. {example!r}) is in the index; "
            "check the document ids or --qrels-format"
        )


@click.command("index")
@click.argument("docs", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Index directory to write.")
@click.option("--fields", default="title,text", show_default=True,
              help="Text fields, comma-separated; field:weight sets a BM25F weight.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "beir", "smart"]), default=None,
              help="Document format (guessed from the path when omitted).")
@click.option("--method", type=click.Choice(["lucene", "robertson", "atire", "bm25l", "bm25+"]), default="lucene",
              show_default=True, help="BM25 variant.")
@click.option("--k1", type=float, default=1.2, show_default=True)
@click.option("--b", "b", type=float, default=0.75, show_default=True)
@click.option("--stemmer", default="english", show_default=True, help="Snowball stemmer, or 'none'.")
@click.option("--stopwords", default="english", show_default=True, help="'english' or 'none'.")
@click.option("--dense", "dense", is_flag=False, flag_value="default", default=None,
              help="Also build a dense index, with the given sentence-transformers MODEL (default all-MiniLM-L6-v2).")
def index_cmd(docs: Path, out: Path, fields: str, fmt: str | None, method: str, k1: float, b: float, stemmer: str,
              stopwords: str, dense: str | None) -> None:
    """Build a search index from DOCS (JSONL, CSV, BEIR folder or SMART file)."""
    from .analysis import Analyzer
    from .io import read_documents
    from .lexical import BM25

    weights: dict[str, float] = {}
    for part in fields.split(","):
        name, _, w = part.strip().partition(":")
        if not name:
            continue
        try:
            weights[name] = float(w) if w else 1.0
        except ValueError:
            raise ParameterError(f"--fields: weight of {name!r} must be a number, got {w!r}") from None
    if not weights:
        raise ParameterError("--fields must name at least one field")
    t0 = time.perf_counter()
    documents = read_documents(docs, fmt)
    analyzer = Analyzer(stemmer=None if stemmer == "none" else stemmer,
                        stopwords=None if stopwords == "none" else stopwords)
    bm25 = BM25(method=method, k1=k1, b=b, fields=weights, analyzer=analyzer)
    bm25.index(documents)
    dense_ret = None
    if dense is not None:
        from .dense import DenseRetriever

        dense_ret = DenseRetriever(model=None if dense == "default" else dense, fields=list(weights), verbose=True)
        click.echo("loading the embedding model ...", err=True)
        dense_ret.embed_queries([""])  # loads the model here, so that the message above is true
        dense_ret.index(documents)  # progress of the encoding batches on stderr
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    bm25.save(out / LEXICAL)
    if dense_ret is not None:
        dense_ret.save(out / DENSE)
    elif (out / DENSE).exists():
        shutil.rmtree(out / DENSE)  # a stale dense index would no longer match the documents
    kinds = "lexical + dense" if dense_ret is not None else "lexical"
    click.echo(f"indexed {len(bm25)} documents ({kinds}) into {out} in {time.perf_counter() - t0:.2f} s")


@click.command("search")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("query")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Number of results.")
@click.option("--filter", "filters", multiple=True,
              help="Metadata condition field=value (repeatable; also >=, <=, >, <, !=).")
@click.option("--hybrid", is_flag=True, help="Fuse lexical and dense results (needs an index built with --dense).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def search_cmd(directory: Path, query: str, k: int, filters: tuple[str, ...], hybrid: bool, as_json: bool) -> None:
    """Search the index in DIRECTORY for QUERY."""
    if k <= 0:
        raise ParameterError(f"-k must be a positive integer, got {k}")
    retriever, lexical = _load_retriever(directory, hybrid)
    flt = _parse_filters(filters, lexical)
    hits = retriever.search([query], k=k, filter=flt)
    rows = hits.row(0)
    if as_json:
        click.echo(json.dumps([{"rank": i + 1, "id": d, "score": s} for i, (d, s) in enumerate(rows)]))
        return
    if not rows:
        click.echo("no results")
        return
    for i, (d, s) in enumerate(rows, 1):
        click.echo(f"{i}\t{d}\t{s:.4f}")


@click.command("search-eval")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--queries", "queries_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Queries: BEIR/JSONL, TSV (id<TAB>text) or SMART (.I/.W; the i-th query gets id i).")
@click.option("--qrels", "qrels_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Judgements: TREC, SMART .REL, BEIR TSV or Cranfield cranqrel.")
@click.option("--qrels-format", "qrels_format", type=click.Choice(["auto", "trec", "smart", "cranfield", "beir"]),
              default="auto", show_default=True,
              help="Format of --qrels; auto: cranqrel* is Cranfield, 'qid docid 0 0.0' SMART, other 4 columns TREC, "
                   "3 columns BEIR.")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Cutoff of nDCG and precision.")
@click.option("--hybrid", is_flag=True, help="Evaluate the lexical + dense fusion.")
@click.option("--run", "run_path", type=click.Path(path_type=Path), default=None, help="Also write a TREC run file.")
def search_eval_cmd(directory: Path, queries_path: Path, qrels_path: Path, qrels_format: str, k: int, hybrid: bool,
                    run_path: Path | None) -> None:
    """Evaluate the index in DIRECTORY: nDCG@k, Recall@100, MAP, MRR, P@k.

    Retrieval time is reported apart from start-up (loading the index, and the first search,
    which loads the compiled kernels and any embedding model).
    """
    from .io import align_qrels, read_qrels, read_queries, write_trec_run
    from .metrics import evaluate

    if k <= 0:
        raise ParameterError(f"-k must be a positive integer, got {k}")
    queries = read_queries(queries_path)
    qrels = read_qrels(qrels_path, qrels_format)
    qids = [q for q in queries if q in qrels]
    if not qids:
        raise DataError(f"no query of {queries_path} has judgements in {qrels_path} (do the query ids match?)")
    t0 = time.perf_counter()
    retriever, lexical = _load_retriever(directory, hybrid)
    t_load = time.perf_counter() - t0
    _check_judged_documents(qrels_path, qids, qrels, lexical)
    depth = max(100, k)
    texts = [queries[q] for q in qids]
    t0 = time.perf_counter()
    retriever.search(texts[:1], k=depth)  # first call: kernels (and a dense model) are loaded here
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = retriever.search(texts, k=depth)
    elapsed = time.perf_counter() - t0
    names = [f"ndcg@{k}", "recall@100", "map", "mrr", f"p@{k}"]
    res = evaluate(hits.ids, align_qrels(qids, qrels), names)
    if run_path is not None:
        write_trec_run(run_path, qids, hits.ids, hits.scores)
    labels = {f"ndcg@{k}": f"nDCG@{k}", "recall@100": "Recall@100", "map": "MAP", "mrr": "MRR", f"p@{k}": f"P@{k}"}
    click.echo(f"{len(qids)} queries, {len(queries) - len(qids)} without judgements skipped; "
               f"retrieval {elapsed:.3f} s ({len(qids) / max(elapsed, 1e-9):.0f} queries/s); "
               f"start-up {t_load + t_first:.2f} s (index load {t_load:.2f} s, first search {t_first:.2f} s)")
    for name in names:
        v = res[name]
        click.echo(f"{labels[name]:<11}{'nan' if math.isnan(v) else f'{v:.4f}'}")
