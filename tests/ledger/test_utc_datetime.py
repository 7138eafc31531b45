"""A UTC time is stored on SQLite as the same text SQLAlchemy's own two steps write
(`UTCDateTime.process_bind_param`, then SQLite's DATETIME format), from any zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.dialects import sqlite

from ledger.models.base import UTCDateTime

zones = st.sampled_from(
    [UTC, ZoneInfo("Europe/Madrid"), ZoneInfo("Asia/Kathmandu"), timezone(timedelta(hours=-3))]
)


def two_steps(value: datetime | None) -> str | None:
    dialect = sqlite.dialect()
    stored = UTCDateTime().process_bind_param(value, dialect)
    return DateTime().dialect_impl(dialect).bind_processor(dialect)(stored)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones))
def test_sqlite_text_is_what_the_two_steps_write(value):
    dialect = sqlite.dialect()
    one_step = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert one_step(value) == two_steps(value)
    # the generic TypeDecorator composition agrees too
    composed = TypeDecorator.bind_processor(UTCDateTime().dialect_impl(dialect), dialect)
    assert composed(value) == two_steps(value)


def test_none_and_naive_times():
    dialect = sqlite.dialect()
    one_step = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert one_step(None) is None
    with pytest.raises(ValueError, match="naive"):
        one_step(datetime(2026, 11, 30, 12))
