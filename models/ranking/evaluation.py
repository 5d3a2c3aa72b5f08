"""AUC overall and on the paper's slices, from predictions on the span after training.

Slices (Singh et al. 2023, section 4) follow each interaction's `item_segment`, written by
SpanExampleGen from data before the interaction's span only: `cold_start` (item first seen in
the evaluated span: the paper's CTR/1D), `long_tail` (fewer than 10 earlier interactions), `head`.
The pipeline's TFMA Evaluator slices on the same feature. AUC is None where a slice holds one class.

Over many spans, AUC is computed per span and averaged weighted by the span's examples: the liked
rate moves from span to span (17% to 74% by month on ml-latest-small), and AUC pooled over spans
would score how well the model tracks that drift rather than how it ranks within a span.
"""

from typing import Dict, List, Optional

import numpy as np

SLICES = ("overall", "cold_start", "long_tail", "head")


def auc(labels: np.ndarray, scores: np.ndarray) -> Optional[float]:
  """ROC AUC (Mann-Whitney, ties count half); None when only one class is present."""
  labels = np.asarray(labels).astype(bool)
  positives, negatives = int(labels.sum()), int((~labels).sum())
  if not positives or not negatives:
    return None
  order = np.argsort(scores, kind="mergesort")
  sorted_scores = np.asarray(scores)[order]
  ranks = np.empty(len(order), np.float64)
  starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
  ends = np.r_[starts[1:], len(order)]
  for start, end in zip(starts, ends):  # average rank within each group of tied scores
    ranks[order[start:end]] = (start + end + 1) / 2
  return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def slice_masks(item_segment: np.ndarray) -> Dict[str, np.ndarray]:
  """item_segment (bytes or str per interaction) -> a boolean mask per slice."""
  segments = np.array([s.decode() if isinstance(s, bytes) else s for s in item_segment])
  return {"overall": np.ones(len(segments), bool),
          **{name: segments == name for name in SLICES[1:]}}


def sliced_auc(labels: np.ndarray, scores: np.ndarray, masks: Dict[str, np.ndarray]
               ) -> Dict[str, Dict[str, Optional[float]]]:
  """{slice: {auc, examples, positive_rate}}."""
  result = {}
  for name, mask in masks.items():
    count = int(mask.sum())
    result[name] = {"auc": auc(labels[mask], scores[mask]), "examples": count,
                    "positive_rate": float(labels[mask].mean()) if count else None}
  return result


def mean_over_spans(per_span: List[Dict[str, Dict[str, Optional[float]]]]) -> Dict[str, Dict[str, Optional[float]]]:
  """sliced_auc results of several spans -> example-weighted mean AUC per slice, over the spans
  where it is defined, with the total examples and the number of spans that counted."""
  result = {}
  for name in per_span[0] if per_span else SLICES:
    defined = [r[name] for r in per_span if r[name]["auc"] is not None]
    weight = sum(r["examples"] for r in defined)
    result[name] = {"auc": sum(r["auc"] * r["examples"] for r in defined) / weight if weight else None,
                    "examples": sum(r[name]["examples"] for r in per_span), "spans": len(defined)}
  return result
