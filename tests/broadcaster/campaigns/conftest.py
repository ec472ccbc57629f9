"""The people of the campaign workflow tests and their campaign file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from broadcaster.db.models import User
from broadcaster.vocabulary import Role
from tests.broadcaster.conftest import write_campaign


@pytest.fixture
def people(create_user: Callable[..., User]) -> dict[str, User]:
    return {
        "editor": create_user(role=Role.EDITOR, login="bien_tap"),
        "approver": create_user(role=Role.APPROVER, login="phe_duyet"),
        "approver2": create_user(role=Role.APPROVER, login="pho_giam_doc"),
        "auditor": create_user(role=Role.AUDITOR, login="kiem_toan"),
    }


@pytest.fixture
def campaign_file(workdir: Path) -> Path:
    return write_campaign(workdir)
