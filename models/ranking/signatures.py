"""The serving SavedModel of a RankingModel: TF Serving signatures over raw item ids.

The model carries its catalog (item id -> SID codes, content) and its tokenizer, so clients send
item ids, never SIDs or pieces. Signatures:

  serving_default       examples: serialized interaction tf.Examples [B] -> probability [B]
                        (TF Serving's and TFMA's convention; the features of
                        formats/interaction_features.MODEL_SPEC)
  rank                  one user's request: history int64 [H] (oldest first, may be empty),
                        history_liked int64 [H] (1 where the user liked the history item),
                        history_age_days int64 [H] (whole days between each history item and now),
                        current_item int64 [] (0: none), candidates int64 [C], user_id int64 []
                        (0: none; users and candidates get their counters from the model's
                        snapshot, counter_lookup.py)
                        -> scores float32 [C] (P(liked), request order), ranking int32 [C]
                        (candidate indices, best first), scored_by string [C]
  rank_with_embeddings  rank + candidate_embeddings float32 [C, D]: content vectors of the candidates
                        (for new items: from the content encoder, served as its own model, see
                        models/content_encoder)

A candidate in the catalog is scored through its catalog row (scored_by "catalog"). One unknown to
the catalog is scored through its content when supplied (scored_by "content"): for SID
representations its SID comes from the frozen RQ-VAE, as a new item's would in the SID assignment
job (Singh et al. 2023, section 3.2: SIDs generalize to new items); for the dense baseline the
vector is used as is. Otherwise, or when its vector is not finite, it gets the defined fallback
(scored_by "fallback"): the zero item vector, so the score comes from the user's current item and
history alone (random hashing: the hashed id's row). Never an error, never NaN.
rank_with_embeddings exists only where content can reach the representation (not for random hashing).
The content encoder is not inside the model: at 89 MB it would make every pushed version 15 times
larger and slower to load; clients embed a new item's text with its own servable first.

`assets.extra/tf_serving_warmup_requests` holds one PredictionLog per signature: TF Serving and
serving/ replay them before a version takes traffic.

Example:
  export(model, "serving/sid_ranking/1", sample_items=catalog.item_ids[:8], sid_encoder=rqvae)
  rank = tf.saved_model.load("serving/sid_ranking/1").signatures["rank"]
  rank(history=tf.constant([1, 2], tf.int64), history_liked=tf.constant([1, 0], tf.int64),
       history_age_days=tf.constant([30, 0], tf.int64),
       current_item=tf.constant(2, tf.int64),
       candidates=tf.constant([3, 4, 5], tf.int64), user_id=tf.constant(7, tf.int64))["ranking"]
"""

import functools
from typing import Dict, Optional, Sequence

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tf_keras.src.saving.legacy.saved_model import utils as keras_saving

from formats import interaction_features as fields
from formats.feature_state import CounterSnapshot
from formats.interaction_features import NO_ITEM, NO_USER
from models.ranking.counter_lookup import CounterLookup
from models.ranking.items import DenseItems
from models.ranking.model import PROBABILITY, RankingModel
from formats import served_models

SERVING_DEFAULT, RANK = "serving_default", "rank"
RANK_WITH_EMBEDDINGS = "rank_with_embeddings"
HISTORY, CURRENT_ITEM, CANDIDATES, USER_ID = fields.HISTORY, fields.CURRENT_ITEM, "candidates", fields.USER_ID
HISTORY_LIKED = fields.HISTORY_LIKED
HISTORY_AGE_DAYS = fields.HISTORY_AGE_DAYS
CANDIDATE_EMBEDDINGS = "candidate_embeddings"
SCORES, RANKING, SCORED_BY = "scores", "ranking", "scored_by"
CATALOG, CONTENT, FALLBACK = "catalog", "content", "fallback"
# The frozen RQ-VAE's own signature (models/rqvae/saved_model.py).
_RQVAE_ENCODE, _RQVAE_INPUT, _RQVAE_CODES = "encode", "embeddings", "codes"

# The signatures are plain TensorFlow: AutoGraph's conversion of the model's call graph cost seconds
# per export and nothing else.
_graph_function = functools.partial(tf.function, autograph=False)
_WARMUP_UNKNOWN_ITEM = -1  # never a catalog id: warms up the content path
_REQUEST = [tf.TensorSpec([None], tf.int64, name=HISTORY), tf.TensorSpec([None], tf.int64, name=HISTORY_LIKED),
            tf.TensorSpec([None], tf.int64, name=HISTORY_AGE_DAYS),
            tf.TensorSpec([], tf.int64, name=CURRENT_ITEM), tf.TensorSpec([None], tf.int64, name=CANDIDATES),
            tf.TensorSpec([], tf.int64, name=USER_ID)]


class _Serving(tf.Module):
  """Holds the model, the frozen RQ-VAE whose graph the signatures call and the counters' snapshot."""

  def __init__(self, model: RankingModel, sid_encoder: Optional[tf.Module], counters: CounterSnapshot):
    super().__init__()
    self.model = model
    self.counters = CounterLookup(counters)
    self.sid_encoder = sid_encoder
    self.dense = isinstance(model.items, DenseItems)
    self.content_dim = None
    if self.dense:
      self.content_dim = int(model.items.content_dim)
    elif sid_encoder is not None and model.items.tokenizer.uses_codes:
      self.content_dim = int(sid_encoder.signatures[_RQVAE_ENCODE].structured_input_signature[1][
          _RQVAE_INPUT].shape[-1])

  def _content_input(self, embeddings: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Content vectors -> what the representation reads for unknown candidates (see items.py)."""
    if self.dense:
      return {DenseItems.CONTENT_INPUT: embeddings}
    finite = tf.reduce_all(tf.math.is_finite(embeddings), axis=1)
    codes = self.sid_encoder.signatures[_RQVAE_ENCODE](
        **{_RQVAE_INPUT: tf.where(finite[:, None], embeddings, 0.0)})[_RQVAE_CODES]
    return {self.model.items.CONTENT_INPUT: tf.where(finite[:, None], tf.cast(codes, tf.int64), -1)}

  def rank(self, history, history_liked, history_age_days, current_item, candidates, user_id, embeddings=None):
    tf.debugging.assert_positive(tf.size(candidates), message="no candidates to rank")
    tf.debugging.assert_equal(tf.size(history_liked), tf.size(history),
                              message="history_liked needs one label per history item")
    tf.debugging.assert_equal(tf.size(history_age_days), tf.size(history),
                              message="history_age_days needs one age per history item")
    features = {fields.ITEM_ID: candidates, fields.CURRENT_ITEM: current_item[None],
                fields.HISTORY: tf.RaggedTensor.from_tensor(history[None]),
                fields.HISTORY_LIKED: tf.RaggedTensor.from_tensor(history_liked[None]),
                fields.HISTORY_AGE_DAYS: tf.RaggedTensor.from_tensor(history_age_days[None]),
                fields.USER_ID: tf.fill(tf.shape(candidates), user_id), **self.counters(user_id, candidates)}
    known = self.model.items.rows(candidates) >= 0
    with_content = tf.zeros_like(known)
    if embeddings is not None:
      tf.debugging.assert_equal(tf.shape(embeddings)[0], tf.size(candidates),
                                message="candidate_embeddings needs one row per candidate")
      features.update(self._content_input(embeddings))
      with_content = ~known & tf.reduce_all(tf.math.is_finite(embeddings), axis=1)
    scores = tf.sigmoid(self.model(features))
    scored_by = tf.where(known, CATALOG, tf.where(with_content, CONTENT, FALLBACK))
    return {SCORES: scores, RANKING: tf.argsort(scores, direction="DESCENDING", stable=True),
            SCORED_BY: scored_by}


def _signatures(serving: _Serving) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  @_graph_function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def serve_examples(serialized):
    tf.debugging.assert_positive(tf.size(serialized), message="no examples to score")
    return {PROBABILITY: tf.sigmoid(serving.model(tf.io.parse_example(serialized, fields.MODEL_SPEC)))}

  signatures = {SERVING_DEFAULT: serve_examples,
                RANK: _graph_function(serving.rank, input_signature=_REQUEST)}
  if serving.content_dim:
    embeddings_spec = tf.TensorSpec([None, serving.content_dim], tf.float32, name=CANDIDATE_EMBEDDINGS)
    signatures[RANK_WITH_EMBEDDINGS] = _graph_function(serving.rank, input_signature=_REQUEST + [embeddings_spec])
  return {name: fn.get_concrete_function() for name, fn in signatures.items()}


def _warmup_requests(signatures, sample_items: Sequence[int], content_dim: Optional[int]):
  """One request per signature on catalog items, plus an unknown one where content is read (TF
  Serving's SavedModel warmup format)."""
  items = [int(i) for i in sample_items] or [NO_ITEM]
  example = tf.train.Example()
  example.features.feature["item_id"].int64_list.value.append(items[0])
  example.features.feature["history"].int64_list.value.extend(items[1:])
  example.features.feature[HISTORY_LIKED].int64_list.value.extend([1] * len(items[1:]))
  example.features.feature[HISTORY_AGE_DAYS].int64_list.value.extend([0] * len(items[1:]))
  user = {HISTORY: tf.make_tensor_proto(items[1:], tf.int64),
          HISTORY_LIKED: tf.make_tensor_proto([1] * len(items[1:]), tf.int64),
          HISTORY_AGE_DAYS: tf.make_tensor_proto([0] * len(items[1:]), tf.int64),
          CURRENT_ITEM: tf.make_tensor_proto(items[0], tf.int64), USER_ID: tf.make_tensor_proto(NO_USER, tf.int64)}
  with_unknown = items + [_WARMUP_UNKNOWN_ITEM]
  inputs = {
      SERVING_DEFAULT: {"examples": tf.make_tensor_proto([example.SerializeToString()])},
      RANK: {**user, CANDIDATES: tf.make_tensor_proto(items, tf.int64)},
      RANK_WITH_EMBEDDINGS: {**user, CANDIDATES: tf.make_tensor_proto(with_unknown, tf.int64),
                             CANDIDATE_EMBEDDINGS: tf.make_tensor_proto(
                                 tf.ones([len(with_unknown), content_dim or 0]).numpy())},
  }
  for name in signatures:
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = name
    for key, tensor in inputs[name].items():
      request.inputs[key].CopyFrom(tensor)
    yield request


def export(model: RankingModel, export_dir: str, sample_items: Sequence[int],
           sid_encoder: Optional[tf.Module] = None, counters: Optional[CounterSnapshot] = None) -> None:
  """Writes the serving SavedModel. `sid_encoder`: the frozen RQ-VAE SavedModel (loaded), which
  gives unknown candidates SIDs from their content; `counters`: the FeatureState after the model's last
  training span, needed when the model reads the user id or counters. `sample_items` (catalog ids)
  make the warmup requests."""
  if counters is None and (model.config.use_counters or model.config.user_table_rows):
    raise ValueError("the model reads the user id or counters: export it with the counters' snapshot")
  serving = _Serving(model, sid_encoder, counters or CounterSnapshot.empty())
  signatures = _signatures(serving)
  # A plain tf.Module, not a Keras SavedModel: servers and TFMA see only the signatures, and no
  # optimizer or training configuration is shipped. Nor are Keras's traces of every layer's call (what
  # keras.Model.save(save_traces=False) skips): they doubled the export time and nothing loads them.
  with keras_saving.keras_option_scope(save_traces=False):
    tf.saved_model.save(serving, export_dir, signatures=signatures)
  served_models.write_warmup_requests(export_dir, _warmup_requests(signatures, sample_items, serving.content_dim))
