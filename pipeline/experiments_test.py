import pytest

from models.ranking import evaluation
from pipeline import experiments


def _run(arm, representation, seed, auc, history=False):
  slices = {name: {"auc": auc, "examples": 10, "spans": 1} for name in evaluation.SLICES}
  return {"arm": arm, "representation": representation, "seed": seed, "use_history": history,
          "embedding_rows": 100, "lookups_per_item": 1.0, "slices": slices}


def test_relative_auc_is_against_the_smallest_random_hash_of_the_same_seed_and_setting():
  runs = [_run("random_hash@1024-history", "random_hash", 0, 0.60), _run("random_hash@1024-history", "random_hash", 1, 0.50),
          _run("spm@4096-history", "spm", 0, 0.66), _run("spm@4096-history", "spm", 1, 0.55)]
  rows = {r["arm"]: r for r in experiments.aggregate(runs, budgets=[1024, 4096])}
  spm = rows["spm@4096-history"]
  assert spm["overall_auc"]["mean"] == pytest.approx(0.605) and spm["overall_auc"]["n"] == 2
  assert spm["overall_relative_pct"]["mean"] == pytest.approx(10.0)  # +10% for both seeds
  assert spm["overall_relative_pct"]["std"] == pytest.approx(0.0, abs=1e-9)
  assert rows["random_hash@1024-history"]["overall_relative_pct"]["mean"] == pytest.approx(0.0)


def test_grid_covers_every_representation_and_both_history_settings():
  arms = experiments.grid([1024, 4096, 16384])
  assert len(arms) == 2 * (3 * 3 + 3 + 2)
  assert {a["representation"] for a in arms} == {"random_hash", "spm", "prefix_ngram", "dense", "unigram", "bigram"}
