"""The counting baselines a ranker has to beat, scored on the same interactions as the model.

  item like-rate   the item's smoothed share of liked interactions before the interaction
  user like-rate   the user's, likewise
  counter LR       a logistic regression (scikit-learn) on every counting feature the ranker reads
                   (formats/interaction_features.counter_features: the user's and the item's causal
                   counters and the history window's like-rate), fitted on every interaction before
                   the span it scores
  counter GBDT     gradient-boosted trees (scikit-learn HistGradientBoosting) on the same features,
                   fitted likewise

All four read only the interaction's causal counters, so they see exactly the past the ranker sees. With
`decayed`, the regression and the trees read the decayed counters too, as a ranker with decayed_counters does
(named "counter LR+decayed", "counter GBDT+decayed").

Example:
  scores = {name: score(span_2_features) for name, score in scorers([backfill_features, span_1_features]).items()}
"""

from typing import Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from formats import interaction_features as fields

ITEM_LIKE_RATE, USER_LIKE_RATE = "item like-rate", "user like-rate"
COUNTER_REGRESSION, COUNTER_TREES = "counter LR", "counter GBDT"
Features = Dict[str, tf.Tensor]


def item_like_rate(features: Features) -> np.ndarray:
  return fields.like_rate(features, fields.ITEM_COUNTERS).numpy()


def user_like_rate(features: Features) -> np.ndarray:
  return fields.like_rate(features, fields.USER_COUNTERS).numpy()


class CounterModel:
  """A scikit-learn classifier on the counting features; with one class to learn from, that class's rate
  for everything."""

  def __init__(self, estimator, decayed: bool):
    self._model = estimator
    self._decayed = decayed
    self._constant: Optional[float] = None

  def fit(self, inputs: np.ndarray, labels: np.ndarray) -> "CounterModel":
    if len(np.unique(labels)) < 2:
      self._constant = float(labels.mean()) if len(labels) else fields.NEUTRAL_LIKE_RATE
    else:
      self._model.fit(inputs, labels)
    return self

  def __call__(self, features: Features) -> np.ndarray:
    inputs = fields.counter_features(features, self._decayed).numpy()
    if self._constant is not None:
      return np.full(len(inputs), self._constant)
    return self._model.predict_proba(inputs)[:, 1]


def scorers(spans: Sequence[Features], decayed: bool = False) -> Dict[str, Callable[[Features], np.ndarray]]:
  """Every baseline; the learned ones fitted on `spans` (standardised inputs for the regression)."""
  inputs = np.concatenate([fields.counter_features(f, decayed).numpy() for f in spans])
  labels = np.concatenate([np.asarray(f[fields.LABEL]) for f in spans])
  regression = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
  trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
  suffix = "+decayed" if decayed else ""
  return {ITEM_LIKE_RATE: item_like_rate, USER_LIKE_RATE: user_like_rate,
          COUNTER_REGRESSION + suffix: CounterModel(regression, decayed).fit(inputs, labels),
          COUNTER_TREES + suffix: CounterModel(trees, decayed).fit(inputs, labels)}
