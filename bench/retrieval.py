"""Retrieval baselines side by side over the full catalog, on the leave-one-out and per-span protocols.

  .venv/bin/python bench/retrieval.py --data_root data/ml-latest-small [--protocol loo,span]
      [--span_period month] [--start_date YYYY-MM-DD] [--spans 6] [--models popularity,sasrec]
      [--max_history 20] [--min_user_interactions 5] [--seed 0] [--output outputs/retrieval_bench]
      [--output_root outputs] [--tiger '{"warmup_epochs": 16}'] [--tiger_warmups DIR]
  # the same on a copy 20 years later with 60% of the users:
  .venv/bin/python -m pipeline.datasets shifted --src data/ml-latest-small --dst /tmp/shifted --years 20
      --user_fraction 0.6
  .venv/bin/python bench/retrieval.py --data_root /tmp/shifted --output outputs/retrieval_bench_shifted

Protocols (bench/retrieval_protocols.py): `loo`, each user's last item tests and the second last validates
(TIGER, Rajput et al. 2023, Table 1), the models fit on the rest; `span`, calendar spans from --start_date
(default: pipeline/data_profile.py's choice, 70% of the ratings before it): each model fits on the backfill,
then for each of the first --spans spans recommends for all its interactions before it trains on them
(`update`), and the metrics pool the spans (report.json also has them per span).

Models (MODELS: name -> factory(protocol data, args) -> a baselines.Recommender):
  popularity      the most rated items among the most recent 10% of the interactions trained on
  popularity-all  the most rated items of all the interactions trained on
  co-occurrence   the items that most often followed the history's last item within 3 items, then popularity
  two-tower       TFRS retrieval: user id and mean history embedding against item embeddings (bench/two_tower.py)
  sasrec          SASRec: causal self-attention over the history, full softmax (bench/sasrec.py)
A further model is one entry: a factory given the protocol's data (a LeaveOneOut or PerSpan, both with
`catalog` and `users`) and these flags (--output_root: a pipeline output root, e.g. for TIGER's Semantic IDs).

Every model ranks every item it knows, the user's history (at most 20 items) left out: Recall@5/10 and
NDCG@5/10 of the next item (models/retrieval/evaluation.py), overall and on new items (absent from the
training part, or first rated in the span). It prints one markdown table per protocol and writes
report.md and report.json to --output.
"""

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Tuple, Union

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from bench import retrieval_protocols as protocols
from bench import sasrec, tiger, two_tower
from formats import spans
from formats.errors import InputDataError
from models.retrieval import baselines, evaluation
from models.retrieval.config import RetrievalConfig
from pipeline import runs

ProtocolData = Union[protocols.LeaveOneOut, protocols.PerSpan]
Factory = Callable[[ProtocolData, argparse.Namespace], baselines.Recommender]

MODELS: Dict[str, Factory] = {
    "popularity": lambda data, args: baselines.MostPopular(),
    "popularity-all": lambda data, args: baselines.MostPopular(recent_fraction=1.0),
    "co-occurrence": lambda data, args: baselines.CoOccurrence(),
    "two-tower": lambda data, args: two_tower.TwoTower(data.catalog, data.users, max_history=args.max_history,
                                                       seed=args.seed),
    "sasrec": lambda data, args: sasrec.SASRec(data.catalog, max_length=args.max_history, seed=args.seed),
    "tiger": lambda data, args: tiger.Tiger(
        tiger.catalog_sids(args.output_root, args.data_root, data.catalog),
        RetrievalConfig.from_dict({**runs.load_config(args.output_root).retrieval, **json.loads(args.tiger),
                                   "seed": args.seed}), warmups=getattr(args, "tiger_warmups", None)),
}
PROTOCOLS = ("loo", "span")
K = max(evaluation.CUTOFFS)
COLUMNS = (("Recall@5", evaluation.OVERALL, "recall@5"), ("NDCG@5", evaluation.OVERALL, "ndcg@5"),
           ("Recall@10", evaluation.OVERALL, "recall@10"), ("NDCG@10", evaluation.OVERALL, "ndcg@10"),
           ("new Recall@10", evaluation.NEW_ITEMS, "recall@10"), ("new NDCG@10", evaluation.NEW_ITEMS, "ndcg@10"))


def recommend(model: baselines.Recommender, examples: protocols.Examples) -> np.ndarray:
  return model.recommend(examples.histories, K, users=examples.user_ids)


def metrics(recommended: np.ndarray, examples: List[protocols.Examples]) -> Dict[str, Dict[str, float]]:
  new_item = np.concatenate([e.new_item for e in examples])
  return evaluation.sliced_metrics(recommended, np.concatenate([e.targets for e in examples]),
                                   {evaluation.OVERALL: np.ones(len(new_item), bool), evaluation.NEW_ITEMS: new_item})


def _progress(test: Dict[str, Dict[str, float]]) -> str:
  """The test figures of one model, for the progress lines."""
  return ", ".join(f"{column} {_figure(test[s][m])}" for column, s, m in COLUMNS)


def _fit(name: str, data: ProtocolData, train: baselines.Sequences,
         args: argparse.Namespace) -> Tuple[baselines.Recommender, float]:
  model = MODELS[name](data, args)
  start = time.perf_counter()
  model.fit(train)
  return model, time.perf_counter() - start


def run_loo(data: protocols.LeaveOneOut, names: List[str], args: argparse.Namespace) -> Dict[str, Any]:
  """Each model fit on the training part, scored on the test and the validation examples."""
  results = {}
  for name in names:
    model, fit_seconds = _fit(name, data, data.train, args)
    results[name] = {"fit_seconds": fit_seconds, "test": metrics(recommend(model, data.test), [data.test]),
                     "validation": metrics(recommend(model, data.validation), [data.validation])}
    print(f"  loo {name}: fit {fit_seconds:.1f} s; {_progress(results[name]['test'])}", flush=True)
  return results


def run_span(data: protocols.PerSpan, names: List[str], args: argparse.Namespace) -> Dict[str, Any]:
  """Each model fit on the backfill, then per span scored before it trains on the span."""
  results = {}
  for name in names:
    model, fit_seconds = _fit(name, data, data.backfill, args)
    update_seconds, recommended, per_span = 0.0, [], {}
    for span in data.spans:
      recommended.append(recommend(model, span.examples))
      per_span[span.start] = metrics(recommended[-1], [span.examples])
      start = time.perf_counter()
      model.update(span.train)
      update_seconds += time.perf_counter() - start
    results[name] = {"fit_seconds": fit_seconds, "update_seconds": update_seconds,
                     "test": metrics(np.concatenate(recommended), [span.examples for span in data.spans]),
                     "per_span": per_span}
    print(f"  span {name}: fit {fit_seconds:.1f} s, updates {update_seconds:.1f} s; "
          f"{_progress(results[name]['test'])}", flush=True)
  return results


def _plain(value: Any) -> Any:
  """JSON without NaN (metrics of an empty slice): null."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  return None if isinstance(value, float) and np.isnan(value) else value


def _figure(value: float) -> str:
  return "n/a" if np.isnan(value) else f"{value:.4f}"


def table(results: Dict[str, Any]) -> List[str]:
  """A markdown table: a row per model, the test metrics, the examples and the training seconds."""
  updates = any("update_seconds" in r for r in results.values())
  header = [c for c, _, _ in COLUMNS] + ["examples (new)", "fit s"] + (["update s"] if updates else [])
  lines = ["| model | " + " | ".join(header) + " |", "|" + " --- |" * (len(header) + 1)]
  for name, result in results.items():
    test = result["test"]
    cells = [_figure(test[s][m]) for _, s, m in COLUMNS]
    cells += [f"{test[evaluation.OVERALL]['examples']:,} ({test[evaluation.NEW_ITEMS]['examples']:,})",
              f"{result['fit_seconds']:.1f}"] + ([f"{result['update_seconds']:.1f}"] if updates else [])
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return lines


def _describe_loo(data: protocols.LeaveOneOut, args: argparse.Namespace) -> str:
  return (f"Leave-one-out: {len(data.test):,} users with at least {args.min_user_interactions} interactions "
          f"(test: the last, validation: the second last), {len(data.train.new_items()):,} training interactions "
          f"of {len(data.users):,} users, {len(data.catalog):,} items; histories of at most {args.max_history}.")


def _describe_span(data: protocols.PerSpan) -> str:
  first, last = data.spans[0], data.spans[-1]
  return (f"Per span: {len(data.spans)} {data.period} spans with ratings from {first.start} to {last.start} "
          f"(span {first.span}..{last.span}), {sum(len(s.examples) for s in data.spans):,} interactions scored "
          f"before training on them; backfill before {data.start_date}: {len(data.backfill.new_items()):,} "
          f"interactions of {len(data.backfill.users):,} users. " + "; ".join(data.reasons[:2]) + ".")


def _args(argv) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_root", required=True, help="MovieLens-format directory (ratings.csv, movies.csv)")
  parser.add_argument("--protocol", default=",".join(PROTOCOLS), help=f"comma-separated, of {', '.join(PROTOCOLS)}")
  parser.add_argument("--span_period", default="month", choices=spans.PERIODS)
  parser.add_argument("--start_date", help="first day of the first scored span (YYYY-MM-DD); default: "
                      "pipeline/data_profile.py's choice, with 70%% of the ratings before it")
  parser.add_argument("--spans", type=int, default=6, help="how many spans with ratings to score")
  parser.add_argument("--min_interactions_per_span", type=int, default=protocols.data_profile.MIN_INTERACTIONS_PER_SPAN,
                      help="refuse span periods whose spans hold a median below this")
  parser.add_argument("--min_user_interactions", type=int, default=protocols.MIN_USER_INTERACTIONS,
                      help="leave-one-out: users with fewer only train")
  parser.add_argument("--max_history", type=int, default=protocols.MAX_HISTORY)
  parser.add_argument("--models", help=f"comma-separated, of {', '.join(MODELS)} (default: all; tiger only with "
                      "--output_root)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", default="outputs/retrieval_bench", help="where report.md and report.json go")
  parser.add_argument("--output_root", help="a pipeline output root, for models that read its artifacts (tiger: "
                      "its frozen content encoder and RQ-VAE give every item its Semantic ID, its retrieval settings)")
  parser.add_argument("--tiger", default="{}", help="JSON of RetrievalConfig settings over the loop's, for tiger")
  parser.add_argument("--tiger_warmups", help="a directory where tiger's warm-ups are saved and, when their "
                      "settings and data match, restored instead of trained (to compare decoding or step settings)")
  args = parser.parse_args(argv)
  args.models = (args.models.split(",") if args.models
                 else [m for m in MODELS if m != "tiger" or args.output_root])
  args.protocol = args.protocol.split(",")
  unknown = [m for m in args.models if m not in MODELS] + [p for p in args.protocol if p not in PROTOCOLS]
  if unknown:
    parser.error(f"unknown model or protocol {', '.join(unknown)}; models: {', '.join(MODELS)}; protocols: "
                 f"{', '.join(PROTOCOLS)}")
  if "tiger" in args.models and not args.output_root:
    parser.error("tiger needs --output_root (a main-command output root), or leave it out of --models")
  if args.spans < 1:
    parser.error(f"--spans must be at least 1, got {args.spans}")
  return args


def _protocols(args: argparse.Namespace) -> Dict[str, Tuple[str, ProtocolData]]:
  ratings = protocols.read_ratings(args.data_root)
  print(f"{args.data_root}: {len(ratings.items):,} interactions ({ratings.unparsed:,} unreadable rows left out)")
  built = {}
  if "loo" in args.protocol:
    data = protocols.leave_one_out(ratings, args.min_user_interactions, args.max_history)
    built["loo"] = (_describe_loo(data, args), data)
  if "span" in args.protocol:
    data = protocols.per_span(ratings, args.span_period, args.start_date, args.spans, args.max_history,
                              args.min_interactions_per_span)
    built["span"] = (_describe_span(data), data)
  return built


def main(argv=None) -> int:
  args = _args(argv)
  try:
    built = _protocols(args)
  except InputDataError as e:
    print(f"retrieval: {e}", file=sys.stderr)
    return 2
  report, lines = {"args": vars(args)}, [f"# Retrieval bench: {args.data_root}"]
  for name, (description, data) in built.items():
    results = (run_loo if name == "loo" else run_span)(data, args.models, args)
    report[name] = {"description": description, "results": results}
    lines += ["", description, ""] + table(results)
  print("\n".join(lines))
  os.makedirs(args.output, exist_ok=True)
  with open(os.path.join(args.output, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(os.path.join(args.output, "report.json"), "w") as f:
    json.dump(_plain(report), f, indent=1)
  print(f"wrote {args.output}/report.md and report.json")
  return 0


if __name__ == "__main__":
  sys.exit(main())
