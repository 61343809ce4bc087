"""Lexical index at scale: 1M synthetic documents, memory and load time with/without mmap, vs bm25s.

Synthetic corpus (seeded): a vocabulary of ``V = 200,000`` words ``w0 .. w199999``
drawn with Zipf probabilities ``p(rank r) ∝ 1 / r**1.1``; document lengths 1 + Poisson(30);
each document gets a numeric ``year`` (uniform 1950..2020) metadata field. Analysis
without stemming or stopwords (the words are not English). The recseek index is built in
chunks of 100k documents (``index`` then ``add``) and compacted, which exercises the
segment path; bm25s (numba backend) indexes the same term ids.

Prints build throughput, index size (arrays in memory and on disk), load time with and
without memory mapping, memory allocated by the load (tracemalloc: numpy buffers are
counted, mapped pages are not), first-query latency after loading and batched query
throughput, each with the recseek / bm25s ratio.

Usage: python benchmarks/bench_search_scale.py [N_DOCS]   (default 1,000,000; a few minutes)
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

V, ZIPF_S, MEAN_LEN, CHUNK = 200_000, 1.1, 30, 100_000


def corpus_chunks(n_docs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, V + 1) ** ZIPF_S
    p /= p.sum()
    words = np.array([f"w{i}" for i in range(V)])
    for start in range(0, n_docs, CHUNK):
        n = min(CHUNK, n_docs - start)
        lens = 1 + rng.poisson(MEAN_LEN, size=n)
        toks = rng.choice(V, size=int(lens.sum()), p=p)
        years = rng.integers(1950, 2021, size=n)
        split = np.split(words[toks], np.cumsum(lens)[:-1])
        docs = [{"id": f"d{start + i}", "text": " ".join(s.tolist()), "year": int(years[i])} for i, s in enumerate(split)]
        yield docs, toks, lens


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def timed_load(fn):
    gc.collect()
    tracemalloc.start()
    t = time.perf_counter()
    obj = fn()
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return obj, dt, peak


def main() -> None:
    import bm25s

    from recseek._numba import set_num_threads
    from recseek.search.analysis import Analyzer
    from recseek.search.lexical import BM25, LexicalRetriever

    n_docs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(1)
    queries = [" ".join(f"w{j}" for j in rng.integers(0, 5000, size=3)) for _ in range(1000)]
    tmp = Path(tempfile.mkdtemp(prefix="recseek-scale-"))
    try:
        # ------------------------------------------------------------ build recseek (chunks -> segments -> compact)
        t0 = time.perf_counter()
        ours = BM25(fields=["text"], analyzer=Analyzer(stopwords=None, stemmer=None))
        first = True
        all_toks, all_lens = [], []
        for chunk, toks, lens in corpus_chunks(n_docs):
            all_toks.append(toks.astype(np.int32))
            all_lens.append(lens)
            if first:
                ours.index(chunk)
                first = False
            else:
                ours.add(chunk)
        segments = ours.n_segments
        ours.compact()
        ours.refresh()
        t_build = time.perf_counter() - t0
        ours.save(tmp / "recseek")
        seg = ours._segments[0]
        postings = int(seg.rows.shape[0])
        arrays_bytes = sum(a.nbytes for a in (seg.indptr, seg.rows, seg.tf, seg.impacts, ours._lengths, ours._df,
                                              ours._id_array()))

        # ------------------------------------------------------------ build bm25s on the same term ids
        vocab = ours._vocab_map()
        word_to_term = np.full(V, -1, dtype=np.int64)
        for w, t in vocab.items():
            word_to_term[int(w[1:])] = t
        lens = np.concatenate(all_lens)
        ids_lists = [a.tolist() for a in np.split(word_to_term[np.concatenate(all_toks)], np.cumsum(lens)[:-1])]
        del all_toks
        t0 = time.perf_counter()
        ref = bm25s.BM25(method="lucene", k1=1.2, b=0.75, backend="numba")
        ref.index(bm25s.tokenization.Tokenized(ids=ids_lists, vocab=dict(vocab)), show_progress=False)
        t_build_ref = time.perf_counter() - t0
        del ids_lists
        ref.save(str(tmp / "bm25s"))
        ref_bytes = sum(a.nbytes for a in ref.scores.values() if isinstance(a, np.ndarray))
        del ref
        gc.collect()

        print(f"synthetic corpus: {n_docs:,} documents, vocabulary {V:,} (Zipf s={ZIPF_S}), mean length "
              f"{MEAN_LEN + 1}; {postings:,} postings; recseek built from {segments} segments then compacted")
        print(f"build: recseek {n_docs / t_build:,.0f} docs/s (text analysis included); bm25s "
              f"{n_docs / t_build_ref:,.0f} docs/s from ready term ids (no analysis)")
        print(f"index arrays: recseek {arrays_bytes / 2**20:,.0f} MiB (tf + impacts kept for updates), "
              f"bm25s {ref_bytes / 2**20:,.0f} MiB; on disk recseek {dir_size(tmp / 'recseek') / 2**20:,.0f} MiB, "
              f"bm25s {dir_size(tmp / 'bm25s') / 2**20:,.0f} MiB")
        del ours
        gc.collect()

        set_num_threads(1)
        # JIT compilation / cache loading happens once per process: do it before timing loads
        BM25(fields=["text"]).index([{"id": "x", "text": "warm up"}]).search("warm", k=1)
        warm = bm25s.BM25(backend="numba")
        warm.index([["warm", "up"], ["up"]], show_progress=False)
        warm.retrieve([["warm"]], k=1, show_progress=False, n_threads=1)
        print(f"{'':34}{'recseek':>12}{'bm25s':>12}{'ratio':>9}")
        for mmap in (False, True):
            ours, t_ours, mem_ours = timed_load(lambda mmap=mmap: LexicalRetriever.load(tmp / "recseek", mmap=mmap))
            ref, t_ref, mem_ref = timed_load(lambda mmap=mmap: bm25s.BM25.load(str(tmp / "bm25s"), mmap=mmap))
            ref.backend = "numba"
            t = time.perf_counter()
            ours.search(queries[0], k=10)
            first_ours = time.perf_counter() - t
            qtok = [q.split() for q in queries]
            t = time.perf_counter()
            ref.retrieve([qtok[0]], k=10, show_progress=False)
            first_ref = time.perf_counter() - t
            t = time.perf_counter()
            ours.search(queries, k=10)
            qps_ours = len(queries) / (time.perf_counter() - t)
            t = time.perf_counter()
            ref.retrieve(qtok, k=10, show_progress=False, n_threads=1)
            qps_ref = len(queries) / (time.perf_counter() - t)
            tag = "mmap" if mmap else "in memory"
            print(f"{'load s (' + tag + ')':34}{t_ours:12.2f}{t_ref:12.2f}{t_ref / t_ours:9.2f}")
            print(f"{'load allocations MiB (' + tag + ')':34}{mem_ours / 2**20:12.0f}{mem_ref / 2**20:12.0f}"
                  f"{mem_ref / max(mem_ours, 1):9.2f}")
            print(f"{'first query ms (' + tag + ')':34}{first_ours * 1e3:12.1f}{first_ref * 1e3:12.1f}"
                  f"{first_ref / first_ours:9.2f}")
            print(f"{'queries/s k=10 (' + tag + ')':34}{qps_ours:12.0f}{qps_ref:12.0f}{qps_ours / qps_ref:9.2f}")
            del ours, ref
            gc.collect()
        print("(queries single-threaded on both sides; ratios > 1 favour recseek)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
