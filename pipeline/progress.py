"""Progress of a LocalDagRunner run on the terminal, from the runner's own log records."""

import contextlib
import logging
import re
import sys
import time
from typing import Dict, Iterator, Optional, TextIO

from absl import logging as absl_logging

from formats import progress

_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_CACHED = re.compile(r"A cached execution \d+ is used\.")


class ComponentProgress(logging.Handler):
  """Prints '[elapsed] > Component' when one starts, '[elapsed]     Component: text' for its progress
  records (formats/progress.py) and '[elapsed] done Component (took, cached)'."""

  def __init__(self, stream: TextIO = sys.stdout):
    super().__init__(level=logging.INFO)
    self._stream = stream
    self._start = time.monotonic()
    self._started: Dict[str, float] = {}
    self._current: Optional[str] = None
    self._cached = False
    self.finished: Dict[str, Dict[str, object]] = {}

  def _print(self, text: str) -> None:
    self._stream.write(f"[{time.monotonic() - self._start:7.1f}s] {text}\n")
    self._stream.flush()

  def emit(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    if match := _RUNNING.search(message):
      self._current, self._cached = match.group(1), False
      self._started[self._current] = time.monotonic()
      self._print(f"> {self._current} running")
    elif _CACHED.search(message):
      self._cached = True
    elif message.startswith(progress.PREFIX) and self._current:
      self._print(f"    {self._current}: {message[len(progress.PREFIX):]}")
    elif match := _FINISHED.search(message):
      name, self._current = match.group(1), None
      took = time.monotonic() - self._started.get(name, self._start)
      self.finished[name] = {"seconds": round(took, 1), "cached": self._cached}
      self._print(f"  {name} done in {took:.1f}s{' (cached)' if self._cached else ''}")

  def elapsed(self) -> float:
    return time.monotonic() - self._start


@contextlib.contextmanager
def watch(stream: TextIO = sys.stdout, quiet_other_handlers: bool = False) -> Iterator[ComponentProgress]:
  """Shows component progress while the block runs a pipeline."""
  watcher = ComponentProgress(stream)
  root = logging.getLogger()
  # TensorFlow and TFX lower absl's verbosity on import; the runner's INFO records are what we read.
  absl_logging.set_verbosity(absl_logging.INFO)
  root.setLevel(logging.INFO)
  if quiet_other_handlers:
    for handler in root.handlers:
      handler.setLevel(logging.WARNING)
  root.addHandler(watcher)
  try:
    yield watcher
  finally:
    root.removeHandler(watcher)
