import pytest

from serving import model_config
from serving.model_config import ModelConfig


def test_models_and_their_version_policies():
  text = """model_config_list {
    config { name: "ranker" base_path: "/m/ranker" model_platform: "tensorflow"
             model_version_policy { latest { num_versions: 2 } } }
    config { name: "encoder" base_path: "/m/encoder" }
    config { name: "pinned" base_path: "/m/pinned" model_version_policy { specific { versions: 3 versions: 5 } } }
    config { name: "every" base_path: "/m/every" model_version_policy { all {} } }
  }"""
  models = [ModelConfig("ranker", "/m/ranker", "latest:2"), ModelConfig("encoder", "/m/encoder", "latest:1"),
            ModelConfig("pinned", "/m/pinned", "specific:3,5"), ModelConfig("every", "/m/every", "all")]
  assert model_config.parse(text) == models
  assert model_config.parse(model_config.render(models)) == models


@pytest.mark.parametrize("text, message", [
    ("model_config_list {", "is not a ModelServerConfig text proto"),
    ("", "lists no model"),
    ('model_config_list { config { name: "a" } }', "needs a name and a base_path"),
    ('model_config_list { config { name: "a" base_path: "/a" model_platform: "onnx" } }', "only tensorflow"),
    ('model_config_list { config { name: "a" base_path: "/a" } config { name: "a" base_path: "/b" } }',
     r"names a model twice: \['a'\]"),
])
def test_bad_configs_are_refused_with_a_message(text, message):
  with pytest.raises(ValueError, match=message):
    model_config.parse(text, "models.config")
