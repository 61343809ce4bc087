"""Search collection readers/writers (recseek.search.io) and IR metrics (recseek.search.metrics)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recseek.errors import DataError, ParameterError
from recseek.search import io as sio
from recseek.search import metrics as M
from recseek.testing.fixtures import shared_data_dir

_SHARED = shared_data_dir()
CRAN = (_SHARED or Path("missing")) / "cranfield"

# ---------------------------------------------------------------- readers


def test_jsonl_documents_and_errors(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text('{"_id": "1", "title": "T", "text": "x", "metadata": {"year": 1999}}\n\n{"id": 2, "text": "y"}\n')
    docs = sio.read_jsonl_documents(p)
    assert docs == [{"id": "1", "title": "T", "text": "x", "year": 1999}, {"id": "2", "text": "y"}]
    p.write_text('{"id": "1", "text": "x"}\n{"id": "2", "text": \n')
    with pytest.raises(DataError, match="line 2"):
        sio.read_jsonl_documents(p)
    p.write_text("\n\n")
    with pytest.raises(DataError, match="empty corpus"):
        sio.read_jsonl_documents(p)
    p.write_text('{"text": "x"}\n')
    with pytest.raises(DataError, match="no id"):
        sio.read_jsonl_documents(p)


def test_non_utf8_names_file_and_offset(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"id": "1", "text": "ok"}\n{"id": "2", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl is not valid UTF-8.*byte offset 50, line 2"):
        sio.read_jsonl_documents(p)


def test_csv_documents(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('id,title,year\na,"Wing, lift",1999\nb,Plate,2001\n')
    assert sio.read_csv_documents(p) == [
        {"id": "a", "title": "Wing, lift", "year": 1999},
        {"id": "b", "title": "Plate", "year": 2001},
    ]
    p.write_text("title\nx\n")
    with pytest.raises(DataError, match="no 'id' column"):
        sio.read_csv_documents(p)
    p.write_text("id,title\na,x,y\n")
    with pytest.raises(DataError, match="line 2"):
        sio.read_csv_documents(p)


def test_beir_folder(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "a", "text": "b"}) + "\n" + json.dumps({"_id": "d2", "title": "", "text": "c"}) + "\n"
    )
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "b"}) + "\n" + json.dumps({"_id": "q2", "text": "zz"}) + "\n"
    )
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    docs, queries, qrels = sio.read_beir(tmp_path)
    assert [d["id"] for d in docs] == ["d1", "d2"]
    assert queries == {"q1": "b"}
    assert qrels == {"q1": {"d1": 2.0}}
    with pytest.raises(DataError, match="'dev'"):
        sio.read_beir(tmp_path, split="dev")
    assert sio.read_documents(tmp_path)[0]["id"] == "d1"


def test_trec_qrels_and_run_round_trip(tmp_path):
    q = tmp_path / "qrels.txt"
    q.write_text("1 0 d1 2\n1 0 d2 0\n2 0 d3 1\n")
    assert sio.read_trec_qrels(q) == {"1": {"d1": 2.0, "d2": 0.0}, "2": {"d3": 1.0}}
    assert sio.read_qrels(q) == sio.read_trec_qrels(q)
    run = tmp_path / "run.txt"
    ids = np.array([["d1", "d2", ""], ["d3", "", ""]])
    scores = np.array([[2.5, 1.0, -np.inf], [0.5, -np.inf, -np.inf]], dtype=np.float32)
    sio.write_trec_run(run, ["1", "2"], ids, scores, tag="bm25")
    assert run.read_text().splitlines()[0] == "1 Q0 d1 1 2.500000 bm25"
    assert sio.read_trec_run(run) == {"1": [("d1", 2.5), ("d2", 1.0)], "2": [("d3", 0.5)]}
    q.write_text("1 0 d1\n")
    with pytest.raises(DataError, match="line 1"):
        sio.read_trec_qrels(q)


def test_smart_reader_on_small_file(tmp_path):
    p = tmp_path / "c.all"
    p.write_text(".I 1\n.T\nwing theory .\n.A\nsmith\n.W\nlift of\nwings .\n.I 2\n.T\nplates\n.W\nflat plate\n")
    docs = sio.read_smart(p)
    assert docs[0] == {"id": "1", "title": "wing theory .", "text": "lift of wings .", "author": "smith"}
    assert docs[1]["title"] == "plates"
    p.write_text("hello\n.I 1\n")
    with pytest.raises(DataError, match="line 1"):
        sio.read_smart(p)


@pytest.mark.skipif(not CRAN.exists(), reason="Cranfield data not available")
def test_cranfield_collection():
    docs = sio.read_smart(CRAN / "cran.all.1400")
    queries = sio.read_smart_queries(CRAN / "cran.qry")
    qrels = sio.read_cranfield_qrels(CRAN / "cranqrel")
    assert len(docs) == 1400 and len(queries) == 225
    assert list(queries)[:2] == ["1", "2"]  # renumbered: the i-th query is qrel id i
    assert queries["1"].startswith("what similarity laws")
    gains = {g for rel in qrels.values() for g in rel.values()}
    assert gains <= {1.0, 2.0, 3.0, 4.0}
    assert qrels["1"]["184"] == 3.0  # code 2 -> gain 3
    assert sio.read_qrels(CRAN / "cranqrel") == qrels


def test_cranfield_codes(tmp_path):
    p = tmp_path / "cranqrel"
    p.write_text("1 5 1\n1 6 4\n1 7 -1\n")
    assert sio.read_cranfield_qrels(p) == {"1": {"5": 4.0, "6": 1.0}}
    p.write_text("1 5 9\n")
    with pytest.raises(DataError, match="line 1"):
        sio.read_cranfield_qrels(p)


def test_read_queries_formats(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("q1\twing lift\nq2\tplates\n")
    assert sio.read_queries(p) == {"q1": "wing lift", "q2": "plates"}
    p.write_text('{"_id": "a", "text": "x"}\n')
    assert sio.read_queries(p) == {"a": "x"}


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        sio.read_documents(tmp_path / "nope.jsonl")


# ---------------------------------------------------------------- metrics


def _naive(run: list[str], rel: dict[str, float], k: int) -> dict[str, float]:
    relevant = {d for d, g in rel.items() if g > 0}
    gains = [rel.get(d, 0.0) if d else 0.0 for d in run]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    hits_k = sum(1 for d in run[:k] if d in relevant)
    ap, h = 0.0, 0
    for i, d in enumerate(run):
        if d in relevant:
            h += 1
            ap += h / (i + 1)
    rr = next((1.0 / (i + 1) for i, d in enumerate(run) if d in relevant), 0.0)
    return {
        "ndcg": dcg / idcg,
        "recall": hits_k / len(relevant),
        "p": hits_k / k,
        "map": ap / len(relevant),
        "mrr": rr,
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.permutations([f"d{i}" for i in range(12)]),
            st.dictionaries(st.sampled_from([f"d{i}" for i in range(15)]), st.sampled_from([0.0, 1.0, 2.0, 3.0]),
                            min_size=1, max_size=8),
            st.integers(0, 4),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 12),
)
def test_metrics_match_naive_definitions(cases, k):
    runs = [list(p[: 12 - pad]) + [""] * pad for p, _, pad in cases]
    qrels = [rel for _, rel, _ in cases]
    ids = np.array(runs)
    gains, judged = M.gain_matrix(ids, qrels)
    got = {
        "ndcg": M.ndcg_at_k(gains, judged, k),
        "recall": M.recall_at_k(gains, judged, k),
        "p": M.precision_at_k(gains, judged, k),
        "map": M.average_precision(gains, judged),
        "mrr": M.reciprocal_rank(gains, judged),
    }
    for q, (run, rel) in enumerate(zip(runs, qrels, strict=True)):
        if not any(g > 0 for g in rel.values()):
            assert all(np.isnan(v[q]) for v in got.values())
            continue
        ref = _naive(run, rel, k)
        for name, v in got.items():
            assert v[q] == pytest.approx(ref[name], abs=1e-12), name


def test_evaluate_averages_judged_queries_only():
    ids = np.array([["a", "b"], ["c", "d"], ["e", "f"]])
    qrels = [{"b": 1.0}, {}, {"e": 2.0, "x": 1.0}]
    res = M.evaluate(ids, qrels, ["mrr", "recall@1", "p@2", "ndcg@2", "map"])
    assert res["mrr"] == pytest.approx((0.5 + 1.0) / 2)
    assert res["recall@1"] == pytest.approx((0.0 + 0.5) / 2)
    assert res["p@2"] == pytest.approx((0.5 + 0.5) / 2)
    with pytest.raises(ParameterError):
        M.evaluate(ids, qrels, ["ndcg"])
    with pytest.raises(ParameterError):
        M.evaluate(ids, qrels, ["bpref"])
    with pytest.raises(ParameterError):
        M.evaluate(ids, qrels[:2])


def test_qrels_formats_are_told_apart(tmp_path):
    smart = tmp_path / "CISI.REL"
    smart.write_text("     1     28 0 0.000000\n     1     35 0 0.000000\n     2     29 0 0.000000\n")
    trec = tmp_path / "qrels.txt"
    trec.write_text("1 0 28 1\n1 0 35 0\n2 0 29 2\n")
    assert sio.guess_qrels_format(smart) == "smart" and sio.guess_qrels_format(trec) == "trec"
    assert sio.read_qrels(smart) == {"1": {"28": 1.0, "35": 1.0}, "2": {"29": 1.0}}
    assert sio.read_qrels(trec, "auto") == {"1": {"28": 1.0, "35": 0.0}, "2": {"29": 2.0}}
    assert sio.read_qrels(smart, "trec") == {"1": {"0": 0.0}, "2": {"0": 0.0}}  # what the old guess produced
    with pytest.raises(DataError, match="unknown qrels format"):
        sio.read_qrels(smart, "xml")
