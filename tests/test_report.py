"""Experiment reports: per-user details kept by run_experiment, the analysis, the HTML,
Markdown and LaTeX outputs, the command line, and the HTML rendered in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import numba
import numpy as np
import pytest
from click.testing import CliRunner

from recseek import datasets
from recseek.cli import cli
from recseek.data.split import split
from recseek.errors import DataError, ParameterError
from recseek.evaluation import stats
from recseek.evaluation._details import PeakMemory, data_fingerprint
from recseek.evaluation.experiment import run_experiment
from recseek.evaluation.protocol import evaluate_ranking
from recseek.evaluation.report import (
    analyse,
    load_results,
    render,
    render_html,
    render_latex,
    render_markdown,
    write_report,
)
from recseek.models import registry

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = """
[data]
name = "ml-100k"
min_rating = 4
binarize = true

[split]
method = "random"
ratio = 0.8
seed = 0

[evaluation]
k = 10
metrics = ["ndcg", "recall_capped", "gini", "coverage"]

[[models]]
name = "MostPopular"

[[models]]
name = "RandomGuess"

[[models]]
name = "ItemKNNRanking"

[[models]]
name = "EASE"

[[models]]
name = "EASE"
label = "EASE-again"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An ML-100K experiment with its details (EASE twice: two identical models)."""
    d = tmp_path_factory.mktemp("report")
    toml = d / "exp.toml"
    toml.write_text(EXPERIMENT)
    return toml, run_experiment(toml, progress=False, details=True)


#: Fewer resamples than a real report, for tests that check layout rather than figures.
QUICK = {"n_resamples": 1000, "n_permutations": 2000}


@pytest.fixture(scope="module")
def analysis(run):
    """The analysis of ``run`` with the report's default settings, baseline EASE."""
    return analyse(run[1], baseline="EASE")


@pytest.fixture(scope="module")
def positives():
    return datasets.load("ml-100k").filter_min_rating(4).binarize()


def _fold(results, label):
    return next(r for r in results if r["model"] == label)["details"]["folds"][0]


# ---------------------------------------------------------------- details kept by the run
def test_per_user_values_average_to_the_headline_metrics(run):
    _, results = run
    for r in results:
        f = r["details"]["folds"][0]
        assert set(f["per_user"]) == {"ndcg@10", "recall_capped@10"}
        for key, values in f["per_user"].items():
            assert np.mean(values) == pytest.approx(r["metrics"][key], abs=1e-12)
        assert f["popularity"]["gini"] == pytest.approx(r["metrics"]["gini@10"], abs=1e-12)
        assert f["popularity"]["coverage"] == pytest.approx(r["metrics"]["coverage@10"], abs=1e-12)


def test_per_user_values_equal_a_direct_computation(run, positives):
    from recseek.metrics import ranking as rm

    _, results = run
    train, test = split(positives, "random", ratio=0.8, seed=0)
    model = registry.create("ItemKNNRanking").fit(train)
    f = _fold(results, "ItemKNNRanking")
    pick = np.arange(0, len(f["users"]), 37)
    for j in pick:
        u = f["users"][j]
        ids = model.recommend([u], 10).ids
        rel = test.matrix[[u]]
        hits = rm.hit_matrix(ids, rel)
        n_rel = np.array([rel.nnz])
        assert f["per_user"]["ndcg@10"][j] == pytest.approx(rm.ndcg(hits, n_rel, rm.list_lengths(ids))[0], abs=1e-12)
        assert f["per_user"]["recall_capped@10"][j] == pytest.approx(rm.recall_capped(hits, n_rel, 10)[0], abs=1e-12)
    assert np.mean(f["per_user"]["ndcg@10"]) > 0.2


def test_curves_equal_separate_evaluations_at_each_cutoff(run, positives):
    _, results = run
    train, test = split(positives, "random", ratio=0.8, seed=0)
    model = registry.create("ItemKNNRanking").fit(train)
    curves = _fold(results, "ItemKNNRanking")["curves"]
    assert sorted(int(c) for c in curves) == [1, 2, 3, 5, 10, 15, 20]
    for c in (1, 5, 20):
        alone = evaluate_ranking(model, train, test, k=c, metrics=["ndcg", "recall_capped", "gini", "coverage"])
        for key, v in alone.items():
            assert curves[str(c)][key] == pytest.approx(v, abs=1e-12), (c, key)


def test_users_activity_and_data_hash_match_the_split(run, positives):
    _, results = run
    train, test = split(positives, "random", ratio=0.8, seed=0)
    f = _fold(results, "EASE")
    users = np.asarray(f["users"])
    np.testing.assert_array_equal(users, np.flatnonzero(np.diff(test.matrix.indptr) > 0))
    np.testing.assert_array_equal(f["activity"], np.diff(train.matrix.indptr)[users])
    e = results[0]["experiment"]
    assert e["data_sha256"] == data_fingerprint(positives)
    changed = positives.matrix.copy()
    changed.data[0] = 2.0
    assert data_fingerprint(type(positives)(changed, positives.users, positives.items)) != e["data_sha256"]
    assert e["protocol"] == "full ranking" and e["split"] == {"method": "random", "ratio": 0.8, "seed": 0}
    assert "EASE-again" in e["toml"] and e["seeds"] == {"split": 0}


def test_popularity_figures(run, positives):
    _, results = run
    train, _ = split(positives, "random", ratio=0.8, seed=0)
    pop = np.bincount(train.matrix.indices, minlength=train.n_items)
    p = {r["model"]: r["details"]["folds"][0]["popularity"] for r in results}
    # MostPopular recommends only head items, and the most popular ones
    assert max(p["MostPopular"]["per_user_long_tail"]) == 0.0
    assert np.mean(p["MostPopular"]["per_user_mean"]) > max(np.mean(p[m]["per_user_mean"]) for m in p if m != "MostPopular")
    assert np.mean(p["RandomGuess"]["per_user_long_tail"]) > 0.2
    # the data's curve at 20% of the catalogue: interactions of the 20% most popular items
    top = np.sort(pop)[::-1][: int(round(0.2 * pop.size))]
    assert p["EASE"]["interaction_curve"][20] == pytest.approx(top.sum() / pop.sum())
    for m in p:
        c = np.asarray(p[m]["exposure_curve"])
        assert c[0] == 0 and c[-1] == pytest.approx(1.0) and np.all(np.diff(c) >= -1e-12)
        assert sum(p[m]["recommended_counts"]) == 10 * len(p[m]["per_user_mean"])


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory() as mem:
        block = np.ones(200 * 2**20 // 8)
        block[::4096] = 2.0
    del block
    assert mem.method == "rss"  # Linux
    assert mem.peak_bytes >= 150 * 2**20
    assert mem.peak_total_bytes >= mem.peak_bytes


# ---------------------------------------------------------------- analysis
def test_tests_against_the_baseline(analysis):
    a = analysis
    t = a.tests["ndcg@10"]
    assert set(t) == {"MostPopular", "RandomGuess", "ItemKNNRanking", "EASE-again"}
    same = t["EASE-again"]
    assert same["difference"] == 0 and same["p_permutation"] == 1.0 and same["p_wilcoxon"] == 1.0
    assert same["p_permutation_holm"] == 1.0 and same["cohens_dz"] == 0.0
    for m in ("MostPopular", "RandomGuess"):
        assert t[m]["difference"] < 0 and t[m]["p_permutation_holm"] < 0.01 and t[m]["p_wilcoxon_holm"] < 0.01
        assert t[m]["cohens_dz"] < 0 and t[m]["rank_biserial"] < 0
    # Holm over the 8 comparisons: every adjusted p is at least its raw p
    all_t = [v for key in a.tests for v in a.tests[key].values()]
    assert len(all_t) == 8
    for test_name in ("p_permutation", "p_wilcoxon"):
        raw = [v[test_name] for v in all_t]
        np.testing.assert_array_equal([v[test_name + "_holm"] for v in all_t], stats.holm(raw))
    assert t["ItemKNNRanking"]["p_wilcoxon_holm"] > t["ItemKNNRanking"]["p_wilcoxon"]


def test_p_values_can_be_recomputed_from_the_json(run, tmp_path):
    _, results = run
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results, indent=2))
    loaded = load_results(path)
    a = analyse(loaded, baseline="ItemKNNRanking")
    base = np.asarray(_fold(loaded, "ItemKNNRanking")["per_user"]["ndcg@10"])
    other = np.asarray(_fold(loaded, "EASE")["per_user"]["ndcg@10"])
    t = a.tests["ndcg@10"]["EASE"]
    assert t["p_permutation"] == stats.permutation_test(base, other, seed=0)
    from scipy.stats import wilcoxon

    assert t["p_wilcoxon"] == wilcoxon(base, other).pvalue
    # on real per-user scores (100 users, so that p is neither 0 nor 1) the randomisation
    # test agrees with ranx's
    from ranx.statistical_tests import fisher_randomization_test

    x, y = base[:100], other[:100]
    ours = stats.permutation_test(x, y, n_permutations=1_000_000, seed=0)
    theirs, _ = fisher_randomization_test(x, y, n_permutations=200_000, max_p=0.05, random_seed=42)
    assert 0.001 < ours < 0.9 and abs(ours - theirs) <= 0.005, (ours, theirs)


def test_summary_intervals_and_buckets(run, analysis):
    _, results = run
    a = analysis
    assert analyse(results, **QUICK).baseline == "MostPopular"
    for m in a.models:
        s = a.summary[m]["ndcg@10"]
        assert s["ci_low"] < s["mean"] < s["ci_high"]
        assert s["ci_high"] - s["ci_low"] < 0.05
    f = _fold(results, "ItemKNNRanking")
    activity, values = np.asarray(f["activity"]), np.asarray(f["per_user"]["ndcg@10"])
    sizes = [int(re.search(r"n=(\d+)", b).group(1)) for b in a.buckets]
    assert len(a.buckets) == 4 and sum(sizes) == activity.size
    assert max(sizes) - min(sizes) < 0.1 * activity.size  # quartiles
    for b, label in enumerate(a.buckets):
        lo, hi = (int(v) for v in re.match(r"(\d+)–(\d+)", label).groups())
        members = values[(activity >= lo) & (activity <= hi)]
        assert a.bucket_stats["ndcg@10"]["ItemKNNRanking"][b].mean == pytest.approx(members.mean())


def test_fold_mean_and_sd(tmp_path):
    toml = tmp_path / "kfold.toml"
    toml.write_text(EXPERIMENT.split("[[models]]")[0].replace('method = "random"\nratio = 0.8', 'method = "kfold"\nk = 3')
                    + '[[models]]\nname = "MostPopular"\n\n[[models]]\nname = "ItemKNNRanking"\n')
    results = run_experiment(toml, progress=False, details=True)
    a = analyse(results, **QUICK)
    assert a.n_folds == 3
    folds = results[1]["details"]["folds"]
    means = [np.mean(f["per_user"]["ndcg@10"]) for f in folds]
    s = a.summary["ItemKNNRanking"]["ndcg@10"]
    assert s["fold_mean"] == pytest.approx(np.mean(means)) and s["fold_sd"] == pytest.approx(np.std(means, ddof=1))
    assert "fold mean ± sd" in render_markdown(a)


# ---------------------------------------------------------------- outputs
def test_html_is_self_contained_and_complete(run, analysis):
    _, results = run
    html = render_html(analysis, results)
    assert render(results, "html", baseline="EASE") == html  # a fixed seed reproduces the report
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    for forbidden in ("<script", "<link", "<img", "<iframe", "url(", "@import"):
        assert forbidden not in html
    assert html.count("<style>") == 1
    e = results[0]["experiment"]
    for text in (e["data_sha256"], "full ranking", "random (ratio=0.8, seed=0)", 'name = &quot;EASE&quot;',
                 "label = &quot;EASE-again&quot;"):
        assert text in html, text
    titles = re.findall(r'<svg class="panel"[^>]*role="img"[^>]*><title id="[^"]+">([^<]+)</title>', html)
    assert titles == [
        "ndcg@10 with 95% CI", "recall_capped@10 with 95% CI",
        "ndcg@k", "recall_capped@k", "gini@k", "coverage@k",
        "ndcg@10 per user by activity", "recall_capped@10 per user by activity",
        "Average recommended popularity", "Long-tail share", "Gini of exposure", "Item coverage",
        "Long-tail exposure curve", "Fit time", "Recommend time", "Peak memory (fit)",
    ]
    assert html.count("<desc") == len(titles)
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # five models -> five bars in every bar chart, five boxes per bucket
    assert html.count('class="bar"') == 5 * 9 and html.count('class="box"') == 2 * 4 * 5


def test_markdown_and_latex_tables(analysis):
    md = render_markdown(analysis)
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | ndcg@10 [95% CI] | recall_capped@10 [95% CI] | gini@10 | coverage@10")
    assert sum(line.startswith("| EASE-again ") for line in table) == 3  # results + two test tables
    assert "| EASE (baseline) |" in md
    tex = render_latex(analysis)
    assert tex.count(r"\begin{tabular}") == 3 and tex.count(r"\end{tabular}") == 3
    assert r"recall\_capped@10" in tex and "recall_capped" not in tex.replace(r"recall\_capped", "")
    assert r"EASE-again & " in tex and r"$\pm$" not in tex  # one fold: no fold sd


def test_write_report_picks_the_format_and_writes_nothing_on_error(run, tmp_path):
    _, results = run
    assert write_report(results, tmp_path / "r.md", **QUICK).read_text().startswith("## Results")
    assert write_report(results, tmp_path / "r.tex", **QUICK).read_text().startswith("% recseek")
    assert write_report(results, tmp_path / "r.html", **QUICK).read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ParameterError, match="baseline 'nope'"):
        write_report(results, tmp_path / "bad.html", baseline="nope", **QUICK)
    with pytest.raises(ParameterError, match="suffix"):
        write_report(results, tmp_path / "bad.pdf", **QUICK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.md", "r.tex"]


def test_load_results_rejects_what_a_report_cannot_use(run, tmp_path):
    _, results = run
    cases = {
        "not json": "{",
        "no details": json.dumps([{k: v for k, v in results[0].items() if k != "details"}]),
        "not a list": json.dumps({"model": "x"}),
    }
    broken = json.loads(json.dumps(results))
    broken[1]["details"]["folds"][0]["per_user"]["ndcg@10"].pop()
    cases["short array"] = json.dumps(broken)
    for text in cases.values():
        p = tmp_path / "bad.json"
        p.write_text(text)
        with pytest.raises(DataError):
            load_results(p)


# ---------------------------------------------------------------- command line
def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["user,item,rating,timestamp"]
    for u in range(40):
        for n, i in enumerate(rng.choice(30, 8, replace=False)):
            lines.append(f"{u},{i},{rng.integers(1, 6)},{u * 10 + n}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _small_toml(tmp_path: Path, task: str = "ranking") -> Path:
    p = tmp_path / "small.toml"
    models = ('[[models]]\nname = "MostPopular"\n[[models]]\nname = "RandomGuess"' if task == "ranking"
              else '[[models]]\nname = "GlobalAverage"\n[[models]]\nname = "UserAverage"')
    p.write_text(f'[data]\npath = "{_csv(tmp_path / "r.csv")}"\nformat = "csv"\n[split]\nmethod = "random"\n'
                 f'[evaluation]\ntask = "{task}"\n{models}\n')
    return p


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and text in err, err


def test_cli_run_report_and_report_command(tmp_path):
    toml = _small_toml(tmp_path)
    out_json, out_html = tmp_path / "res.json", tmp_path / "rep.html"
    r = _invoke("run", str(toml), "--no-progress", "--json", str(out_json), "--report", str(out_html),
                "--baseline", "RandomGuess")
    assert r.exit_code == 0, r.output
    assert f"wrote {out_html}" in r.stdout
    assert "Paired tests against the baseline RandomGuess" in out_html.read_text()
    data = json.loads(out_json.read_text())
    assert all("per_user" in res["details"]["folds"][0] for res in data)
    r = _invoke("report", str(out_json), "--format", "latex")
    assert r.exit_code == 0, r.output
    n_per_user = len(data[0]["details"]["folds"][0]["per_user"])  # results table + one test table each
    assert n_per_user == 9 and (tmp_path / "res.tex").read_text().count(r"\begin{tabular}") == 1 + n_per_user
    r = _invoke("report", str(out_json), "-o", str(tmp_path / "again.html"), "--baseline", "RandomGuess")
    assert r.exit_code == 0 and (tmp_path / "again.html").read_text() == out_html.read_text()


def test_cli_errors_are_one_line(tmp_path):
    toml = _small_toml(tmp_path)
    _one_line_error(_invoke("run", str(toml), "--report", str(tmp_path / "x.pdf")), "x.pdf")
    _one_line_error(_invoke("run", str(toml), "--report", str(tmp_path / "x.html"), "--baseline", "Nope"), "Nope")
    _one_line_error(_invoke("run", str(toml), "--baseline", "MostPopular"), "--report")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{"model": "a", "metrics": {}}]))
    _one_line_error(_invoke("report", str(plain)), "per-user details")
    _one_line_error(_invoke("report", str(tmp_path / "absent.json")), "does not exist")
    rating = _small_toml(tmp_path, "rating")
    _one_line_error(_invoke("run", str(rating), "--report", str(tmp_path / "r.md")), "ranking experiments")
    assert not list(tmp_path.glob("x.*")) and not (tmp_path / "r.md").exists()


def test_rating_experiment_report(tmp_path):
    results = run_experiment(_small_toml(tmp_path, "rating"), progress=False, details=True)
    html = render(results, "html", **QUICK)
    assert "ranking experiments only" in html and "Fit time" in html and "mae" in html
    with pytest.raises(ParameterError, match="ranking experiments"):
        render(results, "md", **QUICK)


# ---------------------------------------------------------------- in a real browser
def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is needed to check the report in a browser: apt-get install -y chromium")
    return exe


@numba.njit(cache=True)
def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:  # pragma: no cover - jitted
    out = np.zeros((height, stride), dtype=np.uint8)
    pos = 0
    for y in range(height):
        f = raw[pos]
        pos += 1
        for x in range(stride):
            a = np.int32(out[y, x - bpp]) if x >= bpp else 0
            b = np.int32(out[y - 1, x]) if y > 0 else 0
            c = np.int32(out[y - 1, x - bpp]) if (x >= bpp and y > 0) else 0
            v = np.int32(raw[pos + x])
            if f == 1:
                v += a
            elif f == 2:
                v += b
            elif f == 3:
                v += (a + b) // 2
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                v += a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
            out[y, x] = v & 255
        pos += stride
    return out


def _read_png(path: Path) -> np.ndarray:
    """RGB pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, interlace = header[8], header[9], header[12]
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    return _unfilter(raw, height, width * bpp, bpp).reshape(height, width, bpp)[:, :, :3]


_PROBE = """<script>
const panels = [...document.querySelectorAll('svg.panel')].map(s => {
  const r = s.getBoundingClientRect();
  const marks = [...s.querySelectorAll('rect.bar, polyline.series, g.box')];
  const inside = marks.filter(m => {
    const b = m.getBoundingClientRect();
    return (b.width > 0 || b.height > 0) && b.left >= r.left - 1 && b.right <= r.right + 1 &&
           b.top >= r.top - 1 && b.bottom <= r.bottom + 1;
  }).length;
  return {title: s.querySelector('title').textContent, w: r.width, h: r.height, right: r.right,
          marks: marks.length, inside};
});
const out = document.createElement('pre'); out.id = 'probe';
out.textContent = JSON.stringify({panels, width: document.documentElement.clientWidth});
document.body.appendChild(out);
</script>"""


@pytest.mark.slow
def test_example_report_renders_in_chromium(tmp_path):
    exe = _chromium()
    out_json, out_html = tmp_path / "res.json", tmp_path / "report.html"
    r = _invoke("run", str(ROOT / "examples" / "ml100k-ranking.toml"), "--no-progress", "--json", str(out_json))
    assert r.exit_code == 0, r.output
    t0 = time.perf_counter()
    r = _invoke("report", str(out_json), "-o", str(out_html))
    seconds = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    print(f"report of the ML-100K example written in {seconds:.1f} s after training")
    html = out_html.read_text()
    n_models = len(json.loads(out_json.read_text()))
    assert n_models >= 5

    # the page as Chromium lays it out (a copy with a probe script; the report has none)
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", _PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,9000"]
    dom = subprocess.run([exe, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    info = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    panels = info["panels"]
    assert len(panels) == 14, [p["title"] for p in panels]
    for p in panels:
        assert p["w"] > 200 and p["h"] > 120, p
        assert p["right"] <= info["width"] + 1, p  # nothing runs off the page
        assert p["marks"] >= n_models and p["inside"] == p["marks"], p  # every bar, line and box lies in its panel

    shot = tmp_path / "report.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", out_html.as_uri()], capture_output=True, timeout=120,
                   check=True)
    pixels = _read_png(shot)
    assert pixels.shape == (9000, 1280, 3)
    ink = np.any(pixels < 235, axis=2).mean()
    assert ink > 0.03, ink  # not a blank page
    from recseek.evaluation._svg import PALETTE

    flat = pixels.reshape(-1, 3)
    for colour in PALETTE[:n_models]:
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert np.count_nonzero(np.all(flat == rgb, axis=1)) > 2000, colour  # every series was drawn
