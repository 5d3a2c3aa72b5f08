"""TF Serving's --model_config_file: a ModelServerConfig text proto naming several models, each with its
own base path and version policy (e.g. the ranker and the content encoder as servables of their own).

  model_config_list {
    config { name: "sid_ranking" base_path: "/models/sid_ranking" model_platform: "tensorflow"
             model_version_policy { latest { num_versions: 2 } } }
    config { name: "encoder" base_path: "/models/encoder" model_platform: "tensorflow" }
  }
"""

import dataclasses
from typing import List

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  name: str
  base_path: str
  policy: str = "latest:1"  # serving/versions.VersionPolicy's spec


def _policy(config: model_server_config_pb2.ModelConfig) -> str:
  policy = config.model_version_policy
  kind = policy.WhichOneof("policy_choice")
  if kind == "all":
    return "all"
  if kind == "specific":
    return "specific:" + ",".join(str(v) for v in policy.specific.versions)
  return f"latest:{policy.latest.num_versions or 1}"  # TF Serving's default: the latest version


def render(models: List[ModelConfig]) -> str:
  """The ModelServerConfig text proto that parse() reads back as `models`."""
  config = model_server_config_pb2.ModelServerConfig()
  for model in models:
    entry = config.model_config_list.config.add(name=model.name, base_path=model.base_path,
                                                model_platform="tensorflow")
    kind, _, value = model.policy.partition(":")
    if kind == "all":
      entry.model_version_policy.all.SetInParent()
    elif kind == "specific":
      entry.model_version_policy.specific.versions.extend(int(v) for v in value.split(","))
    else:
      entry.model_version_policy.latest.num_versions = int(value or 1)
  return text_format.MessageToString(config)


def parse(text: str, source: str = "the model config") -> List[ModelConfig]:
  """The models of a ModelServerConfig text proto; a clear error for anything TF Serving would refuse."""
  try:
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
  except text_format.ParseError as e:
    raise ValueError(f"{source} is not a ModelServerConfig text proto: {e}") from e
  if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
    raise ValueError(f"{source} lists no model (model_config_list {{ config {{ name: ... base_path: ... }} }})")
  models = []
  for entry in config.model_config_list.config:
    if not entry.name or not entry.base_path:
      raise ValueError(f"{source}: every model needs a name and a base_path, got "
                       f"{text_format.MessageToString(entry, as_one_line=True)!r}")
    if entry.model_platform not in ("", "tensorflow"):
      raise ValueError(f"{source}: model {entry.name!r} has platform {entry.model_platform!r}; only tensorflow is "
                       f"served")
    models.append(ModelConfig(entry.name, entry.base_path, _policy(entry)))
  names = [m.name for m in models]
  if len(set(names)) != len(names):
    raise ValueError(f"{source} names a model twice: {sorted(n for n in set(names) if names.count(n) > 1)}")
  return models
