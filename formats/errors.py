"""Errors the pipeline reports to people: a message that names the file, the line or the item, and why."""


class InputDataError(ValueError):
  """Input data that the pipeline refuses, with the places that caused it."""
