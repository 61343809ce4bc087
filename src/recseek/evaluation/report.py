"""Experiment reports: statistics over users, rendered as one self-contained HTML file,
or as Markdown / LaTeX tables.

The input is what ``recseek run EXP.toml --json results.json`` writes (the results of
:func:`~recseek.evaluation.experiment.run_experiment` with ``details=True``): a list
with one dict per model holding ``experiment`` and ``details``. :func:`analyse`
turns it into numbers (bootstrap CIs, paired tests against a baseline with Holm
correction, effect sizes, activity buckets, popularity figures, metric@k curves,
cost); :func:`render_html`, :func:`render_markdown` and :func:`render_latex` present
them; :func:`write_report` picks the format by name or file suffix and writes
atomically. The HTML has one inline stylesheet and inline SVG charts, and fetches
nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError
from . import _svg, stats

__all__ = ["FORMATS", "Analysis", "analyse", "load_results", "render", "render_html", "render_latex",
           "render_markdown", "write_report"]

#: Report formats and the file suffixes that select them.
FORMATS = {"html": (".html", ".htm"), "md": (".md", ".markdown"), "latex": (".tex", ".latex")}
#: Significance level marked in tables (after Holm correction).
ALPHA = 0.05
_BUCKETS = 4
_NUMERIC = re.compile(r"^[-+<−]?[0-9.]")


# ---------------------------------------------------------------- input
def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a results JSON written by ``recseek run --json``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"results file {p} does not exist")
    try:
        results = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{p} is not valid JSON ({e})") from None
    check_results(results, str(p))
    return results


def check_results(results: Any, where: str = "results") -> None:
    """Raise :class:`DataError` unless ``results`` has what a report needs."""
    if not isinstance(results, list) or not results or not all(isinstance(r, dict) for r in results):
        raise DataError(f"{where}: expected a non-empty list of model results")
    for i, r in enumerate(results):
        name = r.get("model", f"#{i + 1}")
        for key in ("model", "metrics", "experiment", "details"):
            if key not in r:
                raise DataError(f"{where}: result {name!r} has no {key!r}; write the results with "
                                "recseek run EXP.toml --json FILE (it keeps per-user details)")
        folds = r["details"].get("folds") if isinstance(r["details"], dict) else None
        if not isinstance(folds, list) or not folds:
            raise DataError(f"{where}: result {name!r} has no per-fold details")
        if r.get("task", "ranking") == "ranking":
            for f in folds:
                _check_fold(f, where, name)
    labels = [r["model"] for r in results]
    if len(set(labels)) != len(labels):
        raise DataError(f"{where}: model labels must be distinct, got {labels}")


def _check_fold(f: Any, where: str, name: str) -> None:
    need = ("users", "activity", "per_user", "curves", "popularity", "fit_seconds", "predict_seconds")
    if not isinstance(f, dict) or any(k not in f for k in need):
        raise DataError(f"{where}: a fold of {name!r} lacks one of {', '.join(need)}")
    n = len(f["users"])
    if len(f["activity"]) != n or any(len(v) != n for v in f["per_user"].values()):
        raise DataError(f"{where}: per-user arrays of {name!r} do not all have {n} values")
    for key, v in f["per_user"].items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or not np.all(np.isfinite(a)):
            raise DataError(f"{where}: per-user values {key!r} of {name!r} are not finite numbers")


# ---------------------------------------------------------------- analysis
@dataclass
class Analysis:
    """Everything a report shows, computed once (see :func:`analyse`)."""

    experiment: dict[str, Any]
    models: list[str]
    baseline: str
    task: str
    metrics: list[str]                      # per-user metric keys (tests, CIs)
    catalogue: list[str]                    # catalogue metric keys (one number per run)
    n_folds: int
    summary: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    tests: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    bucket_stats: dict[str, dict[str, list[_svg.BoxStats | None]]] = field(default_factory=dict)
    popularity: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    cost: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def _per_user(folds: Sequence[Mapping[str, Any]], values_of) -> tuple[np.ndarray, np.ndarray]:
    """Users and their value averaged over the folds that evaluated them."""
    n = int(folds[0].get("n_users", 1 + max(max(f["users"], default=0) for f in folds)))
    total, seen = np.zeros(n), np.zeros(n)
    for f in folds:
        u = np.asarray(f["users"], dtype=np.int64)
        if u.size and (u.min() < 0 or u.max() >= n):
            raise DataError("per-user details name a user index outside the data")
        np.add.at(total, u, np.asarray(values_of(f), dtype=np.float64))
        np.add.at(seen, u, 1.0)
    users = np.flatnonzero(seen)
    return users, total[users] / seen[users]


def _aligned(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    common, ia, ib = np.intersect1d(a[0], b[0], return_indices=True)
    if common.size == 0:
        raise DataError("the baseline and a model share no evaluated user; were they run on the same split?")
    return a[1][ia], b[1][ib]


def _box(v: np.ndarray) -> _svg.BoxStats | None:
    if v.size == 0:
        return None
    low, q1, med, q3, high = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
    return _svg.BoxStats(float(low), float(q1), float(med), float(q3), float(high), float(v.mean()))


def _bucket_edges(activity: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Quartile buckets of user activity: upper edges and labels such as ``"13–27 (n=236)"``."""
    qs = np.unique(np.quantile(activity, np.linspace(0, 1, _BUCKETS + 1)[1:-1], method="lower"))
    which = np.searchsorted(qs, activity, side="left")
    labels = []
    for b in range(qs.size + 1):
        members = activity[which == b]
        if members.size:
            labels.append(f"{int(members.min())}–{int(members.max())} (n={members.size})")
        else:
            labels.append(f"empty bucket {b + 1}")
    return which, labels


def analyse(
    results: list[dict[str, Any]],
    baseline: str | None = None,
    n_resamples: int = 10_000,
    n_permutations: int = 100_000,
    seed: int = 0,
) -> Analysis:
    """Statistics of a run's results.

    Parameters
    ----------
    results : list of dict
        :func:`run_experiment` results with ``details=True`` (or :func:`load_results`).
    baseline : str, optional
        Label of the model every other one is tested against; default the first.
    n_resamples, n_permutations : int
        Bootstrap resamples and random sign patterns of the permutation test.
    seed : int
        Seed of the bootstrap and of the permutation test (the same seed gives the
        same report).
    """
    check_results(results)
    labels = [r["model"] for r in results]
    base = labels[0] if baseline is None else baseline
    if base not in labels:
        raise ParameterError(f"baseline {base!r} is not one of the models ({', '.join(labels)})")
    task = results[0].get("task", "ranking")
    first = results[0]["details"]["folds"][0]
    metrics = list(first["per_user"]) if task == "ranking" else []
    catalogue = [k for k in results[0]["metrics"] if k not in metrics]
    a = Analysis(results[0]["experiment"], labels, base, task, metrics, catalogue,
                 len(results[0]["details"]["folds"]),
                 settings={"n_resamples": n_resamples, "n_permutations": n_permutations, "seed": seed,
                           "alpha": ALPHA, "level": 0.95})
    per_user = {}
    for r in results:
        folds = r["details"]["folds"]
        cis = _intervals(r["model"], folds, metrics, n_resamples, seed, per_user) if task == "ranking" else {}
        a.summary[r["model"]] = _summary(r, folds, metrics, cis)
        a.cost[r["model"]] = _cost(folds)
        a.cost[r["model"]]["compile_seconds"] = float(r.get("compile_seconds", float("nan")))
        if task == "ranking":
            a.curves[r["model"]] = _curves(folds)
            a.popularity[r["model"]] = _popularity(folds, per_user, cis, r["model"])
    if task == "ranking":
        _tests(a, per_user, n_permutations, seed)
        _buckets(a, results, per_user)
    return a


_POPULARITY = ("per_user_mean", "per_user_long_tail")


def _intervals(model: str, folds, metrics, n_resamples: int, seed: int, per_user) -> dict[str, tuple[float, float]]:
    """Per-user values (kept in ``per_user``) and bootstrap CIs of every per-user column of one model."""
    cols = {key: _per_user(folds, lambda f, key=key: f["per_user"][key]) for key in metrics}
    for key in _POPULARITY:
        cols[key] = _per_user(folds, lambda f, key=key: f["popularity"][key])
    users = next(iter(cols.values()))[0]
    if any(not np.array_equal(u, users) for u, _ in cols.values()):
        raise DataError(f"the per-user arrays of {model!r} do not cover the same users")
    per_user.update({(model, key): pu for key, pu in cols.items()})
    low, high = stats.bootstrap_ci(np.column_stack([v for _, v in cols.values()]), n_resamples=n_resamples, seed=seed)
    return {key: (float(lo), float(hi)) for key, lo, hi in zip(cols, low, high, strict=True)}


def _summary(r: Mapping[str, Any], folds, metrics, cis) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, mean in r["metrics"].items():
        row = {"mean": float(mean)}
        if key in metrics:
            row["ci_low"], row["ci_high"] = cis[key]
            if len(folds) > 1:
                row["fold_mean"], row["fold_sd"] = stats.mean_sd([np.mean(f["per_user"][key]) for f in folds])
        out[key] = row
    return out


def _tests(a: Analysis, per_user, n_permutations: int, seed: int) -> None:
    """Paired tests of every model against the baseline; Holm over all (model, metric) pairs."""
    rows = []
    for key in a.metrics:
        for m in a.models:
            if m == a.baseline:
                continue
            x, y = _aligned(per_user[(a.baseline, key)], per_user[(m, key)])
            c = stats.compare(x, y, n_permutations=n_permutations, seed=seed)
            rows.append((key, m, c))
    if not rows:
        return
    p_perm = stats.holm([c.p_permutation for _, _, c in rows])
    p_wil = stats.holm([c.p_wilcoxon for _, _, c in rows])
    for (key, m, c), hp, hw in zip(rows, p_perm, p_wil, strict=True):
        a.tests.setdefault(key, {})[m] = {
            "n_users": c.n_users, "difference": c.difference, "p_permutation": c.p_permutation,
            "p_permutation_holm": float(hp), "p_wilcoxon": c.p_wilcoxon, "p_wilcoxon_holm": float(hw),
            "cohens_dz": c.cohens_dz, "rank_biserial": c.rank_biserial,
        }


def _buckets(a: Analysis, results, per_user) -> None:
    users, activity = _per_user(results[0]["details"]["folds"], lambda f: f["activity"])
    which, a.buckets = _bucket_edges(activity)
    for key in a.metrics:
        a.bucket_stats[key] = {}
        for m in a.models:
            u, v = per_user[(m, key)]
            pos = np.searchsorted(users, u)
            pos = np.minimum(pos, users.size - 1)
            ok = users[pos] == u
            w = which[pos[ok]]
            a.bucket_stats[key][m] = [_box(v[ok][w == b]) for b in range(len(a.buckets))]


def _popularity(folds, per_user, cis, model: str) -> dict[str, Any]:
    pops = [f["popularity"] for f in folds]
    return {
        "arp": float(per_user[(model, "per_user_mean")][1].mean()),
        "arp_ci": cis["per_user_mean"],
        "long_tail": float(per_user[(model, "per_user_long_tail")][1].mean()),
        "long_tail_ci": cis["per_user_long_tail"],
        "gini": float(np.mean([p["gini"] for p in pops])),
        "coverage": float(np.mean([p["coverage"] for p in pops])),
        "head_items": int(pops[0]["head_items"]),
        "exposure_curve": np.mean([p["exposure_curve"] for p in pops], axis=0).tolist(),
        "interaction_curve": np.mean([p["interaction_curve"] for p in pops], axis=0).tolist(),
    }


def _curves(folds) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    cuts = sorted(int(c) for c in folds[0]["curves"])
    for c in cuts:
        for key in folds[0]["curves"][str(c)]:
            base = key.split("@", 1)[0] + key.split("@", 1)[1].lstrip("0123456789") if "@" in key else key
            vals = [f["curves"][str(c)][key] for f in folds if key in f["curves"].get(str(c), {})]
            out.setdefault(base, {})[c] = float(np.mean(vals))
    return out


def _cost(folds) -> dict[str, Any]:
    def mean(key: str) -> float:
        vals = [f[key] for f in folds if key in f]
        return float(np.mean(vals)) if vals else float("nan")

    return {
        "fit_seconds": mean("fit_seconds"), "predict_seconds": mean("predict_seconds"),
        "fit_peak_mib": mean("fit_peak_bytes") / 2**20, "predict_peak_mib": mean("predict_peak_bytes") / 2**20,
        "fit_peak_total_mib": mean("fit_peak_total_bytes") / 2**20,
        "predict_peak_total_mib": mean("predict_peak_total_bytes") / 2**20,
        "memory_method": folds[0].get("memory_method", "unknown"),
    }


# ---------------------------------------------------------------- tables (shared by all formats)
def _num(v: float, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"


def _p(v: float) -> str:
    return "<0.0001" if v < 1e-4 else f"{v:.4f}"


def _results_table(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: per model, each metric with its CI (and fold sd), then cost."""
    heads = ["model"]
    for key in a.metrics:
        heads.append(f"{key} [95% CI]" + (" (fold mean ± sd)" if a.n_folds > 1 else ""))
    heads += a.catalogue + ["fit s", "recommend s"]
    rows = []
    for m in a.models:
        s = a.summary[m]
        row = [m + (" (baseline)" if m == a.baseline else "")]
        for key in a.metrics:
            cell = f"{_num(s[key]['mean'])} [{_num(s[key]['ci_low'])}, {_num(s[key]['ci_high'])}]"
            if a.n_folds > 1:
                cell += f" ({_num(s[key]['fold_mean'])} ± {_num(s[key]['fold_sd'])})"
            t = a.tests.get(key, {}).get(m)
            if t is not None and t["p_permutation_holm"] < ALPHA:
                cell += " *"
            row.append(cell)
        row += [_num(s[key]["mean"]) for key in a.catalogue]
        row += [_num(a.cost[m]["fit_seconds"], 3), _num(a.cost[m]["predict_seconds"], 3)]
        rows.append(row)
    return heads, rows


def _test_table(a: Analysis, key: str) -> tuple[list[str], list[list[str]]]:
    heads = ["model", "users", "Δ mean", "p perm.", "p perm. (Holm)", "p Wilcoxon", "p Wilcoxon (Holm)",
             "Cohen's d_z", "rank-biserial r"]
    rows = []
    for m, t in a.tests.get(key, {}).items():
        rows.append([m, str(t["n_users"]), f"{t['difference']:+.4f}", _p(t["p_permutation"]),
                     _p(t["p_permutation_holm"]) + (" *" if t["p_permutation_holm"] < ALPHA else ""),
                     _p(t["p_wilcoxon"]), _p(t["p_wilcoxon_holm"]) + (" *" if t["p_wilcoxon_holm"] < ALPHA else ""),
                     _num(t["cohens_dz"], 3), _num(t["rank_biserial"], 3)])
    return heads, rows


def _popularity_table(a: Analysis) -> tuple[list[str], list[list[str]]]:
    heads = ["model", "avg. recommended popularity [95% CI]", "long-tail share [95% CI]", "Gini", "item coverage"]
    rows = []
    for m in a.models:
        p = a.popularity[m]
        rows.append([m, f"{p['arp']:.1f} [{p['arp_ci'][0]:.1f}, {p['arp_ci'][1]:.1f}]",
                     f"{_num(p['long_tail'], 3)} [{_num(p['long_tail_ci'][0], 3)}, {_num(p['long_tail_ci'][1], 3)}]",
                     _num(p["gini"], 3), _num(p["coverage"], 3)])
    return heads, rows


def _cost_table(a: Analysis) -> tuple[list[str], list[list[str]]]:
    heads = ["model", "compile s", "fit s", "recommend + metrics s", "fit peak MiB (above start)",
             "recommend peak MiB (above start)", "process peak MiB (fit)"]
    rows = [[m, _num(c["compile_seconds"], 3), _num(c["fit_seconds"], 3), _num(c["predict_seconds"], 3),
             _num(c["fit_peak_mib"], 1),
             _num(c["predict_peak_mib"], 1), _num(c["fit_peak_total_mib"], 1)] for m, c in a.cost.items()]
    return heads, rows


# ---------------------------------------------------------------- Markdown and LaTeX
def _md_table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in heads) + " |", "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _experiment_line(a: Analysis) -> str:
    e = a.experiment
    return (f"{e.get('source', '')}: {e.get('protocol', '')}, split {_split_text(e)}, data sha256 "
            f"{e.get('data_sha256', '')[:16]}…, {e.get('n_users')} users × {e.get('n_items')} items")


def render_markdown(a: Analysis) -> str:
    """The results table (mean, bootstrap 95% CI, cost) and the paired tests, in Markdown."""
    parts = [f"## Results ({_experiment_line(a)})", "", _md_table(*_results_table(a)), "",
             f"\\* Holm-adjusted permutation p < {ALPHA} against the baseline {a.baseline}."]
    for key in a.metrics:
        parts += ["", f"### {key}: paired tests against {a.baseline}", "", _md_table(*_test_table(a, key))]
    return "\n".join(parts) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "Δ": r"$\Delta$", "∞": r"$\infty$", "−": "-", "×": r"$\times$", "…": r"\dots{}",
                  "<": r"$<$"}


def _tex(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def _tex_table(heads: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    spec = "l" + "r" * (len(heads) - 1)
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{_tex(caption)}}}", rf"\begin{{tabular}}{{{spec}}}",
             r"\toprule", " & ".join(_tex(h) for h in heads) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def render_latex(a: Analysis) -> str:
    """The same tables as :func:`render_markdown` as LaTeX (needs ``\\usepackage{booktabs}``)."""
    parts = ["% recseek report tables; needs \\usepackage{booktabs}",
             _tex_table(*_results_table(a), f"Results ({_experiment_line(a)}). * Holm-adjusted permutation "
                        f"p < {ALPHA} against {a.baseline}.")]
    for key in a.metrics:
        parts.append(_tex_table(*_test_table(a, key), f"{key}: paired tests against {a.baseline}"))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1240px;
padding:16px 28px;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin:.4em 0}h2{font-size:1.25rem;margin-top:1.8em;border-bottom:2px solid #0072B2}
h3{font-size:1.05rem;margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f8}th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline td{background:#fbf7e9}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}dt{font-weight:600}dd{margin:0}
pre{background:#f6f6f6;border:1px solid #ddd;padding:8px 12px;overflow:auto;font-size:.85rem}
.panels{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0}
figcaption{font-size:.85rem;color:#444;max-width:560px}
.note{color:#444;font-size:.9rem}code{font-size:.9em}
"""


def _html_table(heads: Sequence[str], rows: Sequence[Sequence[str]], caption: str,
                baseline: str | None = None) -> str:
    out = [f"<table><caption>{escape(caption)}</caption><thead><tr>"]
    numeric = [bool(rows) and all(_NUMERIC.match(r[i]) for r in rows) for i in range(len(heads))]
    out += [f'<th scope="col"{" class=n" if i and numeric[i] else ""}>{escape(h)}</th>' for i, h in enumerate(heads)]
    out.append("</tr></thead><tbody>")
    for r in rows:
        cls = ' class="baseline"' if baseline is not None and r[0].startswith(baseline) else ""
        out.append(f"<tr{cls}>" + f'<th scope="row">{escape(r[0])}</th>'
                   + "".join(f"<td{' class=n' if _NUMERIC.match(c) else ''}>{escape(c)}</td>" for c in r[1:])
                   + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _split_text(e: Mapping[str, Any]) -> str:
    s = dict(e.get("split", {}))
    method = s.pop("method", "?")
    return method + (" (" + ", ".join(f"{k}={v}" for k, v in s.items()) + ")" if s else "")


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _experiment_html(a: Analysis) -> str:
    e = a.experiment
    ev = e.get("evaluation", {})
    data = e.get("data", {})
    folds = e.get("folds", [])
    seeds = ", ".join(f"{k} {v}" for k, v in e.get("seeds", {}).items()) or "none"
    protocol = e.get("protocol", "")
    warn = ""
    if protocol.startswith("sampled"):
        warn = (' <strong>Sampled metrics rank each test item against a few random items and are known to '
                'disagree with full-ranking metrics (Krichene &amp; Rendle, KDD 2020).</strong>')
    rows = [
        ("experiment file", escape(str(e.get("source", "")))),
        ("protocol", escape(protocol) + (" — every item outside the user's training data is ranked"
                                         if protocol == "full ranking" else "") + warn),
        ("data", escape(", ".join(f"{k} = {v}" for k, v in data.items()))),
        ("data SHA-256", f"<code>{escape(str(e.get('data_sha256', '')))}</code>"),
        ("data size", f"{e.get('n_interactions')} interactions, {e.get('n_users')} users, {e.get('n_items')} items"),
        ("split", escape(_split_text(e))),
        ("folds", escape("; ".join(f"#{i + 1}: {f['train']} train / {f['test']} test" for i, f in enumerate(folds)))),
        ("list length k", escape(str(ev.get("k", "")))),
        ("seeds", escape(seeds) + "; model seeds are in each model's settings below (their defaults when not set)"),
        ("models", escape("; ".join(a.models))),
        ("statistics", escape(f"bootstrap {a.settings['n_resamples']} resamples, permutation test "
                              f"{a.settings['n_permutations']} sign patterns, seed {a.settings['seed']}")),
        ("recseek", escape(str(e.get("recseek_version", "")))),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    toml = e.get("toml") or "(the experiment was given as a mapping, not a file)"
    return (f'<section aria-labelledby="s-exp"><h2 id="s-exp">Experiment</h2><dl>{dl}</dl>'
            f"<h3>Experiment file as run</h3><pre>{escape(toml)}</pre></section>")


def _results_html(a: Analysis) -> str:
    heads, rows = _results_table(a)
    note = (f"Means over users (each test user counts once) with a percentile bootstrap 95% confidence interval "
            f"over users{'; fold mean ± sd over the ' + str(a.n_folds) + ' folds' if a.n_folds > 1 else ''}. "
            f"* = different from the baseline {a.baseline} at Holm-adjusted permutation p &lt; {ALPHA}.")
    svgs = []
    for key in a.metrics:
        vals = [a.summary[m][key]["mean"] for m in a.models]
        cis = [(a.summary[m][key]["ci_low"], a.summary[m][key]["ci_high"]) for m in a.models]
        svgs.append(_figure(_svg.bar_chart(f"{key} with 95% CI", a.models, vals, key,
                                           f"Mean {key} per model with bootstrap 95% confidence intervals",
                                           intervals=cis, highlight=a.models.index(a.baseline)),
                            f"{key}: mean and bootstrap 95% CI over users."))
    return (f'<section aria-labelledby="s-res"><h2 id="s-res">Results</h2>'
            f"{_html_table(heads, rows, 'Metrics per model', a.baseline)}<p class=note>{note}</p>"
            f'<div class="panels">{"".join(svgs)}</div></section>')


def _tests_html(a: Analysis) -> str:
    parts = [f'<section aria-labelledby="s-sig"><h2 id="s-sig">Paired tests against the baseline '
             f"{escape(a.baseline)}</h2>",
             "<p class=note>Per user, Δ = model − baseline. Two-sided Fisher randomisation test (random sign flips "
             "of Δ) and Wilcoxon signed-rank test; Holm correction over every (model, metric) comparison of the "
             "report, per test; effect sizes: Cohen's d_z = mean(Δ)/sd(Δ) and the matched-pairs rank-biserial "
             f"correlation. * = adjusted p &lt; {ALPHA}.</p>"]
    for key in a.metrics:
        parts.append(_html_table(*_test_table(a, key), f"{key}"))
    parts.append("</section>")
    return "".join(parts)


def _curves_html(a: Analysis) -> str:
    figs = []
    names = [k for k in next(iter(a.curves.values()))]
    for name in names:
        series = [(m, sorted(a.curves[m][name]), [a.curves[m][name][c] for c in sorted(a.curves[m][name])])
                  for m in a.models if name in a.curves[m]]
        figs.append(_figure(_svg.line_chart(f"{name}@k", series, "list length k", name,
                                            f"{name} at list lengths {', '.join(map(str, series[0][1]))} per model"),
                            f"{name} of the first k items of each list (one list per user, cut at each k)."))
    return (f'<section aria-labelledby="s-curves"><h2 id="s-curves">Metric@k curves</h2>'
            f'<div class="panels">{"".join(figs)}</div></section>')


def _buckets_html(a: Analysis) -> str:
    figs, tables = [], []
    for key in a.metrics:
        series = [(m, a.bucket_stats[key][m]) for m in a.models]
        figs.append(_figure(_svg.box_chart(f"{key} per user by activity", a.buckets, series, key,
                                           f"Distribution of per-user {key} in {len(a.buckets)} activity buckets"),
                            "Boxes: quartiles; whiskers: 5th–95th percentile; dot: mean. Buckets: users' "
                            "training interactions (quartiles)."))
        rows = [[m] + [_num(b.mean) if b else "n/a" for b in a.bucket_stats[key][m]] for m in a.models]
        tables.append(_html_table(["model", *a.buckets], rows, f"Mean {key} per activity bucket", a.baseline))
    return (f'<section aria-labelledby="s-users"><h2 id="s-users">Per-user distributions by user activity</h2>'
            f'<div class="panels">{"".join(figs)}</div>{"".join(tables)}</section>')


def _popularity_html(a: Analysis) -> str:
    m0 = a.models
    p = a.popularity
    hi = m0.index(a.baseline)
    bars = [
        _svg.bar_chart("Average recommended popularity", m0, [p[m]["arp"] for m in m0], "training users per item",
                       "Mean training popularity of recommended items per model",
                       intervals=[tuple(p[m]["arp_ci"]) for m in m0], highlight=hi),
        _svg.bar_chart("Long-tail share", m0, [p[m]["long_tail"] for m in m0], "share of recommended slots",
                       "Share of recommended items outside the popularity head, per model",
                       intervals=[tuple(p[m]["long_tail_ci"]) for m in m0], highlight=hi),
        _svg.bar_chart("Gini of exposure", m0, [p[m]["gini"] for m in m0], "Gini (0 = even, 1 = concentrated)",
                       "Gini coefficient of how often each item is recommended", highlight=hi),
        _svg.bar_chart("Item coverage", m0, [p[m]["coverage"] for m in m0], "share of catalogue recommended",
                       "Share of items recommended to at least one user", highlight=hi),
    ]
    xs = np.linspace(0, 100, len(p[m0[0]]["exposure_curve"])).tolist()
    curve = _svg.line_chart("Long-tail exposure curve", [(m, xs, p[m]["exposure_curve"]) for m in m0],
                            "most popular items, % of catalogue", "cumulative share of recommendations",
                            "Cumulative share of recommendation slots taken by the most popular items",
                            reference=("training interactions", xs, p[m0[0]]["interaction_curve"]), markers=False)
    head = p[m0[0]]["head_items"]
    note = (f"Popularity = number of training users of an item. Head = the {head} most popular items (the top 20% "
            "of the catalogue); long tail = every other item. Bars with whiskers show bootstrap 95% CIs over users.")
    figs = "".join(_figure(b, "") for b in bars) + _figure(
        curve, "A curve above the dashed line concentrates exposure on popular items more than the data does.")
    return (f'<section aria-labelledby="s-pop"><h2 id="s-pop">Popularity bias</h2>'
            f"{_html_table(*_popularity_table(a), 'Popularity of the recommended lists', a.baseline)}"
            f'<p class=note>{escape(note)}</p><div class="panels">{figs}</div></section>')


def _cost_html(a: Analysis) -> str:
    m0 = a.models
    c = a.cost
    method = c[m0[0]]["memory_method"]
    how = ("peak resident memory of the process during the step, above what it held when the step began"
           if method == "rss" else "peak of Python-tracked allocations (numpy included) during the step")
    bars = [
        _svg.bar_chart("Fit time", m0, [c[m]["fit_seconds"] for m in m0], "seconds", "Training time per model"),
        _svg.bar_chart("Recommend time", m0, [c[m]["predict_seconds"] for m in m0], "seconds",
                       "Time to recommend for every test user and compute the metrics"),
        _svg.bar_chart("Peak memory (fit)", m0, [c[m]["fit_peak_mib"] for m in m0], "MiB",
                       "Peak memory during training per model"),
    ]
    return (f'<section aria-labelledby="s-cost"><h2 id="s-cost">Time and memory</h2>'
            f"{_html_table(*_cost_table(a), 'Cost per model (mean over folds)', a.baseline)}"
            f"<p class=note>Compile: numba kernels compiled (or loaded from the cache) on tiny data before "
            f"training, kept apart from fit time. Memory: {escape(how)}. The first model also pays one-off "
            f"start-up costs (imports).</p><div class=\"panels\">{''.join(_figure(b, '') for b in bars)}</div>"
            "</section>")


def _settings_html(results: Sequence[Mapping[str, Any]]) -> str:
    rows = [[r["model"], r.get("name", ""), ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items()) or
             "(defaults)"] for r in results]
    return (f'<section aria-labelledby="s-models"><h2 id="s-models">Model settings</h2>'
            f"{_html_table(['label', 'model', 'hyperparameters'], rows, 'Models as configured')}</section>")


def _tuning_html(results: Sequence[Mapping[str, Any]]) -> str:
    """Chosen settings and validation curves of the tuned models ('' when none was tuned)."""
    from .tuning import best_so_far

    rows, figs = [], []
    for r in results:
        for search in r.get("tuning") or []:
            trials = search["trials"]
            ok = [t for t in trials if math.isfinite(float(t["value"]))]
            chosen = ", ".join(f"{k}={_setting(v)}" for k, v in search["best_params"].items())
            rows.append([r["model"], str(search.get("fold", 0) + 1), search["metric"],
                         f"{len(ok)} of {len(trials)}", chosen, _num(search["best_value"])])
            if search.get("fold", 0) == 0 and ok:
                best = best_so_far(trials, search["direction"])
                n = [t["number"] + 1 for t in trials]
                keep = np.isfinite(best)
                series = [("trial", [t["number"] + 1 for t in ok], [float(t["value"]) for t in ok]),
                          ("best so far", [x for x, k in zip(n, keep, strict=True) if k], list(best[keep]))]
                figs.append(_figure(
                    _svg.line_chart(f"{r['model']}: validation {search['metric']}", series, "trial",
                                    search["metric"], f"validation {search['metric']} of each trial of {r['model']} "
                                    "and the best value so far"),
                    f"{r['model']}: each trial's {search['metric']} on the validation split carved from the "
                    f"training part ({search['direction']}), and the best so far."))
    if not rows:
        return ""
    table = _html_table(["label", "fold", "metric", "trials trained", "chosen settings", "best validation value"],
                        rows, "Settings chosen on the validation split (the test part is never used for tuning)")
    return (f'<section aria-labelledby="s-tune"><h2 id="s-tune">Tuning</h2>{table}'
            f'<div class="panels">{"".join(figs)}</div></section>')


def _setting(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render_html(a: Analysis, results: Sequence[Mapping[str, Any]]) -> str:
    """The whole report as one self-contained HTML document."""
    title = f"recseek report: {Path(str(a.experiment.get('source', 'experiment'))).name}"
    body = [_experiment_html(a), _settings_html(results), _tuning_html(results), _results_html(a)]
    if a.task == "ranking":
        body += [_tests_html(a), _curves_html(a), _buckets_html(a), _popularity_html(a)]
    else:
        body.append('<p class="note">Per-user statistics, significance tests and popularity panels are computed for '
                    "ranking experiments only; this is a rating experiment.</p>")
    body.append(_cost_html(a))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><main><h1>{escape(title)}</h1>{''.join(body)}</main></body></html>\n")


# ---------------------------------------------------------------- writing
def report_format(path: str | Path, fmt: str | None = None) -> str:
    """The format named by ``fmt``, else by the suffix of ``path`` (default html)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ParameterError(f"report format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    suffix = Path(path).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    if suffix:
        raise ParameterError(f"cannot tell the report format of {path} from its suffix {suffix!r}; "
                             "use .html, .md or .tex, or give --format")
    return "html"


def render(results: list[dict[str, Any]], fmt: str = "html", baseline: str | None = None, seed: int = 0,
           **settings: int) -> str:
    """Analyse ``results`` and render them in ``fmt`` (``html``, ``md`` or ``latex``);
    ``settings`` (``n_resamples``, ``n_permutations``) go to :func:`analyse`."""
    a = analyse(results, baseline=baseline, seed=seed, **settings)
    if fmt == "html":
        return render_html(a, results)
    if a.task != "ranking":
        raise ParameterError("Markdown and LaTeX tables are made for ranking experiments")
    return render_markdown(a) if fmt == "md" else render_latex(a)


def write_report(
    results: list[dict[str, Any]],
    path: str | Path,
    fmt: str | None = None,
    baseline: str | None = None,
    seed: int = 0,
    **settings: int,
) -> Path:
    """Write the report of ``results`` to ``path`` (temporary file, then rename) and return the path;
    ``settings`` go to :func:`analyse`."""
    path = Path(path)
    fmt = report_format(path, fmt)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(f"cannot write {path}: directory {parent} does not exist")
    text = render(results, fmt, baseline=baseline, seed=seed, **settings)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
