"""What every bench shares: --output_root, the production loop's settings saved there, and a clean stop on bad
input (no loop output there, a node that never ran) with the message instead of a stack trace."""

import argparse
import sys
from typing import Callable, Optional, Sequence, Tuple

from formats.errors import InputDataError
from pipeline import configs, runs


def parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
          ) -> Tuple[argparse.Namespace, configs.PipelineConfig]:
  """`argv` parsed with --output_root added, and the loop's settings under it."""
  parser.add_argument("--output_root", default=configs.OUTPUT_ROOT,
                      help="the main command's output root: config.json, ML Metadata, artifacts")
  args = parser.parse_args(argv)
  return args, runs.load_config(args.output_root)


def run(main: Callable[[], None]) -> None:
  try:
    main()
  except InputDataError as error:
    sys.exit(f"Bench stopped: {error}")
