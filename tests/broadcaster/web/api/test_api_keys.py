"""API keys end to end: ``apikeys create|list|revoke`` and what the API does with a key (role, revocation,
rate limit), and problem bodies in the caller's language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from broadcaster.context import AppContext
from broadcaster.vocabulary import Role
from broadcaster.web.api.auth import KEY_CACHE_SECONDS, KeyCache
from broadcaster.web.app import create_app
from tests.broadcaster.test_cli import Cli, cli, team
from tests.broadcaster.web.api.conftest import MakeKey, bearer

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli


def test_a_key_made_by_the_cli_works_until_it_is_revoked(cli: Cli, context: AppContext, team: None) -> None:
    made = cli("apikeys", "create", "cong-thong-tin", "--role", "auditor", "--rate", "30", "--json")
    created = __import__("json").loads(made.stdout)
    assert created["key"].startswith(f"bk_{created['prefix']}_")
    assert "sẽ không được hiển thị lại" in " ".join(made.stderr.split())
    listed = cli.json("apikeys", "list")
    assert [(k["prefix"], k["role"], k["rate_per_minute"]) for k in listed] == [
        (created["prefix"], "auditor", 30)
    ]
    assert created["key"] not in cli("apikeys", "list").stdout
    cli("apikeys", "create", "x", "--role", "admin", user="kiem_toan", expect=1)

    app = create_app(context)
    api_app = next(route.app for route in app.routes if getattr(route, "path", "") == "/api/v1")  # type: ignore[attr-defined]
    moment = [0.0]
    api_app.state.key_cache = KeyCache(monotonic=lambda: moment[0])
    with TestClient(app) as api:
        assert api.get("/api/v1/campaigns", headers=bearer(created["key"])).status_code == 200
        cli("apikeys", "revoke", created["prefix"], "--reason", "lộ khoá")
        moment[0] += KEY_CACHE_SECONDS - 0.1  # verified a moment ago: this worker still takes it
        assert api.get("/api/v1/campaigns", headers=bearer(created["key"])).status_code == 200
        moment[0] += 0.1  # the cache's few seconds are over: the revocation holds
        refused = api.get("/api/v1/campaigns", headers=bearer(created["key"]))
    assert refused.status_code == 401
    assert refused.json()["field"] == "Authorization"
    assert cli.json("apikeys", "list")[0]["revoked_at"] is not None
    cli("apikeys", "revoke", created["prefix"], "--reason", "lần nữa", expect=1)


def test_the_rate_limit_answers_429_with_retry_after(api: TestClient, make_key: MakeKey) -> None:
    key = make_key(Role.AUDITOR, rate=2)
    codes = [api.get("/api/v1/campaigns", headers=bearer(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = api.get("/api/v1/campaigns", headers=bearer(key))
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    other = make_key(Role.AUDITOR, rate=2)
    assert api.get("/api/v1/campaigns", headers=bearer(other)).status_code == 200


def test_problems_are_in_the_callers_language(api: TestClient, make_key: MakeKey) -> None:
    english = api.get("/api/v1/campaigns", headers={"Accept-Language": "en-GB,en;q=0.8"})
    vietnamese = api.get("/api/v1/campaigns", headers={"Accept-Language": "vi"})
    assert english.status_code == vietnamese.status_code == 401
    assert english.json()["title"] == "Unauthorised"
    assert vietnamese.json()["title"] == "Chưa xác thực"
    key = make_key(Role.AUDITOR)
    en = api.post("/api/v1/campaigns/x/submit", json={}, headers=bearer(key, **{"Accept-Language": "en"}))
    vi = api.post("/api/v1/campaigns/x/submit", json={}, headers=bearer(key, **{"Accept-Language": "vi"}))
    assert en.status_code == vi.status_code == 403
    assert en.json()["detail"] == "This API key's role (auditor) may not do this."
    assert "auditor" in vi.json()["detail"]
    assert vi.json()["detail"] != en.json()["detail"]
    bad = api.post(
        "/api/v1/campaigns/validate", json={"campaign": ""}, headers=bearer(key, **{"Accept-Language": "en"})
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "campaign"
    assert bad.json()["detail"].startswith("The field campaign is not valid")


def test_a_malformed_key_is_401_not_500(api: TestClient) -> None:
    for header in ("Bearer ", "Bearer bk_", "Basic abc", "Bearer bk_x_y_z"):
        response = api.get("/api/v1/campaigns", headers={"Authorization": header})
        assert response.status_code == 401, header
