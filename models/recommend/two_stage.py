"""The two-stage recommender: TIGER retrieval over the whole catalog, then the ranker on what it retrieved,
in one SavedModel with a `recommend` signature (retrieval and ranking over one Semantic-ID space).

It is assembled from the two pushed SavedModels and the latest catalog, with no training: the retrieval
model's encode/decode functions get the catalog's trie (models/retrieval/serving.py), so an item that got
its Semantic ID today is retrievable today; the ranker's `rank_with_embeddings` scores it through its
content (its SID from the ranker's frozen RQ-VAE) when its own catalog predates it.

  recommend   history int64 [H] (oldest first, may be empty), history_liked int64 [H], history_age_days
              int64 [H], user_id int64 [] (0: none), k int64 [] (> 0)
              -> items int64 [n] (best first by the ranker, n = min(k, retrieved)), ranking_scores float32 [n]
                 (P(liked)), retrieval_scores float32 [n] (log-probability of the SID), retrieval_rank int32 [n]
                 (0-based position in the retrieved list), scored_by string [n] (catalog / content / fallback)
              History items are never recommended. The ranker sees `num_candidates` retrieved items
              (default 100; k when larger); the current item is the history's last.
  retrieve    as the retrieval model's signature, over the same catalog

Example:
  export(TwoStage(retrieval_dir, ranking_dir, catalog, content_ids, content), "serving/sid_recommend/1")
  recommend = tf.saved_model.load("serving/sid_recommend/1").signatures["recommend"]
"""

import functools
from typing import Optional

import numpy as np
import tensorflow as tf

from formats.interaction_features import NO_ITEM
from models.ranking import signatures as ranking_signatures
from models.retrieval import serving as retrieval
from models.retrieval.sid_tokens import SidCatalog

RECOMMEND = "recommend"
HISTORY_LIKED = ranking_signatures.HISTORY_LIKED
HISTORY_AGE_DAYS = ranking_signatures.HISTORY_AGE_DAYS
ITEMS, RANKING_SCORES, RETRIEVAL_SCORES = "items", "ranking_scores", "retrieval_scores"
RETRIEVAL_RANK, SCORED_BY = "retrieval_rank", ranking_signatures.SCORED_BY
NUM_CANDIDATES = 100

_graph_function = functools.partial(tf.function, autograph=False)
REQUEST = [tf.TensorSpec([None], tf.int64, name=retrieval.HISTORY),
           tf.TensorSpec([None], tf.int64, name=HISTORY_LIKED),
           tf.TensorSpec([None], tf.int64, name=HISTORY_AGE_DAYS),
           tf.TensorSpec([], tf.int64, name=retrieval.USER_ID), tf.TensorSpec([], tf.int64, name=retrieval.K)]


class TwoStage(tf.Module):
  """Retrieval SavedModel + ranking SavedModel + catalog (and content vectors for new items)."""

  def __init__(self, retrieval_dir: str, ranking_dir: str, catalog: SidCatalog, content_ids: Optional[np.ndarray],
               content: Optional[np.ndarray], num_candidates: int = NUM_CANDIDATES):
    super().__init__()
    if num_candidates < 1:
      raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
    self.retriever = retrieval.load(retrieval_dir, catalog)
    self.ranker = tf.saved_model.load(ranking_dir)
    self.num_candidates = num_candidates
    self.with_content = (content is not None
                         and ranking_signatures.RANK_WITH_EMBEDDINGS in self.ranker.signatures)
    if self.with_content:
      self.content_rows = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
          tf.constant(content_ids, tf.int64), tf.range(len(content_ids), dtype=tf.int64)), -1)
      # A last row of NaN: "no content", which the ranker scores by its fallback.
      self.content = tf.constant(np.vstack([content, np.full([1, content.shape[1]], np.nan)]).astype(np.float32))

  def _rank(self, history, history_liked, history_age_days, user_id, candidates):
    current = tf.cond(tf.size(history) > 0, lambda: history[-1], lambda: tf.constant(NO_ITEM, tf.int64))
    request = {ranking_signatures.HISTORY: history, HISTORY_LIKED: history_liked, HISTORY_AGE_DAYS: history_age_days,
               ranking_signatures.CURRENT_ITEM: current, ranking_signatures.CANDIDATES: candidates,
               ranking_signatures.USER_ID: user_id}
    if not self.with_content:
      return self.ranker.signatures[ranking_signatures.RANK](**request)
    rows = self.content_rows.lookup(candidates)
    vectors = tf.gather(self.content, tf.where(rows >= 0, rows, tf.cast(tf.shape(self.content)[0] - 1, tf.int64)))
    return self.ranker.signatures[ranking_signatures.RANK_WITH_EMBEDDINGS](
        **request, **{ranking_signatures.CANDIDATE_EMBEDDINGS: vectors})

  def recommend(self, history, history_liked, history_age_days, user_id, k):
    tf.debugging.assert_positive(k, message="k must be > 0")
    tf.debugging.assert_equal(tf.size(history_liked), tf.size(history),
                              message="history_liked needs one label per history item")
    tf.debugging.assert_equal(tf.size(history_age_days), tf.size(history),
                              message="history_age_days needs one age per history item")
    retrieved = self.retriever.retrieve(history, user_id, tf.maximum(k, self.num_candidates))
    candidates, retrieval_scores = retrieved[retrieval.ITEMS], retrieved[retrieval.SCORES]

    def ranked():
      result = self._rank(history, history_liked, history_age_days, user_id, candidates)
      order = result[ranking_signatures.RANKING][:tf.cast(k, tf.int32)]
      return (tf.gather(candidates, order), tf.gather(result[ranking_signatures.SCORES], order),
              tf.gather(retrieval_scores, order), order, tf.gather(result[SCORED_BY], order))

    def nothing():  # every catalog item is in the history
      return (tf.zeros([0], tf.int64), tf.zeros([0], tf.float32), tf.zeros([0], tf.float32), tf.zeros([0], tf.int32),
              tf.zeros([0], tf.string))

    outputs = tf.cond(tf.size(candidates) > 0, ranked, nothing)
    return dict(zip((ITEMS, RANKING_SCORES, RETRIEVAL_SCORES, RETRIEVAL_RANK, SCORED_BY), outputs))


def export(model: TwoStage, export_dir: str) -> None:
  signatures = {
      RECOMMEND: _graph_function(model.recommend, input_signature=REQUEST).get_concrete_function(),
      retrieval.RETRIEVE: _graph_function(model.retriever.retrieve,
                                          input_signature=retrieval.REQUEST).get_concrete_function()}
  tf.saved_model.save(model, export_dir, signatures=signatures)
