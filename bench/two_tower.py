"""TFRS's own two-tower retrieval, the model a TensorFlow Recommenders user builds first (Yi et al. 2019,
"Sampling-bias-corrected neural modeling"; the TFRS retrieval tutorial), as a bench baseline.

Query tower: the user id's embedding and the mean of the history's item embeddings, concatenated and
projected. Candidate tower: the item id's embedding. `tfrs.tasks.Retrieval` trains both with the in-batch
softmax (the other targets of a batch are the negatives), its logits corrected by each target's share of
the training data (`candidate_sampling_probability`, the logQ correction of Yi et al.: 0.080 Recall@10
instead of 0.048 on ml-latest-small's leave-one-out validation). Recommending scores the whole catalog by a
matmul (brute force) and keeps the best known items outside the history.

Example:
  model = TwoTower(items=catalog, users=user_ids).fit(train_sequences)
  model.recommend(histories, k=10, users=user_ids_of_histories)  # [n, 10] item ids
"""

import os
from typing import Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from models.retrieval.baselines import IdTable, Sequences

USER, HISTORY, ITEM, PROBABILITY = "user", "history", "item", "probability"


class TwoTowerModel(tfrs.Model):
  """The two towers and TFRS's retrieval task (in-batch softmax, no metrics while training)."""

  def __init__(self, users: int, items: int, dim: int):
    super().__init__()
    self.user_embedding = tf.keras.layers.Embedding(users, dim)
    self.history_embedding = tf.keras.layers.Embedding(items, dim)
    self.query_projection = tf.keras.layers.Dense(dim)
    self.candidate_embedding = tf.keras.layers.Embedding(items, dim)
    self.task = tfrs.tasks.Retrieval()

  def query(self, user: tf.Tensor, history: tf.Tensor) -> tf.Tensor:
    present = tf.cast(history > 0, tf.float32)[..., None]
    mean = tf.math.divide_no_nan(tf.reduce_sum(self.history_embedding(history) * present, 1),
                                 tf.reduce_sum(present, 1))
    return self.query_projection(tf.concat([self.user_embedding(user), mean], -1))

  def compute_loss(self, features, training=False) -> tf.Tensor:
    return self.task(self.query(features[USER], features[HISTORY]), self.candidate_embedding(features[ITEM]),
                     candidate_sampling_probability=features[PROBABILITY], compute_metrics=False)


class TwoTower:
  """A baselines.Recommender over a TwoTowerModel. `items` and `users` are the ids it may meet (the
  protocol's catalog); it recommends only items it was trained on."""

  def __init__(self, items: np.ndarray, users: np.ndarray, dim: int = 64, epochs: int = 5,
               update_epochs: int = 2, batch_size: int = 512, learning_rate: float = 0.1,
               max_history: int = 20, seed: int = 0):
    self.items, self.users = IdTable(items), IdTable(users)
    self.dim, self.epochs, self.update_epochs = dim, epochs, update_epochs
    self.batch_size, self.learning_rate, self.max_history, self.seed = batch_size, learning_rate, max_history, seed
    self.model: Optional[TwoTowerModel] = None

  def _train(self, sequences: Sequences, epochs: int) -> None:
    users, histories, targets = [], [], []
    for user, items, context in zip(sequences.users, sequences.items, sequences.context):
      for position in range(context, len(items)):
        users.append(user)
        histories.append(items[max(0, position - self.max_history):position])
        targets.append(items[position])
    if not targets:
      return
    self.items.learn(np.array(targets))
    targets = self.items.rows(np.array(targets))
    _, inverse, counts = np.unique(targets, return_inverse=True, return_counts=True)
    features = {USER: self.users.rows(np.array(users)), HISTORY: self.items.padded(histories, self.max_history),
                ITEM: targets, PROBABILITY: (counts / len(targets))[inverse].astype(np.float32)}
    data = tf.data.Dataset.from_tensor_slices(features).shuffle(len(targets), seed=self.seed)
    self.model.fit(data.batch(self.batch_size), epochs=epochs, verbose=0)

  def fit(self, sequences: Sequences) -> "TwoTower":
    tf.keras.utils.set_random_seed(self.seed)
    self.items.known[:] = False
    self.model = TwoTowerModel(self.users.size, self.items.size, self.dim)
    self.model.compile(optimizer=tf.keras.optimizers.Adagrad(self.learning_rate))
    self._train(sequences, self.epochs)
    return self

  def update(self, sequences: Sequences) -> "TwoTower":
    self._train(sequences, self.update_epochs)
    return self

  def recommend(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True,
                users: Optional[np.ndarray] = None) -> np.ndarray:
    if users is None:
      raise ValueError("the two-tower model needs the users of the histories")
    candidates = self.model.candidate_embedding.embeddings.numpy()
    return self.items.top_k_chunked(
        lambda part: self.model.query(self.users.rows(users[part]),
                                      self.items.padded(histories[part], self.max_history)).numpy() @ candidates.T,
        histories, k, exclude_history)
