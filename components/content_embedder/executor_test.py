"""ContentEmbedder's executor: full and incremental (previous embeddings) runs, encoder export."""

import functools
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import path_utils

import conftest
from formats import artifacts, item_embeddings
from formats.errors import InputDataError
from models.content_encoder import encoder as content_encoder
from components.content_embedder import executor
from pipeline import configs

DIM = content_encoder.EMBEDDING_DIM
TEXTS = {1: "Toy Story (1995). Genres: Animation", 2: "Heat (1995). Genres: Crime",
         4: "Never Rated (2000). Genres: Drama", 5: "Up (2009). Genres: Adventure. Tags: balloons"}


def _items(tmp_path, ids):
  return conftest.examples_artifact(
      tmp_path / "items", {"items": [{"item_id": i, "content_text": TEXTS[i]} for i in ids]})


def _previous(tmp_path, count, dim=DIM):
  """Embeddings of items 1..count, random (so that no encoder could reproduce them)."""
  return conftest.embeddings_artifact(
      tmp_path / "previous", np.random.default_rng(0).normal(size=(count, dim)).astype(np.float32))


def _embed(tmp_path, items, **inputs_and_props):
  """Runs Do(); keyword `previous_embeddings` is an input, the others are exec properties."""
  embeddings, encoder = artifacts.ItemEmbeddings(), artifacts.TextEncoderModel()
  embeddings.uri, encoder.uri = str(tmp_path / "embeddings"), str(tmp_path / "encoder")
  previous = inputs_and_props.pop("previous_embeddings", None)
  frozen = inputs_and_props.pop("frozen_encoder", None)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=list(configs.BEAM_PIPELINE_ARGS), tmp_dir=str(tmp_path / "tmp"), unique_id="1")
  executor.Executor(context).Do(
      {"items": [items], "previous_embeddings": [previous] if previous else [],
       "frozen_encoder": [frozen] if frozen else []},
      {"embeddings": [embeddings], "encoder": [encoder]}, dict(batch_size=2, **inputs_and_props))
  return embeddings, encoder


def _records(artifact):
  """item id -> serialized tf.Example, as written."""
  files = tf.io.gfile.glob(item_embeddings.files_pattern(artifact.uri))
  return {item_embeddings.from_example(record)[0]: record
          for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()}


def _export_length_encoder(export_dir, model_dir=None, nan_text=""):
  """A stand-in for MiniLM that exports in a second: text -> len(text) * ones(DIM), NaNs for
  `nan_text` (none of TEXTS by default)."""
  del model_dir

  def serve(text):
    lengths = tf.where(text == nan_text, np.nan, tf.cast(tf.strings.length(text), tf.float32))
    return {content_encoder.OUTPUT_KEY: lengths[:, tf.newaxis] * tf.ones([1, DIM])}
  module = tf.Module()
  module.serve = tf.function(
      serve, input_signature=[tf.TensorSpec([None], tf.string, name=content_encoder.INPUT_KEY)])
  tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
  return export_dir


def test_new_items_get_minilm_vectors_and_previous_records_are_copied(tmp_path):
  previous = _previous(tmp_path, 2)
  embeddings, encoder = _embed(tmp_path, _items(tmp_path, [1, 2, 4, 5]), previous_embeddings=previous)
  records, before = _records(embeddings), _records(previous)
  assert sorted(records) == [1, 2, 4, 5]
  assert {i: records[i] for i in (1, 2)} == before
  serve = tf.saved_model.load(path_utils.serving_model_path(encoder.uri)).signatures["serving_default"]
  expected = serve(text=tf.constant([TEXTS[4], TEXTS[5]]))[content_encoder.OUTPUT_KEY].numpy()
  np.testing.assert_allclose([item_embeddings.from_example(records[i])[1] for i in (4, 5)], expected,
                             atol=1e-6)
  assert [embeddings.get_int_custom_property(k) for k in ("count", "dim", "new_items")] == [4, DIM, 2]
  assert embeddings.get_string_custom_property("source") == content_encoder.MODEL_NAME
  assert encoder.get_int_custom_property("exported") == 1


def test_daily_run_embeds_with_a_temporary_encoder_and_exports_none(tmp_path, monkeypatch):
  monkeypatch.setattr(content_encoder, "export_saved_model", _export_length_encoder)
  previous = _previous(tmp_path, 3)  # item 3 has left the corpus: it keeps its vector
  embeddings, encoder = _embed(tmp_path, _items(tmp_path, [1, 2, 4, 5]), previous_embeddings=previous,
                               export_encoder=0)
  records = _records(embeddings)
  assert {i: records[i] for i in (1, 2, 3)} == _records(previous)
  for i in (4, 5):
    np.testing.assert_array_equal(item_embeddings.from_example(records[i])[1],
                                  np.full(DIM, len(TEXTS[i]), np.float32))
  assert embeddings.get_int_custom_property("count") == 5
  assert embeddings.get_int_custom_property("new_items") == 2
  assert encoder.get_int_custom_property("exported") == 0
  assert not os.path.exists(encoder.uri)


def test_daily_run_embeds_with_the_refreshs_frozen_encoder(tmp_path, monkeypatch):
  monkeypatch.setattr(content_encoder, "export_saved_model", lambda *_: pytest.fail("encoder built"))
  frozen = artifacts.TextEncoderModel()
  frozen.uri = str(tmp_path / "refresh_encoder")
  _export_length_encoder(path_utils.serving_model_path(frozen.uri))
  embeddings, encoder = _embed(tmp_path, _items(tmp_path, [1, 2, 4]), previous_embeddings=_previous(tmp_path, 2),
                               export_encoder=0, frozen_encoder=frozen)
  np.testing.assert_array_equal(item_embeddings.from_example(_records(embeddings)[4])[1],
                                np.full(DIM, len(TEXTS[4]), np.float32))
  assert encoder.get_int_custom_property("exported") == 0


def test_zero_new_items_copy_the_previous_embeddings_without_building_the_encoder(tmp_path, monkeypatch):
  monkeypatch.setattr(content_encoder, "export_saved_model", lambda *_: pytest.fail("encoder built"))
  previous = _previous(tmp_path, 2)
  embeddings, encoder = _embed(tmp_path, _items(tmp_path, [1, 2]), previous_embeddings=previous,
                               export_encoder=0)
  assert _records(embeddings) == _records(previous)
  assert [embeddings.get_int_custom_property(k) for k in ("count", "dim", "new_items")] == [2, DIM, 0]
  assert encoder.get_int_custom_property("exported") == 0


def test_previous_embeddings_of_another_dimension_are_refused(tmp_path):
  previous = _previous(tmp_path, 2, dim=8)
  with pytest.raises(InputDataError, match=f"previous item embeddings at {previous.uri} are 8-d, "
                                           f"all-MiniLM-L6-v2 gives {DIM}-d"):
    _embed(tmp_path, _items(tmp_path, [1, 2, 4]), previous_embeddings=previous, export_encoder=0)


def test_a_nan_vector_from_the_encoder_is_refused_with_the_item_named(tmp_path, monkeypatch):
  monkeypatch.setattr(content_encoder, "export_saved_model",
                      functools.partial(_export_length_encoder, nan_text=TEXTS[5]))
  with pytest.raises(InputDataError, match=r"^ContentEmbedder output: unusable item embeddings:\n"
                                           r"  NaN or Inf values: 1 items: 5$"):
    _embed(tmp_path, _items(tmp_path, [1, 2, 4, 5]), previous_embeddings=_previous(tmp_path, 2),
           export_encoder=0)
