"""The model store on disk and the registry of served versions.

Model store layout::

    STORE/
      <name>/
        <version>/        a directory written by Recommender.save or a retriever's save
                          (arrays.npz + manifest.json), or a ``recseek index`` folder
                          (lexical/ and optionally dense/)

Names and versions are letters, digits, ``.``, ``_`` and ``-``; a path that would leave
the store (``..``, separators, symbolic links pointing outside) is refused, and a version
folder that is a broken or escaping link is left out of the listing with a logged error.
Objects load through :mod:`recseek.persistence`, which never unpickles and verifies every
file. "Latest" is the highest version, compared numerically when versions are numbers.
Error messages name paths relative to the store, never its absolute location.

The registry holds every loaded version of every name with its batcher. Several versions
live at once; the default version answers requests that name none. Switching the default
is atomic for new requests, and requests already queued on the old version still get
their answer; unregistering a version drains its queue first. Each version loads on its
own: one that fails (a corrupt file, say) is recorded as failed with its one-sentence
reason and the others keep serving. A version answers only after a warm-up batch (the
first call compiles or loads kernels), so its first real request is as fast as the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ModelFileError, ParameterError, RecseekError
from .batching import Batcher, Load
from .config import BatchSettings, ServableSpec, ServeConfig, check_name
from .metrics import Metrics
from .servables import Conflict, IndexServable, ItemCategories, ModelServable, NotFound

__all__ = ["Endpoint", "ModelStore", "ServingRegistry", "retrain"]

log = logging.getLogger("recseek.serving")


def _version_key(v: str) -> tuple[int, float, str]:
    try:
        return (1, float(v), v)
    except ValueError:
        return (0, 0.0, v)


class ModelStore:
    """``STORE/<name>/<version>/`` directories."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self, name: str) -> list[str]:
        """Versions of ``name`` that are folders inside the store (bad links are logged and left out)."""
        check_name(name, "model name")
        folder = self.root / name
        if not folder.is_dir():
            return []
        vs = []
        for p in folder.iterdir():
            if p.name.startswith("."):
                continue
            if p.is_symlink():
                target = p.resolve()
                if not target.is_dir() or not target.is_relative_to(self.root):
                    log.error("model store: %s/%s is a link that %s; left out", name, p.name,
                              "points outside the store" if target.exists() else "is broken")
                    continue
            if p.is_dir():
                vs.append(p.name)
        return sorted(vs, key=_version_key)

    def latest(self, name: str) -> str:
        vs = self.versions(name)
        if not vs:
            raise NotFound(f"the model store has no versions of {name!r}")
        return vs[-1]

    def next_version(self, name: str) -> str:
        numeric = [int(v) for v in self.versions(name) if v.isdigit()]
        return str(max(numeric, default=0) + 1)

    def path(self, name: str, version: str) -> Path:
        """The directory of ``name``/``version``; refuses anything outside the store."""
        check_name(name, "model name")
        check_name(version, "version")
        p = (self.root / name / version).resolve()
        if not p.is_dir():
            raise NotFound(f"the model store has no {name!r} version {version!r}")
        if not p.is_relative_to(self.root):
            raise ParameterError(f"{name}/{version} points outside the model store")
        return p

    def relative(self, message: str) -> str:
        """``message`` with the store's absolute location replaced by store-relative paths."""
        root = str(self.root)
        return message.replace(root + "/", "").replace(root, "the model store")

    def from_url(self, url: str) -> tuple[str, str | None]:
        """``(name, version or None)`` of a DJL ``url``: ``name[/version]`` inside the store or ``file://`` there."""
        if "://" in url:
            scheme, _, rest = url.partition("://")
            if scheme != "file":
                raise ParameterError(f"url {url!r}: only paths inside the model store (or file:// URLs there) "
                                     "can be registered")
            if "\x00" in rest:
                raise NotFound(f"url {url!r}: the model store has no such folder")
            p = Path(rest).expanduser()
            p = p.resolve() if p.is_absolute() else (self.root / p).resolve()
            if not p.is_relative_to(self.root):
                raise NotFound(f"url {url!r} is outside the model store: only its folders can be registered")
            if not p.is_dir():
                raise NotFound(f"url {url!r}: the model store has no such folder")
            parts = p.relative_to(self.root).parts
        else:
            if url.startswith("/") or "\\" in url:
                raise ParameterError(f"url {url!r} must be a path inside the model store, like name or name/version")
            parts = tuple(x for x in url.split("/") if x)
        if not 1 <= len(parts) <= 2:
            raise ParameterError(f"url {url!r} must name a model folder (name or name/version) inside the model store")
        name = check_name(parts[0], "model name")
        version = check_name(parts[1], "version") if len(parts) == 2 else None
        return name, version

    def load(self, name: str, version: str, spec: ServableSpec | None = None) -> ModelServable | IndexServable:
        """Load ``name``/``version`` (blocking; run it in a thread)."""
        from ..persistence import MANIFEST, read_manifest

        path = self.path(name, version)
        kind = read_manifest(path).get("kind") if (path / MANIFEST).is_file() else "index-folder"
        if kind == "model":
            from ..persistence import load_model

            model = load_model(path)
            if getattr(model, "n_items_", None) is None:
                raise ModelFileError(f"{path} holds an unfitted model")
            cats = None
            if spec is not None and spec.item_data is not None:
                cats = ItemCategories.read(spec.item_data, model.items_)
            else:
                cats = ItemCategories.from_bundle(path, model.items_)
            return ModelServable(model, name, version, path, cats)
        if kind in ("search-index", "index-folder"):
            return IndexServable.load(path, name, version, personalize=spec.personalize if spec else None)
        raise ModelFileError(f"{path} holds a {kind!r}, which cannot be served")


@dataclass
class Endpoint:
    """One served version: its loaded object and batcher."""

    servable: ModelServable | IndexServable
    batcher: Batcher
    status: str = "ready"
    loaded_at: float = field(default_factory=time.time)
    at_startup: bool = False
    source: str = ""  # <store folder>/<version>

    @property
    def version(self) -> str:
        return self.servable.version

    def describe(self, default: bool) -> dict[str, Any]:
        return {"version": self.version, "default": default, "status": self.status, **self.servable.describe(),
                **self.batcher.describe(), "loaded_at": self.loaded_at}


@dataclass
class _Entry:
    kind: str
    versions: dict[str, Endpoint] = field(default_factory=dict)
    default: str | None = None


@dataclass
class Problem:
    """A version that is not served: still loading, or failed with its reason."""

    name: str
    version: str
    status: str  # "pending" or "failed"
    message: str = ""


class ServingRegistry:
    """Every served name, its versions and the default version."""

    def __init__(self, config: ServeConfig, executor: Executor, metrics: Metrics, load: Load | None = None) -> None:
        self.config = config
        self.store = ModelStore(config.model_store)
        self.executor = executor
        self.metrics = metrics
        self.load = load
        self._entries: dict[str, _Entry] = {}
        self.problems: dict[tuple[str, str], Problem] = {}
        self._lock = asyncio.Lock()
        metrics.add_gauge("recseek_queue_depth", "Requests waiting in a batch queue.", self._depths)
        metrics.add_gauge("recseek_workers", "Batch workers running.", self._workers)

    def _depths(self) -> list[tuple[tuple[str, str], float]]:
        return [((n, v), ep.batcher.queue_depth) for n, e in self._entries.items() for v, ep in e.versions.items()]

    def _workers(self) -> list[tuple[tuple[str, str], float]]:
        return [((n, v), ep.batcher.workers) for n, e in self._entries.items() for v, ep in e.versions.items()]

    # ------------------------------------------------------------ lookup (event loop, no await)
    def resolve(self, name: str, version: str | None = None, kind: str | None = None) -> Endpoint:
        entry = self._entries.get(name)
        if entry is None:
            what = "search index" if kind == "index" else "model"
            raise NotFound(f"no {what} named {name!r} is registered")
        if kind is not None and entry.kind != kind:
            other = "a search index" if entry.kind == "index" else "a model"
            raise NotFound(f"{name!r} is {other}, not a {'search index' if kind == 'index' else 'model'}")
        v = entry.default if version is None else version
        ep = entry.versions.get(v) if v is not None else None
        if ep is None:
            raise NotFound(f"{name!r} has no registered version {version!r}"
                           f" (registered: {', '.join(sorted(entry.versions, key=_version_key)) or 'none'})")
        return ep

    def names(self) -> list[str]:
        return sorted(self._entries)

    def is_ready(self) -> bool:
        return all(e.default is not None for e in self._entries.values())

    # ------------------------------------------------------------ management
    def settings_for(self, name: str, settings: dict[str, Any] | None) -> BatchSettings:
        """Batching of ``name`` with ``settings`` applied (bounded; delay below the request timeout)."""
        spec = self.config.spec(name)
        base = spec.batching if spec is not None else self.config.batching
        batch = base.updated(f"register {name}", **settings) if settings else base
        return self.config.check_delay(batch, f"register {name}")

    async def register(self, name: str, version: str | None = None, *, settings: dict[str, Any] | None = None,
                       make_default: bool | None = None, at_startup: bool = False) -> Endpoint:
        """Load ``name``/``version`` (latest when None) from the store, warm it up and start serving it.

        A failure is recorded in :attr:`problems` (shown as failed by the management API) and raised.
        """
        version, batch = self.reserve(name, version, settings)
        return await self.complete(name, version, batch, make_default=make_default, at_startup=at_startup)

    def reserve(self, name: str, version: str | None, settings: dict[str, Any] | None = None,
                folder: str | None = None, source: str | None = None) -> tuple[str, BatchSettings]:
        """Check a registration and mark it pending (event loop, no await); ``(version, settings)``.

        ``folder``/``source`` is the store folder and version to load from (default:
        ``name``/``version``); ``version`` is the version served (default: the newest in the store).
        """
        check_name(name, "model name")
        folder = name if folder is None else check_name(folder, "model folder")
        if version is None:
            version = source if source is not None else self.store.latest(folder)
        version = check_name(str(version), "version")
        self.store.path(folder, version if source is None else check_name(source, "version"))
        batch = self.settings_for(name, settings)
        entry = self._entries.get(name)
        if entry is not None and version in entry.versions:
            raise Conflict(f"{name!r} version {version!r} is already registered")
        problem = self.problems.get((name, version))
        if problem is not None and problem.status == "pending":
            raise Conflict(f"{name!r} version {version!r} is being registered")
        self.problems[(name, version)] = Problem(name, version, "pending")
        return version, batch

    async def complete(self, name: str, version: str, batch: BatchSettings, *, make_default: bool | None = None,
                       at_startup: bool = False, folder: str | None = None, source: str | None = None) -> Endpoint:
        """Load a reserved version (from ``folder``/``source``, default ``name``/``version``) and serve it."""
        folder, source = folder or name, source or version
        try:
            servable = await asyncio.get_running_loop().run_in_executor(self.executor, self._load_warm, name,
                                                                        version, folder, source)
        except RecseekError as e:
            msg = self.store.relative(str(e))
            self.problems[(name, version)] = Problem(name, version, "failed", msg)
            raise _same_kind(e, msg) from None
        except Exception as e:  # an unexpected failure of one version must not stop the others
            log.exception("loading %s/%s failed", name, version)
            msg = f"{name}/{version} cannot be loaded ({type(e).__name__})"
            self.problems[(name, version)] = Problem(name, version, "failed", msg)
            raise ModelFileError(msg) from None
        async with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.kind != servable.kind:
                msg = f"{name!r} is served as a {entry.kind}; version {version!r} holds a {servable.kind}"
                self.problems[(name, version)] = Problem(name, version, "failed", msg)
                raise Conflict(msg)
            self.problems.pop((name, version), None)
            batcher = Batcher(name, version, servable.execute, batch, executor=self.executor, metrics=self.metrics,
                              timeout_s=self.config.request_timeout_ms / 1000.0,
                              inline_below_ms=self.config.inline_below_ms,
                              load=self.load if self.config.adaptive_batching else None)
            batcher.start()
            ep = Endpoint(servable, batcher, at_startup=at_startup, source=f"{folder}/{source}")
            if entry is None:
                entry = self._entries[name] = _Entry(servable.kind)
            entry.versions[version] = ep
            if entry.default is None or make_default:
                entry.default = version
            return ep

    def record_failure(self, name: str, version: str, message: str) -> None:
        """Show ``name``/``version`` as failed (a start-up registration that could not even begin)."""
        self.problems[(name, version)] = Problem(name, version, "failed", self.store.relative(message))

    def _load_warm(self, name: str, version: str, folder: str, source: str) -> ModelServable | IndexServable:
        servable = self.store.load(folder, source, self.config.spec(name))
        servable.name, servable.version = name, version
        if self.config.warmup:
            servable.warm()
        return servable

    def set_default(self, name: str, version: str) -> None:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no model or index named {name!r} is registered")
        if version not in entry.versions:
            raise NotFound(f"{name!r} has no registered version {version!r}")
        entry.default = version

    def scale(self, name: str, version: str | None, **settings: Any) -> list[Endpoint]:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no model or index named {name!r} is registered")
        targets = list(entry.versions.values()) if version is None else [self.resolve(name, version)]
        new = [(ep, self.config.check_delay(ep.batcher.settings.updated(f"scale {name}", **settings),
                                            f"scale {name}")) for ep in targets]
        for ep, s in new:
            ep.batcher.rescale(s)
        return targets

    async def unregister(self, name: str, version: str | None = None) -> list[str]:
        """Stop serving ``version`` (every version when None) after draining its queue."""
        async with self._lock:
            failed = [k for k, p in self.problems.items()
                      if k[0] == name and (version is None or k[1] == version) and p.status == "failed"]
            for k in failed:
                del self.problems[k]
            entry = self._entries.get(name)
            if entry is None or (version is not None and version not in entry.versions):
                if failed:
                    return [k[1] for k in failed]
                if entry is None:
                    raise NotFound(f"no model or index named {name!r} is registered")
                raise NotFound(f"{name!r} has no registered version {version!r}")
            gone = list(entry.versions) if version is None else [version]
            eps = [entry.versions.pop(v) for v in gone]
            if not entry.versions:
                del self._entries[name]
            elif entry.default in gone:
                entry.default = sorted(entry.versions, key=_version_key)[-1]
        for ep in eps:
            ep.status = "draining"
        await asyncio.gather(*(ep.batcher.close() for ep in eps))
        return gone + [k[1] for k in failed]

    def describe(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no model or index named {name!r} is registered")
        versions = sorted(entry.versions, key=_version_key)
        return {"name": name, "kind": entry.kind, "default_version": entry.default,
                "versions": [entry.versions[v].describe(v == entry.default) for v in versions]}

    def entries(self, name: str | None = None) -> list[tuple[str, str, Endpoint | Problem, bool]]:
        """``(name, version, endpoint or problem, is_default)`` of every version, sorted."""
        out: list[tuple[str, str, Endpoint | Problem, bool]] = []
        for n, e in self._entries.items():
            out += [(n, v, ep, v == e.default) for v, ep in e.versions.items()]
        out += [(p.name, p.version, p, False) for p in self.problems.values()]
        if name is not None:
            out = [x for x in out if x[0] == name]
        return sorted(out, key=lambda x: (x[0], _version_key(x[1])))

    def kind_of(self, name: str) -> str | None:
        e = self._entries.get(name)
        return e.kind if e is not None else None

    def default_of(self, name: str) -> str | None:
        e = self._entries.get(name)
        return e.default if e is not None else None

    async def close(self) -> None:
        for name in list(self._entries):
            try:
                await self.unregister(name)
            except NotFound:
                pass


# ---------------------------------------------------------------- retraining
def _interactions_from(base: Any, events: dict[str, np.ndarray]) -> Any:
    """Interactions of ``base`` (optional) plus the stored events; later records win duplicates."""
    from ..data import Interactions

    users, items, values, ts = [], [], [], []
    if base is not None:
        m = base.matrix.tocoo()
        users.append(base.users.ids[m.row].astype(str))
        items.append(base.items.ids[m.col].astype(str))
        values.append(np.asarray(m.data, dtype=np.float64))
        if base.timestamps is not None:
            csr_ts = np.asarray(base.timestamps, dtype=np.float64)
            ts.append(csr_ts)  # coo of a canonical csr keeps the data order
        else:
            ts.append(np.zeros(m.nnz))
    if events["user"].size:
        users.append(events["user"])
        items.append(events["item"])
        values.append(events["value"])
        floor = max((float(t.max()) for t in ts if t.size), default=0.0)
        # stored feedback is newer than the base data even if clocks disagree
        ts.append(np.maximum(events["timestamp"], floor + 1.0))
    if not users:
        raise DataError("nothing to train on: no base data and no stored feedback")
    u, i = np.concatenate(users), np.concatenate(items)
    u, i = _maybe_int(u), _maybe_int(i)
    return Interactions.from_arrays(u, i, np.concatenate(values), np.concatenate(ts), duplicates="last",
                                    source="retraining data")


def _maybe_int(ids: np.ndarray) -> np.ndarray:
    """Ids as int64 when every one is a (signed) integer literal, else unchanged strings."""
    s = np.char.lstrip(ids.astype(str), "-")
    if ids.size and bool(np.all(np.char.isdigit(s))):
        try:
            return ids.astype(np.int64)
        except (ValueError, OverflowError):
            return ids
    return ids


def retrain(config: ServeConfig, name: str, feedback: Any) -> tuple[str, Path, int]:
    """Refit ``name`` from its base data plus the stored feedback and save a new version.

    Returns ``(version, path, n_events)``. Blocking.
    """
    from ..data.readers import read
    from ..models import registry as model_registry

    spec = config.spec(name)
    if spec is None or spec.kind != "model":
        raise ParameterError(f"{config.source}: no [[models]] entry named {name!r}")
    if spec.retrain is None:
        raise ParameterError(f"{config.source}: model {name!r} has no [models.retrain] table")
    rs = spec.retrain
    events = feedback.arrays()
    if events["user"].size < rs.min_events:
        raise DataError(f"retrain {name}: {events['user'].size} stored feedback events, min_events is {rs.min_events}")
    base = read(rs.data, rs.data_format) if rs.data is not None else None
    data = _interactions_from(base, events)
    model = model_registry.create(rs.algorithm, **rs.params).fit(data)
    store = ModelStore(config.model_store)
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / check_name(name, "model name")).mkdir(exist_ok=True)
    version = store.next_version(name)
    path = store.root / name / version
    model.save(path)
    return version, path, int(events["user"].size)


def _same_kind(exc: RecseekError, message: str) -> RecseekError:
    """An error of the same class as ``exc`` with another message."""
    try:
        return type(exc)(message)
    except TypeError:
        return ModelFileError(message)
