"""The feedback event store on SQLite and (when RECSEEK_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import threading
import uuid

import numpy as np
import pytest

pytest.importorskip("sqlalchemy")

from recseek.errors import DataError, ParameterError  # noqa: E402
from recseek.serving.store import FeedbackEvent, FeedbackStore  # noqa: E402

PG_URL = os.environ.get("RECSEEK_TEST_POSTGRES_URL")


def _sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    if not PG_URL:
        pytest.skip("RECSEEK_TEST_POSTGRES_URL is not set")
    return PG_URL


@pytest.fixture
def store(url):
    s = FeedbackStore(url)
    s.clear()
    yield s
    s.clear()
    s.close()


def test_add_and_read_back(store):
    assert store.count() == 0
    assert store.add([FeedbackEvent("u1", "i1", 4.0, 100.0), FeedbackEvent("u2", "i1"),
                      FeedbackEvent("u1", "i2", 2.5, 50.0)]) == 3
    assert store.count() == 3
    ev = store.events_for_user("u1")
    assert [(e.item, e.value, e.timestamp) for e in ev] == [("i1", 4.0, 100.0), ("i2", 2.5, 50.0)]
    assert store.events_for_user("nobody") == []
    arr = store.arrays()
    assert arr["user"].tolist() == ["u1", "u2", "u1"]
    assert arr["item"].tolist() == ["i1", "i1", "i2"]
    np.testing.assert_allclose(arr["value"], [4.0, 1.0, 2.5])
    assert arr["timestamp"][1] > 1e9  # arrival time when no timestamp is given
    assert store.ping()
    assert store.add([]) == 0


def test_bad_events_are_refused_whole(store):
    with pytest.raises(DataError, match="event 1: value must be a finite number"):
        store.add([FeedbackEvent("u", "i", 1.0), FeedbackEvent("u", "i", float("nan"))])
    with pytest.raises(DataError, match="non-empty"):
        store.add([FeedbackEvent("", "i")])
    with pytest.raises(DataError, match="256"):
        store.add([FeedbackEvent("u" * 300, "i")])
    assert store.count() == 0


def test_persists_across_reopen(url):
    a = FeedbackStore(url)
    a.clear()
    user = f"user-{uuid.uuid4().hex[:8]}"
    a.add([FeedbackEvent(user, "item", 3.0, 1.0)])
    a.close()
    b = FeedbackStore(url)
    try:
        assert [(e.item, e.value) for e in b.events_for_user(user)] == [("item", 3.0)]
    finally:
        b.clear()
        b.close()


def test_concurrent_writers(store):
    def write(n):
        for j in range(20):
            store.add([FeedbackEvent(f"w{n}", f"i{j}", float(j))])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 80
    assert [e.item for e in store.events_for_user("w2")] == [f"i{j}" for j in range(20)]


def test_sqlite_uses_wal(tmp_path):
    s = FeedbackStore(_sqlite(tmp_path))
    try:
        import sqlalchemy as sa

        with s.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        s.close()


def test_bad_urls(tmp_path):
    with pytest.raises(ParameterError, match="not a valid database URL"):
        FeedbackStore("not a url")
    with pytest.raises(ParameterError, match="not supported"):
        FeedbackStore("mysql://u:p@localhost/db")
    with pytest.raises(ParameterError, match="does not exist"):
        FeedbackStore(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


@pytest.mark.postgres
def test_server_feedback_on_postgres_survives_restart(tmp_path):
    """The live server with a PostgreSQL store: fold-in from feedback written before a restart."""
    if not PG_URL:
        pytest.skip("RECSEEK_TEST_POSTGRES_URL is not set")
    httpx = pytest.importorskip("httpx")
    from recseek.models import registry
    from recseek.serving.app import create_app
    from recseek.serving.cli import BackgroundServer
    from recseek.serving.config import parse_config
    from recseek.testing.fixtures import synthetic

    root = tmp_path / "store"
    (root / "mf").mkdir(parents=True)
    registry.create("BiasedMF", factors=4, epochs=5).fit(synthetic(30, 20, seed=1)).save(root / "mf" / "1")
    cfg = parse_config({"store": {"models": str(root), "feedback": PG_URL}, "models": [{"name": "mf"}]}, tmp_path)
    user = f"pg-{uuid.uuid4().hex[:8]}"
    with BackgroundServer(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.post("/feedback", json={"user": user, "item": 3, "value": 5}).status_code == 200
        first = c.get("/recommend/mf", params={"user": user, "k": 4}).json()["items"]
    with BackgroundServer(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        again = c.get("/recommend/mf", params={"user": user, "k": 4}).json()["items"]
    assert again == first and len(first) == 4 and 3 not in [x["item"] for x in first]
    s = FeedbackStore(PG_URL)
    s.clear()
    s.close()
