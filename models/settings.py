"""Model settings as frozen dataclasses, read from and written to JSON (pipeline config, artifacts)."""

import dataclasses
import json
from typing import Any, Dict


class Settings:
  """Mixin of a frozen dataclass: to_json, and from_dict refusing unknown names (KIND names them in the
  message) and turning lists into the tuples the fields in TUPLES hold."""

  KIND = "model"
  TUPLES: tuple = ()

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_dict(cls, values: Dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"unknown {cls.KIND} settings {unknown}; known: {sorted(known)}")
    return cls(**{name: tuple(value) if name in cls.TUPLES else value for name, value in values.items()})
