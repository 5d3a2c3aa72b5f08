"""Progress inside a long stage: log records that the main command shows under the running component
(pipeline/progress.py), so that a stage running for minutes at scale says how far it is.

  for line in progress.counted(lines, "lines of ratings.csv read"):  # 'Progress: 1,000,000 lines ...'
"""

from typing import Iterable, Iterator, TypeVar

from absl import logging

PREFIX = "Progress: "
EVERY = 1_000_000

T = TypeVar("T")


def report(text: str) -> None:
  logging.info("%s%s", PREFIX, text)


def counted(items: Iterable[T], what: str, every: int = EVERY) -> Iterator[T]:
  """Yields `items`, reporting 'N what' after every `every` of them and, past the first report, the total."""
  count = 0
  for item in items:
    yield item
    count += 1
    if count % every == 0:
      report(f"{count:,} {what}")
  if count > every and count % every:
    report(f"{count:,} {what}")
