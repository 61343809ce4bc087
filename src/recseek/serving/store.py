"""The feedback event store: (user, item, value, timestamp) rows in SQLite or PostgreSQL.

SQLite is the default (embedded, WAL journal so readers never block the writer); a
``postgresql+psycopg://`` URL uses PostgreSQL. Both go through SQLAlchemy Core with one
table::

    feedback_events(id      integer primary key (autoincrement),
                    user_id text, item_id text, value float, ts float, received float)
    index on (user_id, id)

Raw ids are stored as text, so any id type survives; the model's vocabulary maps them
back when recommending or retraining. Every method is blocking: the server calls them
from worker threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError

__all__ = ["FeedbackEvent", "FeedbackStore", "open_store"]


@dataclass(frozen=True)
class FeedbackEvent:
    user: str
    item: str
    value: float = 1.0
    timestamp: float | None = None


class FeedbackStore:
    """Append-only feedback log behind a SQLAlchemy engine.

    Parameters
    ----------
    url : str
        ``sqlite:///path/to/file.db`` (default backend), ``sqlite://`` (in memory) or
        ``postgresql+psycopg://user:password@host:port/database``.
    """

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except Exception:
            raise ParameterError(f"feedback store URL {_safe(url)!r} is not a valid database URL") from None
        self.backend = parsed.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise ParameterError(
                f"feedback store URL {_safe(url)!r}: backend {self.backend!r} is not supported (sqlite or postgresql)"
            )
        kwargs: dict[str, Any] = {}
        if self.backend == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if parsed.database:
                from pathlib import Path

                folder = Path(parsed.database).expanduser().resolve().parent
                if not folder.is_dir():
                    raise ParameterError(f"feedback store {parsed.database}: directory {folder} does not exist")
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = sa.create_engine(url, **kwargs)
        if self.backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        meta = sa.MetaData()
        self.table = sa.Table(
            "feedback_events", meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("user_id", sa.String(256), nullable=False),
            sa.Column("item_id", sa.String(256), nullable=False),
            sa.Column("value", sa.Float, nullable=False),
            sa.Column("ts", sa.Float, nullable=False),
            sa.Column("received", sa.Float, nullable=False),
            sa.Index("ix_feedback_events_user", "user_id", "id"),
        )
        try:
            meta.create_all(self.engine)
        except Exception as e:
            self.engine.dispose()
            raise DataError(f"cannot open the feedback store {_safe(url)}: {_first_line(e)}") from None

    # ------------------------------------------------------------ writing
    def add(self, events: Sequence[FeedbackEvent]) -> int:
        """Append ``events`` in one transaction; returns the number written."""
        if not events:
            return 0
        now = time.time()
        rows = []
        for n, e in enumerate(events):
            user, item = str(e.user), str(e.item)
            if not user or not item:
                raise DataError(f"feedback event {n}: user and item must be non-empty")
            if len(user) > 256 or len(item) > 256:
                raise DataError(f"feedback event {n}: user and item ids are limited to 256 characters")
            value = float(e.value)
            if not np.isfinite(value):
                raise DataError(f"feedback event {n}: value must be a finite number")
            ts = now if e.timestamp is None else float(e.timestamp)
            rows.append({"user_id": user, "item_id": item, "value": value, "ts": ts, "received": now})
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), rows)
        return len(rows)

    # ------------------------------------------------------------ reading
    def events_for_user(self, user: str) -> list[FeedbackEvent]:
        """The events of one user, oldest first."""
        import sqlalchemy as sa

        t = self.table
        q = sa.select(t.c.user_id, t.c.item_id, t.c.value, t.c.ts).where(t.c.user_id == str(user)).order_by(t.c.id)
        with self.engine.connect() as conn:
            return [FeedbackEvent(*row) for row in conn.execute(q)]

    def count(self) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one())

    def arrays(self) -> dict[str, np.ndarray]:
        """Every event as columns ``user``, ``item`` (str), ``value``, ``timestamp`` (float64)."""
        import sqlalchemy as sa

        t = self.table
        q = sa.select(t.c.user_id, t.c.item_id, t.c.value, t.c.ts).order_by(t.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return {"user": np.zeros(0, dtype=str), "item": np.zeros(0, dtype=str),
                    "value": np.zeros(0), "timestamp": np.zeros(0)}
        users, items, values, ts = zip(*rows, strict=True)
        return {"user": np.asarray(users, dtype=str), "item": np.asarray(items, dtype=str),
                "value": np.asarray(values, dtype=np.float64), "timestamp": np.asarray(ts, dtype=np.float64)}

    def list_events(self, user: str | None = None, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Stored events with id above ``after`` (of one user when given), oldest first, at most ``limit``."""
        import sqlalchemy as sa

        t = self.table
        q = sa.select(t.c.id, t.c.user_id, t.c.item_id, t.c.value, t.c.ts).where(t.c.id > int(after))
        if user is not None:
            q = q.where(t.c.user_id == str(user))
        q = q.order_by(t.c.id).limit(int(limit))
        with self.engine.connect() as conn:
            return [{"id": int(i), "user": u, "item": it, "value": float(v), "timestamp": float(ts)}
                    for i, u, it, v, ts in conn.execute(q)]

    def delete(self, ids: Sequence[int] | None = None, user: str | None = None) -> int:
        """Delete the events with the given ids, or every event of ``user``; returns how many went."""
        import sqlalchemy as sa

        if (ids is None) == (user is None):
            raise ParameterError("delete events by ids or by user, not both or neither")
        t = self.table
        cond = t.c.id.in_([int(i) for i in ids]) if ids is not None else t.c.user_id == str(user)
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(t).where(cond)).rowcount or 0)

    def ping(self) -> bool:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return True
        except Exception:
            return False

    def clear(self) -> None:
        """Delete every event (tests and tools)."""
        with self.engine.begin() as conn:
            conn.execute(self.table.delete())

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"FeedbackStore({self.backend}: {_safe(self.url)})"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _safe(url: str) -> str:
    """The URL with its password hidden."""
    try:
        import sqlalchemy as sa

        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<url>"


def _first_line(e: BaseException) -> str:
    s = str(getattr(e, "orig", None) or e).strip().splitlines()
    return s[0] if s else type(e).__name__


def open_store(url: str) -> FeedbackStore:
    return FeedbackStore(url)


def events_from_json(items: Iterable[Mapping[str, Any]]) -> list[FeedbackEvent]:
    return [FeedbackEvent(str(e["user"]), str(e["item"]), float(e.get("value", 1.0)), e.get("timestamp"))
            for e in items]
