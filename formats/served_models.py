"""What the pipelines push and the servers and clients read: the served models' names and a TF Serving base
directory, `<base>/<integer version>/saved_model.pb` with its warm-up requests.

The ranking model is served under the pipeline's name (PipelineConfig.pipeline_name, RANKING_MODEL_NAME by
default), the content encoder under models.content_encoder.SERVED_MODEL_NAME.
"""

import os
from typing import Dict, Iterable

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

RANKING_MODEL_NAME, RETRIEVAL_MODEL_NAME, RECOMMEND_MODEL_NAME = "sid_ranking", "sid_retrieval", "sid_recommend"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def write_warmup_requests(export_dir: str, requests: Iterable[predict_pb2.PredictRequest]) -> None:
  """Writes `requests` as the SavedModel's warmup file (TF Serving's format: PredictionLogs in a TFRecord),
  which TF Serving and this project's server replay before a version takes traffic."""
  tf.io.gfile.makedirs(os.path.join(export_dir, os.path.dirname(WARMUP_FILE)))
  with tf.io.TFRecordWriter(os.path.join(export_dir, WARMUP_FILE)) as writer:
    for request in requests:
      log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())


def versions_on_disk(base_path: str) -> Dict[int, str]:
  """version -> path for every complete version directory (numeric name, saved_model.pb present: the TFX
  Pusher writes it last, so a half-copied version is not seen)."""
  if not tf.io.gfile.isdir(base_path):
    return {}
  found = {}
  for entry in tf.io.gfile.listdir(base_path):
    entry = entry.rstrip("/")
    path = os.path.join(base_path, entry)
    if entry.isdigit() and tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
      found[int(entry)] = path
  return found
