"""The output root's hold: one command at a time, children of the holder under its hold."""

import subprocess
import sys

import pytest

from formats.errors import InputDataError
from pipeline import experiments, runs

_HOLD = """
import sys, time
from pipeline import runs
with runs.holding(sys.argv[1], "the main command"):
  print("held", flush=True)
  time.sleep(60)
"""


@pytest.fixture
def held_by_another_process(tmp_path):
  child = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
  assert child.stdout.readline() == "held\n"
  yield str(tmp_path), child.pid
  child.kill()
  child.wait()


def test_a_command_is_refused_while_another_holds_the_output_root(held_by_another_process, capsys):
  root, pid = held_by_another_process
  with pytest.raises(InputDataError) as error:
    with runs.holding(root, "a replay"):
      pass
  assert str(error.value) == (f"{root} is in use by the main command (pid {pid}): wait until it ends, or give "
                              f"another --output_root")
  assert experiments.main(["--output_root", root]) == 2
  assert f"Experiments stopped: {root} is in use by the main command (pid {pid})" in capsys.readouterr().err


def test_the_holder_and_what_it_starts_run_and_the_hold_ends_with_it(tmp_path):
  with runs.holding(str(tmp_path), "a replay"):
    with runs.holding(str(tmp_path), "the daily run of span 3"):  # A child of the holder: not refused.
      pass
    child = subprocess.run([sys.executable, "-c", _HOLD.replace("time.sleep(60)", ""), str(tmp_path)],
                           capture_output=True, text=True, check=True)  # Inherits the hold, as the replay's runs.
    assert child.stdout == "held\n"
  with runs.holding(str(tmp_path), "the experiments"):  # Released.
    pass
