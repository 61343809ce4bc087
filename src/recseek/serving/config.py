"""Server configuration: ``serve.toml`` plus environment overrides.

Layout of ``serve.toml`` (every key optional)::

    [server]
    host = "127.0.0.1"          # RECSEEK_SERVE_HOST
    port = 8080                 # RECSEEK_SERVE_PORT
    token = "..."               # RECSEEK_SERVE_TOKEN (bearer token of management and feedback)
    max_body_bytes = 1048576    # RECSEEK_SERVE_MAX_BODY_BYTES
    request_timeout_ms = 5000   # RECSEEK_SERVE_REQUEST_TIMEOUT_MS
    kernel_threads = 1          # threads of a model's multi-core kernels per batch (0: all cores)
    inline_below_ms = 2.0       # batches cheaper than this run on the event loop (0: always a thread)
    fast_path = true            # GET /recommend answered straight from ASGI (skips FastAPI's routing)
    max_results = 100000        # users x k of one request (bounds the size of an answer)
    max_header_bytes = 65536    # request headers over this get 431
    warmup = true               # run a dummy batch on each version before it reports ready
    adaptive_batching = true    # close a batch at once when no other request could join it

    [store]
    models = "model-store"      # RECSEEK_SERVE_MODEL_STORE: STORE/<name>/<version>/
    feedback = "sqlite:///feedback.db"  # RECSEEK_SERVE_FEEDBACK_URL (or a PostgreSQL URL)

    [batching]                  # defaults of every model and index
    batch_size = 32
    max_batch_delay_ms = 5
    max_queue = 1000
    min_worker = 1
    max_worker = 1
    max_idle_time = 1.0         # seconds an extra worker waits for work before stopping

    [[models]]                  # loaded at start (indexes the same way under [[indexes]])
    name = "movies"
    version = "2"               # default: the newest version in the store
    batch_size = 64             # per-model batching overrides
    item_data = "items.tsv"     # item categories for filters (optional)

    [models.retrain]            # ``recseek retrain`` and the scheduled job
    algorithm = "BiasedMF"
    params = { factors = 32 }
    data = "ml-100k"            # base interactions merged with the stored feedback (optional)
    interval_s = 0              # > 0: retrain in the server every interval_s seconds

Relative paths are resolved against the directory of the TOML file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ParameterError

#: Names of models, indexes and versions: letters, digits, ``.``, ``_``, ``-`` (no path separators).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

ENV_PREFIX = "RECSEEK_SERVE_"


def check_name(value: Any, what: str) -> str:
    """``value`` as a store name; :class:`ParameterError` when it could escape the store."""
    if not isinstance(value, str) or not NAME_RE.match(value) or value in (".", ".."):
        raise ParameterError(
            f"{what} {value!r} is not a valid name (letters, digits, '.', '_' or '-', at most 64, not starting with '.')"
        )
    return value


#: Upper bounds of what an operator or client may ask for (a request can name any number).
MAX_BATCH_SIZE = 1000
MAX_QUEUE = 100_000
MAX_WORKERS = max(4, 4 * (os.cpu_count() or 1))
MAX_IDLE_S = 3600.0
MAX_DELAY_MS = 60_000.0


@dataclass(frozen=True)
class BatchSettings:
    """Dynamic batching of one model version (DJL semantics).

    ``max_queue`` counts requests (DJL's ``job_queue_size``), not the users inside them;
    ``max_idle_time`` is how long (s) a worker beyond ``min_worker`` waits for work before it stops.
    """

    batch_size: int = 32
    max_batch_delay_ms: float = 5.0
    max_queue: int = 1000
    min_worker: int = 1
    max_worker: int = 1
    max_idle_time: float = 1.0

    def checked(self, where: str) -> BatchSettings:
        limits = {"batch_size": MAX_BATCH_SIZE, "max_queue": MAX_QUEUE, "min_worker": MAX_WORKERS,
                  "max_worker": MAX_WORKERS}
        for name, hi in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise ParameterError(f"{where}: {name} must be an integer in 1..{hi}, got {v!r}")
        d = self.max_batch_delay_ms
        if isinstance(d, bool) or not isinstance(d, int | float) or not (0 <= d <= MAX_DELAY_MS):
            raise ParameterError(f"{where}: max_batch_delay_ms must be a number in [0, {MAX_DELAY_MS:.0f}], got {d!r}")
        t = self.max_idle_time
        if isinstance(t, bool) or not isinstance(t, int | float) or not (0 < t <= MAX_IDLE_S):
            raise ParameterError(f"{where}: max_idle_time must be a number of seconds in (0, {MAX_IDLE_S:.0f}], "
                                 f"got {t!r}")
        if self.max_worker < self.min_worker:
            raise ParameterError(
                f"{where}: max_worker ({self.max_worker}) must be at least min_worker ({self.min_worker})"
            )
        return replace(self, max_batch_delay_ms=float(d), max_idle_time=float(t))

    def updated(self, where: str, **changes: Any) -> BatchSettings:
        unknown = set(changes) - set(BATCH_KEYS)
        if unknown:
            raise ParameterError(f"{where}: unknown batching setting {sorted(unknown)[0]!r} (valid: {', '.join(BATCH_KEYS)})")
        new = replace(self, **{k: v for k, v in changes.items() if v is not None})
        if changes.get("min_worker") is not None and changes.get("max_worker") is None:
            new = replace(new, max_worker=max(new.max_worker, new.min_worker))
        return new.checked(where)


BATCH_KEYS = ("batch_size", "max_batch_delay_ms", "max_queue", "min_worker", "max_worker", "max_idle_time")


@dataclass(frozen=True)
class RetrainSpec:
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    data: Path | None = None
    data_format: str | None = None
    interval_s: float = 0.0
    min_events: int = 1


@dataclass(frozen=True)
class ServableSpec:
    """A model or index to load at start."""

    name: str
    kind: str  # "model" or "index"
    version: str | None = None
    batching: BatchSettings = field(default_factory=BatchSettings)
    item_data: Path | None = None
    personalize: str | None = None
    retrain: RetrainSpec | None = None


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_body_bytes: int = 1 << 20
    request_timeout_ms: float = 5000.0
    kernel_threads: int = 1
    inline_below_ms: float = 2.0
    fast_path: bool = True
    max_results: int = 100_000
    max_header_bytes: int = 65_536
    warmup: bool = True
    adaptive_batching: bool = True
    model_store: Path = Path("model-store")
    feedback_url: str = "sqlite:///feedback.db"
    batching: BatchSettings = field(default_factory=BatchSettings)
    servables: tuple[ServableSpec, ...] = ()
    source: str = "defaults"

    def spec(self, name: str) -> ServableSpec | None:
        return next((s for s in self.servables if s.name == name), None)

    def check_delay(self, settings: BatchSettings, where: str) -> BatchSettings:
        """Refuse a ``max_batch_delay_ms`` that a request could not outlive."""
        if settings.max_batch_delay_ms >= self.request_timeout_ms:
            raise ParameterError(f"{where}: max_batch_delay_ms ({settings.max_batch_delay_ms:g}) must be below the "
                                 f"request timeout ({self.request_timeout_ms:g} ms)")
        return settings

    def check_bind(self) -> None:
        """Refuse a non-loopback address without a token."""
        if not self.token and not is_loopback(self.host):
            raise ParameterError(
                f"refusing to bind {self.host}: a non-loopback address needs a token "
                f"([server] token or {ENV_PREFIX}TOKEN)"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- parsing
def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    v = raw.get(key, {})
    if not isinstance(v, dict):
        raise ParameterError(f"{where}: [{key}] must be a table")
    return v


def _reject_unknown(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for k in table:
        if k not in allowed:
            raise ParameterError(f"{where}: unknown key {k!r} (valid: {', '.join(allowed)})")


def _int(v: Any, where: str, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ParameterError(f"{where} must be an integer >= {lo}, got {v!r}")
    return v


def _num(v: Any, where: str, lo: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < lo:
        raise ParameterError(f"{where} must be a number >= {lo}, got {v!r}")
    return float(v)


def _path(v: Any, base: Path, where: str) -> Path:
    if not isinstance(v, str) or not v:
        raise ParameterError(f"{where} must be a path string, got {v!r}")
    p = Path(v).expanduser()
    return p if p.is_absolute() else base / p


def _batching(table: Mapping[str, Any], base: BatchSettings, where: str) -> BatchSettings:
    vals = {k: table[k] for k in BATCH_KEYS if k in table}
    return base.updated(where, **vals) if vals else base


def _sqlite_url(url: str, base: Path) -> str:
    """Make a relative SQLite file URL relative to the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        rest = url[len(prefix):]
        return prefix + str((base / rest).resolve())
    return url


def _servable(raw: Any, kind: str, idx: int, defaults: BatchSettings, base: Path, where: str) -> ServableSpec:
    loc = f"{where}: {kind}s[{idx}]"
    if not isinstance(raw, dict):
        raise ParameterError(f"{loc} must be a table")
    allowed = ("name", "version", "item_data", "retrain", "personalize", *BATCH_KEYS)
    _reject_unknown(raw, allowed, loc)
    if "name" not in raw:
        raise ParameterError(f"{loc} has no name")
    name = check_name(raw["name"], f"{loc}.name")
    version = raw.get("version")
    if version is not None:
        version = check_name(str(version), f"{loc}.version")
    batching = _batching(raw, defaults, loc)
    item_data = _path(raw["item_data"], base, f"{loc}.item_data") if "item_data" in raw else None
    personalize = raw.get("personalize")
    if personalize is not None:
        if kind != "index":
            raise ParameterError(f"{loc}.personalize applies to indexes only")
        personalize = check_name(personalize, f"{loc}.personalize")
    retrain = None
    if "retrain" in raw:
        if kind != "model":
            raise ParameterError(f"{loc}.retrain applies to models only")
        retrain = _retrain(raw["retrain"], base, f"{loc}.retrain")
    return ServableSpec(name, kind, version, batching, item_data, personalize, retrain)


def _retrain(raw: Any, base: Path, loc: str) -> RetrainSpec:
    if not isinstance(raw, dict):
        raise ParameterError(f"{loc} must be a table")
    _reject_unknown(raw, ("algorithm", "params", "data", "format", "interval_s", "min_events"), loc)
    if not isinstance(raw.get("algorithm"), str):
        raise ParameterError(f"{loc}.algorithm must name a model (e.g. \"BiasedMF\")")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise ParameterError(f"{loc}.params must be a table")
    data = _path(raw["data"], base, f"{loc}.data") if "data" in raw else None
    fmt = raw.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise ParameterError(f"{loc}.format must be a string")
    interval = _num(raw.get("interval_s", 0), f"{loc}.interval_s")
    min_events = _int(raw.get("min_events", 1), f"{loc}.min_events", 0)
    return RetrainSpec(raw["algorithm"], dict(params), data, fmt, interval, min_events)


def parse_config(raw: Mapping[str, Any], base: Path = Path("."), source: str = "serve.toml") -> ServeConfig:
    """Build a :class:`ServeConfig` from a parsed TOML document (no environment applied)."""
    _reject_unknown(raw, ("server", "store", "batching", "models", "indexes"), source)
    server = _table(raw, "server", source)
    store = _table(raw, "store", source)
    batching_t = _table(raw, "batching", source)
    _reject_unknown(server, ("host", "port", "token", "max_body_bytes", "request_timeout_ms", "kernel_threads",
                                    "inline_below_ms", "fast_path", "max_results", "max_header_bytes", "warmup",
                                    "adaptive_batching"),
                    f"{source} [server]")
    _reject_unknown(store, ("models", "feedback"), f"{source} [store]")
    _reject_unknown(batching_t, BATCH_KEYS, f"{source} [batching]")
    cfg = ServeConfig(source=source)
    kw: dict[str, Any] = {}
    if "host" in server:
        if not isinstance(server["host"], str) or not server["host"]:
            raise ParameterError(f"{source} [server] host must be a non-empty string")
        kw["host"] = server["host"]
    if "port" in server:
        kw["port"] = _port(server["port"], f"{source} [server] port")
    if "token" in server:
        if not isinstance(server["token"], str):
            raise ParameterError(f"{source} [server] token must be a string")
        kw["token"] = server["token"] or None
    if "max_body_bytes" in server:
        kw["max_body_bytes"] = _int(server["max_body_bytes"], f"{source} [server] max_body_bytes", 1)
    if "request_timeout_ms" in server:
        kw["request_timeout_ms"] = _num(server["request_timeout_ms"], f"{source} [server] request_timeout_ms", 1)
    if "fast_path" in server:
        if not isinstance(server["fast_path"], bool):
            raise ParameterError(f"{source} [server] fast_path must be true or false")
        kw["fast_path"] = server["fast_path"]
    for key in ("warmup", "adaptive_batching"):
        if key in server:
            if not isinstance(server[key], bool):
                raise ParameterError(f"{source} [server] {key} must be true or false")
            kw[key] = server[key]
    for key, lo in (("max_results", 1), ("max_header_bytes", 1024)):
        if key in server:
            kw[key] = _int(server[key], f"{source} [server] {key}", lo)
    if "inline_below_ms" in server:
        kw["inline_below_ms"] = _num(server["inline_below_ms"], f"{source} [server] inline_below_ms")
    if "kernel_threads" in server:
        kw["kernel_threads"] = _int(server["kernel_threads"], f"{source} [server] kernel_threads", 0)
    if "models" in store:
        kw["model_store"] = _path(store["models"], base, f"{source} [store] models")
    else:
        kw["model_store"] = base / "model-store"
    if "feedback" in store:
        if not isinstance(store["feedback"], str) or not store["feedback"]:
            raise ParameterError(f"{source} [store] feedback must be a database URL")
        kw["feedback_url"] = _sqlite_url(store["feedback"], base)
    else:
        kw["feedback_url"] = _sqlite_url("sqlite:///feedback.db", base)
    defaults = _batching(batching_t, BatchSettings(), f"{source} [batching]")
    kw["batching"] = defaults
    specs: list[ServableSpec] = []
    for key, kind in (("models", "model"), ("indexes", "index")):
        entries = raw.get(key, [])
        if not isinstance(entries, list):
            raise ParameterError(f"{source}: {key} must be an array of tables ([[{key}]])")
        specs += [_servable(e, kind, i, defaults, base, source) for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ParameterError(f"{source}: {dup!r} is configured twice")
    kw["servables"] = tuple(specs)
    out = replace(cfg, **kw)
    for spec in (None, *specs):
        b = out.batching if spec is None else spec.batching
        out.check_delay(b, f"{source} [batching]" if spec is None else f"{source}: {spec.kind} {spec.name!r}")
    return out


def _port(v: Any, where: str) -> int:
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        raise ParameterError(f"{where} must be an integer in 0..65535, got {v!r}")
    return v


def apply_env(cfg: ServeConfig, env: Mapping[str, str]) -> ServeConfig:
    """Override settings from ``RECSEEK_SERVE_*`` environment variables."""
    kw: dict[str, Any] = {}
    p = ENV_PREFIX
    if env.get(p + "HOST"):
        kw["host"] = env[p + "HOST"]
    if env.get(p + "PORT"):
        kw["port"] = _port(env[p + "PORT"], f"environment variable {p}PORT")
    if p + "TOKEN" in env:
        kw["token"] = env[p + "TOKEN"] or None
    for key, conv in (("MAX_BODY_BYTES", int), ("REQUEST_TIMEOUT_MS", float)):
        if env.get(p + key):
            try:
                val = conv(env[p + key])
            except ValueError:
                raise ParameterError(f"environment variable {p}{key} must be a number, got {env[p + key]!r}") from None
            if val <= 0:
                raise ParameterError(f"environment variable {p}{key} must be positive, got {env[p + key]!r}")
            kw[key.lower()] = val
    if env.get(p + "MODEL_STORE"):
        kw["model_store"] = Path(env[p + "MODEL_STORE"]).expanduser()
    if env.get(p + "FEEDBACK_URL"):
        kw["feedback_url"] = env[p + "FEEDBACK_URL"]
    return replace(cfg, **kw) if kw else cfg


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ServeConfig:
    """Read ``serve.toml`` (defaults when ``path`` is None) and apply the environment."""
    env = os.environ if env is None else env
    if path is None:
        cfg = ServeConfig(model_store=Path("model-store").resolve(),
                          feedback_url=_sqlite_url("sqlite:///feedback.db", Path.cwd()))
    else:
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"configuration file {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ParameterError(f"{path}: invalid TOML: {e}") from None
        cfg = parse_config(raw, path.resolve().parent, str(path))
    return apply_env(cfg, env)
