import numpy as np
import tensorflow as tf

from models.ranking import model as ranking
from models.ranking.catalog import Catalog
from models.ranking.config import RankingConfig
from models.ranking.items import pooled


def test_pooled_is_the_mean_of_the_marked_items():
  history = tf.ragged.constant([[[1.0, 2.0], [3.0, 4.0], [7.0, 8.0]], [], [[5.0, 6.0]]], ragged_rank=1)
  keep = tf.ragged.constant([[True, False, True], [], [False]])
  np.testing.assert_array_equal(pooled(history, keep).numpy(), [[4.0, 5.0], [0.0, 0.0], [0.0, 0.0]])


def test_history_items_get_the_vectors_candidates_get():
  """One table, one lookup per history item: an item's history vector is its candidate vector, and unknown
  items (not in the catalog, or 0) are marked so that the pooled history leaves them out."""
  catalog = Catalog(item_ids=np.arange(1, 9), codes=np.array([[i % 4, i // 4] for i in range(8)]), codebook_size=4)
  model = ranking.build(RankingConfig(representation="unigram", embedding_dim=4, hidden_units=(8,)), catalog)
  history = tf.ragged.constant([[3, 999, 5], [0]], dtype=tf.int64)
  vectors = model.items(tf.constant([3, 5]), tf.constant([1, 1]), history)
  np.testing.assert_array_equal(vectors.history.to_tensor().numpy()[0, [0, 2]], vectors.candidate.numpy())
  assert vectors.known.to_list() == [[True, False, True], [False]]
  np.testing.assert_allclose(pooled(vectors.history, vectors.known).numpy()[0],
                             vectors.candidate.numpy().mean(axis=0), rtol=1e-6)
