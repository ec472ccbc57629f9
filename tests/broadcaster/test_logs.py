"""Log lines: the fields of the work at hand, and the JSON format (``broadcaster.logs``)."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from broadcaster.logs import (
    FieldsFilter,
    JsonFormatter,
    configure_logging,
    current_fields,
    log_fields,
    write_json,
)


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose lines go, as JSON, to a buffer."""
    buffer = io.StringIO()
    handler = write_json(logging.StreamHandler(buffer))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)
    logger.propagate = True


def parsed(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_json_line_has_time_level_logger_message_and_the_fields(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = lines
    with log_fields(campaign_id="thong-bao", run_id=7, provider="sms_main"):
        logger.info("chunk %s: %d sent", 3, 500, extra={"message_id": 42})
    (line,) = parsed(buffer)
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.logs"
    assert line["message"] == "chunk 3: 500 sent"
    assert datetime.fromisoformat(str(line["time"])).utcoffset() is not None  # ISO 8601 with its UTC offset
    assert str(line["time"]).endswith("+00:00")
    assert {k: line[k] for k in ("campaign_id", "run_id", "provider", "message_id")} == {
        "campaign_id": "thong-bao",
        "run_id": 7,
        "provider": "sms_main",
        "message_id": 42,
    }


def test_fields_nest_and_end_with_their_block(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = lines
    with log_fields(run_id=7, campaign_id=None):  # None: not known, left out
        with log_fields(provider="mail"):
            assert current_fields() == {"run_id": 7, "provider": "mail"}
            logger.warning("inner")
        logger.warning("outer")
    logger.warning("none")
    inner, outer, none = parsed(buffer)
    assert inner["run_id"] == 7
    assert inner["provider"] == "mail"
    assert "campaign_id" not in inner
    assert outer["run_id"] == 7
    assert "provider" not in outer
    assert "run_id" not in none


def test_a_field_passed_with_the_line_wins_over_the_context() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    record.provider = "own"
    with log_fields(provider="context", run_id=1):
        FieldsFilter().filter(record)
    assert vars(record)["provider"] == "own"  # fields are set on the record by name
    assert vars(record)["run_id"] == 1


def test_an_exception_is_kept_in_its_line() -> None:
    try:
        raise ValueError("hỏng")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed"
    assert "ValueError: hỏng" in line["exception"]
    assert "hỏng" in JsonFormatter().format(record)  # not escaped: Vietnamese stays readable


def test_the_cli_handler_is_installed_once_and_removed_in_text_format() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        configure_logging("json")
        configure_logging("json")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        assert isinstance(added[0].formatter, JsonFormatter)
    finally:
        configure_logging("text")
    assert root.handlers == before
