"""formats/progress.py: a report every `every` items and the total once past the first."""

import pytest

from formats import progress


@pytest.mark.parametrize("items, reports", [(1, []), (4, ["2 rows", "4 rows"]), (5, ["2 rows", "4 rows", "5 rows"])])
def test_counted_reports_every_n_and_the_total(monkeypatch, items, reports):
  reported = []
  monkeypatch.setattr(progress, "report", reported.append)
  assert list(progress.counted(range(items), "rows", every=2)) == list(range(items))
  assert reported == reports
