"""PeakSampler: the largest resident size of this process or a descendant, and of all of them together, for
benchmarks that run a stage in-process (its engine's workers included)."""

import threading
import time

import psutil


class PeakSampler(threading.Thread):
  """Samples every `interval` seconds from start() until the process ends: `largest` and `total`, in MB."""

  def __init__(self, interval: float):
    super().__init__(daemon=True)
    self.interval = interval
    self.largest = self.total = 0.0

  def run(self) -> None:
    me = psutil.Process()
    while True:
      sizes = []
      for process in [me] + me.children(recursive=True):
        try:
          sizes.append(process.memory_info().rss / 2 ** 20)
        except psutil.Error:
          continue
      self.largest, self.total = max(self.largest, max(sizes)), max(self.total, sum(sizes))
      time.sleep(self.interval)
