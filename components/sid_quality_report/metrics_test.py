import numpy as np

from components.sid_quality_report import metrics


def test_prefix_similarity_matches_brute_force():
  rng = np.random.default_rng(0)
  codes = rng.integers(0, 3, size=(30, 2))
  vectors = rng.normal(size=(30, 5))
  rows = metrics.prefix_similarity(codes, vectors)
  unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
  for row in rows:
    length = row["prefix_length"]
    cosines = [unit[i] @ unit[j] for i in range(30) for j in range(i + 1, 30)
               if (codes[i, :length] == codes[j, :length]).all()]
    assert row["pairs"] == len(cosines)
    np.testing.assert_allclose(row["mean_pairwise_cosine"], np.mean(cosines), rtol=1e-9)
  assert rows[0]["subtries"] == 1 and rows[0]["subtrie_size_p50"] == 30


def test_prefix_agreement_ignores_code_labels_and_detects_disagreement():
  codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 0]])
  relabelled = (codes + 5) % 7
  same = metrics.prefix_agreement(codes, relabelled)
  assert all(r["adjusted_rand_index"] == 1.0 and r["pairs_kept_a_to_b"] == 1.0 for r in same)
  shuffled = metrics.prefix_agreement(codes, codes[[3, 0, 5, 1, 2, 4]])
  assert shuffled[0]["adjusted_rand_index"] < 0.5


def test_unique_ratio_and_example_subtries():
  codes = np.array([[0, 1], [0, 1], [0, 2], [1, 0]])
  assert metrics.unique_ratio(codes) == 0.75
  examples = metrics.example_subtries(codes, ["a", "b", "c", "d"], length=1, count=5, max_items=2,
                                      rng=np.random.default_rng(0))
  assert examples == [{"prefix": [0], "size": 3, "titles": ["a", "b"]}]


def test_code_changes_count_the_items_in_both_assignments_by_id():
  # Items 7, 3, 9 before; 3, 9, 11 after, in another order: 3 keeps its SID, 9 changes at level 2 only.
  previous = (np.array([7, 3, 9]), np.array([[0, 0], [1, 2], [1, 1]]))
  current = (np.array([9, 11, 3]), np.array([[1, 0], [4, 4], [1, 2]]))
  changes = metrics.code_changes(*previous, *current)
  assert changes["items_in_both"] == 2 and changes["items_new"] == 1
  assert changes["changed_share"] == [0.0, 0.5]
  assert changes["sid_changed_share"] == 0.5
  # The two share their first code before and after; no pair shares both codes before.
  kept = [row["pairs_kept_a_to_b"] for row in changes["prefix_agreement"]]
  assert kept[0] == 1.0 and np.isnan(kept[1])
  assert metrics.code_changes(np.array([1]), np.array([[0, 0]]), *current)["items_in_both"] == 0
