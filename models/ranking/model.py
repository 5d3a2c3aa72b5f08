"""RankingModel: P(liked) of a candidate item from the candidate, the current item and (optionally)
the user's history, each through the selected item representation, then an MLP tower (TFRS Ranking
task, sigmoid cross-entropy, AUC). Singh et al. 2023, section 4.

Example:
  model = build(RankingConfig(representation="spm", table_rows=4096), catalog, spm_model=model_bytes)
  model.fit(dataset)                        # features: item_id, current_item, history, liked
  signatures.export(model, serving_dir)     # models/ranking/signatures.py: TF Serving signatures

Embedding tables are updated with the embedding optimizer (tf.tpu.experimental.embedding.Adagrad):
on TPU by the TPU itself, on CPU/GPU by its Keras twin applied to the table variables only, while
the tower uses Adam.
"""

import json
from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.ranking.items import DenseItems, PieceItems
from models.sid_adaptation import tokenizers

LABEL = "liked"
PROBABILITY = "probability"
# What the model reads from an interaction tf.Example; a missing current item or history is "none".
FEATURE_SPEC = {
    "item_id": tf.io.FixedLenFeature([], tf.int64),
    "current_item": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "history": tf.io.RaggedFeature(tf.int64),
}
TRAINING_SPEC = {**FEATURE_SPEC, LABEL: tf.io.FixedLenFeature([], tf.int64)}
CONFIG_FILE = "ranking_config.json"


class RankingModel(tfrs.models.Model):
  """Item representation -> concat(candidate, current[, history]) -> MLP -> logit."""

  def __init__(self, config: RankingConfig, items: tf.keras.layers.Layer):
    super().__init__()
    self.config = config
    self.items = items
    layers = [tf.keras.layers.Dense(int(round(units * config.width_multiplier)), activation="relu",
                                    kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed + i))
              for i, units in enumerate(config.hidden_units)]
    layers.append(tf.keras.layers.Dense(1, kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed)))
    self.tower = tf.keras.Sequential(layers)
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.AUC(name="auc", from_logits=True)])
    self.embedding_optimizer = None
    if isinstance(items, PieceItems):
      self.embedding_optimizer = tf.keras.optimizers.Adagrad(
          learning_rate=config.embedding_learning_rate, initial_accumulator_value=0.1)

  def call(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    history = features["history"]
    if isinstance(history, tf.SparseTensor):
      history = tf.RaggedTensor.from_sparse(history)
    content = {self.items.CONTENT_INPUT: features[self.items.CONTENT_INPUT]} \
        if self.items.CONTENT_INPUT in features else {}
    candidate, current, pooled_history = self.items(features["item_id"], features["current_item"], history,
                                                    **content)
    # One user's current item and history may stand for a whole batch of candidates (serving).
    user = [current] + ([pooled_history] if self.config.use_history else [])
    parts = [candidate] + [tf.broadcast_to(vector, tf.shape(candidate)) for vector in user]
    return tf.squeeze(self.tower(tf.concat(parts, axis=1)), axis=1)

  def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    return self.task(labels=tf.cast(features[LABEL], tf.float32), predictions=self(features, training=training),
                     training=training)

  def _table_refs(self):
    if not isinstance(self.items, PieceItems):
      return set()
    return {table.ref() for table in self.items.embedding.embedding_tables.values()}

  # The step is plain TensorFlow (no Python control flow on tensors): converting the whole call graph
  # with AutoGraph made the first step of every continuous-training run cost 14 s.
  @tf.autograph.experimental.do_not_convert
  def train_step(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    with tf.GradientTape() as tape:
      loss = self.compute_loss(features, training=True)
    tables = self._table_refs()
    dense = [v for v in self.trainable_variables if v.ref() not in tables]
    embedding = [v for v in self.trainable_variables if v.ref() in tables]
    gradients = tape.gradient(loss, dense + embedding)
    self.optimizer.apply_gradients(zip(gradients[:len(dense)], dense))
    if embedding:
      self.embedding_optimizer.apply_gradients(zip(gradients[len(dense):], embedding))
    return {**{m.name: m.result() for m in self.metrics}, "loss": loss}


def build(config: RankingConfig, catalog: Catalog, spm_model: Optional[bytes] = None) -> RankingModel:
  """A compiled RankingModel for `config`; SPM needs the SidVocabulary model of its budget."""
  # Seeds go to the initializers, not to tf.random.set_seed: that clears TensorFlow's eager kernel
  # cache, which owns the tensorflow-text SentencePiece resource of every model already built.
  if config.representation == "dense":
    items = DenseItems(catalog)
  else:
    tokenizer = tokenizers.create(config.representation, catalog.codes.shape[1], catalog.codebook_size,
                                  num_rows=config.table_rows, spm_model=spm_model,
                                  max_rows=config.max_bigram_rows)
    if config.representation == "spm" and tokenizer.num_rows > config.table_rows:
      raise ValueError(f"the SentencePiece model has {tokenizer.num_rows} pieces, more than the "
                       f"{config.table_rows}-row budget")
    items = PieceItems(tokenizer, catalog, config.embedding_dim,
                       tf.tpu.experimental.embedding.Adagrad(config.embedding_learning_rate),
                       seed=config.seed)
  model = RankingModel(config, items)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  return model


def dataset(file_patterns, batch_size: int, shuffle_seed: Optional[int] = None,
            features: Optional[Dict[str, Any]] = None) -> tf.data.Dataset:
  """Interaction tf.Examples (GZIP TFRecords) -> batches of parsed `features` (default: with label)."""
  patterns = [file_patterns] if isinstance(file_patterns, str) else file_patterns
  files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
  spec = features or TRAINING_SPEC
  records = tf.data.TFRecordDataset(tf.constant(files, tf.string), compression_type="GZIP")
  if shuffle_seed is not None:
    records = records.shuffle(16384, seed=shuffle_seed, reshuffle_each_iteration=True)
  return (records.batch(batch_size)
          .map(lambda batch: tf.io.parse_example(batch, spec), num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def _checkpoint(model: RankingModel) -> tf.train.Checkpoint:
  optimizers = {"optimizer": model.optimizer}
  if model.embedding_optimizer is not None:
    optimizers["embedding_optimizer"] = model.embedding_optimizer
  return tf.train.Checkpoint(model=model, **optimizers)


# Settings that shape the variables: a warm start across a change of any of them is refused.
ARCHITECTURE = ("representation", "table_rows", "embedding_dim", "hidden_units", "width_multiplier",
                "use_history")


def _architecture(config: RankingConfig) -> Dict[str, object]:
  values = json.loads(config.to_json())
  return {name: values[name] for name in ARCHITECTURE}


def save_checkpoint(model: RankingModel, directory: str) -> str:
  """Weights and optimizer state, for the next span's warm start."""
  tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(f"{directory}/{CONFIG_FILE}", "w") as f:
    f.write(model.config.to_json())
  return _checkpoint(model).write(f"{directory}/ckpt")


def warm_start(model: RankingModel, directory: str, features: Dict[str, tf.Tensor]) -> None:
  """Restores a checkpoint written by save_checkpoint into a model of the same architecture.

  `features` (one batch) builds the model's variables first, so every one of them must be found.
  """
  with tf.io.gfile.GFile(f"{directory}/{CONFIG_FILE}") as f:
    base = _architecture(RankingConfig.from_dict(json.load(f)))
  if base != _architecture(model.config):
    changed = {k: (base[k], v) for k, v in _architecture(model.config).items() if base[k] != v}
    raise ValueError(f"cannot warm-start from {directory}: (base, this run) differ in {changed}")
  model(features)
  status = _checkpoint(model).read(f"{directory}/ckpt")
  status.assert_existing_objects_matched()
