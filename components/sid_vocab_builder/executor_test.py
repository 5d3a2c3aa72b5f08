import json
import os

import numpy as np
import pytest
import tensorflow as tf

import conftest
from formats import artifacts, sid_vocabulary
from formats.errors import InputDataError
from components.sid_vocab_builder import adaptation_report, executor
from models.sid_adaptation import spm, tokenizers

L, K = 2, 4
CODES = [[0, 1], [0, 1], [0, 2], [3, 3], [1, 0], [2, 2]]  # items 1..6; 5 and 6 never impressed
BACKFILL = [{"item_id": i} for i in [1] * 5 + [2] * 4 + [3] * 2 + [4]]


def _run(tmp_path, codes=CODES, splits=None, budgets=(9, 12, 16), train_splits=("backfill",)):
  splits = splits if splits is not None else {"backfill": BACKFILL, "span_1": [{"item_id": 5}]}
  items = conftest.examples_artifact(tmp_path / "items", {"items": [{"item_id": i, "title": f"movie {i}"}
                                                                   for i in range(1, len(codes) + 1)]})
  outputs = {"vocabulary": [artifacts.SidVocabulary()], "report": [artifacts.SidAdaptationReport()]}
  for key, [artifact] in outputs.items():
    artifact.uri = str(tmp_path / key)
    os.makedirs(artifact.uri, exist_ok=True)
  executor.Executor(conftest.beam_context()).Do(
      {"semantic_ids": [conftest.semantic_ids_artifact(tmp_path / "sids", codes, K, num_levels=L)],
       "examples": [conftest.examples_artifact(tmp_path / "examples", splits)],
       "items": [items]},
      outputs, {"table_budgets": list(budgets), "train_splits": list(train_splits),
                "max_bigram_rows": tokenizers.DEFAULT_MAX_ROWS})
  return outputs["vocabulary"][0], outputs["report"][0]


def test_vocabularies_per_budget_learned_from_training_impressions_only(tmp_path):
  vocabulary, report_artifact = _run(tmp_path)
  settings = sid_vocabulary.settings(vocabulary)
  assert settings["table_budgets"] == [9, 12, 16] and settings["impressions"] == 12
  assert vocabulary.get_int_custom_property("impressions") == 12
  item_ids, impressions = sid_vocabulary.load_impressions(vocabulary)
  assert item_ids.tolist() == [1, 2, 3, 4, 5, 6] and impressions.tolist() == [5, 4, 2, 1, 0, 0]
  codes = np.array(CODES)
  for budget in (9, 12, 16):
    model = sid_vocabulary.load_model(vocabulary, budget)
    tokenizer = tokenizers.create("spm", L, K, spm_model=model)
    assert tokenizer.num_rows <= budget
    pieces = spm.library_pieces(model, codes, K)
    assert tokenizer(tf.range(1, 7), tf.constant(codes)).to_list() == pieces
    if budget == 9:  # 8 symbols + <unk>: room for no merge
      assert all(len(p) == 2 for p in pieces)
  assert len(spm.library_pieces(sid_vocabulary.load_model(vocabulary, 12), codes[:1], K)[0]) == 1
  with pytest.raises(ValueError, match=r"no SentencePiece vocabulary for a 100-row table .* \[9, 12, 16\]"):
    sid_vocabulary.load_model(vocabulary, 100)

  report = json.load(open(os.path.join(report_artifact.uri, executor.REPORT_JSON)))
  assert sorted(os.listdir(report_artifact.uri)) == ["figure4.png", "report.json"]
  assert report["impressions"] == 12 and report["impressed_items"] == 4 and report["head_items"] == 1
  kinds = [(r["adaptation"], r["table_budget"]) for r in report["adaptations"]]
  assert kinds[:2] == [("unigram", None), ("bigram", None)]
  assert sorted(k for k in kinds[2:]) == sorted((kind, b) for b in (9, 12, 16)
                                                for kind in ("spm", "prefix_ngram", "random_hash"))
  unigram = report["adaptations"][0]
  assert unigram["table_rows"] == 8 and unigram["rows_used"] == 8 and unigram["lookups_per_item"] == 2
  spm16 = next(r for r in report["adaptations"] if r["adaptation"] == "spm" and r["table_budget"] == 16)
  assert spm16["lookups_head"] == 1 and spm16["lookups_rest"] > 1
  top = report["spm_frequent_pieces"]["16"][0]
  assert top["codes"] == [[0, 0], [1, 1]] and top["impressions"] == 9 and top["titles"] == ["movie 1", "movie 2"]


def test_shared_row_fraction_and_head():
  assert adaptation_report.shared_row_fraction(["a", "b", "c", "a"], [0, 0, 1, 0]) == pytest.approx(2 / 3)
  assert adaptation_report.head_mask(np.array([1, 9, 0, 5, 5, 0, 0, 0, 0, 0, 0])).tolist() == \
      [False, True, False, True] + [False] * 7


@pytest.mark.parametrize("case, kwargs, message", [
    ("code out of range", dict(codes=CODES[:-1] + [[2, 4]]), r"outside \[0, 4\): item 6: \[2, 4\]"),
    ("wrong length", dict(codes=[[0, 1, 2]] * 3), r"expected \[items, 2\] codes"),
    ("budget too small", dict(budgets=(8, 16)), "vocabulary size 8 is below the 9 rows"),
    ("unknown split", dict(train_splits=("span_9",)), r"training splits \['span_9'\] are not in the examples"),
    ("empty split", dict(splits={"backfill": []}), r"no interactions in the training splits \['backfill'\]"),
])
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, case, kwargs, message):
  del case
  with pytest.raises(InputDataError, match=message):
    _run(tmp_path, **kwargs)
  assert os.listdir(tmp_path / "vocabulary") == [] and os.listdir(tmp_path / "report") == []
