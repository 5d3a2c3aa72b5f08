import json
import os

import numpy as np
import pytest
import tensorflow as tf

import conftest
from formats import artifacts, item_embeddings, rqvae_model
from formats.errors import InputDataError
from components.rqvae_trainer import component, executor
from models.rqvae import saved_model

TINY_CONFIG = json.dumps({"num_levels": 2, "codebook_size": 2, "latent_dim": 4, "hidden_dim": 8,
                          "decoder_hidden_dim": 8, "pretrain_epochs": 1, "epochs": 2, "refine_epochs": 1,
                          "batch_size": 4, "kmeans_iterations": 2})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("rqvae")
  items = conftest.tiny_items(tmp)
  embeddings = artifacts.ItemEmbeddings()
  embeddings.uri = str(tmp / "embeddings")
  os.makedirs(embeddings.uri)
  rng = np.random.default_rng(0)
  path = os.path.join(embeddings.uri, f"{item_embeddings.FILE_PREFIX}-0{item_embeddings.FILE_SUFFIX}")
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
    for item_id in range(1, 5):
      writer.write(item_embeddings.to_example(item_id, rng.normal(size=6)))
  return {"embeddings": [embeddings], "items": [items]}


def _train(inputs, tmp_path, **props):
  model = artifacts.RQVAEModel()
  model.uri = str(tmp_path / "model")
  executor.Executor().Do(inputs, {"model": [model]}, {"config": TINY_CONFIG, **props})
  return model


def test_trains_and_publishes_a_frozen_model(inputs, tmp_path):
  model = _train(inputs, tmp_path)
  export_dir = os.path.join(model.uri, "Format-Serving")
  encode = saved_model.load_signatures(export_dir)[saved_model.ENCODE]
  codes = encode(embeddings=tf.zeros([3, 6]))[saved_model.CODES_KEY].numpy()
  assert codes.shape == (3, 2)
  assert model.get_int_custom_property("train_items") == 4
  assert rqvae_model.train_item_ids(model.uri).tolist() == [1, 2, 3, 4]
  assert rqvae_model.train_item_ids(str(tmp_path / "elsewhere")) is None
  assert len(json.loads(model.get_string_custom_property("utilisation"))) == 2
  history = json.load(open(os.path.join(model.uri, executor.HISTORY_FILE)))
  assert [(h["epoch"], h["phase"]) for h in history] == [
      (1, "pretrain"), (2, "train"), (3, "train"), (4, "refine")]


def test_cutoff_trains_on_items_seen_before_it(inputs, tmp_path):
  model = _train(inputs, tmp_path, train_items_first_seen_before="2018-01-02", version="v0")
  assert model.get_int_custom_property("train_items") == 2  # items 1 and 2 were rated on day 0
  assert rqvae_model.train_item_ids(model.uri).tolist() == [1, 2]
  assert model.get_string_custom_property("version") == "v0"


def test_bad_inputs_and_settings(inputs, tmp_path):
  with pytest.raises(InputDataError, match="fewer than codebook_size=2"):
    _train(inputs, tmp_path, train_items_first_seen_before="2018-01-01T00:00:01")
  with pytest.raises(InputDataError, match="no item embeddings to train on"):
    _train(inputs, tmp_path, train_items_first_seen_before="2000-01-01")
  with pytest.raises(ValueError, match="unknown RQ-VAE settings: levels"):
    component.RQVAETrainer(embeddings=None, items=None, config={"levels": 3})


def _codes(model, embeddings):
  encode = saved_model.load_signatures(os.path.join(model.uri, "Format-Serving"))[saved_model.ENCODE]
  return encode(embeddings=tf.constant(embeddings, tf.float32))[saved_model.CODES_KEY].numpy()


def test_a_base_model_is_where_training_starts(inputs, tmp_path):
  base = _train(inputs, tmp_path / "base", config=json.dumps({**json.loads(TINY_CONFIG), "seed": 3}))
  # No learning (learning rate 0, no refinement): the warm-started model encodes as its base does, whatever
  # its own seed; without the base it would not.
  frozen = json.dumps({**json.loads(TINY_CONFIG), "learning_rate": 0.0, "refine_epochs": 0, "seed": 5})
  warm = _train(dict(inputs, base_model=[base]), tmp_path / "warm", config=frozen)
  assert warm.get_string_custom_property(executor.WARM_STARTED_FROM) == base.uri
  assert base.get_string_custom_property(executor.WARM_STARTED_FROM) == ""
  history = json.load(open(os.path.join(warm.uri, executor.HISTORY_FILE)))
  assert [h["phase"] for h in history] == ["train", "train"]  # no pretraining, no k-means initialisation
  embeddings = np.random.default_rng(1).normal(size=(64, 6))
  np.testing.assert_array_equal(_codes(warm, embeddings), _codes(base, embeddings))

  wider = json.dumps({**json.loads(TINY_CONFIG), "latent_dim": 3})
  with pytest.raises(InputDataError, match=r"cannot start from the previous refresh's model: .*latent_dim: 4 -> 3"
                     r".*from scratch \(rqvae_warm_start false"):
    _train(dict(inputs, base_model=[base]), tmp_path / "wider", config=wider)
