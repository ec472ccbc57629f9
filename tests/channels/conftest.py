"""Fixtures of the channel tests."""

from __future__ import annotations

import pytest

from tests.channels.smpp_sending import Inbox


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()
