"""Exact vs HNSW dense search on synthetic embeddings: throughput and recall@10, side by side
with hnswlib.

Data: a mixture of 2,000 Gaussian clusters in 384 dimensions (cluster centres ~ N(0, 1),
points = centre + N(0, 0.6^2) noise), L2-normalised like sentence embeddings; queries are
fresh points from the same mixture. Recall@10 is measured against recseek's exact search
(blocked float32 matrix products). recseek's HNSW graph (faiss, ``search/_ann.py``) is
compared with hnswlib (the previous backend, built from source; run only when it is
installed) on the same vectors with the same M, ef_construction and ef_search: build
time, queries per second and recall, and the ratio of recseek's speed to hnswlib's.
Metadata filters keeping 10% and 50% of the documents show exact-over-the-subset and
over-fetch-and-filter.

Run: ``.venv/bin/python benchmarks/bench_ann.py [--n 200000] [--dim 384] [--queries 1000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recseek.search.dense import DenseRetriever


class Rows:
    """Encoder returning row ``i`` of a matrix for the text ``str(i)`` (no model involved)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def encode(self, texts):
        return self.vectors[np.fromiter((int(t) for t in texts), dtype=np.int64, count=len(texts))]


def mixture(n: int, dim: int, clusters: int, rng: np.random.Generator, centres: np.ndarray | None = None):
    if centres is None:
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, centres


def recall(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b, strict=True)]))


def timed(fn, repeat: int = 1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--m", type=int, default=16)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    docs_v, centres = mixture(args.n, args.dim, 2000, rng)
    q, _ = mixture(args.queries, args.dim, 2000, rng, centres)
    print(f"{args.n:,} documents x {args.dim} dims, {args.queries} queries; HNSW M={args.m}, "
          f"ef_construction={args.ef_construction}")

    r = DenseRetriever(encoder=Rows(docs_v), ann="hnsw", hnsw_m=args.m, ef_construction=args.ef_construction,
                       cache=False, batch_size=8192)
    docs = [{"id": str(i), "text": str(i), "part": i % 10} for i in range(args.n)]
    _, t_build = timed(lambda: r.index(docs))
    peer = hnswlib_index(docs_v, args.m, args.ef_construction)
    peer_note = "hnswlib not installed: no side-by-side figures" if peer is None else \
        f"hnswlib build {peer[1]:.1f} s (recseek/hnswlib build time {t_build / peer[1]:.2f})"
    print(f"recseek index (embedding lookup + HNSW build): {t_build:.1f} s; {peer_note}")

    exact, t_exact = timed(lambda: r.search_vectors(q, 10, exact=True), repeat=2)
    print(f"\n{'search (no filter)':28s} {'queries/s':>10s} {'speed-up':>9s} {'recall@10':>10s}"
          f"   {'hnswlib q/s':>11s} {'recall@10':>10s} {'recseek/hnswlib speed':>22s}")
    print(f"{'recseek exact (BLAS)':28s} {args.queries / t_exact:10,.0f} {1.0:9.2f} {1.0:10.3f}")
    for ef in (32, 64, 128, 256):
        r.ef_search = ef
        got, t = timed(lambda: r.search_vectors(q, 10), repeat=2)
        line = f"{f'recseek HNSW ef={ef}':28s} {args.queries / t:10,.0f} {t_exact / t:9.2f} {recall(got.ids, exact.ids):10.3f}"
        if peer is not None:
            index = peer[0]
            index.set_ef(ef)
            (labels, _), t_peer = timed(lambda index=index: index.knn_query(q, k=10, num_threads=-1), repeat=2)
            rec_peer = recall(np.asarray(labels).astype(str), exact.ids)
            line += f"   {args.queries / t_peer:11,.0f} {rec_peer:10.3f} {t_peer / t:22.2f}"
        print(line)

    r.ef_search = 64
    for flt, label in (({"part": 3}, "10%"), ({"part": {"lt": 5}}, "50%")):
        exact_f, t_ef = timed(lambda flt=flt: r.search_vectors(q, 10, filter=flt, exact=True))
        got_f, t_f = timed(lambda flt=flt: r.search_vectors(q, 10, filter=flt))
        ok = all(int(d) % 10 in ((3,) if label == "10%" else range(5)) for d in got_f.ids.ravel() if d)
        how = "exact over the kept rows" if args.n // (10 if label == "10%" else 2) <= r.ann_threshold \
            else "HNSW over-fetch + filter"
        print(f"filter keeping {label}: exact {args.queries / t_ef:,.0f} q/s; auto ({how}) "
              f"{args.queries / t_f:,.0f} q/s (speed-up {t_ef / t_f:.2f}), recall@10 "
              f"{recall(got_f.ids, exact_f.ids):.3f}, all results match the filter: {ok}")


def hnswlib_index(vectors: np.ndarray, m: int, ef_construction: int):
    """(hnswlib index, build seconds) over ``vectors``, or None when hnswlib is not installed."""
    try:
        import hnswlib
    except ImportError:
        return None
    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=vectors.shape[0], ef_construction=ef_construction, M=m, random_seed=0)
    index.add_items(vectors, np.arange(vectors.shape[0]), num_threads=-1)
    return index, time.perf_counter() - t


if __name__ == "__main__":
    main()
