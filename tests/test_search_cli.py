"""The search commands (recseek.search.cli) through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from recseek.search.cli import index_cmd, search_cmd, search_eval_cmd


@pytest.fixture
def collection(tmp_path):
    docs = [
        {"id": "d1", "title": "Wing flutter", "text": "flutter of a swept wing at high speed", "year": 1958, "lang": "en"},
        {"id": "d2", "title": "Boundary layer", "text": "laminar boundary layer on a flat plate", "year": 1962, "lang": "en"},
        {"id": "d3", "title": "Heat transfer", "text": "heat transfer in hypersonic boundary layer flow", "year": 1965,
         "lang": "de"},
        {"id": "d4", "title": "Slipstream", "text": "lift of a wing in a propeller slipstream", "year": 1970, "lang": "de"},
    ]
    p = tmp_path / "docs.jsonl"
    p.write_text("".join(json.dumps(d) + "\n" for d in docs))
    q = tmp_path / "queries.tsv"
    q.write_text("1\tboundary layer\n2\twing flutter\n3\tunjudged query\n")
    r = tmp_path / "qrels.txt"
    r.write_text("1 0 d2 2\n1 0 d3 1\n2 0 d1 1\n")
    return tmp_path, p, q, r


def _index(tmp_path, docs, *extra):
    res = CliRunner().invoke(index_cmd, [str(docs), "--out", str(tmp_path / "idx"), *extra])
    assert res.exit_code == 0, res.output
    return tmp_path / "idx"


def test_index_search_and_filters(collection):
    tmp, docs, _, _ = collection
    idx = _index(tmp, docs)
    assert (idx / "lexical" / "manifest.json").exists()
    runner = CliRunner()
    res = runner.invoke(search_cmd, [str(idx), "boundary layer", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {r["id"] for r in rows} == {"d2", "d3"} and rows[0]["rank"] == 1
    res = runner.invoke(search_cmd, [str(idx), "boundary layer", "--filter", "lang=de", "--json"])
    assert [r["id"] for r in json.loads(res.output)] == ["d3"]
    res = runner.invoke(search_cmd, [str(idx), "wing", "--filter", "year>=1960", "--json"])
    assert [r["id"] for r in json.loads(res.output)] == ["d4"]
    res = runner.invoke(search_cmd, [str(idx), "wing"])
    assert res.output.splitlines()[0].split("\t")[0] == "1"
    res = runner.invoke(search_cmd, [str(idx), "the of"])
    assert res.output.strip() == "no results"


def test_search_errors(collection):
    tmp, docs, _, _ = collection
    idx = _index(tmp, docs)
    runner = CliRunner()
    res = runner.invoke(search_cmd, [str(idx), "wing", "--filter", "colour=red"])
    assert res.exit_code != 0 and "colour" in str(res.exception)
    res = runner.invoke(search_cmd, [str(idx), "wing", "--filter", "year=late"])
    assert res.exit_code != 0 and "year" in str(res.exception)
    res = runner.invoke(search_cmd, [str(tmp), "wing"])
    assert res.exit_code != 0 and "not a recseek index" in str(res.exception)
    res = runner.invoke(search_cmd, [str(idx), "wing", "--hybrid"])
    assert res.exit_code != 0 and "--dense" in str(res.exception)


def test_search_eval_prints_metrics_and_writes_run(collection):
    tmp, docs, queries, qrels = collection
    idx = _index(tmp, docs, "--fields", "title:2,text", "--method", "bm25+")
    run = tmp / "run.txt"
    res = CliRunner().invoke(search_eval_cmd, [str(idx), "--queries", str(queries), "--qrels", str(qrels), "--run",
                                               str(run)])
    assert res.exit_code == 0, res.output
    lines = dict(ln.split(None, 1) for ln in res.output.splitlines()[1:])
    assert set(lines) == {"nDCG@10", "Recall@100", "MAP", "MRR", "P@10"}
    assert float(lines["MRR"]) == pytest.approx(1.0)
    assert float(lines["Recall@100"]) == pytest.approx(1.0)
    assert "1 without judgements" in res.output
    assert run.read_text().startswith("1 Q0 d2 1 ")


def test_index_rejects_bad_input(collection, tmp_path):
    tmp, docs, _, _ = collection
    bad = tmp / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "x"}\n{oops\n')
    res = CliRunner().invoke(index_cmd, [str(bad), "--out", str(tmp / "i2")])
    assert res.exit_code != 0 and "line 2" in str(res.exception)
    res = CliRunner().invoke(index_cmd, [str(docs), "--out", str(tmp / "i3"), "--fields", "title:x"])
    assert res.exit_code != 0 and "weight" in str(res.exception)


@pytest.mark.slow
def test_dense_and_hybrid(collection):
    pytest.importorskip("sentence_transformers")
    tmp, docs, queries, qrels = collection
    idx = _index(tmp, docs, "--dense")
    assert (idx / "dense").is_dir()
    res = CliRunner().invoke(search_cmd, [str(idx), "boundary layer", "--hybrid", "--json"])
    assert res.exit_code == 0, res.output
    ids = [r["id"] for r in json.loads(res.stdout)]
    assert ids[0] in {"d2", "d3"}
    res = CliRunner().invoke(search_eval_cmd, [str(idx), "--queries", str(queries), "--qrels", str(qrels), "--hybrid"])
    assert res.exit_code == 0, res.output
    ndcg = next(ln for ln in res.stdout.splitlines() if ln.startswith("nDCG@10"))
    assert 0.0 <= float(ndcg.split()[1]) <= 1.0


def _main(*args: str):
    """The whole ``recseek`` command group, so that errors become exit status 2 and one ``error:`` line."""
    from recseek.cli import cli

    return CliRunner().invoke(cli, list(args))


def _metric_lines(output: str) -> dict[str, str]:
    return dict(ln.split(None, 1) for ln in output.splitlines()[1:])


def test_search_eval_reads_smart_rel_judgements(collection):
    tmp, docs, queries, _ = collection
    idx = _index(tmp, docs)
    rel = tmp / "COLL.REL"
    rel.write_text("     1     d2 0 0.000000\n     1     d3 0 0.000000\n     2     d1 0 0.000000\n")
    for fmt in ("auto", "smart"):
        res = _main("search-eval", str(idx), "--queries", str(queries), "--qrels", str(rel), "--qrels-format", fmt)
        assert res.exit_code == 0, res.output
        lines = _metric_lines(res.stdout)
        assert float(lines["MRR"]) == pytest.approx(1.0) and float(lines["Recall@100"]) == pytest.approx(1.0)
    # read as TREC, the document column is the constant 0: no judged document is indexed, a loud failure
    res = _main("search-eval", str(idx), "--queries", str(queries), "--qrels", str(rel), "--qrels-format", "trec")
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--qrels-format" in err[0]


def test_search_eval_fails_when_no_judged_document_is_indexed(collection):
    tmp, docs, queries, _ = collection
    idx = _index(tmp, docs)
    other = tmp / "other.txt"
    other.write_text("1 0 x17 1\n2 0 x18 2\n")
    res = _main("search-eval", str(idx), "--queries", str(queries), "--qrels", str(other))
    assert res.exit_code == 2 and "none of the 2 documents judged relevant" in res.stderr
    assert "nan" not in res.stdout


def test_search_eval_reports_retrieval_apart_from_start_up(collection):
    import re

    tmp, docs, queries, qrels = collection
    idx = _index(tmp, docs)
    res = _main("search-eval", str(idx), "--queries", str(queries), "--qrels", str(qrels))
    assert res.exit_code == 0, res.output
    head = res.stdout.splitlines()[0]
    m = re.search(r"retrieval ([\d.]+) s \((\d+) queries/s\); start-up ([\d.]+) s "
                  r"\(index load ([\d.]+) s, first search ([\d.]+) s\)", head)
    assert m, head
    retrieval, startup, load, first = (float(m.group(i)) for i in (1, 3, 4, 5))
    assert startup == pytest.approx(load + first, abs=0.011) and retrieval >= 0
