"""Calendar spans: the period an interaction falls in, numbered so that adding data never renumbers.

Span numbers count periods since the Unix epoch (UTC): days since 1970-01-01, weeks since Monday
1970-01-05 (ISO weeks), months since January 1970. A split holding span N is named `span_N`.
"""

import datetime
from typing import Dict

PERIODS = ("day", "week", "month")
_SECONDS_PER_DAY = 86400
# 1970-01-01 was a Thursday; ISO weeks start on Monday, 1970-01-05, i.e. day 4.
_FIRST_MONDAY = 4


def check_period(period: str) -> str:
  if period not in PERIODS:
    raise ValueError(f"span_period must be one of {', '.join(PERIODS)}, got {period!r}")
  return period


def span_of(timestamp: int, period: str) -> int:
  """Span number of a Unix timestamp (seconds, UTC)."""
  day = timestamp // _SECONDS_PER_DAY
  if period == "day":
    return day
  if period == "week":
    return (day - _FIRST_MONDAY) // 7
  if period == "month":
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return (date.year - 1970) * 12 + date.month - 1
  raise ValueError(check_period(period))


def span_start(span: int, period: str) -> datetime.date:
  """First day of a span."""
  epoch = datetime.date(1970, 1, 1)
  if period == "day":
    return epoch + datetime.timedelta(days=span)
  if period == "week":
    return epoch + datetime.timedelta(days=_FIRST_MONDAY + 7 * span)
  if period == "month":
    return datetime.date(1970 + span // 12, span % 12 + 1, 1)
  raise ValueError(check_period(period))


def span_of_date(date: str, period: str) -> int:
  """Span number of the period containing an ISO date (YYYY-MM-DD)."""
  try:
    parsed = datetime.date.fromisoformat(date)
  except ValueError as e:
    raise ValueError(f"not an ISO date (YYYY-MM-DD): {date!r}") from e
  seconds = (parsed - datetime.date(1970, 1, 1)).days * _SECONDS_PER_DAY
  return span_of(seconds, period)


def split_name(span: int) -> str:
  return f"span_{span}"


def span_of_split(name: str) -> int:
  if not name.startswith("span_"):
    raise ValueError(f"not a span split: {name!r}")
  return int(name[len("span_"):])


def describe(spans: Dict[int, int], period: str) -> Dict[str, int]:
  """{'span_N (YYYY-MM-DD)': count} in span order, for reports."""
  return {f"{split_name(s)} ({span_start(s, period).isoformat()})": n for s, n in sorted(spans.items())}
