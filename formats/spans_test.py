import datetime

import pytest

from formats import spans


def _ts(date: str) -> int:
  return int(datetime.datetime.fromisoformat(date).replace(tzinfo=datetime.timezone.utc).timestamp())


@pytest.mark.parametrize("period", spans.PERIODS)
def test_span_start_is_inverse_of_span_of(period):
  for date in ("1996-03-29", "2000-02-29", "2018-09-24", "2018-12-31"):
    span = spans.span_of(_ts(date + "T23:59:59"), period)
    start = spans.span_start(span, period)
    assert start <= datetime.date.fromisoformat(date)
    assert spans.span_of(_ts(start.isoformat()), period) == span
    assert spans.span_of(_ts(start.isoformat()) - 1, period) == span - 1


def test_weeks_start_on_monday_and_months_on_the_first():
  assert spans.span_start(spans.span_of(_ts("2018-09-26"), "week"), "week").isoformat() == "2018-09-24"
  assert spans.span_start(spans.span_of(_ts("2018-09-26"), "month"), "month").isoformat() == "2018-09-01"
  assert spans.span_of(_ts("1970-01-01"), "day") == 0


def test_split_names_round_trip_and_bad_input():
  assert spans.span_of_split(spans.split_name(17531)) == 17531
  with pytest.raises(ValueError, match="span_period must be one of"):
    spans.check_period("hour")
  with pytest.raises(ValueError, match="not an ISO date"):
    spans.span_of_date("24/09/2018", "day")


def test_inherit_span_marks_outputs_with_the_latest_input_span():
  from tfx.types import standard_artifacts
  from formats import artifacts
  examples, state, sids, out = (standard_artifacts.Examples(), artifacts.FeatureState(), artifacts.SemanticIds(),
                                standard_artifacts.Model())
  examples.span = 7
  state.set_int_custom_property("span", 9)
  spans.inherit_span({"examples": [examples], "state": [state], "sids": [sids]}, {"model": [out]})
  assert out.get_int_custom_property("span") == 9
  unmarked = standard_artifacts.Model()
  spans.inherit_span({"sids": [sids]}, {"model": [unmarked]})  # no span among the inputs: none set
  assert not unmarked.has_custom_property("span")
