"""memory.peak_rss_mb: a child's own peak, not the resident size it inherited from a large parent."""

import os
import subprocess
import sys

from pipeline import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_child_started_by_a_large_process_reports_its_own_peak():
  held = bytearray(400 * 1024 * 1024)
  held[::4096] = b"\1" * len(held[::4096])  # resident, not only reserved
  child = subprocess.Popen([sys.executable, "-c", "from pipeline import memory; print(memory.peak_rss_mb())"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
  _, _, usage = os.wait4(child.pid, 0)
  reported = float(child.stdout.read())
  assert usage.ru_maxrss / 1024 > 400  # what the parent's figure says: the inherited size
  assert reported < 100, f"the child reported {reported} MB, the parent's size at fork"
  assert memory.peak_rss_mb() > 400
  del held
