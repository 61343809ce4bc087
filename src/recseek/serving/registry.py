"""The model store on disk and the registry of served versions.

Model store layout::

    STORE/
      <name>/
        <version>/        a directory written by Recommender.save or a retriever's save
                          (arrays.npz + manifest.json), or a ``recseek index`` folder
                          (lexical/ and optionally dense/)

Names and versions are letters, digits, ``.``, ``_`` and ``-``; a path that would leave
the store (``..``, separators, symbolic links pointing outside) is refused. Objects load
through :mod:`recseek.persistence`, which never unpickles. "Latest" is the highest
version, compared numerically when versions are numbers.

The registry holds every loaded version of every name with its batcher. Several versions
live at once; the default version answers requests that name none. Switching the default
is atomic for new requests, and requests already queued on the old version still get
their answer; unregistering a version drains its queue first.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ModelFileError, ParameterError
from .batching import Batcher
from .config import BatchSettings, ServableSpec, ServeConfig, check_name
from .metrics import Metrics
from .servables import Conflict, IndexServable, ItemCategories, ModelServable, NotFound

__all__ = ["Endpoint", "ModelStore", "ServingRegistry", "retrain"]


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
        check_name(name, "model name")
        folder = self.root / name
        if not folder.is_dir():
            return []
        vs = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(vs, key=_version_key)

    def latest(self, name: str) -> str:
        vs = self.versions(name)
        if not vs:
            raise NotFound(f"model store {self.root} has no versions of {name!r}")
        return vs[-1]

    def next_version(self, name: str) -> str:
        numeric = [int(v) for v in self.versions(name) if v.isdigit()]
        return str(max(numeric, default=0) + 1)

    def path(self, name: str, version: str) -> Path:
        """The directory of ``name``/``version``; refuses anything outside the store."""
        check_name(name, "model name")
        check_name(version, "version")
        p = (self.root / name / version).resolve()
        if not p.is_relative_to(self.root):
            raise ParameterError(f"{name}/{version} points outside the model store")
        if not p.is_dir():
            raise NotFound(f"model store {self.root} has no {name!r} version {version!r}")
        return p

    def load(self, name: str, version: str, spec: ServableSpec | None = None) -> ModelServable | IndexServable:
        """Load ``name``/``version`` (blocking; run it in a thread)."""
        from ..persistence import MANIFEST, read_manifest

        path = self.path(name, version)
        kind = read_manifest(path).get("kind") if (path / MANIFEST).is_file() else "index-folder"
        if kind == "model":
            from ..persistence import load_model

            model = load_model(path)
            if not hasattr(model, "seen_"):
                raise ModelFileError(f"{path} holds an unfitted model")
            cats = None
            if spec is not None and spec.item_data is not None:
                cats = ItemCategories.read(spec.item_data, model.items_)
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


class ServingRegistry:
    """Every served name, its versions and the default version."""

    def __init__(self, config: ServeConfig, executor: Executor, metrics: Metrics) -> None:
        self.config = config
        self.store = ModelStore(config.model_store)
        self.executor = executor
        self.metrics = metrics
        self._entries: dict[str, _Entry] = {}
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
    async def register(self, name: str, version: str | None = None, *, settings: dict[str, Any] | None = None,
                       make_default: bool | None = None) -> Endpoint:
        """Load ``name``/``version`` (latest when None) from the store and start serving it."""
        check_name(name, "model name")
        version = self.store.latest(name) if version is None else check_name(str(version), "version")
        spec = self.config.spec(name)
        base = spec.batching if spec is not None else self.config.batching
        batch = base.updated(f"register {name}", **(settings or {})) if settings else base
        async with self._lock:
            entry = self._entries.get(name)
            if entry is not None and version in entry.versions:
                raise Conflict(f"{name!r} version {version!r} is already registered")
        loop = asyncio.get_running_loop()
        servable = await loop.run_in_executor(self.executor, self.store.load, name, version, spec)
        async with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.kind != servable.kind:
                raise Conflict(f"{name!r} is served as a {entry.kind}; version {version!r} holds a {servable.kind}")
            if entry is not None and version in entry.versions:
                raise Conflict(f"{name!r} version {version!r} is already registered")
            batcher = Batcher(name, version, servable.execute, batch, executor=self.executor, metrics=self.metrics,
                              timeout_s=self.config.request_timeout_ms / 1000.0,
                              inline_below_ms=self.config.inline_below_ms)
            batcher.start()
            ep = Endpoint(servable, batcher)
            if entry is None:
                entry = self._entries[name] = _Entry(servable.kind)
            entry.versions[version] = ep
            if entry.default is None or make_default:
                entry.default = version
            return ep

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
        new = [(ep, ep.batcher.settings.updated(f"scale {name}", **settings)) for ep in targets]
        for ep, s in new:
            ep.batcher.rescale(s)
        return targets

    async def unregister(self, name: str, version: str | None = None) -> list[str]:
        """Stop serving ``version`` (every version when None) after draining its queue."""
        async with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                raise NotFound(f"no model or index named {name!r} is registered")
            if version is not None and version not in entry.versions:
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
        return gone

    def describe(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"no model or index named {name!r} is registered")
        versions = sorted(entry.versions, key=_version_key)
        return {"name": name, "kind": entry.kind, "default_version": entry.default,
                "versions": [entry.versions[v].describe(v == entry.default) for v in versions]}

    def listing(self) -> list[dict[str, Any]]:
        return [{"name": n, "kind": e.kind, "default_version": e.default,
                 "versions": sorted(e.versions, key=_version_key)} for n, e in sorted(self._entries.items())]

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


def batch_settings(spec: ServableSpec | None, config: ServeConfig) -> BatchSettings:
    return spec.batching if spec is not None else config.batching
