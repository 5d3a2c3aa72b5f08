import numpy as np
import pytest

from models.retrieval import evaluation


def test_recall_and_ndcg_of_known_ranks():
  recommended = np.array([[5, 3, 9], [2, 7, 1], [4, -1, -1]])
  result = evaluation.sliced_metrics(recommended, np.array([3, 4, 4]),
                                     {"all": np.array([True, True, True]), "first": np.array([True, False, False])},
                                     cutoffs=(1, 3))
  assert result["all"]["examples"] == 3
  assert result["all"]["recall@1"] == pytest.approx(1 / 3)
  assert result["all"]["recall@3"] == pytest.approx(2 / 3)
  assert result["all"]["ndcg@3"] == pytest.approx((1 / np.log2(3) + 1.0) / 3)
  assert result["first"] == {"examples": 1, "recall@1": 0.0, "ndcg@1": 0.0, "recall@3": 1.0,
                             "ndcg@3": pytest.approx(1 / np.log2(3))}


def test_too_few_recommendations_are_refused():
  with pytest.raises(ValueError, match="Recall@10 needs at least 10"):
    evaluation.sliced_metrics(np.zeros([2, 5], np.int64), np.array([1, 2]), {"all": np.array([True, True])})


def test_a_sample_is_fixed_by_its_seed_and_of_its_size():
  first = evaluation.sample(10, 4, seed=3)
  assert first.sum() == 4 and first.tolist() == evaluation.sample(10, 4, seed=3).tolist()
  assert first.tolist() != evaluation.sample(10, 4, seed=4).tolist()
  assert evaluation.sample(4, 4, seed=3) is None and evaluation.sample(10, 0, seed=3) is None
