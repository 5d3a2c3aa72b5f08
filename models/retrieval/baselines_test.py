import numpy as np
import pytest

from models.retrieval import baselines
from models.retrieval.baselines import Sequences

# All-time counts: item 1: 1, 2: 2, 3: 3, 4: 1; the latest interaction is item 4 at time 9, before it 3 at 8.
POPULARITY = Sequences.of({1: [1, 2, 3], 2: [2, 3], 3: [3, 4]}, {1: [0, 1, 2], 2: [3, 4], 3: [8, 9]})
# Consecutive pairs: 1 -> 2 twice, 2 -> 3, 2 -> 4, 1 -> 3, 5 -> 3; all-time counts 1: 3, 2: 2, 3: 3, 4: 1, 5: 1.
CO_OCCURRENCE = Sequences.of({1: [1, 2, 3], 2: [1, 2, 4], 3: [1, 3], 4: [5, 3]})


@pytest.mark.parametrize("kwargs, ranking", [
    (dict(recent_fraction=1.0), [3, 2, 1, 4]),  # all-time counts, ties by the smaller id
    (dict(window_seconds=2), [3, 4, 2, 1]),  # items 3 and 4 tie in the window: all-time counts decide
    (dict(recent_fraction=0.1), [4, 3, 2, 1]),  # the newest interaction only (ceil(0.1 x 7) = 1)
])
def test_most_popular_counts_the_recent_window_then_all_time(kwargs, ranking):
  assert baselines.MostPopular(**kwargs).fit(POPULARITY).ranking.tolist() == ranking


def test_most_popular_recommends_past_the_history_and_pads():
  model = baselines.MostPopular(recent_fraction=0.1).fit(POPULARITY)
  assert model.recommend([np.array([3]), np.array([], np.int64)], k=3).tolist() == [[4, 2, 1], [4, 3, 2]]
  assert model.recommend([np.array([3])], k=3, exclude_history=False).tolist() == [[4, 3, 2]]
  assert model.recommend([np.array([3, 4])], k=4).tolist() == [[2, 1, -1, -1]]
  assert model.recommend([], k=2).shape == (0, 2)


def test_most_popular_update_adds_the_new_items_only():
  model = baselines.MostPopular(recent_fraction=1.0).fit(POPULARITY)
  # Item 2 is user 5's context, already counted: only item 4 is new. Recounting 2 would put it first.
  model.update(Sequences.of({5: [2, 4]}, {5: [10, 11]}, context={5: 1}))
  assert model.ranking.tolist() == [3, 2, 4, 1]
  assert model.fit(POPULARITY).ranking.tolist() == [3, 2, 1, 4]
  assert model.fit(Sequences.of({})).recommend([np.array([3])], k=2).tolist() == [[-1, -1]]


@pytest.mark.parametrize("kwargs, message", [
    (dict(window_seconds=0), "window_seconds must be positive"), (dict(recent_fraction=0), "recent_fraction")])
def test_most_popular_refuses_bad_windows(kwargs, message):
  with pytest.raises(ValueError, match=message):
    baselines.MostPopular(**kwargs)


def test_co_occurrence_follows_the_last_item_then_popularity():
  model = baselines.CoOccurrence(window=1).fit(CO_OCCURRENCE)
  assert model.recommend([np.array([1]), np.array([5, 2]), np.array([4]), np.array([], np.int64)],
                         k=4).tolist() == [[2, 3, 4, 5], [3, 4, 1, -1], [1, 3, 2, 5], [1, 3, 2, 4]]
  assert model.recommend([np.array([1])], k=4, exclude_history=False).tolist() == [[2, 3, 1, 4]]


def test_co_occurrence_window_counts_the_next_items():
  # With window 2, 1 -> 3 (user 1) and 1 -> 4 (user 2) count too: 2 and 3 tie, the more popular 3 first.
  assert baselines.CoOccurrence(window=2).fit(CO_OCCURRENCE).following(1).tolist() == [3, 2, 4]


def test_co_occurrence_update_counts_pairs_ending_in_new_items():
  model = baselines.CoOccurrence(window=1).fit(CO_OCCURRENCE)
  # Only 4 -> 3 is new; recounting the context would make 2 -> 4 twice as frequent as 2 -> 3.
  model.update(Sequences.of({2: [1, 2, 4, 3]}, context={2: 3}))
  assert model.following(2).tolist() == [3, 4]
  assert model.following(4).tolist() == [3]
  assert model.popular.ranking.tolist() == [3, 1, 2, 4, 5]


def test_co_occurrence_refuses_bad_input():
  with pytest.raises(ValueError, match="window must be at least 1"):
    baselines.CoOccurrence(window=0)
  with pytest.raises(ValueError, match="item ids must be in"):
    baselines.CoOccurrence().fit(Sequences.of({1: [-3, 2]}))


def test_sequences_refuse_misaligned_fields():
  with pytest.raises(ValueError, match="user 7: 2 items, 1 timestamps, context 0"):
    Sequences.of({7: [1, 2]}, {7: [5]})
  with pytest.raises(ValueError, match="context 3"):
    Sequences.of({7: [1, 2]}, context={7: 3})


def test_id_table_rows_histories_and_top_k():
  table = baselines.IdTable(np.array([30, 10, 20, 40]))
  assert table.rows(np.array([10, 40, 99])).tolist() == [1, 4, 0]
  assert table.padded([np.array([10, 20, 30]), np.array([40])], 2).tolist() == [[2, 3], [0, 4]]
  table.learn(np.array([10, 20, 30, 99]))  # 40 is never trained on: never recommended
  scores = np.array([[9.0, 1.0, 2.0, 3.0, 8.0], [0.0, 3.0, 1.0, 2.0, 5.0]])
  assert table.top_k(scores, [np.array([30]), np.array([], np.int64)], k=3).tolist() == [[20, 10, -1],
                                                                                     [10, 30, 20]]
  assert table.top_k(scores, [np.array([30])], k=2, exclude_history=False)[:1].tolist() == [[30, 20]]
  assert table.top_k(scores, [np.array([30])] * 2, k=6)[1].tolist() == [10, 20, -1, -1, -1, -1]
