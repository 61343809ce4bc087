"""TOML experiments: schema validation with one-sentence errors, and runs end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recseek.errors import RecseekError
from recseek.evaluation.experiment import load_experiment, run_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _write_csv(path: Path, n_users: int = 40, n_items: int = 25, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating,timestamp"]
    t = 0
    for u in range(n_users):
        for i in rng.choice(n_items, 8, replace=False):
            t += 1
            lines.append(f"u{u},i{i},{rng.integers(1, 6)},{t}")
    path.write_text("\n".join(lines) + "\n")
    return path


BASE = """
[data]
path = "{data}"
format = "csv"

[split]
method = "ratio"
ratio = 0.75
order = "time"

[evaluation]
task = "{task}"
{evaluation}

{models}
"""


def _toml(tmp_path: Path, task="ranking", evaluation="", models='[[models]]\nname = "MostPopular"\n',
          data=None, name="exp.toml") -> Path:
    data = data or _write_csv(tmp_path / "ratings.csv")
    p = tmp_path / name
    p.write_text(BASE.format(data=data, task=task, evaluation=evaluation, models=models))
    return p


def test_ranking_experiment_runs(tmp_path):
    models = '[[models]]\nname = "MostPopular"\n\n[[models]]\nname = "RandomGuess"\nlabel = "random-7"\nseed = 7\n'
    res = run_experiment(_toml(tmp_path, evaluation='k = 5\nmetrics = ["ndcg", "recall"]', models=models),
                         progress=False)
    assert [r["model"] for r in res] == ["MostPopular", "random-7"]
    assert res[1]["params"] == {"seed": 7} and res[1]["name"] == "RandomGuess"
    assert set(res[0]["metrics"]) == {"ndcg@5", "recall@5"}
    assert res[0]["protocol"] == "full ranking"
    assert res[0]["fit_seconds"] >= 0 and res[0]["predict_seconds"] > 0


def test_sampled_and_kfold(tmp_path):
    p = _toml(tmp_path, evaluation='metrics = ["ndcg"]\nsampled = 5')
    res = run_experiment(p, progress=False)
    assert list(res[0]["metrics"]) == ["ndcg@10 (sampled 5)"]
    assert res[0]["protocol"] == "sampled 5 negatives"
    text = p.read_text().replace('method = "ratio"\nratio = 0.75\norder = "time"', 'method = "kfold"\nk = 3')
    p.write_text(text)
    res = run_experiment(p, progress=False)
    assert "3-fold average" in res[0]["protocol"]


def test_rating_experiment_and_data_override(tmp_path):
    models = '[[models]]\nname = "GlobalAverage"\n[[models]]\nname = "UserAverage"\n'
    p = _toml(tmp_path, task="rating", evaluation="clip = [1.0, 5.0]", models=models)
    other = _write_csv(tmp_path / "other.csv", seed=3)
    res = run_experiment(p, data_path=other, progress=False)
    assert set(res[0]["metrics"]) == {"mae", "mse", "rmse", "mpe"}
    assert res[1]["metrics"]["mae"] < res[0]["metrics"]["mae"] * 1.5


def test_min_rating_and_binarize(tmp_path):
    p = _toml(tmp_path, evaluation='metrics = ["precision"]')
    p.write_text(p.read_text().replace('format = "csv"', 'format = "csv"\nmin_rating = 4\nbinarize = true'))
    res = run_experiment(p, progress=False)
    assert 0 <= res[0]["metrics"]["precision@10"] <= 1
    p.write_text(p.read_text().replace("min_rating = 4", "min_rating = 99"))
    with pytest.raises(RecseekError, match="min_rating"):
        run_experiment(p, progress=False)


def test_mapping_config(tmp_path):
    data = _write_csv(tmp_path / "r.csv")
    cfg = {"data": {"path": str(data), "format": "csv"}, "split": {"method": "random", "seed": 1},
           "evaluation": {"metrics": ["hitrate"]}, "models": [{"name": "mostpopular"}]}
    res = run_experiment(cfg, progress=False)
    assert res[0]["model"] == "MostPopular"


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (("[split]", "[splitt]"), r"exp\.toml: unknown section \[splitt\]"),
        (('format = "csv"', 'format = "csv"\ncolour = 1'), r"exp\.toml: unknown key \[data\] colour"),
        (('format = "csv"', 'format = "xls"'), r"exp\.toml: \[data\] format must be one of"),
        (('method = "ratio"', 'method = "fancy"'), r"exp\.toml: \[split\] method must be one of"),
        (("ratio = 0.75", "ratio = 1.5"), r"exp\.toml: \[split\] ratio must be a number between 0 and 1"),
        (("ratio = 0.75", "ratio = 0.75\nfold = 1"), r"exp\.toml: unknown key \[split\] fold for method 'ratio'"),
        (('task = "ranking"', 'task = "ranking"\nk = 0'), r"exp\.toml: \[evaluation\] k must be a positive integer"),
        (('task = "ranking"', 'task = "ranking"\nmetrics = ["ndgc"]'), r"unknown ranking metric 'ndgc'"),
        (('task = "ranking"', 'task = "ranking"\nsampled = -3'), r"\[evaluation\] sampled must be a positive"),
        (('task = "ranking"', 'task = "ranking"\nclip = [1, 5]'), r"clip applies only to the rating task"),
        (('name = "MostPopular"', 'name = "MostPopularr"'), r"exp\.toml: \[\[models\]\] #1 \(MostPopularr\): unknown model"),
        (('name = "MostPopular"', 'name = "RandomGuess"\nsed = 3'), r"#1 \(RandomGuess\): .*no hyperparameter 'sed'"),
        (('name = "MostPopular"', 'name = "RandomGuess"\nseed = -3'), r"#1 \(RandomGuess\): .*seed"),
        (('name = "MostPopular"', 'label = "x"'), r"#1 needs a name"),
        (("[split]", "[split\n"), r"exp\.toml: invalid TOML: .*line \d+, column \d+"),
    ],
)
def test_one_sentence_errors(tmp_path, change, pattern):
    p = _toml(tmp_path)
    text = p.read_text()
    assert change[0] in text
    p.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(RecseekError, match=pattern) as info:
        load_experiment(p)
    assert "\n" not in str(info.value)


def test_rating_task_rejects_ranking_model(tmp_path):
    with pytest.raises(RecseekError, match="ranking model and cannot be evaluated on the rating task"):
        load_experiment(_toml(tmp_path, task="rating"))


def test_missing_files(tmp_path):
    with pytest.raises(RecseekError, match="does not exist"):
        load_experiment(tmp_path / "nope.toml")
    p = _toml(tmp_path)
    with pytest.raises(RecseekError, match="nope.csv"):
        run_experiment(p, data_path=tmp_path / "nope.csv", progress=False)
    p.write_text(p.read_text().replace("[data]", "[data]\n", 1).replace(f'path = "{tmp_path / "ratings.csv"}"', ""))
    with pytest.raises(RecseekError, match="needs a name or a path"):
        run_experiment(p, progress=False)


def test_relative_data_path_resolved_against_toml(tmp_path):
    (tmp_path / "sub").mkdir()
    _write_csv(tmp_path / "sub" / "r.csv")
    p = _toml(tmp_path / "sub", data="r.csv")
    res = run_experiment(p, progress=False)
    assert res[0]["model"] == "MostPopular"


# every example experiment (serve.toml configures the server, not an experiment)
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml") if p.name != "serve.toml"))
def test_examples_are_valid(name):
    exp = load_experiment(EXAMPLES / name)
    assert exp.models and exp.data.get("name") in ("filmtrust", "ml-100k")


# ---------------------------------------------------------------- compilation apart from fitting
WARM_UP_CHECK = """
import sys
import numba
from recseek import datasets
from recseek.data.split import split
from recseek.evaluation.experiment import _evaluate, warm_up

def signatures():
    out = {}
    for name, mod in list(sys.modules.items()):
        if name.startswith("recseek") and mod is not None:
            for attr, obj in list(vars(mod).items()):
                if isinstance(obj, numba.core.registry.CPUDispatcher):
                    out[name + "." + attr] = len(obj.signatures)
    return out

task, names = sys.argv[1], sys.argv[2].split(",")
data = datasets.load("ml-100k")
if task == "ranking":
    data = data.filter_min_rating(4).binarize()
train, test = split(data, "ratio", ratio=0.8, by="user", order="time")
ev = {"task": task, "k": 10}
from recseek.models import registry
for name in names:
    params = {"epochs": 2} if "epochs" in registry.get(name).param_names() else {}
    compile_s = warm_up(name, params, train, ev)
    assert compile_s == compile_s, f"{name}: warm-up could not run"
    before = signatures()
    model = registry.create(name, **params).fit(train)
    _evaluate(model, train, test, ev, details=False)
    after = signatures()
    new = sorted(k for k, n in after.items() if n > before.get(k, 0))
    used = sum(after.values())
    print(name, "new:", ",".join(new) or "-", "kernels:", used)
"""


@pytest.mark.parametrize(("task", "names"), [("ranking", "ItemKNNRanking,BPR,WRMF,EASE"),
                                             ("rating", "BiasedMF,SVDPlusPlus,SlopeOne")])
def test_warm_up_compiles_every_kernel_the_real_run_uses(task, names):
    """After the warm-up on tiny data, fitting and evaluating real data compiles nothing new."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", WARM_UP_CHECK, task, names], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(names.split(","))
    for line in lines:
        assert " new: - " in line, line
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) > 0  # numba kernels were involved at all


def test_filmtrust_example_uses_the_p1_settings():
    """examples/filmtrust-jstarcraft.toml sits beside docs/p1-jstarcraft.md: same hyperparameters."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    p1 = {}
    for f in sorted((root / "benchmarks" / "p1").glob("*.toml")):
        for m in tomllib.loads(f.read_text())["models"]:
            p1.setdefault(m["name"], m)
    example = tomllib.loads((root / "examples" / "filmtrust-jstarcraft.toml").read_text())
    assert example["split"] == {"method": "ratio", "ratio": 0.8, "by": "user", "order": "time"}
    for m in example["models"]:
        assert m == p1[m["name"]], m["name"]
