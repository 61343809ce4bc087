"""``recseek serve [serve.toml]`` and ``recseek retrain --config serve.toml --model NAME``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from ..errors import RecseekError


def run_server(app: object, host: str, port: int, log_level: str = "info") -> None:
    """Run ``app`` on uvicorn (uvloop and httptools when installed)."""
    import importlib.util

    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(app, host=host, port=port, loop=loop, http=http, log_level=log_level, access_log=False,
                lifespan="on")


@click.command("serve")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", "store", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Serve the newest version of every model folder in STORE (STORE/<name>/<version>/).")
@click.option("--demo", is_flag=True,
              help="Train EASE on the offline ML-100K once (kept in --demo-dir) and serve it as 'movies'.")
@click.option("--demo-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where --demo keeps its model store (default: recseek's cache folder).")
@click.option("--host", default=None, help="Address to bind (default from the config, else 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default from the config, else 8080).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve_cmd(config: Path | None, store: Path | None, demo: bool, demo_dir: Path | None, host: str | None,
              port: int | None, log_level: str) -> None:
    """Serve the models and indexes of CONFIG (serve.toml), of a --store, or a --demo model over HTTP."""
    from dataclasses import replace

    from .app import create_app
    from .config import load_config

    if demo and store is not None:
        raise RecseekError("give --demo or --store, not both")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(config)
    if demo:
        cfg = demo_config(cfg, demo_dir)
    elif store is not None:
        cfg = store_config(cfg, store)
    if host is not None:
        cfg = replace(cfg, host=host)
    if port is not None:
        if not 0 <= port <= 65535:
            raise RecseekError(f"--port must be in 0..65535, got {port}")
        cfg = replace(cfg, port=port)
    cfg.check_bind()
    feedback = preflight(cfg)
    if not cfg.token:
        logging.getLogger("recseek.serving").warning(
            "no token configured: management and feedback endpoints are open to local clients")
    try:
        run_server(create_app(cfg, feedback=feedback), cfg.host, cfg.port, log_level)
    finally:
        feedback.close()


def preflight(cfg: Any) -> Any:
    """Check what the server needs before it binds; one :class:`RecseekError` naming the first problem.

    Returns the opened feedback store.
    """
    from .registry import ModelStore
    from .store import FeedbackStore

    store = ModelStore(cfg.model_store)
    if cfg.servables and not store.root.is_dir():
        raise RecseekError(f"{cfg.source}: the model store {store.root} does not exist")
    for spec in cfg.servables:
        where = f"{cfg.source}: {spec.kind} {spec.name!r}"
        if spec.version is None:
            if not store.versions(spec.name):
                raise RecseekError(f"{where}: the model store {store.root} has no versions of {spec.name!r}")
        elif not (store.root / spec.name / spec.version).is_dir():
            raise RecseekError(f"{where}: the model store {store.root} has no version {spec.version!r} "
                               f"(versions: {', '.join(store.versions(spec.name)) or 'none'})")
        if spec.item_data is not None and not spec.item_data.is_file():
            raise RecseekError(f"{where}: item_data file {spec.item_data} does not exist")
    return FeedbackStore(cfg.feedback_url)


def store_config(cfg: Any, root: Path) -> Any:
    """``cfg`` serving the newest version of every model folder in ``root`` (besides its own entries)."""
    from dataclasses import replace

    from .config import ServableSpec
    from .registry import ModelStore

    store = ModelStore(root)
    if not store.root.is_dir():
        raise RecseekError(f"--store {root}: no such folder")
    names = [n for n in store.names() if store.versions(n)]
    if not names:
        raise RecseekError(f"--store {root} holds no model folders (expected {root}/<name>/<version>/)")
    same_store = store.root == Path(cfg.model_store).expanduser().resolve()
    specs = list(cfg.servables) if same_store else []
    configured = {s.name for s in specs}
    specs += [ServableSpec(n, "model", batching=cfg.batching) for n in names if n not in configured]
    return replace(cfg, model_store=store.root, servables=tuple(specs), source=f"--store {root}")


def demo_config(cfg: Any, folder: Path | None) -> Any:
    """``cfg`` serving EASE trained on ML-100K as ``movies`` (trained once, kept in ``folder``)."""
    from dataclasses import replace

    from ..datasets import default_cache_dir
    from .config import ServableSpec

    root = (folder or default_cache_dir() / "serve-demo").expanduser().resolve()
    model_dir = root / "store" / "movies" / "1"
    if not (model_dir / "manifest.json").is_file():
        _train_demo(model_dir)
    spec = ServableSpec("movies", "model", "1", batching=cfg.batching)
    return replace(cfg, model_store=root / "store", servables=(spec,),
                   feedback_url=f"sqlite:///{root / 'feedback.db'}", source="--demo")


def _train_demo(model_dir: Path) -> None:
    """Fit EASE on ML-100K and save it with the movies' titles and genres."""
    from ..datasets import load
    from ..models import registry

    logging.getLogger("recseek.serving").info("--demo: training EASE on ML-100K (once; kept in %s)",
                                              model_dir.parent.parent)
    data = load("ml-100k")
    model = registry.create("EASE").fit(data)
    items = None
    if data.item_data is not None:
        cols = [c for c in ("title", "genres", "class") if c in data.item_data.columns]
        items = data.item_data[cols].copy()
        items.index = data.items.ids
    model.save(model_dir, item_data=items)


@click.command("retrain")
@click.option("--config", "config", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The server's serve.toml.")
@click.option("--model", "model", required=True, help="Name of the [[models]] entry to retrain.")
@click.option("--notify", is_flag=True,
              help="Also register the new version as default on the running server (its host and port).")
def retrain_cmd(config: Path, model: str, notify: bool) -> None:
    """Refit MODEL from its base data plus the stored feedback and save a new version in the store."""
    from .config import load_config
    from .registry import retrain
    from .store import FeedbackStore

    cfg = load_config(config)
    store = FeedbackStore(cfg.feedback_url)
    try:
        version, path, n = retrain(cfg, model, store)
    finally:
        store.close()
    click.echo(f"{model} version {version} trained from {n} feedback events, saved to {path}")
    if notify:
        import httpx

        host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
        headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
        url = f"http://{host}:{cfg.port}/models"
        try:
            r = httpx.post(url, params={"url": f"{model}/{version}", "model_name": model,
                                           "model_version": str(version), "default": "true"}, headers=headers,
                           timeout=60)
        except httpx.HTTPError as e:
            raise RecseekError(f"could not reach the server at {url}: {e}") from None
        if r.status_code != 200:
            raise RecseekError(f"the server refused the new version ({r.status_code}): {r.text[:200]}")
        click.echo(f"the server at {host}:{cfg.port} now serves {model} version {version} by default")


class BackgroundServer:
    """Run an app on uvicorn in a background thread (tests, notebooks, benchmarks).

    ``port=0`` picks a free port; :attr:`url` is the base URL once started. Use as a
    context manager or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, app: object, host: str = "127.0.0.1", port: int = 0, *, fast: bool = False) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.fast = fast
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        import importlib.util
        import socket
        import threading
        import time

        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        kw = {}
        if self.fast:
            kw["loop"] = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
            kw["http"] = "httptools" if importlib.util.find_spec("httptools") else "h11"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", **kw)
        self._server = server = uvicorn.Server(config)
        def run() -> None:
            try:
                server.run(sockets=[sock])
            except SystemExit:  # uvicorn exits when the application fails to start
                pass
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RecseekError("the server stopped during start-up (see the log above)")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RecseekError(f"the server did not start within {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
