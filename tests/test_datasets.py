"""Named data sets: offline messages, path=, cache reuse, the PyPI-wheel fallback."""

from __future__ import annotations

import urllib.error
import zipfile
from pathlib import Path

import pytest

from recseek import datasets
from recseek.errors import DataError, ParameterError
from recseek.testing.fixtures import shared_data_dir

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared test data not found")

U_ITEM = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n" \
         "2|GoldenEye (1995)|01-Jan-1995||http://y|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"


class Calls:
    def __init__(self) -> None:
        self.download: list[str] = []
        self.pip: list[str] = []


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """No network: every download fails like an unreachable host."""
    calls = Calls()

    def no_download(url: str, dest: Path, timeout: float = 5.0) -> None:
        calls.download.append(url)
        raise urllib.error.URLError("Name or service not known")

    def no_pip(requirement: str, dest: Path, timeout: float = 5.0) -> Path:
        calls.pip.append(requirement)
        raise OSError("pip download recbole==1.2.1 failed: no matching distribution")

    monkeypatch.setattr(datasets, "_download", no_download)
    monkeypatch.setattr(datasets, "_pip_download", no_pip)
    return calls


def test_names_and_unknown() -> None:
    assert datasets.names() == ["ml-100k", "ml-1m", "filmtrust"]
    assert "FilmTrust" in datasets.describe("filmtrust")
    with pytest.raises(ParameterError, match="unknown data set 'netflix'; known: ml-100k, ml-1m, filmtrust"):
        datasets.load("netflix")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECSEEK_DATA", str(tmp_path / "cache"))
    assert datasets.default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("RECSEEK_DATA")
    assert datasets.default_cache_dir() == Path.home() / ".cache" / "recseek"


def test_offline_messages(offline: Calls, tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        datasets.load("ml-100k", cache_dir=tmp_path)
    msg = str(info.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg
    assert "recbole==1.2.1" in msg and "load('ml-100k', path='.../ml-100k')" in msg
    assert "\n" not in msg and msg.count(". ") == 0
    assert offline.download and offline.pip == ["recbole==1.2.1"]
    with pytest.raises(DataError) as info:
        datasets.load("filmtrust", cache_dir=tmp_path)
    msg = str(info.value)
    assert "https://raw.githubusercontent.com/HongZhaoHua/jstarcraft-rns/master/data/filmtrust/" in msg
    assert "load('filmtrust', path='.../filmtrust')" in msg and "\n" not in msg
    with pytest.raises(DataError, match=r"ml-1m\.zip .*load\('ml-1m', path="):
        datasets.load("ml-1m", cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.part"))  # nothing half-written


def test_offline_messages_name_the_cli_flag_and_the_toml_key(offline: Calls, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from recseek.cli import cli

    monkeypatch.setenv("RECSEEK_DATA", str(tmp_path / "cache"))
    res = CliRunner().invoke(cli, ["train", "--model", "MostPopular", "--data", "filmtrust", "--out",
                                   str(tmp_path / "store" / "m")])
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert err.startswith("error: filmtrust: cannot download") and err.endswith("pass --data .../filmtrust")
    assert "load(" not in err
    exp = tmp_path / "ft.toml"
    exp.write_text('[data]\nname = "filmtrust"\n\n[[models]]\nname = "MostPopular"\n')
    res = CliRunner().invoke(cli, ["run", str(exp), "--no-progress"])
    assert res.exit_code == 2, res.output
    assert 'set path = ".../filmtrust" in [data] (or pass --data .../filmtrust)' in res.stderr
    assert "load(" not in res.stderr


def test_grouplens_download_is_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    archive = tmp_path / "source.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t10\n2\t2\t3\t11\n1\t2\t4\t12\n")
        zf.writestr("ml-100k/u.item", U_ITEM)
    calls: list[str] = []

    def fake_download(url: str, dest: Path, timeout: float = 5.0) -> None:
        calls.append(url)
        dest.write_bytes(archive.read_bytes())

    monkeypatch.setattr(datasets, "_download", fake_download)
    cache = tmp_path / "cache"
    data = datasets.load("ml-100k", cache_dir=cache)
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert data.nnz == 3 and data.meta["dataset"] == "ml-100k" and data.meta["format"] == "movielens"
    assert data.item_data["genres"].tolist() == ["Animation|Children's|Comedy", "Action|Adventure|Thriller"]
    assert (cache / "ml-100k" / "u.data").exists()
    again = datasets.load("ml-100k", cache_dir=cache)
    assert calls == [calls[0]] and again.nnz == 3


def test_pypi_wheel_fallback_is_cached(offline: Calls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fake_pip(requirement: str, dest: Path, timeout: float = 5.0) -> Path:
        offline.pip.append(requirement)
        wheel = dest / "recbole-1.2.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("recbole/__init__.py", "")
            zf.writestr("recbole/dataset_example/ml-100k/ml-100k.inter",
                        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t5\t10\n2\t1\t3\t11\n")
            zf.writestr("recbole/dataset_example/ml-100k/ml-100k.item",
                        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                        "1\tToy Story\t1995\tAnimation Comedy\n2\tHeat\t1995\tAction\n")
            zf.writestr("recbole/dataset_example/other/x.inter", "")
        return wheel

    monkeypatch.setattr(datasets, "_pip_download", fake_pip)
    data = datasets.load("ml-100k", cache_dir=tmp_path)
    assert data.nnz == 2 and data.n_items == 2 and data.meta["format"] == "recbole"
    assert data.item_data["title"].tolist() == ["Toy Story", "Heat"]
    assert sorted(p.name for p in (tmp_path / "ml-100k-recbole").iterdir()) == ["ml-100k.inter", "ml-100k.item"]
    assert len(offline.download) == 1 and offline.pip == ["recbole==1.2.1"]
    datasets.load("ml-100k", cache_dir=tmp_path)  # second call: from the cache, no network
    assert len(offline.download) == 1 and len(offline.pip) == 1


def test_filmtrust_download_into_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = {"score.txt": "1 1 3 2\n2 1 4 3.5\n", "trust.txt": "1 2 1\n3 1 1\n"}

    def fake_download(url: str, dest: Path, timeout: float = 5.0) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(datasets, "_download", fake_download)
    data = datasets.load("filmtrust", cache_dir=tmp_path)
    assert data.nnz == 2 and data.n_users == 3 and data.trust.nnz == 2


def test_path_alternative(offline: Calls, tmp_path: Path) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t5\t10\n")
    (folder / "u.item").write_text(U_ITEM)
    data = datasets.load("ml-100k", path=folder)
    assert data.nnz == 1 and data.meta["dataset"] == "ml-100k" and data.n_items == 2
    with pytest.raises(DataError, match="no such file or directory"):
        datasets.load("filmtrust", path=tmp_path / "missing")
    assert offline.download == [] and offline.pip == []


@needs_shared
def test_path_with_shared_copies(offline: Calls) -> None:
    ml = datasets.load("ml-100k", path=SHARED / "ml-100k")
    assert ml.shape == (943, 1682) and ml.nnz == 100_000
    ft = datasets.load("filmtrust", path=SHARED / "jstarcraft" / "filmtrust")
    assert ft.nnz == 35_492 and ft.trust.nnz == 1853
    assert offline.download == []


@pytest.mark.slow
def test_real_pypi_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Downloads the recbole==1.2.1 wheel from PyPI when GroupLens is unreachable (needs network)."""
    real_download = datasets._download

    def grouplens_down(url: str, dest: Path, timeout: float = 5.0) -> None:
        if "grouplens" in url:
            raise urllib.error.URLError("GroupLens unreachable (simulated)")
        real_download(url, dest, timeout)

    monkeypatch.setattr(datasets, "_download", grouplens_down)
    data = datasets.load("ml-100k", cache_dir=tmp_path)
    assert data.shape == (943, 1682) and data.nnz == 100_000
    assert data.item_data["genres"][data.items.index(1)] == "Animation|Children's|Comedy"
    monkeypatch.setattr(datasets, "_pip_download", lambda *a, **k: pytest.fail("cache not used"))
    assert datasets.load("ml-100k", cache_dir=tmp_path).nnz == 100_000
