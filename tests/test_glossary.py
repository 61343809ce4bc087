"""The hyperparameter glossary, enforced over the registry.

Every hyperparameter of every registered model must be a glossary name or a name declared
for that model; synonyms and renamed names are refused; old names still load with a
DeprecationWarning; a setting that has no effect in the chosen mode is refused; models live
in the folder of their family; docs/conventions.md is generated from the glossary.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from recseek.errors import ParameterError
from recseek.evaluation.experiment import load_experiment
from recseek.models import _glossary as g
from recseek.models import registry
from recseek.models._params import STANDARD_RULES, Choice, UsedWhen
from recseek.models.base import Recommender
from recseek.testing.fixtures import synthetic

ROOT = Path(__file__).resolve().parents[1]
MODELS = registry.available()
NAMES = [c.name for c in MODELS]


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("name", NAMES)
def test_every_hyperparameter_is_in_the_glossary(name: str) -> None:
    assert g.naming_problems(registry.get(name)) == []


class _Fake(Recommender):
    name = "FakeGlossaryModel"

    def __init__(self, factors: int = 8, n_factors: int = 8, lr: float = 0.1, bias_reg: float = 0.0,
                 sneaky: float = 1.0, rho: float = 0.5) -> None:
        pass

    def _fit(self, train: Any) -> None:
        raise NotImplementedError

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


def test_checker_names_each_bad_hyperparameter(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = g.naming_problems(_Fake)
    assert len(problems) == 5
    joined = "\n".join(problems)
    for bad in ("'n_factors' is a synonym", "'lr' is a synonym", "'bias_reg' is a synonym", "'sneaky'", "'rho'"):
        assert bad in joined
    assert not any(p.startswith(f"{_Fake.name}: 'factors'") for p in problems)
    # a model-specific entry may neither redefine a glossary name nor name a missing parameter
    monkeypatch.setitem(g.MODEL_SPECIFIC, _Fake.name, {"factors": "x", "ghost": "y", "rho": "z"})
    joined = "\n".join(g.naming_problems(_Fake))
    assert "'factors' is a glossary name" in joined
    assert "declares 'ghost'" in joined
    assert "'rho'" not in joined
    # a name renamed for this model is refused under its old spelling
    monkeypatch.setattr(g, "RENAMED", (*g.RENAMED, g.Renamed("sneaky", "reg", (_Fake.name,))))
    assert f"{_Fake.name}: 'sneaky' was renamed to 'reg'" in g.naming_problems(_Fake)


def test_glossary_tables_agree() -> None:
    assert not set(g.SYNONYMS) & set(g.GLOSSARY)
    assert set(g.SYNONYMS.values()) <= set(g.GLOSSARY)
    # a rename for every model is also a refused synonym
    assert {r.old: r.new for r in g.RENAMED if not r.models}.items() <= g.SYNONYMS.items()
    assert not g.PAPER_SYMBOLS & set(g.GLOSSARY)
    assert set(g.MODEL_SPECIFIC) <= set(NAMES)
    definitions: dict[str, set[str]] = {}
    for model, names in g.MODEL_SPECIFIC.items():
        assert not set(names) & set(g.GLOSSARY), model
        assert not set(names) & set(g.SYNONYMS), model
        for n, text in names.items():
            definitions.setdefault(n, set()).add(text)
    # outside paper symbols, a model-specific name has one meaning wherever it is declared
    assert {n: d for n, d in definitions.items() if n not in g.PAPER_SYMBOLS and len(d) > 1} == {}


def test_renamed_names_point_at_declared_names() -> None:
    for r in g.RENAMED:
        targets = r.models or [c.name for c in MODELS if r.new in c.param_names()]
        assert targets, r
        for model in targets:
            cls = registry.get(model)
            assert r.new in cls.param_names() and r.old not in cls.param_names(), (r, model)
            assert g.meaning(model, r.new) is not None


def test_conventions_page_is_current() -> None:
    page = (ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    assert page == g.render_conventions(), f"regenerate it: {g.REGENERATE}"


@pytest.mark.parametrize("name", NAMES)
def test_model_lives_in_its_family_folder(name: str) -> None:
    cls = registry.get(name)
    parts = cls.__module__.split(".")
    assert parts[:2] == ["recseek", "models"] and parts[2] == cls.family, cls.__module__


# ---------------------------------------------------------------- deprecated names
def _rule(cls: type[Recommender], name: str) -> Any:
    rule = {**STANDARD_RULES, **cls.rules}.get(name)
    return rule.rule if isinstance(rule, UsedWhen) else rule


def _other_value(cls: type[Recommender], name: str) -> Any:
    """A valid value of ``name`` different from its default."""
    default = cls.param_defaults()[name]
    rule = _rule(cls, name)
    if isinstance(rule, Choice):
        return next(o for o in rule.options if o != default)
    if isinstance(default, bool):
        return not default
    for v in (default * 10, default * 0.1, default + 1):
        v = type(default)(v)
        try:
            if rule is not None:
                rule.check(cls.name, name, v)
        except ParameterError:
            continue
        if v != default:
            return v
    raise AssertionError(f"no other valid value for {cls.name}.{name}")


RENAMES = [(c.name, old, new) for c in MODELS for old, new in g.renamed_for(c.name, c.param_names()).items()]


def test_every_rename_is_exercised() -> None:
    assert {old for _, old, _ in RENAMES} == {r.old for r in g.RENAMED}


@pytest.mark.parametrize(("name", "old", "new"), RENAMES)
def test_old_name_still_works_with_a_warning(name: str, old: str, new: str) -> None:
    cls = registry.get(name)
    value = _other_value(cls, new)
    with pytest.warns(DeprecationWarning, match=f"'{old}' is deprecated, use '{new}'"):
        assert getattr(cls(**{old: value}), new) == value
    with pytest.warns(DeprecationWarning, match=f"'{old}'"):
        assert getattr(registry.create(name, **{old: value}), new) == value
    model = registry.create(name)
    with pytest.warns(DeprecationWarning, match=f"'{old}'"):
        model.set_params(**{old: value})
    assert getattr(model, new) == value
    assert old not in model.get_params()
    with pytest.raises(ParameterError, match=f"'{old}' is the old name of '{new}'"):
        registry.create(name, **{old: value, new: value})


def test_new_names_give_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in MODELS:
            registry.create(cls.name, **cls.param_defaults())


def test_old_names_in_an_experiment_file_still_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [f"u{u},i{i},{rng.integers(1, 6)},{u * 10 + n}"
            for u in range(30) for n, i in enumerate(rng.choice(20, 6, replace=False))]
    (tmp_path / "r.csv").write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    (tmp_path / "exp.toml").write_text(
        '[data]\npath = "r.csv"\nformat = "csv"\n\n[split]\nmethod = "ratio"\nratio = 0.75\norder = "time"\n\n'
        '[evaluation]\ntask = "rating"\n\n[[models]]\nname = "BiasedMF"\nbias_reg = 0.2\n'
    )
    with pytest.warns(DeprecationWarning, match="'bias_reg' is deprecated, use 'reg_bias'"):
        exp = load_experiment(tmp_path / "exp.toml")
    with pytest.warns(DeprecationWarning):
        assert registry.create(exp.models[0]["name"], **exp.models[0]["params"]).reg_bias == 0.2


def test_saved_model_with_an_old_name_still_loads(tmp_path: Path) -> None:
    from recseek.persistence import load_model, read_bundle, write_bundle

    data = synthetic(n_users=30, n_items=20, seed=1)
    model = registry.create("BiasedMF", factors=4, epochs=3, reg_bias=0.2).fit(data)
    manifest, arrays = read_bundle(model.save(tmp_path / "new"))
    params = manifest["params"]
    params["bias_reg"] = params.pop("reg_bias")        # a bundle written before the rename
    old = write_bundle(tmp_path / "old", arrays, {k: v for k, v in manifest.items() if k not in ("files", "format_version")})
    with pytest.warns(DeprecationWarning, match="'bias_reg' is deprecated, use 'reg_bias'"):
        loaded = load_model(old)
    assert loaded.reg_bias == 0.2
    np.testing.assert_array_equal(loaded.predict(np.arange(5), np.arange(5)), model.predict(np.arange(5), np.arange(5)))


# ---------------------------------------------------------------- settings without effect
EFFECT_RULES = [(c.name, n, r) for c in MODELS for n, r in c.rules.items() if isinstance(r, UsedWhen)]


def test_known_mode_rules_are_declared() -> None:
    declared = {(m, n) for m, n, _ in EFFECT_RULES}
    assert declared >= {("ItemKNNRanking", "alpha"), ("UserKNNRanking", "alpha"), ("BPR", "reg_bias"),
                        ("EALS", "missing_weight"), ("EALS", "popularity_exponent")}


def _mode_off(cls: type[Recommender], rule: UsedWhen) -> Any:
    default = cls.param_defaults()[rule.other]
    if isinstance(default, bool):
        return not rule.values[0]
    return next(o for o in _rule(cls, rule.other).options if o not in rule.values)


@pytest.mark.parametrize(("name", "param", "rule"), EFFECT_RULES, ids=[f"{m}-{n}" for m, n, _ in EFFECT_RULES])
def test_setting_without_effect_is_refused(name: str, param: str, rule: UsedWhen) -> None:
    cls = registry.get(name)
    off = {rule.other: _mode_off(cls, rule)}
    value = _other_value(cls, param)
    with pytest.raises(ParameterError, match=f"{param}=.* has no effect unless {rule.other} is"):
        registry.create(name, **off, **{param: value})
    model = registry.create(name, **off)          # the default never triggers the rule
    model.set_params(**{param: value})
    with pytest.raises(ParameterError, match=param):
        model.check_params()
    registry.create(name, **{rule.other: rule.values[0], param: value})
    registry.create(name, **off, **{param: cls.param_defaults()[param]})


def _scores(name: str, params: dict[str, Any], data) -> np.ndarray:
    model = registry.get(name)(**{**registry.get(name).test_params, **params})
    model.check_params = lambda: None  # fit the combination the rule refuses, to test the rule's claim
    return model.fit(data).score(np.arange(data.n_users))


@pytest.mark.parametrize(("name", "param", "rule"), EFFECT_RULES, ids=[f"{m}-{n}" for m, n, _ in EFFECT_RULES])
def test_refused_setting_really_has_no_effect(name: str, param: str, rule: UsedWhen) -> None:
    """The rule's claim holds: the value changes nothing in the other mode, and something in its mode."""
    cls = registry.get(name)
    data = synthetic(n_users=40, n_items=30, density=0.2, seed=3, side=bool(cls.requires))
    value = _other_value(cls, param)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for mode, same in ((_mode_off(cls, rule), True), (rule.values[0], False)):
            a = _scores(name, {rule.other: mode}, data)
            b = _scores(name, {rule.other: mode, param: value}, data)
            assert np.array_equal(a, b, equal_nan=True) == same, (rule.other, mode)
    finally:
        numba.set_num_threads(threads)
