import os

from tfx import types
from tfx.types import standard_artifacts

from components.encoder_pusher.component import EncoderPusher
from formats import artifacts
from formats import served_models


def test_pushes_the_encoder_saved_model_as_a_servable_version(tmp_path):
  encoder = artifacts.TextEncoderModel()
  encoder.uri = str(tmp_path / "encoder")
  files = {"saved_model.pb": b"graph", os.path.join("variables", "variables.index"): b"index",
           served_models.WARMUP_FILE: b"requests"}
  for name, content in files.items():
    path = os.path.join(encoder.uri, "Format-Serving", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(content)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / "pushed")
  base = str(tmp_path / "serving" / "content_encoder")
  component = EncoderPusher(encoder=types.Channel(type=artifacts.TextEncoderModel), base_directory=base)
  component.executor_spec.executor_class().Do({"model": [encoder]}, {"pushed_model": [pushed]},
                                             component.exec_properties)

  on_disk = served_models.versions_on_disk(base)
  assert len(on_disk) == 1
  version_dir = next(iter(on_disk.values()))
  for name, content in files.items():
    with open(os.path.join(version_dir, name), "rb") as f:
      assert f.read() == content
  assert pushed.get_int_custom_property("pushed") == 1
  assert pushed.get_string_custom_property("pushed_destination") == version_dir
