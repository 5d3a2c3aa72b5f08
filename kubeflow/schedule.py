"""Creates the daily pipeline's recurring run on Kubeflow Pipelines: the spec compiled by
`python -m kubeflow.runner --pipeline daily`, run on a cron, each run ingesting the latest span present.

  python -m kubeflow.schedule --spec daily.yaml [--host URL --experiment NAME] [--cron "0 30 2 * * *"] \\
      [--timezone UTC]

Without --host it prints the recurring run it would create (JSON) and creates nothing.

One run at a time (max_concurrency 1: a run continues from the state the previous one wrote) and no
catch-up: runs replayed after an outage would all ingest the same latest span. A run that finds no new
span fails at SpanExampleGen (its previous state is already of that span), so nothing is applied twice;
a span skipped by an outage is not ingested by the schedule.

KFP's cron has 6 fields, seconds first, read by its scheduled-workflow controller in that controller's
timezone (CRON_SCHEDULE_TIMEZONE, UTC unless set): KFP takes no timezone per run, so --timezone names the
one the cron is meant in and goes into the run's description.
"""

import argparse
import dataclasses
import json
import re
import sys
import zoneinfo
from typing import Any, Callable, Dict, Optional, Tuple

import yaml

import kubeflow
from formats.errors import InputDataError

DEFAULT_CRON = "0 30 2 * * *"
# (name, lowest, highest, names of the values from `lowest` on) of each field of KFP's cron (robfig/cron).
_FIELDS = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
# One comma-separated part of a field: *, ? (days only), a value or a range, optionally with a step.
_PART = re.compile(r"^(?:(?P<any>[*?])|(?P<low>\w+)(?:-(?P<high>\w+))?)(?:/(?P<step>\d+))?$")


@dataclasses.dataclass(frozen=True)
class RecurringRun:
  """What kfp.Client.create_recurring_run receives, and the experiment it goes in."""
  job_name: str
  experiment: str
  description: str
  cron_expression: str
  timezone: str
  pipeline_package_path: str
  pipeline_name: str
  params: Dict[str, Any]
  max_concurrency: int = 1
  no_catchup: bool = True


def check_cron(cron: str) -> str:
  """`cron` when KFP's scheduler reads it as meant; InputDataError naming the field otherwise."""
  fields = cron.split()
  if len(fields) != len(_FIELDS):
    raise InputDataError(
        f"cron {cron!r} has {len(fields)} fields; KFP's has 6, seconds first (second minute hour day-of-month "
        f"month day-of-week), e.g. {DEFAULT_CRON!r} for 02:30:00 every day")
  for field, (name, low, high, names) in zip(fields, _FIELDS):
    for part in field.split(","):
      _check_part(cron, part, name, low, high, names)
  return cron


def _check_part(cron: str, part: str, name: str, low: int, high: int, names: Tuple[str, ...]) -> None:
  match = _PART.match(part)
  if not match or (match["any"] == "?" and name not in ("day-of-month", "day-of-week")):
    raise InputDataError(f"cron {cron!r}: {name} {part!r} is not *, a value, a range a-b or a step */n"
                         + (" (? is for day-of-month and day-of-week only)" if part.startswith("?") else ""))
  values = [value for value in (match["low"], match["high"]) if value is not None]
  bounds = [_value(value, low, names) for value in values]
  for value, number in zip(values, bounds):
    if number not in range(low, high + 1):
      what = "is outside" if number is not None else "is not a number in"
      raise InputDataError(f"cron {cron!r}: {name} {value} {what} {low}-{high}"
                           + (f" ({names[0]}-{names[-1]})" if names else ""))
  if bounds != sorted(bounds):
    raise InputDataError(f"cron {cron!r}: {name} range {part!r} ends before it starts")
  if match["step"] is not None and int(match["step"]) == 0:
    raise InputDataError(f"cron {cron!r}: {name} {part!r} has a step of 0")


def _value(text: str, low: int, names: Tuple[str, ...]) -> Optional[int]:
  """The number `text` stands for: digits, or a month or weekday name; None for anything else."""
  if text.isdigit():
    return int(text)
  return names.index(text.upper()) + low if text.upper() in names else None


def check_timezone(timezone: str) -> str:
  try:
    zoneinfo.ZoneInfo(timezone)
  except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
    raise InputDataError(f"unknown timezone {timezone!r}: give an IANA name such as UTC or "
                         f"Europe/Paris") from error
  return timezone


def _pipeline_spec(path: str) -> Dict[str, Any]:
  # kfp.Client reads a pipeline package as YAML only (.json PipelineJobs are Vertex AI's).
  if not path.endswith((".yaml", ".yml")):
    raise InputDataError(f"{path}: KFP's client takes a .yaml pipeline spec: compile it with "
                         f"python -m kubeflow.runner --pipeline daily --output daily.yaml")
  try:
    with open(path) as f:
      return yaml.safe_load(f)
  except FileNotFoundError as error:
    raise InputDataError(f"no pipeline spec at {path}: compile it with python -m kubeflow.runner "
                         f"--pipeline daily --output {path}") from error


def plan(spec_path: str, cron: str = DEFAULT_CRON, timezone: str = "UTC",
         experiment: Optional[str] = None) -> RecurringRun:
  """The daily recurring run of the spec at `spec_path`; InputDataError for a bad cron, timezone or spec."""
  check_cron(cron)
  check_timezone(timezone)
  spec = _pipeline_spec(spec_path)
  parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
  if kubeflow.SPAN_PARAMETER not in parameters:
    raise InputDataError(f"{spec_path} is not the daily pipeline: it has no runtime parameter "
                         f"{kubeflow.SPAN_PARAMETER} (parameters: {sorted(parameters) or 'none'})")
  name = spec["pipelineInfo"]["name"]
  return RecurringRun(
      job_name=f"{name}-daily", experiment=experiment or name,
      description=f"{name}: the daily run, on the latest span present; cron {cron} in {timezone}",
      cron_expression=cron, timezone=timezone, pipeline_package_path=spec_path, pipeline_name=name,
      params={kubeflow.SPAN_PARAMETER: kubeflow.LATEST_SPAN})


def create(run: RecurringRun, client) -> str:
  """Creates `run` with `client` (a kfp.Client) in its experiment (created when missing); its id."""
  experiment = client.create_experiment(name=run.experiment)
  recurring_run = client.create_recurring_run(
      experiment_id=experiment.experiment_id, job_name=run.job_name, description=run.description,
      cron_expression=run.cron_expression, max_concurrency=run.max_concurrency, no_catchup=run.no_catchup,
      params=run.params, pipeline_package_path=run.pipeline_package_path)
  return recurring_run.recurring_run_id


def _kfp_client(host: str):
  import kfp
  return kfp.Client(host=host)


def main(argv=None, make_client: Callable[[str], Any] = _kfp_client) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--spec", required=True, help="the daily spec: kubeflow.runner --pipeline daily")
  parser.add_argument("--host", help="the KFP API endpoint; without it, print what would be created")
  parser.add_argument("--experiment", help="default: the pipeline's name")
  parser.add_argument("--cron", default=DEFAULT_CRON, help="6 fields, seconds first (KFP's cron)")
  parser.add_argument("--timezone", default="UTC",
                      help="the timezone the cron is meant in: KFP's controller reads it in its own")
  args = parser.parse_args(argv)
  try:
    run = plan(args.spec, args.cron, args.timezone, args.experiment)
  except InputDataError as error:
    print(f"Refused: {error}", file=sys.stderr)
    return 2
  if not args.host:
    print(json.dumps(dataclasses.asdict(run), indent=1, sort_keys=True))
    return 0
  print(f"Created recurring run {create(run, make_client(args.host))}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
