import numpy as np
import pytest

from models.ranking import evaluation


def _brute_force_auc(labels, scores):
  pos, neg = scores[labels == 1], scores[labels == 0]
  return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_auc_matches_pairwise_counting_with_ties():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 300)
  scores = np.round(rng.normal(size=300) + labels, 1)  # many ties
  assert evaluation.auc(labels, scores) == pytest.approx(_brute_force_auc(labels, scores))
  assert evaluation.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
  assert evaluation.auc([0, 1], [0.5, 0.5]) == 0.5


def test_auc_of_one_class_is_reported_as_undefined():
  assert evaluation.auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
  assert evaluation.auc([], []) is None


def test_slices_partition_interactions():
  masks = evaluation.slice_masks(np.array([b"cold_start", b"long_tail", b"head", b"head"]))
  assert masks["cold_start"].tolist() == [True, False, False, False]
  assert masks["long_tail"].tolist() == [False, True, False, False]
  assert masks["head"].tolist() == [False, False, True, True]
  result = evaluation.sliced_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.2]), masks)
  assert result["overall"]["auc"] == 1.0 and result["cold_start"]["auc"] is None
  assert result["head"] == {"auc": 1.0, "examples": 2, "positive_rate": 0.5}


def test_mean_over_spans_weights_by_examples_and_skips_undefined_spans():
  a = {"overall": {"auc": 0.8, "examples": 30, "positive_rate": 0.5}}
  b = {"overall": {"auc": 0.6, "examples": 10, "positive_rate": 0.5}}
  one_class = {"overall": {"auc": None, "examples": 5, "positive_rate": 1.0}}
  assert evaluation.mean_over_spans([a, b, one_class]) == {
      "overall": {"auc": pytest.approx(0.75), "examples": 45, "spans": 2}}
