import numpy as np
import pytest
import tensorflow as tf

import conftest
from formats import artifacts, semantic_ids
from formats.errors import InputDataError
from components.semantic_id_assigner import executor


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
  artifact, model = conftest.rqvae_artifact(
      tmp_path_factory.mktemp("model"), np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32),
      num_levels=2, codebook_size=4)
  artifact.set_string_custom_property("version", "v1")  # as RQVAETrainer records it
  return model, artifact


def _assign(tmp_path, embeddings, model, previous=None, name="sids"):
  output = artifacts.SemanticIds()
  output.uri = str(tmp_path / name)
  executor.Executor(conftest.beam_context()).Do(
      {"embeddings": [embeddings], "model": [model], "previous_semantic_ids": [previous] if previous else []},
      {"semantic_ids": [output]}, {"batch_size": 16})
  return output


def _records(artifact):
  """item id -> serialized tf.Example, as written."""
  files = tf.io.gfile.glob(semantic_ids.files_pattern(artifact.uri))
  return {semantic_ids.from_example(record)[0]: record
          for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()}


def test_every_item_gets_a_unique_sid_from_the_frozen_model(tmp_path, frozen):
  model, model_artifact = frozen
  vectors = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
  vectors[30:] = vectors[0]  # ten exact copies of item 1 must collide
  output = _assign(tmp_path, conftest.embeddings_artifact(tmp_path / "embeddings", vectors), model_artifact)
  ids, codes, suffixes = semantic_ids.load(output)
  assert ids.tolist() == list(range(1, 41))
  np.testing.assert_array_equal(codes, model.encode(vectors).numpy())
  sids = {tuple(c) + (s,) for c, s in zip(codes, suffixes)}
  assert len(sids) == 40
  copies = suffixes[[0] + list(range(30, 40))]
  assert sorted(copies.tolist())[-1] >= 10
  assert output.get_int_custom_property("items") == 40
  assert output.get_string_custom_property("rqvae_version") == "v1"
  assert output.get_int_custom_property("largest_collision") >= 11
  assert output.get_int_custom_property("items_with_nonzero_suffix") == 40 - len({tuple(c) for c in codes})


def test_dimension_mismatch_is_refused(tmp_path, frozen):
  _, model_artifact = frozen
  with pytest.raises(InputDataError, match="expects 8-d embeddings, the item embeddings are 5-d"):
    _assign(tmp_path, conftest.embeddings_artifact(tmp_path / "embeddings", np.ones((4, 5), np.float32)),
            model_artifact)


def _daily(tmp_path, frozen, vectors, old_items):
  """(previous SIDs of items 1..old_items from a full run, the run over all `vectors` that extends them)."""
  _, model_artifact = frozen
  previous = _assign(tmp_path, conftest.embeddings_artifact(tmp_path / "old", vectors[:old_items]),
                     model_artifact, name="previous")
  embeddings = conftest.embeddings_artifact(tmp_path / "embeddings", vectors)
  return previous, _assign(tmp_path, embeddings, model_artifact, previous=previous)


def test_new_items_are_encoded_after_the_old_sids_which_stay_unchanged(tmp_path, frozen):
  model, _ = frozen
  vectors = np.random.default_rng(2).normal(size=(12, 8)).astype(np.float32)
  vectors[[1, 2, 9, 10]] = vectors[0]  # old items 1-3 and new items 10-11 share all codes
  previous, output = _daily(tmp_path, frozen, vectors, old_items=8)
  records, before = _records(output), _records(previous)
  assert sorted(records) == list(range(1, 13))
  assert {i: records[i] for i in range(1, 9)} == before
  ids, codes, suffixes = semantic_ids.load(output)
  np.testing.assert_array_equal(codes[8:], model.encode(vectors[8:]).numpy())
  _, old_codes, old_suffixes = semantic_ids.load(previous)
  largest_old = old_suffixes[(old_codes == old_codes[0]).all(axis=1)].max()
  assert old_suffixes[:3].tolist() == [0, 1, 2]  # items 1-3
  # New items sharing item 1's codes (items 10-11, and any the tiny model happens to put there) take
  # the next suffixes in id order.
  sharing = 8 + np.flatnonzero((codes[8:] == codes[0]).all(axis=1))
  assert {9, 10} <= set(sharing.tolist())
  assert suffixes[sharing].tolist() == list(range(largest_old + 1, largest_old + 1 + len(sharing)))
  assert len({tuple(c) + (s,) for c, s in zip(codes, suffixes)}) == 12
  assert [output.get_int_custom_property(k) for k in ("items", "new_items", "num_levels")] == [12, 4, 2]
  assert output.get_int_custom_property("distinct_codes") == len({tuple(c) for c in codes})


def test_zero_new_items_rewrite_the_previous_sids(tmp_path, frozen):
  vectors = np.random.default_rng(3).normal(size=(6, 8)).astype(np.float32)
  previous, output = _daily(tmp_path, frozen, vectors, old_items=6)
  assert _records(output) == _records(previous)
  assert [output.get_int_custom_property(k) for k in ("items", "new_items")] == [6, 0]


def test_sids_of_another_rqvae_are_refused(tmp_path, frozen):
  _, model_artifact = frozen
  previous = conftest.semantic_ids_artifact(tmp_path / "previous", [[0, 1], [2, 3]], codebook_size=8)
  embeddings = conftest.embeddings_artifact(tmp_path / "embeddings", np.ones((3, 8), np.float32))
  with pytest.raises(InputDataError, match=r"SIDs from another RQ-VAE: the previous Semantic IDs at "
                                           r".*previous have 2 levels of 8 codes, the frozen RQ-VAE at "
                                           r".* 2 of 4"):
    _assign(tmp_path, embeddings, model_artifact, previous=previous)


def test_previous_sids_without_an_embedding_are_refused(tmp_path, frozen):
  _, model_artifact = frozen
  previous = conftest.semantic_ids_artifact(tmp_path / "previous", [[0, 1]] * 5, codebook_size=4)
  embeddings = conftest.embeddings_artifact(tmp_path / "embeddings", np.ones((3, 8), np.float32))
  with pytest.raises(InputDataError, match=r"2 items of the previous Semantic IDs at .*previous have no "
                                           r"embedding in .*embeddings, the first: 4, 5"):
    _assign(tmp_path, embeddings, model_artifact, previous=previous)


def test_disambiguate_orders_by_item_id():
  assert semantic_ids.disambiguate([9, 3, 5]) == [(3, 0), (5, 1), (9, 2)]
