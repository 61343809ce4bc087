"""P4 — Cranfield ad-hoc retrieval: recseek BM25 against bm25s, side by side in one run.

Documents = title + body (``.T`` and ``.W``), queries = ``.W`` text, gains = 5 - code
(codes 1-4; -1 dropped). Both sides: Lucene BM25, k1 1.2, b 0.75, English stopwords,
Snowball English stemmer (bm25s with its own stopword list and PyStemmer; recseek with
its Analyzer). Single thread for query timing, k = 100.

Prints nDCG@10 and Recall@100 of both, and the ratios recseek / bm25s of:
queries per second (end to end: analysis + retrieval; and retrieval only), indexing
throughput (analysis + index build), and the time to re-index the whole collection
divided by the time to delete 1% and add 1% of documents in place.

Usage: python benchmarks/bench_cranfield_bm25.py [CRANFIELD_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    import bm25s
    import Stemmer

    from recseek._numba import set_num_threads
    from recseek.search.analysis import Analyzer
    from recseek.search.io import align_qrels, read_cranfield_qrels, read_smart, read_smart_queries
    from recseek.search.lexical import BM25
    from recseek.search.metrics import evaluate

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/cranfield"
    if not root.exists():
        root = Path("/work/shared/data/cranfield")
    docs = read_smart(root / "cran.all.1400")
    queries = read_smart_queries(root / "cran.qry")
    qrels = read_cranfield_qrels(root / "cranqrel")
    qids = [q for q in queries if q in qrels]
    qtexts = [queries[q] for q in qids]
    aligned = align_qrels(qids, qrels)
    corpus = [d["title"] + " " + d["text"] for d in docs]
    doc_ids = np.array([d["id"] for d in docs])
    set_num_threads(1)
    stemmer = Stemmer.Stemmer("english")

    # ------------------------------------------------------------ indexing
    def build_ours():
        return BM25(method="lucene", k1=1.2, b=0.75, fields={"title": 1.0, "text": 1.0},
                    analyzer=Analyzer(stopwords="english", stemmer="english")).index(docs)

    def build_ref():
        tok = bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False)
        r = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        r.index(tok, show_progress=False)
        return r

    ours, ref = build_ours(), build_ref()  # warm up (JIT, caches)
    t_idx_ours = best_of(build_ours)
    t_idx_ref = best_of(build_ref)
    ours, ref = build_ours(), build_ref()

    # ------------------------------------------------------------ quality
    hits = ours.search(qtexts, k=100)
    m_ours = evaluate(hits.ids, aligned, ["ndcg@10", "recall@100"])

    def ref_search():
        qtok = bm25s.tokenize(qtexts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)
        return ref.retrieve(qtok, k=100, show_progress=False, n_threads=1)

    res, _scores = ref_search()
    m_ref = evaluate(doc_ids[res], aligned, ["ndcg@10", "recall@100"])

    # ------------------------------------------------------------ query speed (single thread, k = 100)
    t_q_ours = best_of(lambda: ours.search(qtexts, k=100))
    t_q_ref = best_of(ref_search)
    lengths, ids = ours.analyzer.encode(qtexts, ours._vocab_map(), grow=False)
    lengths, ids = np.asarray(lengths), np.asarray(ids)
    t_r_ours = best_of(lambda: ours.search_encoded(lengths, ids, k=100))
    qtok_strs = bm25s.tokenize(qtexts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)
    t_r_ref = best_of(lambda: ref.retrieve(qtok_strs, k=100, show_progress=False, n_threads=1))

    # ------------------------------------------------------------ updates: delete 1% + add 1% vs re-index
    rng = np.random.default_rng(0)
    n1 = max(1, len(docs) // 100)
    gone = set(rng.choice(doc_ids, size=n1, replace=False).tolist())
    new_docs = [{**docs[i], "id": f"new{i}"} for i in rng.choice(len(docs), size=n1, replace=False)]
    final_docs = [d for d in docs if d["id"] not in gone] + new_docs

    def update():
        idx = build_ours()
        idx.search("warm", k=1)
        t = time.perf_counter()
        idx.delete(sorted(gone))
        idx.add(new_docs)
        idx.refresh()
        return time.perf_counter() - t, idx

    def reindex():
        return BM25(analyzer=Analyzer()).index(final_docs)

    t_upd = min(update()[0] for _ in range(5))
    t_reidx = best_of(reindex)
    _, updated = update()
    fresh = reindex()
    a, b = updated.search(qtexts, k=100), fresh.search(qtexts, k=100)
    same = bool((a.ids == b.ids).all()) and float(np.max(np.abs(np.nan_to_num(a.scores - b.scores)))) <= 1e-6

    nq = len(qtexts)
    print(f"Cranfield: {len(docs)} documents, {nq} judged queries, single thread, k=100")
    print(f"{'':28}{'recseek':>12}{'bm25s':>12}{'ratio':>9}")
    print(f"{'nDCG@10':28}{m_ours['ndcg@10']:12.4f}{m_ref['ndcg@10']:12.4f}{m_ours['ndcg@10'] / m_ref['ndcg@10']:9.3f}")
    print(f"{'Recall@100':28}{m_ours['recall@100']:12.4f}{m_ref['recall@100']:12.4f}"
          f"{m_ours['recall@100'] / m_ref['recall@100']:9.3f}")
    print(f"{'queries/s (end to end)':28}{nq / t_q_ours:12.0f}{nq / t_q_ref:12.0f}{t_q_ref / t_q_ours:9.2f}")
    print(f"{'queries/s (retrieval only)':28}{nq / t_r_ours:12.0f}{nq / t_r_ref:12.0f}{t_r_ref / t_r_ours:9.2f}")
    print(f"{'indexing docs/s':28}{len(docs) / t_idx_ours:12.0f}{len(docs) / t_idx_ref:12.0f}"
          f"{t_idx_ref / t_idx_ours:9.2f}")
    print(f"update: delete {n1} + add {n1} documents {t_upd * 1e3:.2f} ms, re-index {t_reidx * 1e3:.1f} ms "
          f"-> {t_reidx / t_upd:.1f}x faster; top-100 identical to a fresh index: {same}")


if __name__ == "__main__":
    main()
