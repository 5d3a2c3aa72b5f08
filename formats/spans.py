"""Calendar spans: the period an interaction falls in, numbered so that adding data never renumbers.

Span numbers count periods since the Unix epoch (UTC): days since 1970-01-01, weeks since Monday
1970-01-05 (ISO weeks), months since January 1970. A split holding span N is named `span_N`.
"""

import datetime
from typing import Any, Dict, Iterable, List, Optional

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


SPAN_PROPERTY = "span"
# int 1 on a backfill's examples and on the models trained on them (a SID refresh's warm-ups).
BACKFILL_PROPERTY = "backfill"


def latest_span(artifacts: Iterable[Any]) -> Optional[int]:
  """The largest `span` of artifacts (TFX artifacts: property or custom property), None if none has one."""
  found = []
  for artifact in artifacts:
    if artifact.has_custom_property(SPAN_PROPERTY):
      found.append(artifact.get_int_custom_property(SPAN_PROPERTY))
    elif SPAN_PROPERTY in (artifact.PROPERTIES or {}) and artifact.has_property(SPAN_PROPERTY):
      found.append(artifact.span)
  return max(found, default=None)


def inherit_span(input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]]) -> None:
  """Marks every output with the latest span of the inputs: what data it knows about, so that the daily
  runs' resolvers (components/resolvers.py) pick only artifacts from before their span."""
  span = latest_span(a for artifacts in input_dict.values() for a in artifacts or [])
  if span is None:
    return
  for artifacts in output_dict.values():
    for artifact in artifacts:
      artifact.set_int_custom_property(SPAN_PROPERTY, span)
