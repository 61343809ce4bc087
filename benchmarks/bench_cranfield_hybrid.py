"""Cranfield (protocol P4): BM25, dense MiniLM, RRF and convex hybrids, with bm25s side by side.

Documents = title + body, queries = the ``.W`` text (the i-th query has qrel id i),
gains = 5 - code for codes 1-4 (code -1 dropped); nDCG@10 (graded, linear gains) and
Recall@100. The convex weight alpha (of BM25; the dense side gets 1 - alpha) is tuned by
nDCG@10 on a random held-out subset of the queries and reported on the remaining queries
and on all queries. Single-threaded BLAS and numba for the timings.

Run: ``.venv/bin/python benchmarks/bench_cranfield_hybrid.py [--data DIR] [--tune 50]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from recseek.search.dense import DenseRetriever, EmbeddingCache, parse_texts  # noqa: E402
from recseek.search.hybrid import HybridRetriever, convex, rrf  # noqa: E402
from recseek.search.io import read_cranfield_qrels, read_smart, read_smart_queries  # noqa: E402
from recseek.search.lexical import BM25  # noqa: E402
from recseek.search.metrics import evaluate  # noqa: E402

ANCHOR_BM25S = {"ndcg@10": 0.3735, "recall@100": 0.7381}  # PROTOCOLS.md P4, bm25s 0.3.16


def find_data(arg: str | None) -> Path:
    candidates = [Path(arg)] if arg else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" / "cranfield" for p in here.parents]
    for c in candidates:
        if (c / "cran.all.1400").exists():
            return c
    sys.exit("Cranfield data not found; pass --data DIR (holding cran.all.1400, cran.qry, cranqrel)")


def scores(ids: np.ndarray, qrels: list[dict[str, float]], rows: np.ndarray | None = None) -> dict[str, float]:
    if rows is not None:
        ids = ids[rows]
        qrels = [qrels[i] for i in rows]
    return evaluate(ids, qrels, ["ndcg@10", "recall@100"])


def bm25s_run(docs: list[dict], queries: list[str], k: int) -> tuple[np.ndarray, float]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = [f"{d['title']} {d['text']}" for d in docs]
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    qtok = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
    t = time.perf_counter()
    res, _ = retriever.retrieve(qtok, k=k, show_progress=False, n_threads=1)
    elapsed = time.perf_counter() - t
    doc_ids = np.array([d["id"] for d in docs])
    return doc_ids[res], elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", help="folder with cran.all.1400, cran.qry, cranqrel")
    ap.add_argument("--tune", type=int, default=50, help="queries used to tune alpha (default 50)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", help="embedding cache folder (default: the user's cache)")
    args = ap.parse_args()

    root = find_data(args.data)
    docs = read_smart(root / "cran.all.1400")
    qdict = read_smart_queries(root / "cran.qry")
    qrels_all = read_cranfield_qrels(root / "cranqrel")
    qids = list(qdict)
    queries = [qdict[q] for q in qids]
    qrels = [qrels_all.get(q, {}) for q in qids]
    depth = 100
    print(f"Cranfield: {len(docs)} documents, {len(queries)} queries "
          f"({sum(bool(q) for q in qrels)} with relevant documents); depth {depth}")

    bm25 = BM25()
    t = time.perf_counter()
    bm25.index(docs)
    t_bm25_index = time.perf_counter() - t
    bm25.search(queries[:5], k=depth)  # compile kernels before timing
    t = time.perf_counter()
    h_bm25 = bm25.search(queries, k=depth)
    t_bm25 = time.perf_counter() - t

    s_ids, t_s = bm25s_run(docs, queries, depth)

    dense = DenseRetriever(verbose=True, device="cpu", cache_dir=args.cache_dir)
    t = time.perf_counter()
    dense._get_encoder()
    t_model = time.perf_counter() - t
    cache = dense._embedding_cache()
    texts = parse_texts(docs, dense.fields)[1]
    cached = 0 if cache is None else int(cache.lookup(EmbeddingCache.digests(texts), None)[0].sum())
    t = time.perf_counter()
    dense.index(docs)
    t_dense_index = time.perf_counter() - t
    t = time.perf_counter()
    h_dense = dense.search(queries, k=depth)
    t_dense = time.perf_counter() - t

    h_rrf = rrf([h_bm25, h_dense], k=depth)

    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(queries))
    tune_rows, test_rows = np.sort(perm[: args.tune]), np.sort(perm[args.tune :])
    hybrid = HybridRetriever([bm25, dense], method="convex", normalize="minmax", depth=depth)
    alpha = hybrid.tune_alpha([queries[i] for i in tune_rows], [qrels[i] for i in tune_rows])
    h_convex = convex([h_bm25, h_dense], [alpha, 1 - alpha], "minmax", k=depth)
    hybrid_z = HybridRetriever([bm25, dense], method="convex", normalize="zscore", depth=depth)
    alpha_z = hybrid_z.tune_alpha([queries[i] for i in tune_rows], [qrels[i] for i in tune_rows])
    h_convex_z = convex([h_bm25, h_dense], [alpha_z, 1 - alpha_z], "zscore", k=depth)

    runs = [
        ("bm25s 0.3.16 (peer, same run)", s_ids),
        ("recseek BM25 (lucene, stop+stem)", h_bm25.ids),
        ("recseek dense MiniLM-L6", h_dense.ids),
        ("recseek RRF (k=60)", h_rrf.ids),
        (f"recseek convex min-max (alpha={alpha:.2f})", h_convex.ids),
        (f"recseek convex z-score (alpha={alpha_z:.2f})", h_convex_z.ids),
    ]
    print(f"\nalpha tuned on {len(tune_rows)} random queries (seed {args.seed}); "
          f"'held-out' = the other {len(test_rows)} queries")
    print(f"{'run':44s} {'nDCG@10 all':>12s} {'R@100 all':>10s} {'nDCG@10 held-out':>17s} {'R@100 held-out':>15s}")
    table = {}
    for name, ids in runs:
        a, h = scores(ids, qrels), scores(ids, qrels, test_rows)
        table[name] = (a, h)
        print(f"{name:44s} {a['ndcg@10']:12.4f} {a['recall@100']:10.4f} {h['ndcg@10']:17.4f} {h['recall@100']:15.4f}")

    bm, de = table[runs[1][0]], table[runs[2][0]]
    print("\nratios (nDCG@10, all queries / held-out):")
    for name, _ in runs[3:]:
        a, h = table[name]
        print(f"  {name:42s} vs BM25 {a['ndcg@10'] / bm[0]['ndcg@10']:.3f} / {h['ndcg@10'] / bm[1]['ndcg@10']:.3f}"
              f"   vs dense {a['ndcg@10'] / de[0]['ndcg@10']:.3f} / {h['ndcg@10'] / de[1]['ndcg@10']:.3f}")
    print(f"  recseek BM25 vs published bm25s anchor (0.3735): {bm[0]['ndcg@10'] / ANCHOR_BM25S['ndcg@10']:.3f}; "
          f"vs bm25s in this run: {bm[0]['ndcg@10'] / table[runs[0][0]][0]['ndcg@10']:.3f}")
    best = max(table[n][1]["ndcg@10"] for n, _ in runs[3:])
    print(f"  best hybrid beats BM25 and dense on held-out nDCG@10: {best > max(bm[1]['ndcg@10'], de[1]['ndcg@10'])}")
    print("\ntimings (single thread):")
    print(f"  BM25 index {t_bm25_index:.2f} s; search {len(queries) / t_bm25:,.0f} q/s "
          f"(bm25s {len(queries) / t_s:,.0f} q/s, ratio {t_s / t_bm25:.2f}x)")
    print(f"  dense model load {t_model:.1f} s; index {t_dense_index:.1f} s ({len(docs) / t_dense_index:,.0f} docs/s; "
          f"{cached} of {len(docs)} embeddings were already in the cache); "
          f"search incl. query encoding {len(queries) / t_dense:,.0f} q/s")


if __name__ == "__main__":
    main()
