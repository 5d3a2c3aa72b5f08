import json
import os

import pytest

from models import distribution


def _cluster(monkeypatch, cluster, task):
  monkeypatch.setenv(distribution.TF_CONFIG, json.dumps({"cluster": cluster, "task": task}))


def test_without_tf_config_one_process_is_the_chief(monkeypatch):
  monkeypatch.delenv(distribution.TF_CONFIG, raising=False)
  assert distribution.workers() == 1 and distribution.is_chief()
  assert distribution.strategy().num_replicas_in_sync == 1


def test_the_chief_is_the_chief_task_or_else_worker_0(monkeypatch):
  _cluster(monkeypatch, {"worker": ["a:1", "b:1", "c:1"]}, {"type": "worker", "index": 0})
  assert distribution.workers() == 3 and distribution.is_chief()
  _cluster(monkeypatch, {"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1})
  assert not distribution.is_chief()
  _cluster(monkeypatch, {"chief": ["a:1"], "worker": ["b:1"]}, {"type": "worker", "index": 0})
  assert distribution.workers() == 2 and not distribution.is_chief()
  _cluster(monkeypatch, {"chief": ["a:1"], "worker": ["b:1"]}, {"type": "chief", "index": 0})
  assert distribution.is_chief()


def test_only_the_chief_writes_to_the_outputs(monkeypatch, tmp_path):
  written = []

  def write(directory):
    os.makedirs(directory)
    written.append(directory)

  _cluster(monkeypatch, {"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1})
  assert not distribution.write_outputs(str(tmp_path / "serving"), write)
  assert written[0] != str(tmp_path / "serving") and os.path.basename(written[0]) == "serving"
  assert not os.path.exists(written[0]) and not (tmp_path / "serving").exists()  # the private copy is deleted
  _cluster(monkeypatch, {"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0})
  assert distribution.write_outputs(str(tmp_path / "serving"), write) and (tmp_path / "serving").is_dir()


def test_a_bad_tf_config_is_refused_with_what_is_wrong(monkeypatch):
  monkeypatch.setenv(distribution.TF_CONFIG, "{cluster")
  with pytest.raises(ValueError, match="TF_CONFIG is not JSON"):
    distribution.workers()
  monkeypatch.setenv(distribution.TF_CONFIG, json.dumps({"cluster": {"worker": ["a:1"]}}))
  with pytest.raises(ValueError, match="not this process's task"):
    distribution.is_chief()
