"""Every operation of the OpenAPI document, called with generated input through the ASGI app by an admin's
key: no answer is a 5xx, and every answer conforms to the document (status code, content type, schema).

Deterministic (``derandomize``) and small (a few examples per operation) so that the whole run stays well
under a minute; the point is that bad input is refused as a problem, never a crash. The operations are walked
by hand rather than with ``schema.parametrize``: the app needs this test's working directory (a fixture), and
the installed schemathesis's lazy fixture schema does not work with the installed pytest."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok
from schemathesis.openapi import from_asgi

from broadcaster.context import AppContext
from broadcaster.vocabulary import Role
from broadcaster.web.app import create_app
from tests.broadcaster.web.api.conftest import MakeKey, bearer

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 6


def test_every_operation_answers_within_its_document(
    context: AppContext, make_key: MakeKey, planned: list[int]
) -> None:
    schema = from_asgi("/api/v1/openapi.json", create_app(context))
    headers = bearer(make_key(Role.ADMIN, rate=1_000_000))
    labels: list[str] = []
    seen: set[int] = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation: Any = result.ok()
        labels.append(operation.full_path)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call_and_validate(
                base_url="http://testserver/api/v1", headers=headers, checks=CHECKS
            )
            seen.add(response.status_code)

        call()
    assert "/api/v1/campaigns/{campaign_id}/approve" in labels
    assert "/api/v1/messages/export" in labels
    assert 200 in seen  # the calls reached the API, not a 404 of the wrong path
