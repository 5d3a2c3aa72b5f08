"""pipeline/progress.py: the runner's component records and a stage's own progress records, as lines."""

import io
import logging

from formats import progress as stage_progress
from pipeline import progress


def test_a_stage_progress_shows_under_its_running_component():
  stream = io.StringIO()
  with progress.watch(stream) as watcher:
    log = logging.getLogger("test")
    stage_progress.report("not inside a component: not shown")
    log.info("Component SpanExampleGen is running.")
    stage_progress.report("1,000,000 lines of ratings.csv read")
    log.info("Component SpanExampleGen is finished.")
  lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
  assert lines == ["> SpanExampleGen running", "    SpanExampleGen: 1,000,000 lines of ratings.csv read",
                   "  SpanExampleGen done in 0.0s"]
  assert watcher.finished == {"SpanExampleGen": {"seconds": 0.0, "cached": False}}
