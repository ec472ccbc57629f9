"""A row that must exist and does not is an explicit error naming it, not an ``assert`` (gone under -O)."""

from __future__ import annotations

import pytest

from broadcaster.context import AppContext
from broadcaster.db.models import CampaignVersion, User
from broadcaster.db.rows import required
from broadcaster.errors import MissingRow, NotFound
from broadcaster.progress import run_progress


def test_the_progress_of_a_missing_run_says_the_run_does_not_exist(context: AppContext) -> None:
    with pytest.raises(NotFound, match="campaign run 4242 does not exist"):
        run_progress(context, 4242)


def test_a_required_row_that_is_missing_names_its_table_key_and_referrer(context: AppContext) -> None:
    with (
        context.readers() as session,
        pytest.raises(MissingRow, match=r"campaign_versions row 7 is missing \(referenced by run 3\)"),
    ):
        required(session, CampaignVersion, 7, referenced_by="run 3")


def test_a_required_row_that_exists_is_returned(context: AppContext, admin: User) -> None:
    with context.readers() as session:
        assert required(session, User, admin.id, referenced_by="a test").login == admin.login
