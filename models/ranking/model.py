"""RankingModel: P(liked) of a candidate item from the candidate, the current item and (optionally)
the user's history, each through the selected item representation, then an MLP tower (TFRS Ranking
task, sigmoid cross-entropy, AUC). Singh et al. 2023, section 4. Optionally also the user id (users.py),
the user's and the item's causal counters and the history's like-rate (formats/interaction_features.py),
the like-rates of the candidate's SID clusters (sid_clusters.py), and DCN-v2 cross layers (Wang et al.
2021, arXiv 2008.13535) before the MLP. Item vectors get dropout while training
(RankingConfig.item_dropout). With counter_tower a second tower reads the counting features alone, on its
own loss; the logit is the mean of both towers'.

Example:
  model = build(RankingConfig(representation="spm", table_rows=4096), catalog, spm_model=model_bytes)
  model.fit(dataset)                        # features: item_id, current_item, history, liked
  signatures.export(model, serving_dir)     # models/ranking/signatures.py: TF Serving signatures

Embedding tables are updated with the embedding optimizer (tf.tpu.experimental.embedding.Adagrad):
on TPU by the TPU itself, on CPU/GPU by its Keras twin applied to the table variables only, while
the tower uses Adam.
"""

import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from formats import interaction_features as fields
from models.ranking.catalog import Catalog, CatalogCodes
from models.ranking.config import RankingConfig
from models.ranking.history_attention import HistoryAttention
from models.ranking.items import DenseItems, PieceItems, pooled
from models.ranking import sid_clusters
from models.ranking.sid_clusters import SidClusterCounts
from models.ranking.users import HashedUsers
from models.sid_adaptation import tokenizers

PROBABILITY = "probability"
CONFIG_FILE = "ranking_config.json"
READ_CYCLE = 4  # Files read at a time, a record from each in turn (dataset).


def _tower(config: RankingConfig, cross_seed: int, dense_seed: int, output_seed: int
           ) -> Tuple[List[tfrs.layers.dcn.Cross], tf.keras.Sequential]:
  """The config's cross layers and MLP (hidden units, then the logit)."""
  glorot = tf.keras.initializers.GlorotUniform
  crosses = [tfrs.layers.dcn.Cross(kernel_initializer=glorot(cross_seed + i)) for i in range(config.cross_layers)]
  layers = [tf.keras.layers.Dense(int(round(units * config.width_multiplier)), activation="relu",
                                  kernel_initializer=glorot(dense_seed + i))
            for i, units in enumerate(config.hidden_units)]
  return crosses, tf.keras.Sequential(layers + [tf.keras.layers.Dense(1, kernel_initializer=glorot(output_seed))])


class RankingModel(tfrs.models.Model):
  """Item representation -> concat(candidate, current[, history]) -> MLP -> logit."""

  def __init__(self, config: RankingConfig, items: tf.keras.layers.Layer, users: Optional[HashedUsers] = None,
               sid_clusters: Optional[SidClusterCounts] = None, attention: Optional[HistoryAttention] = None,
               codes: Optional[CatalogCodes] = None):
    super().__init__()
    self.config = config
    self.items = items
    self.users = users
    self.sid_clusters = sid_clusters
    self.attention = attention
    self.codes = codes  # the attention's SID codes of candidates and history items
    self.crosses, self.tower = _tower(config, cross_seed=config.seed + 100, dense_seed=config.seed,
                                      output_seed=config.seed)
    self.counter_tower = None
    if config.uses_counter_tower:
      self.counter_crosses, self.counter_tower = _tower(config, cross_seed=config.seed + 300,
                                                        dense_seed=config.seed + 400, output_seed=config.seed + 500)
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.NONE),
        metrics=[tf.keras.metrics.AUC(name="auc", from_logits=True)])
    self.embedding_optimizer = None
    if self._embedding_layers():
      self.embedding_optimizer = tf.keras.optimizers.Adagrad(
          learning_rate=config.embedding_learning_rate, initial_accumulator_value=0.1)

  def create_variables(self) -> None:
    """Creates every variable eagerly, the optimizers' slots included. TensorFlow traces a tf.function that
    creates variables twice, so this saves a trace of the training step (about a second) in every run."""
    self(fields.defaults_batch([fields.NO_ITEM]))
    dense, embedding = self._variables_by_optimizer()
    self.optimizer.build(dense)
    if embedding:
      self.embedding_optimizer.build(embedding)

  def call(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    logits = self._logits(features, training)
    return tf.add_n(logits) / len(logits)

  def _logits(self, features: Dict[str, tf.Tensor], training: bool = False) -> List[tf.Tensor]:
    """The main tower's logit, and the counter tower's with counter_tower."""
    config = self.config
    counted = fields.windowed(features, config.counter_window)
    features = fields.windowed(features, config.history_window)
    history = fields.ragged(features[fields.HISTORY]) if config.reads_history else None
    inputs = {self.items.CONTENT_INPUT: features[self.items.CONTENT_INPUT]} \
        if self.items.CONTENT_INPUT in features else {}
    vectors = self.items(features[fields.ITEM_ID], features[fields.CURRENT_ITEM], history, **inputs)
    candidate = vectors.candidate
    # One user's current item and history may stand for a whole batch of candidates (serving).
    user = [vectors.current]
    split = config.use_history and config.split_history
    if split or config.history_attention:
      history_liked = fields.per_history_item(features, fields.HISTORY_LIKED)
      tf.debugging.assert_equal(history_liked.row_lengths(), history.row_lengths(),
                                message="history_liked needs one label per history item")
    if split:
      known, liked = vectors.known.flat_values, history_liked.flat_values > 0
      user += [pooled(vectors.history, vectors.known.with_flat_values(known & keep)) for keep in (liked, ~liked)]
    elif config.use_history:
      user.append(pooled(vectors.history, vectors.known))
    if config.history_attention:
      user.append(self._attend(features, candidate, vectors.history, history_liked,
                               inputs.get(PieceItems.CONTENT_INPUT), history))
    if training and config.item_dropout:
      candidate, *user = [tf.nn.dropout(vector, config.item_dropout, seed=config.seed + i)
                          for i, vector in enumerate([candidate] + user)]
    parts = [candidate] + [tf.broadcast_to(vector, tf.shape(candidate)) for vector in user]
    if self.users is not None:
      parts.append(self.users(features[fields.USER_ID], features[fields.USER_COUNTERS.count]))
    counting = []
    if config.use_counters:
      counting.append(fields.counter_features(counted, config.uses_decayed_counters))
    if self.sid_clusters is not None:
      rates = self.sid_clusters(features[fields.ITEM_ID], inputs.get(PieceItems.CONTENT_INPUT),
                                features.get(fields.SID_CLUSTER_COUNTS))
      # The item's own like-rate, smoothed towards its finest cluster's: a cold item starts from its cluster's.
      item = fields.like_rate(features, fields.ITEM_COUNTERS, prior=rates[:, -1])
      counting.append(tf.concat([rates, item[:, None]], axis=1))
    logits = [self._logit(parts + counting, self.crosses, self.tower)]
    if self.counter_tower is not None:
      logits.append(self._logit(counting, self.counter_crosses, self.counter_tower))
    return logits

  def _attend(self, features: Dict[str, tf.Tensor], candidate: tf.Tensor, history_vectors: tf.RaggedTensor,
              history_liked: tf.RaggedTensor, content_codes: Optional[tf.Tensor], history: tf.RaggedTensor
              ) -> tf.Tensor:
    """The history attention's vector per candidate, with the SID prefixes it shares with each history item
    and the items' ages."""
    candidate_ids = features[fields.ITEM_ID]
    ages = fields.per_history_item(features, fields.HISTORY_AGE_DAYS) if self.config.uses_history_ages else None
    if ages is not None:
      tf.debugging.assert_equal(ages.row_lengths(), history.row_lengths(),
                                message="history_age_days needs one age per history item")
    codes = {}
    if self.codes is not None:
      codes = dict(candidate_codes=self.codes(candidate_ids, content_codes),
                   history_codes=history.with_flat_values(self.codes(history.flat_values)))
    return self.attention(candidate, history_vectors, history_liked, history_age_days=ages, **codes)

  @staticmethod
  def _logit(parts: List[tf.Tensor], crosses, tower: tf.keras.Sequential) -> tf.Tensor:
    inputs = crossed = tf.concat(parts, axis=1)
    for cross in crosses:
      crossed = cross(inputs, crossed)
    return tf.squeeze(tower(crossed), axis=1)

  def warmup_features(self, span: Dict[str, np.ndarray], keep: Optional[np.ndarray] = None
                      ) -> Dict[str, np.ndarray]:
    """What the warm-up adds to each of its examples (`span`: their fields.COUNTING_SPEC columns, in the
    order ranking.dataset reads them): its SID-cluster counts from the interactions before it in time.
    With `keep`, the rows of the examples it marks only (ranking.dataset's `extra` with `keep`)."""
    if self.sid_clusters is None:
      return {}
    counts = sid_clusters.causal_counts(self.sid_clusters.clusters_of(span[fields.ITEM_ID]), span[fields.LABEL],
                                        span[fields.TIMESTAMP])
    return {fields.SID_CLUSTER_COUNTS: counts if keep is None else counts[keep]}

  def count(self, span: Dict[str, np.ndarray]) -> None:
    """After training on `span` (fields.COUNTING_SPEC columns): adds its interactions to the state that the
    next span's examples and serving read (the SID-cluster counts)."""
    if self.sid_clusters is not None:
      self.sid_clusters.add(self.sid_clusters.clusters_of(span[fields.ITEM_ID]), span[fields.LABEL])

  def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    labels = tf.cast(features[fields.LABEL], tf.float32)[:, None]
    logits = [logit[:, None] for logit in self._logits(features, training=training)]
    per_example = self.task(labels=labels, predictions=tf.add_n(logits) / len(logits), training=training)
    if self.counter_tower is not None:
      # Each tower learns on its own loss (an ensemble); the metrics follow the mean logit.
      per_example = tf.add_n([tf.nn.sigmoid_cross_entropy_with_logits(labels, logit)[:, 0] for logit in logits])
    # Summed over the global batch, divided by its size: under a tf.distribute strategy each replica's
    # gradients then sum to the batch mean's (one replica: the mean).
    return tf.nn.compute_average_loss(per_example)

  def _embedding_layers(self) -> List[tfrs.layers.embedding.TPUEmbedding]:
    return [layer.embedding for layer in (self.items, self.users) if isinstance(layer, (PieceItems, HashedUsers))]

  def _variables_by_optimizer(self) -> Tuple[List[tf.Variable], List[tf.Variable]]:
    """(the trainable variables self.optimizer updates, the embedding tables self.embedding_optimizer does)."""
    tables = {table.ref() for layer in self._embedding_layers() for table in layer.embedding_tables.values()}
    return ([v for v in self.trainable_variables if v.ref() not in tables],
            [v for v in self.trainable_variables if v.ref() in tables])

  # The step is plain TensorFlow (no Python control flow on tensors): converting the whole call graph
  # with AutoGraph made the first step of every continuous-training run cost 14 s.
  @tf.autograph.experimental.do_not_convert
  def train_step(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    with tf.GradientTape() as tape:
      loss = self.compute_loss(features, training=True)
    dense, embedding = self._variables_by_optimizer()
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
    dim = items.content_dim
  else:
    tokenizer = tokenizers.create(config.representation, catalog.codes.shape[1], catalog.codebook_size,
                                  num_rows=config.table_rows, spm_model=spm_model,
                                  max_rows=config.max_bigram_rows)
    if config.representation == "spm" and tokenizer.num_rows > config.table_rows:
      raise ValueError(f"the SentencePiece model has {tokenizer.num_rows} pieces, more than the "
                       f"{config.table_rows}-row budget")
    items = PieceItems(tokenizer, catalog, config.embedding_dim,
                       tf.tpu.experimental.embedding.Adagrad(config.embedding_learning_rate),
                       seed=config.seed, history=config.reads_history)
    dim = config.embedding_dim
  users = None
  if config.user_table_rows:
    users = HashedUsers(config.user_table_rows, config.embedding_dim,
                        tf.tpu.experimental.embedding.Adagrad(config.embedding_learning_rate), seed=config.seed)
  attention = codes = None
  if config.history_attention:
    attention = HistoryAttention(dim, config.attention_heads, catalog.codes.shape[1] if config.uses_sids else 0,
                                 ages=config.uses_history_ages, seed=config.seed + 600)
    codes = CatalogCodes(catalog) if config.uses_sids else None
  model = RankingModel(config, items, users, SidClusterCounts(catalog) if config.uses_sid_clusters else None,
                       attention, codes)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  model.create_variables()
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
            features: Optional[Dict[str, Any]] = None, cache: bool = False,
            extra: Optional[Dict[str, np.ndarray]] = None, keep: Optional[np.ndarray] = None) -> tf.data.Dataset:
  """Interaction tf.Examples (GZIP TFRecords) -> batches of parsed `features` (default: with label).

  Files are read interleaved, in a fixed order: two calls over the same files give the examples in the
  same order, so `keep` (booleans in that order) leaves out the examples it marks False, and `extra` (arrays
  with one row per example kept, in that order, e.g. computed from a first pass) joins each example's rows
  to its features. With `cache` (several passes over data that fits in memory) the
  decompressed records are kept in memory after the first pass; shuffling comes after, so each pass is
  reshuffled. Batches are parsed whole: parsing each example and caching the parsed tensors instead
  measured 3 to 5x slower per pass (ragged features re-batched).
  """
  patterns = [file_patterns] if isinstance(file_patterns, str) else file_patterns
  files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
  spec = features or fields.TRAINING_SPEC
  # Not in parallel: on 2 CPUs a parallel interleave read 709,540 records in 20.5 s, this one in 2.6 s (a
  # thread hand-off per small record). A fixed cycle, so that the order is the same on every machine.
  records = tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.string)).interleave(
      lambda name: tf.data.TFRecordDataset(name, compression_type="GZIP"), cycle_length=READ_CYCLE)
  parse = lambda batch: tf.io.parse_example(batch, spec)
  if keep is not None:
    records = (tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(keep)))
               .filter(lambda _, kept: kept).map(lambda example, _: example))
  if extra:
    records = tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(extra)))
    parse = lambda batch, rows: {**tf.io.parse_example(batch, spec), **rows}
  if cache:
    records = records.cache()
  if shuffle_seed is not None:
    records = records.shuffle(16384, seed=shuffle_seed, reshuffle_each_iteration=True)
  return (records.batch(batch_size)
          .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def most_recent(timestamps: np.ndarray, count: int) -> Optional[np.ndarray]:
  """Marks the `count` latest of `timestamps` (ties: the later read), or None when there are no more than
  `count` (or `count` is 0): what a warm-up trains on, so its cost is bounded whatever the backfill's size."""
  if not count or len(timestamps) <= count:
    return None
  keep = np.zeros(len(timestamps), bool)
  keep[np.argsort(timestamps, kind="stable")[-count:]] = True
  return keep


def columns(file_patterns, spec: Dict[str, tf.io.FixedLenFeature]) -> Dict[str, np.ndarray]:
  """The `spec` features of every example, as arrays in the order `dataset` reads them."""
  batches = [{name: values.numpy() for name, values in batch.items()}
             for batch in dataset(file_patterns, 65536, features=spec)]
  return {name: (np.concatenate([batch[name] for batch in batches]) if batches
                 else np.zeros([0], feature.dtype.as_numpy_dtype)) for name, feature in spec.items()}


def _checkpoint(model: RankingModel) -> tf.train.Checkpoint:
  optimizers = {"optimizer": model.optimizer}
  if model.embedding_optimizer is not None:
    optimizers["embedding_optimizer"] = model.embedding_optimizer
  return tf.train.Checkpoint(model=model, **optimizers)


# Settings that shape the variables: a warm start across a change of any of them is refused.
ARCHITECTURE = ("representation", "table_rows", "embedding_dim", "hidden_units", "width_multiplier",
                "use_history", "split_history", "use_counters", "user_table_rows", "cross_layers",
                "sid_like_rates", "counter_tower", "history_attention", "attention_heads", "history_ages",
                "decayed_counters")


def architecture(config: RankingConfig) -> Dict[str, object]:
  values = json.loads(config.to_json())
  return {name: values[name] for name in ARCHITECTURE}


def save_checkpoint(model: RankingModel, directory: str) -> str:
  """Weights and optimizer state, for the next span's warm start."""
  tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(f"{directory}/{CONFIG_FILE}", "w") as f:
    f.write(model.config.to_json())
  return _checkpoint(model).write(f"{directory}/ckpt")


def warm_start(model: RankingModel, directory: str) -> None:
  """Restores a checkpoint written by save_checkpoint into a model of the same architecture (built by `build`,
  so every one of its variables must be found)."""
  with tf.io.gfile.GFile(f"{directory}/{CONFIG_FILE}") as f:
    saved = json.load(f)
  unknown = [name for name in ARCHITECTURE if name not in saved]
  if unknown:
    raise ValueError(f"cannot warm-start from {directory}: it was written before the settings {unknown} existed; "
                     f"run a SID refresh, which trains a new warm-up model")
  base = architecture(RankingConfig.from_dict(saved))
  if base != architecture(model.config):
    changed = {k: (base[k], v) for k, v in architecture(model.config).items() if base[k] != v}
    raise ValueError(f"cannot warm-start from {directory}: (base, this run) differ in {changed}")
  status = _checkpoint(model).read(f"{directory}/ckpt")
  status.assert_existing_objects_matched()
