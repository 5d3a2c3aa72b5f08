"""Beam executor of SidVocabBuilder: impressions per item, SentencePiece per budget, the report.

Impressions are counted with Beam (the interaction logs are the large input); SentencePiece then
trains on one weighted line per distinct SID, which stays small however many impressions there are.
Every check runs before anything is written, so a refused input publishes nothing.
"""

import json
import os
from typing import Any, Dict, List

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from formats import item_corpus, semantic_ids, sid_vocabulary, spans
from formats.errors import InputDataError
from formats.artifacts import SID_VOCABULARY_REPORT_FILE as REPORT_JSON
from components.sid_vocab_builder import adaptation_report
from models.sid_adaptation import spm

SCRATCH_DIR = ".impressions"
COUNTS_FILE = "counts.tsv"


def _item_id(record: bytes) -> int:
  return tf.train.Example.FromString(record).features.feature["item_id"].int64_list.value[0]


class Executor(base_beam_executor.BaseBeamExecutor):

  def _impressions(self, examples: types.Artifact, splits: List[str], scratch: str) -> Dict[int, int]:
    available = artifact_utils.decode_split_names(examples.split_names)
    unknown = [s for s in splits if s not in available]
    if unknown:
      raise InputDataError(f"training splits {unknown} are not in the examples "
                           f"(available: {', '.join(available)})")
    patterns = [os.path.join(artifact_utils.get_split_uri([examples], s), "*") for s in splits]
    counts_path = os.path.join(scratch, COUNTS_FILE)
    with self._make_beam_pipeline() as p:
      _ = (p
           # Patterns read with ReadAll, not a Read of a source, which Beam's DaskRunner cannot run.
           | "Patterns" >> beam.Create(patterns)
           | "Read" >> beam.io.ReadAllFromTFRecord()
           | "ItemIds" >> beam.Map(_item_id)
           | "Count" >> beam.combiners.Count.PerElement()
           | "Format" >> beam.MapTuple(lambda item, n: f"{item}\t{n}")
           | "Write" >> beam.io.WriteToText(counts_path, shard_name_template=""))
    with tf.io.gfile.GFile(counts_path) as f:
      counts = dict(tuple(map(int, line.split("\t"))) for line in f if line.strip())
    # The whole folder: the DaskRunner leaves the sink's beam-temp-* copies beside the file.
    tf.io.gfile.rmtree(scratch)
    return counts

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    spans.inherit_span(input_dict, output_dict)
    sids = artifact_utils.get_single_instance(input_dict["semantic_ids"])
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    items = artifact_utils.get_single_instance(input_dict["items"])
    vocabulary = artifact_utils.get_single_instance(output_dict["vocabulary"])
    report_artifact = artifact_utils.get_single_instance(output_dict["report"])
    budgets = sorted(set(exec_properties["table_budgets"]))
    splits = list(exec_properties["train_splits"])
    levels = sids.get_int_custom_property("num_levels")
    k = sids.get_int_custom_property("codebook_size")

    ids, codes, _ = semantic_ids.load(sids)
    if not len(ids):
      raise InputDataError(f"no Semantic IDs in {sids.uri}")
    semantic_ids.check(ids, codes, levels, k)
    try:
      for budget in budgets:
        spm.check_vocab_size(budget, levels, k)
    except ValueError as e:
      raise InputDataError(f"SID vocabulary: {e}") from e
    counts = self._impressions(examples, splits, os.path.join(vocabulary.uri, SCRATCH_DIR))
    if not counts:
      raise InputDataError(f"no interactions in the training splits {splits}: nothing to learn "
                           "a vocabulary from")
    weights = np.array([counts.get(int(i), 0) for i in ids], np.int64)
    known = set(ids.tolist())
    without_sid = sum(n for item, n in counts.items() if item not in known)
    models = {budget: spm.train(codes, weights, levels, k, budget) for budget in budgets}

    corpus = item_corpus.read_features(items, {"item_id": tf.int64, "title": tf.string})
    titles = {int(i): t.decode() for i, t in zip(corpus["item_id"], corpus["title"])}
    report = adaptation_report.build(ids, codes, weights, levels, k, models, titles,
                                     int(exec_properties["max_bigram_rows"]))
    report.update(train_splits=splits, impressions_without_sid=without_sid)

    spm_rows = {str(b): spm.processor(m).get_piece_size() for b, m in models.items()}
    sid_vocabulary.write(vocabulary, models, {
        "num_levels": levels, "codebook_size": k, "table_budgets": budgets, "spm_rows": spm_rows,
        "train_splits": splits, "impressions": int(weights.sum()), "model_type": "bpe"},
        ids, weights)
    vocabulary.set_int_custom_property("num_levels", levels)
    vocabulary.set_int_custom_property("codebook_size", k)
    vocabulary.set_string_custom_property("table_budgets", json.dumps(budgets))
    vocabulary.set_string_custom_property("spm_rows", json.dumps(spm_rows))
    vocabulary.set_int_custom_property("impressions", int(weights.sum()))

    adaptation_report.write_figure(report_artifact.uri, report)
    with tf.io.gfile.GFile(os.path.join(report_artifact.uri, REPORT_JSON), "w") as f:
      json.dump(report, f, indent=1)
