"""Every metric against a naive per-user definition written here, on random cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recseek import metrics as M


@st.composite
def ranking_case(draw):
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(2, 14))
    k = draw(st.integers(1, 6))
    lists, rels, n_cands = [], [], []
    for _ in range(n_users):
        n_train = draw(st.integers(0, n_items - 1))
        perm = draw(st.permutations(range(n_items)))
        cand = perm[n_train:]  # the first n_train items play the training items
        rel = sorted(draw(st.sets(st.sampled_from(cand), min_size=1, max_size=len(cand))))
        order = draw(st.permutations(cand))
        lst = list(order[:k])
        lists.append(lst + [-1] * (k - len(lst)))
        rels.append(rel)
        n_cands.append(len(cand))
    ids = np.array(lists, dtype=np.int64)
    rows = np.repeat(np.arange(n_users), [len(r) for r in rels])
    cols = np.concatenate([np.array(r, dtype=np.int64) for r in rels])
    relevant = sp.csr_array((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    return ids, rels, relevant, np.array(n_cands), k, n_items


def naive(ids, rels, n_cands, k):
    out = {n: [] for n in ("precision", "recall", "recall_capped", "ndcg", "map", "map_capped", "mrr", "hitrate", "auc")}
    for row, rel, n_cand in zip(ids, rels, n_cands, strict=True):
        lst = [int(i) for i in row if i >= 0]
        rel_set = set(rel)
        hits = [i in rel_set for i in lst]
        h = sum(hits)
        out["precision"].append(h / k)
        out["recall"].append(h / len(rel))
        out["recall_capped"].append(h / min(len(rel), k))
        dcg = sum(1 / math.log2(r + 2) for r, x in enumerate(hits) if x)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), len(lst))))
        out["ndcg"].append(dcg / idcg if idcg else 0.0)
        ap, c = 0.0, 0
        for r, x in enumerate(hits):
            if x:
                c += 1
                ap += c / (r + 1)
        out["map"].append(ap / len(rel))  # TREC: divided by every relevant item
        den = min(len(rel), len(lst))
        out["map_capped"].append(ap / den if den else 0.0)
        out["mrr"].append(next((1 / (r + 1) for r, x in enumerate(hits) if x), 0.0))
        out["hitrate"].append(1.0 if h else 0.0)
        # JStarCraft AUCEvaluator, test items walked in ascending index order
        length = min(len(lst), n_cand)
        miss = length - h
        den = (len(rel) + n_cand - length - h) * h
        if den == 0:
            out["auc"].append(0.5)
        else:
            x, seen = 0, 0
            for item in rel:
                if item in lst:
                    seen += 1
                else:
                    x += seen
            out["auc"].append((x + seen * (n_cand - miss)) / den)
    return {n: np.array(v) for n, v in out.items()}


@settings(max_examples=150, deadline=None)
@given(ranking_case())
def test_ranking_metrics_match_naive(case):
    ids, rels, relevant, n_cands, k, _ = case
    hits = M.hit_matrix(ids, relevant)
    for r, row in enumerate(ids):
        assert hits[r].tolist() == [int(i) in set(rels[r]) for i in row]
    n_rel = np.array([len(r) for r in rels])
    lengths = M.list_lengths(ids)
    expect = naive(ids, rels, n_cands, k)
    np.testing.assert_allclose(M.precision(hits, k), expect["precision"])
    np.testing.assert_allclose(M.recall(hits, n_rel), expect["recall"])
    np.testing.assert_allclose(M.recall_capped(hits, n_rel, k), expect["recall_capped"])
    np.testing.assert_allclose(M.ndcg(hits, n_rel, lengths), expect["ndcg"])
    np.testing.assert_allclose(M.average_precision(hits, n_rel), expect["map"])
    np.testing.assert_allclose(M.average_precision_capped(hits, n_rel, lengths), expect["map_capped"])
    np.testing.assert_allclose(M.reciprocal_rank(hits), expect["mrr"])
    np.testing.assert_allclose(M.hit_rate(hits), expect["hitrate"])
    np.testing.assert_allclose(M.auc_topn(ids, hits, relevant, n_cands), expect["auc"])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_auc_full_matches_pair_count(n_users, n_items, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, (n_users, n_items)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.1] = np.nan
    pos = rng.random((n_users, n_items)) < 0.3
    excl = (rng.random((n_users, n_items)) < 0.3) & ~pos
    got = M.auc_full(scores, sp.csr_array(pos.astype(np.float32)), excluded=sp.csr_array(excl.astype(np.float32)))
    for u in range(n_users):
        s = np.nan_to_num(scores[u], nan=-np.inf)
        p = [s[j] for j in range(n_items) if pos[u, j]]
        n = [s[j] for j in range(n_items) if not pos[u, j] and not excl[u, j]]
        if not p or not n:
            assert got[u] == 0.5
            continue
        wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in p for b in n)
        assert got[u] == pytest.approx(wins / (len(p) * len(n)))


def test_auc_full_perfect_and_reversed():
    scores = np.array([[3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    rel = sp.csr_array(np.array([[1, 1, 0, 0]], dtype=np.float32))
    assert M.auc_full(scores, rel)[0] == 1.0
    assert M.auc_full(-scores, rel)[0] == 0.0


@settings(max_examples=100, deadline=None)
@given(ranking_case(), st.integers(0, 2**31 - 1))
def test_beyond_accuracy_match_naive(case, seed):
    ids, _, _, _, k, n_items = case
    rng = np.random.default_rng(seed)
    n_users_data = ids.shape[0] + 3
    counts = rng.integers(0, 5, n_items)
    nov = M.novelty(ids, counts, n_users_data)
    for r, row in enumerate(ids):
        want = sum(-math.log2(counts[i] / n_users_data) for i in row if i >= 0 and counts[i] > 0)
        assert nov[r] == pytest.approx(want)
    shown = {int(i) for i in ids.ravel() if i >= 0}
    assert M.coverage(ids, n_items) == pytest.approx(len(shown) / n_items)
    rec = np.bincount(ids[ids >= 0], minlength=n_items).astype(float)
    mad = np.abs(rec[:, None] - rec[None, :]).sum()
    assert M.gini(ids, n_items) == pytest.approx(mad / (2 * n_items * rec.sum()) if rec.sum() else 0.0)
    vecs = rng.normal(size=(n_items, 3)).astype(np.float32)
    div = M.diversity(ids, vecs, block=2)
    for r, row in enumerate(ids):
        lst = [int(i) for i in row if i >= 0]
        pairs = [(a, b) for x, a in enumerate(lst) for y, b in enumerate(lst) if x != y]
        cos = [vecs[a] @ vecs[b] / (np.linalg.norm(vecs[a]) * np.linalg.norm(vecs[b])) for a, b in pairs]
        want = float(np.mean([1 - c for c in cos])) if pairs else 0.0
        assert div[r] == pytest.approx(want, abs=1e-5)


def test_item_counts_and_cooccurrence_cosine():
    train = sp.csr_array(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=np.float32))
    test = sp.csr_array(np.array([[1, 0, 1], [0, 0, 0], [0, 0, 1]], dtype=np.float32))
    # (user 0, item 0) is in both and counts once; (user 2, item 2) too
    np.testing.assert_array_equal(M.item_counts(train, test), [2, 2, 2])
    vecs = M.cooccurrence_vectors(train)
    sim = (vecs @ vecs.T).toarray()
    # items 0 and 1 share user 0: 1 / sqrt(2 * 2)
    assert sim[0, 1] == pytest.approx(0.5)
    assert sim[0, 2] == pytest.approx(0.0)
    div = M.diversity(np.array([[0, 1], [0, 2]]), vecs)
    np.testing.assert_allclose(div, [0.5, 1.0], rtol=1e-6)


def test_gini_extremes():
    assert M.gini(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    assert M.gini(np.array([[0], [0], [0]]), 3) == pytest.approx(2 / 3)
    assert M.gini(np.full((2, 2), -1), 3) == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 5)), min_size=1, max_size=30))
def test_rating_metrics_match_naive(pairs):
    p = np.array([a for a, _ in pairs])
    t = np.array([b for _, b in pairs])
    n = len(pairs)
    assert M.mae(p, t) == pytest.approx(sum(abs(a - b) for a, b in pairs) / n)
    assert M.mse(p, t) == pytest.approx(sum((a - b) ** 2 for a, b in pairs) / n)
    assert M.rmse(p, t) == pytest.approx(math.sqrt(sum((a - b) ** 2 for a, b in pairs) / n))
    assert M.mpe(p, t) == pytest.approx(sum(abs(a - b) > 0.01 for a, b in pairs) / n)


def test_rating_metrics_reject_length_mismatch():
    with pytest.raises(ValueError, match="differ in length"):
        M.mae(np.ones(3), np.ones(2))


def test_hit_matrix_ignores_padding_and_out_of_range():
    rel = sp.csr_array(np.array([[0, 1, 1]], dtype=np.float32))
    hits = M.hit_matrix(np.array([[2, -1, 5, 1]]), rel)
    assert hits.tolist() == [[True, False, False, True]]


def test_auc_full_many_positives_uses_same_definition():
    # rows with more than 16 positives take the sort-and-search branch
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, (4, 80)).astype(np.float32)
    pos = rng.random((4, 80)) < 0.5
    got = M.auc_full(scores, sp.csr_array(pos.astype(np.float32)))
    for u in range(4):
        p, n = scores[u][pos[u]], scores[u][~pos[u]]
        wins = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
        assert pos[u].sum() > 16
        assert got[u] == pytest.approx(wins / (len(p) * len(n)))
