"""Serving text models: add an item by text at run time and recommend it at once through
TextToCF; recommend for a user described only by text; refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from recseek.models import registry  # noqa: E402
from recseek.serving.app import create_app  # noqa: E402
from recseek.serving.cli import BackgroundServer  # noqa: E402
from recseek.serving.config import parse_config  # noqa: E402
from recseek.testing.fixtures import planted_blocks  # noqa: E402

TOKEN = "text-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def blocks():
    return planted_blocks(side=True)


@pytest.fixture(scope="module")
def live(blocks, tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    train, _ = blocks.for_task("ranking")
    registry.create("TextToCF", encoder="hashing", base_params={"factors": 8, "epochs": 5}).fit(train).save(
        root / "t2cf" / "1")
    registry.create("WRMF", factors=8, epochs=5).fit(train).save(root / "wrmf" / "1")
    raw = {"server": {"token": TOKEN}, "store": {"models": str(root), "feedback": f"sqlite:///{root / 'fb.db'}"},
           "models": [{"name": "t2cf"}, {"name": "wrmf"}]}
    config = parse_config(raw, Path(root), "test.toml")
    with BackgroundServer(create_app(config)) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        yield client


def _ids(response: dict) -> list:
    return [row["item"] for row in response["items"]]


def _users_of(blocks, b: int) -> np.ndarray:
    return np.flatnonzero(blocks.user_block == b)


def test_add_item_by_text_and_recommend_it_at_once(live, blocks) -> None:
    c = live
    block_words = blocks.train.item_data["text"][np.flatnonzero(blocks.item_block == 1)[0]]
    r = c.post("/models/t2cf/items", headers=AUTH,
               json={"items": [{"id": 1001, "text": f"genre1 {block_words}", "title": "A new one"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["added"] == [1001] and body["items"] == blocks.train.n_items + 1
    # the block-1 users get it in their top 3 at once (no refit); a block-3 user does not
    hits = 0
    users = _users_of(blocks, 1)[:8]
    for u in users:
        hits += 1001 in _ids(c.get("/recommend/t2cf", params={"user": int(u), "k": 3}).json())
    assert hits >= 6, hits
    far = [_ids(c.get("/recommend/t2cf", params={"user": int(u), "k": 3}).json()) for u in _users_of(blocks, 3)[:8]]
    assert sum(1001 in f for f in far) <= 1
    # a second addition of the same id is refused
    again = c.post("/models/t2cf/items", headers=AUTH, json={"items": [{"id": 1001, "text": "genre2"}]})
    assert again.status_code == 422 and "already known" in again.json()["message"]


def test_text_only_user(live, blocks) -> None:
    r = live.post("/recommend-text/t2cf", json={"text": "genre2", "k": 5})
    assert r.status_code == 200, r.text
    items = _ids(r.json())
    assert len(items) == 5 and r.json()["text"] == "genre2"
    assert (blocks.item_block[[i for i in items if i < blocks.train.n_items]] == 2).mean() >= 0.8


def test_refusals(live) -> None:
    c = live
    assert c.post("/models/t2cf/items", json={"items": [{"id": 5, "text": "x"}]}).status_code == 401
    r = c.post("/models/wrmf/items", headers=AUTH, json={"items": [{"id": 2002, "text": "genre1"}]})
    assert r.status_code == 400 and "cannot add items by text" in r.json()["message"]
    r = c.post("/recommend-text/wrmf", json={"text": "genre1"})
    assert r.status_code == 400 and "cannot recommend from text" in r.json()["message"]
    assert c.post("/recommend-text/t2cf", json={"text": "x", "k": 0}).status_code in (400, 422)
    assert c.post("/recommend-text/nothere", json={"text": "x"}).status_code == 404
    assert c.post("/models/t2cf/items", headers=AUTH, json={"items": []}).status_code in (400, 422)
    r = c.post("/models/t2cf/items", headers=AUTH, json={"items": [{"id": "abc", "text": "genre1"}]})
    assert r.status_code == 422 and "integer item ids" in r.json()["message"]
