import numpy as np
import pytest

import conftest
from formats import artifacts, semantic_ids
from formats.errors import InputDataError
from components.semantic_id_assigner import executor


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
  artifact, model = conftest.rqvae_artifact(
      tmp_path_factory.mktemp("model"), np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32),
      num_levels=2, codebook_size=4)
  return model, artifact


def _assign(tmp_path, embeddings, model):
  output = artifacts.SemanticIds()
  output.uri = str(tmp_path / "sids")
  executor.Executor(conftest.beam_context()).Do(
      {"embeddings": [embeddings], "model": [model]}, {"semantic_ids": [output]}, {"batch_size": 16})
  return output


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
  assert output.get_int_custom_property("largest_collision") >= 11
  assert output.get_int_custom_property("items_with_nonzero_suffix") == 40 - len({tuple(c) for c in codes})


def test_dimension_mismatch_is_refused(tmp_path, frozen):
  _, model_artifact = frozen
  with pytest.raises(InputDataError, match="expects 8-d embeddings, the item embeddings are 5-d"):
    _assign(tmp_path, conftest.embeddings_artifact(tmp_path / "embeddings", np.ones((4, 5), np.float32)), model_artifact)


def test_disambiguate_orders_by_item_id():
  assert semantic_ids.disambiguate([9, 3, 5]) == [(3, 0), (5, 1), (9, 2)]
