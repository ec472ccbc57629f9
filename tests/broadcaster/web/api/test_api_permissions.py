"""Every API operation declares the CLI's action for it, refuses the roles that action excludes (403, nothing
changed), and answers 404 to a key bound to another campaign."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from broadcaster.context import AppContext
from broadcaster.users import PERMISSIONS
from broadcaster.vocabulary import Role
from broadcaster.web.api import API_MODULES
from tests.broadcaster.conftest import database_dump
from tests.broadcaster.web.api.conftest import CAMPAIGN, MakeKey, bearer, campaign_text

# (method, path) → the action of the CLI command that does the same thing.
ACTIONS = {
    ("GET", "/campaigns"): "read",
    ("GET", "/campaigns/{campaign_id}"): "read",
    ("GET", "/campaigns/{campaign_id}/status"): "read",
    ("POST", "/campaigns/validate"): "read",
    ("POST", "/campaigns/load"): "campaigns.load",
    ("POST", "/campaigns/{campaign_id}/submit"): "campaigns.submit",
    ("POST", "/campaigns/{campaign_id}/approve"): "campaigns.approve",
    ("POST", "/campaigns/{campaign_id}/reject"): "campaigns.approve",
    ("POST", "/campaigns/{campaign_id}/pause"): "campaigns.pause",
    ("POST", "/campaigns/{campaign_id}/resume"): "campaigns.resume",
    ("POST", "/campaigns/{campaign_id}/cancel"): "campaigns.cancel",
    ("POST", "/campaigns/{campaign_id}/send"): "campaigns.send",
    ("GET", "/messages"): "read",
    ("GET", "/messages/export"): "read",
    ("POST", "/contacts/import"): "contacts.import",
    ("POST", "/contacts/upsert"): "contacts.import",
    ("POST", "/consent/withdraw"): "consent.manage",
    ("POST", "/reports"): "reports.read",
}
# A body each operation accepts, so that only the role decides.
BODIES: dict[str, dict[str, Any]] = {
    "/campaigns/{campaign_id}/approve": {"json": {"content_hash": "0123456789ab"}},
    "/campaigns/{campaign_id}/reject": {"json": {"content_hash": "0123456789ab", "reason": "x"}},
    "/campaigns/validate": {"json": {"campaign": "id: x"}},
    "/campaigns/load": {"json": {"campaign": "id: x"}},
    "/contacts/import": {"files": {"file": ("a.csv", b"full_name\nAn\n", "text/csv")}},
    "/contacts/upsert": {"json": [{"full_name": "An"}]},
    "/consent/withdraw": {"json": {"address": "0905123456", "purpose": "public_information", "reason": "x"}},
    "/reports": {"json": {"period": "2025-H1"}},
}


def _action_of(route: APIRoute) -> str | None:
    for dependency in route.dependant.dependencies:
        action = getattr(dependency.call, "broadcaster_action", None)
        if action is not None:
            return str(action)
    return None


def test_every_operation_declares_the_clis_action() -> None:
    # The routers themselves: the app holds them wrapped (FastAPI includes routers lazily).
    declared = {
        (method, route.path): _action_of(route)
        for module in API_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    ours = {key: value for key, value in declared.items() if not key[1].startswith("/notifications")}
    assert ours == ACTIONS
    assert all(action is not None for action in declared.values())


def _call(api: TestClient, method: str, path: str, key: str) -> int:
    url = "/api/v1" + path.replace("{campaign_id}", CAMPAIGN)
    if method == "GET":
        response = api.get(url, headers=bearer(key))
    else:
        response = api.post(url, headers=bearer(key), **BODIES.get(path, {"json": {}}))
    code: int = response.status_code
    return code


def test_roles_outside_the_action_are_refused_and_change_nothing(
    api: TestClient, make_key: MakeKey, context: AppContext
) -> None:
    keys = {role: make_key(role) for role in Role}
    before = _dump(context)
    for method, path in sorted(ACTIONS):
        refused = [role for role in Role if role not in PERMISSIONS[ACTIONS[(method, path)]]]
        codes = [_call(api, method, path, keys[role]) for role in refused]
        assert codes == [403] * len(refused), (method, path)
    assert _dump(context) == before


def test_a_key_bound_to_another_campaign_gets_404(api: TestClient, make_key: MakeKey, workdir: Path) -> None:
    editor = make_key(Role.EDITOR)
    loaded = api.post("/api/v1/campaigns/load", json=campaign_text(workdir), headers=bearer(editor))
    assert loaded.status_code == 201  # the campaign exists: only the binding answers 404
    assert _call(api, "GET", "/campaigns/{campaign_id}/status", editor) == 200
    keys = {role: make_key(role, campaigns=["chien-dich-khac"]) for role in Role}
    for method, path in sorted(key for key in ACTIONS if "{campaign_id}" in key[1]):
        allowed = sorted(PERMISSIONS[ACTIONS[(method, path)]], key=lambda role: role.value)[0]
        assert _call(api, method, path, keys[allowed]) == 404, (method, path)


def _dump(context: AppContext) -> dict[str, Any]:
    dump = database_dump(context.engine)
    dump.pop("api_keys")  # last_used_at is the key's own bookkeeping
    return dump
