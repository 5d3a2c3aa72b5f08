"""bench/scale.py: each stage's figures beside their ratio to the first factor's; memory per stage."""

import subprocess
import sys

from bench import scale

# A stand-in run: its log names the running component, as the main command's does, while it holds memory.
_STAGES = """
import sys, time
print("[ 0.1s] > Alpha running", flush=True)
held = bytearray(300 * 1024 * 1024); held[::4096] = b"1" * len(held[::4096]); time.sleep(2)
del held
print("[ 2.1s] > Beta running", flush=True); time.sleep(2)
print("Daily loop: 1 runs", flush=True); time.sleep(1)
"""


def _result(factor, refresh_seconds, peak):
  return {"factor": factor, "ratings": 100 * factor, "log": "x.log", "pipeline_seconds": 10.0 * factor,
          "returncode": 0, "stage_peak_mb": {"SpanExampleGen": peak / 2, "daily runs": peak * 1.2},
          "refresh": {"seconds": refresh_seconds, "interactions": 70 * factor, "peak_rss_mb": peak,
                      "components": {"SpanExampleGen": {"seconds": refresh_seconds / 2, "cached": False},
                                     "Pusher": {"seconds": 0.1, "cached": False}}},
          "daily": [{"span": 5, "seconds": 1.0, "process_seconds": 2.0, "interactions": 3 * factor,
                     "peak_rss_mb": 100.0}]}


def test_each_stage_shows_its_ratio_to_the_first_factor():
  lines = scale.table(scale.rows([_result(1, 4.0, 1000.0), _result(10, 20.0, 1500.0),
                                  {"factor": 100, "returncode": 1, "log": "x100.log"}]))
  assert lines[2:] == [
      "| x1 | pipeline part | 100 | 10.0 | 10 | 1,200 |",
      "| x1 | SID refresh | 70 | 4.0 | 18 | 1,000 |",
      "| x1 | refresh SpanExampleGen | 70 | 2.0 | 35 | 500 |",
      "| x1 | daily span 5 | 3 | 2.0 | 2 | 100 |",
      "| x10 | pipeline part | 1,000 | 100.0 (10.00x) | 10 (1.00x) | 1,800 (1.50x) |",
      "| x10 | SID refresh | 700 | 20.0 (5.00x) | 35 (2.00x) | 1,500 (1.50x) |",
      "| x10 | refresh SpanExampleGen | 700 | 10.0 (5.00x) | 70 (2.00x) | 750 (1.50x) |",
      "| x10 | daily span 5 | 30 | 2.0 (1.00x) | 15 (10.00x) | 100 (1.00x) |",
      "| x100 | failed (exit 1, x100.log) | | | | |"]


def test_stage_memory_charges_each_sample_to_the_running_component(tmp_path):
  log = tmp_path / "run.log"
  with open(log, "w") as f:
    process = subprocess.Popen([sys.executable, "-c", _STAGES], stdout=f)
    memory = scale.StageMemory(process.pid, str(log), interval=0.2)
    memory.start()
    process.wait()
    memory.done.set()
    memory.join()
  assert memory.peaks["Alpha"] > 300 and memory.peaks["Beta"] < 100 and memory.peaks["daily runs"] < 100
