"""The packages' layering: each imports only those below it, and an executor's internals stay in its component.

formats (the contracts: input format, artifacts' names, state, served models) < models < serving (the
server and its clients) < components (the TFX components) < pipeline < kubeflow. Tests and benchmarks
may import anything.
"""

import ast
import pathlib
import sys
from typing import Iterator, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ("formats", "models", "serving", "components", "pipeline", "kubeflow")
# RetrievalTrainer runs RankingTrainer's executor with its own run_fn: one executor, two components.
SHARED_EXECUTORS = {("components/retrieval_trainer/component.py", "components.ranking_trainer.executor")}


def _sources() -> Iterator[pathlib.Path]:
  for package in LAYERS:
    for path in sorted((ROOT / package).rglob("*.py")):
      if not path.name.endswith("_test.py"):
        yield path


def _imports(path: pathlib.Path) -> Iterator[Tuple[int, str]]:
  """(line, module) of every absolute import in the file, functions' included; `from a import b` gives
  a.b, which names b's module when b is one."""
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      yield from ((node.lineno, alias.name) for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def _violations():
  upward, sideways = [], []
  for path in _sources():
    relative = path.relative_to(ROOT).as_posix()
    layer = LAYERS.index(relative.split("/")[0])
    for line, module in _imports(path):
      parts = module.split(".")
      if parts[0] in LAYERS and LAYERS.index(parts[0]) > layer:
        upward.append(f"{relative}:{line} imports {module}")
      if (parts[0] == "components" and len(parts) > 2 and parts[2] == "executor"
          and not relative.startswith(f"components/{parts[1]}/")
          and (relative, ".".join(parts[:3])) not in SHARED_EXECUTORS):
        sideways.append(f"{relative}:{line} imports {module}")
  return upward, sideways


def test_no_package_imports_one_above_it_and_no_executor_internals_leave_their_component():
  upward, sideways = _violations()
  assert upward == [] and sideways == []


def test_the_walk_finds_an_upward_and_a_sideways_import(tmp_path, monkeypatch):
  for name, text in (("formats/leak.py", "def f():\n  from pipeline import configs\n"),
                     ("pipeline/leak.py", "from components.span_example_gen.executor import FILES\n")):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text(text)
  monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
  assert _violations() == (["formats/leak.py:2 imports pipeline.configs"],
                           ["pipeline/leak.py:1 imports components.span_example_gen.executor.FILES"])
