"""RankingModel: P(liked) of a candidate item from the candidate, the current item and (optionally)
the user's history, each through the selected item representation, then an MLP tower (TFRS Ranking
task, sigmoid cross-entropy, AUC). Singh et al. 2023, section 4. Optionally also the user id (users.py),
the user's and the item's causal counters and the history's like-rate (formats/interaction_features.py),
and DCN-v2 cross layers (Wang et al. 2021, arXiv 2008.13535) before the MLP. Item vectors get dropout while
training (RankingConfig.item_dropout).

Example:
  model = build(RankingConfig(representation="spm", table_rows=4096), catalog, spm_model=model_bytes)
  model.fit(dataset)                        # features: item_id, current_item, history, liked
  signatures.export(model, serving_dir)     # models/ranking/signatures.py: TF Serving signatures

Embedding tables are updated with the embedding optimizer (tf.tpu.experimental.embedding.Adagrad):
on TPU by the TPU itself, on CPU/GPU by its Keras twin applied to the table variables only, while
the tower uses Adam.
"""

import json
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from formats import interaction_features as fields
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.ranking.items import DenseItems, PieceItems
from models.ranking.users import HashedUsers
from models.sid_adaptation import tokenizers

PROBABILITY = "probability"
CONFIG_FILE = "ranking_config.json"


class CounterInputs(tf.keras.layers.Layer):
  """counter_features [B, F] -> what the tower reads of them: the values (optionally standardised) and,
  with `buckets`, one embedded bucket per feature. The fitted statistics (RankingModel.adapt) are
  non-trainable variables, so checkpoints, warm starts and the exported model keep them."""

  def __init__(self, config: RankingConfig, **kwargs):
    super().__init__(**kwargs)
    self.normalization, self.buckets = config.counter_normalization, config.counter_buckets
    features = fields.COUNTER_FEATURES
    if self.normalization == "batch":
      self.batch_norm = tf.keras.layers.BatchNormalization()
    if self.normalization == "adapt":
      self.mean = self.add_weight(name="mean", shape=[features], initializer="zeros", trainable=False)
      self.variance = self.add_weight(name="variance", shape=[features], initializer="ones", trainable=False)
    if self.buckets:
      # Until fitted: evenly spaced over [0, 1], where most of the features lie.
      initial = tf.constant_initializer(
          np.tile(np.linspace(0, 1, self.buckets + 1)[1:-1], (features, 1)).astype(np.float32))
      self.boundaries = self.add_weight(name="boundaries", shape=[features, self.buckets - 1],
                                        initializer=initial, trainable=False)
      self.bucket_embedding = tf.keras.layers.Embedding(
          features * self.buckets, config.counter_bucket_dim,
          embeddings_initializer=tf.keras.initializers.RandomUniform(-0.05, 0.05, seed=config.seed + 200))

  @property
  def fitted(self) -> bool:
    """Whether adapt fits anything (statistics of the warm-up step's data)."""
    return self.normalization == "adapt" or bool(self.buckets)

  def adapt(self, counters: np.ndarray) -> None:
    """Fits the mean, variance and bucket boundaries on `counters` [N, F] (the warm-up step's data)."""
    if self.normalization == "adapt":
      self.mean.assign(counters.mean(axis=0).astype(np.float32))
      self.variance.assign(counters.var(axis=0).astype(np.float32))
    if self.buckets:
      quantiles = np.quantile(counters, np.linspace(0, 1, self.buckets + 1)[1:-1], axis=0).T
      self.boundaries.assign(quantiles.astype(np.float32))

  def call(self, counters: tf.Tensor, training: bool = False) -> tf.Tensor:
    values = counters
    if self.normalization == "batch":
      values = self.batch_norm(counters, training=training)
    elif self.normalization == "adapt":
      values = (counters - self.mean) / tf.sqrt(tf.maximum(self.variance, 1e-6))
    if not self.buckets:
      return values
    bucket = tf.searchsorted(self.boundaries, tf.transpose(counters), side="right")  # [F, B]
    rows = bucket + tf.range(fields.COUNTER_FEATURES)[:, tf.newaxis] * self.buckets
    embedded = self.bucket_embedding(tf.transpose(rows))  # [B, F, dim]
    return tf.concat([values, tf.reshape(embedded, [-1, embedded.shape[1] * embedded.shape[2]])], axis=1)


class RankingModel(tfrs.models.Model):
  """Item representation -> concat(candidate, current[, history]) -> MLP -> logit."""

  def __init__(self, config: RankingConfig, items: tf.keras.layers.Layer, users: Optional[HashedUsers] = None):
    super().__init__()
    self.config = config
    self.items = items
    self.users = users
    self.counters = CounterInputs(config) if config.use_counters else None
    self.crosses = [tfrs.layers.dcn.Cross(kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed + 100 + i))
                    for i in range(config.cross_layers)]
    layers = [tf.keras.layers.Dense(int(round(units * config.width_multiplier)), activation="relu",
                                    kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed + i))
              for i, units in enumerate(config.hidden_units)]
    layers.append(tf.keras.layers.Dense(1, kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed)))
    self.tower = tf.keras.Sequential(layers)
    self.counter_tower = None
    if config.counter_tower:
      self.counter_crosses = [tfrs.layers.dcn.Cross(
          kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed + 300 + i))
                              for i in range(config.cross_layers)]
      self.counter_tower = tf.keras.Sequential([tf.keras.layers.Dense(
          int(round(units * config.width_multiplier)), activation="relu",
          kernel_initializer=tf.keras.initializers.GlorotUniform(config.seed + 400 + i))
                                                for i, units in enumerate(config.hidden_units)]
                                               + [tf.keras.layers.Dense(1, kernel_initializer=(
                                                   tf.keras.initializers.GlorotUniform(config.seed + 500)))])
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.AUC(name="auc", from_logits=True)])
    self.embedding_optimizer = None
    if self._embedding_layers():
      self.embedding_optimizer = tf.keras.optimizers.Adagrad(
          learning_rate=config.embedding_learning_rate, initial_accumulator_value=0.1)

  def call(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    logits = self._logits(features, training)
    return tf.add_n(logits) / len(logits)

  def _logits(self, features: Dict[str, tf.Tensor], training: bool = False) -> List[tf.Tensor]:
    """The main tower's logit, and the counter tower's with counter_tower."""
    history = fields.ragged(features[fields.HISTORY])
    inputs = {self.items.CONTENT_INPUT: features[self.items.CONTENT_INPUT]} \
        if self.items.CONTENT_INPUT in features else {}
    if self.config.split_history:
      liked = fields.ragged(features[fields.HISTORY_LIKED])
      tf.debugging.assert_equal(liked.row_lengths(), history.row_lengths(),
                                message="history_liked needs one label per history item")
      liked = liked.with_flat_values(liked.flat_values > 0)
      inputs[self.items.OTHER_HISTORY] = tf.ragged.boolean_mask(history, ~liked)
      history = tf.ragged.boolean_mask(history, liked)
    candidate, current, *pooled_history = self.items(features[fields.ITEM_ID], features[fields.CURRENT_ITEM],
                                                     history, **inputs)
    # One user's current item and history may stand for a whole batch of candidates (serving).
    user = [current] + (pooled_history if self.config.use_history else [])
    if training and self.config.item_dropout:
      candidate, *user = [tf.nn.dropout(vector, self.config.item_dropout, seed=self.config.seed + i)
                          for i, vector in enumerate([candidate] + user)]
    parts = [candidate] + [tf.broadcast_to(vector, tf.shape(candidate)) for vector in user]
    if self.users is not None:
      parts.append(self.users(features[fields.USER_ID], features[fields.USER_COUNTERS.count]))
    counting = []
    if self.config.use_counters:
      counting.append(self.counters(fields.counter_features(features), training=training))
    if self.config.sid_like_rates:
      counting.append(fields.sid_like_rates(features))
    logits = [self._tower(parts + counting, self.crosses, self.tower)]
    if self.counter_tower is not None:
      logits.append(self._tower(counting, self.counter_crosses, self.counter_tower))
    return logits

  @staticmethod
  def _tower(parts: List[tf.Tensor], crosses, tower: tf.keras.Sequential) -> tf.Tensor:
    inputs = crossed = tf.concat(parts, axis=1)
    for cross in crosses:
      crossed = cross(inputs, crossed)
    return tf.squeeze(tower(crossed), axis=1)

  def adapt(self, features: Dict[str, tf.Tensor]) -> None:
    """Fits what the config fits on data (counter statistics) on `features`: the warm-up step's."""
    if self.counters is not None and self.counters.fitted:
      self.counters.adapt(fields.counter_features(features).numpy())

  def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    labels = tf.cast(features[fields.LABEL], tf.float32)
    if self.counter_tower is None:
      return self.task(labels=labels, predictions=self(features, training=training), training=training)
    # Each tower learns on its own loss (an ensemble); the metrics follow the mean logit.
    logits = self._logits(features, training=training)
    self.task(labels=labels, predictions=tf.add_n(logits) / len(logits), training=training)
    loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    return tf.add_n([loss(labels, logit) for logit in logits])

  def _embedding_layers(self) -> List[tfrs.layers.embedding.TPUEmbedding]:
    return [layer.embedding for layer in (self.items, self.users) if isinstance(layer, (PieceItems, HashedUsers))]

  def _table_refs(self):
    return {table.ref() for layer in self._embedding_layers() for table in layer.embedding_tables.values()}

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
                       seed=config.seed, split_history=config.split_history)
  users = None
  if config.user_table_rows:
    users = HashedUsers(config.user_table_rows, config.embedding_dim,
                        tf.tpu.experimental.embedding.Adagrad(config.embedding_learning_rate), seed=config.seed)
  model = RankingModel(config, items, users)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  return model


def use_step_learning_rates(model: RankingModel) -> None:
  """Sets both optimizers' learning rates to those of a continuous-training step after the warm-up (the
  config's times step_lr_scale); after warm_start, whose checkpoint holds the rates it was saved with.
  On TPU the embedding tables keep the embedding optimizer's rate (fixed when the TPUEmbedding is built)."""
  config = model.config
  model.optimizer.learning_rate.assign(config.learning_rate * config.step_lr_scale)
  if model.embedding_optimizer is not None:
    model.embedding_optimizer.learning_rate.assign(config.embedding_learning_rate * config.step_lr_scale)


def dataset(file_patterns, batch_size: int, shuffle_seed: Optional[int] = None,
            features: Optional[Dict[str, Any]] = None, cache: bool = False) -> tf.data.Dataset:
  """Interaction tf.Examples (GZIP TFRecords) -> batches of parsed `features` (default: with label).

  Files are read in parallel. With `cache` (several passes over data that fits in memory) the decompressed
  records are kept in memory after the first pass; shuffling comes after, so each pass is reshuffled.
  Batches are parsed whole: parsing each example and caching the parsed tensors instead measured 3 to 5x
  slower per pass (ragged features re-batched).
  """
  patterns = [file_patterns] if isinstance(file_patterns, str) else file_patterns
  files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
  spec = features or fields.TRAINING_SPEC
  records = tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.string)).interleave(
      lambda name: tf.data.TFRecordDataset(name, compression_type="GZIP"),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if cache:
    records = records.cache()
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
                "use_history", "split_history", "use_counters", "user_table_rows", "cross_layers",
                "counter_normalization", "counter_buckets", "counter_bucket_dim", "sid_like_rates",
                "counter_tower")


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
