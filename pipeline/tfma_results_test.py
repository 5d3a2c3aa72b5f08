import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from pipeline import tfma_results


def _write_metrics(directory, slices):
  """TFMA's metrics file: {slice key: [(metric, model name, is_diff, sub_key top_k or 0, value)]}."""
  with tf.io.TFRecordWriter(str(directory / "metrics-00000-of-00001.tfrecord")) as writer:
    for slice_key, values in slices.items():
      metrics = metrics_for_slice_pb2.MetricsForSlice(slice_key=tfma.slicer.serialize_slice_key(slice_key))
      for name, model, is_diff, top_k, value in values:
        entry = metrics.metric_keys_and_values.add()
        entry.key.name, entry.key.model_name, entry.key.is_diff = name, model, is_diff
        if top_k:
          entry.key.sub_key.top_k.value = top_k
        entry.value.double_value.value = value
      writer.write(metrics.SerializeToString())


def test_the_candidates_figures_are_read_not_the_baselines_nor_the_diffs(tmp_path):
  cold = (("item_segment", b"cold_start"),)
  _write_metrics(tmp_path, {
      (): [("auc", "baseline", False, 0, 0.6), ("auc", "candidate", False, 0, 0.8),
           ("auc", "candidate", True, 0, 0.2), ("auc", "candidate", False, 5, 0.99),
           ("example_count", "baseline", False, 0, 7.0), ("example_count", "candidate", False, 0, 10.0)],
      cold: [("example_count", "candidate", False, 0, 3.0), ("auc", "baseline", False, 0, 0.5)]})
  assert tfma_results.sliced_auc(str(tmp_path)) == {"overall": {"auc": 0.8, "examples": 10},
                                                    "cold_start": {"auc": None, "examples": 3}}


def test_a_run_without_a_baseline_has_one_unnamed_model(tmp_path):
  _write_metrics(tmp_path, {(): [("auc", "", False, 0, 0.7), ("example_count", "", False, 0, 4.0)]})
  assert tfma_results.sliced_auc(str(tmp_path)) == {"overall": {"auc": 0.7, "examples": 4}}
