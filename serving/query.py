"""Recommends movies for a user, or ranks given candidates, over gRPC (TF Serving API), and prints them with
their titles.

Works against serving/server.py and against TF Serving itself (same protos, same signatures):
  python -m serving.query --recommend --user USER_ID [--top 10]   # two-stage: retrieve 100 of the whole
                                                                    # catalog (TIGER), rank them, print the top
  python -m serving.query --user USER_ID                            # history from ratings.csv
  python -m serving.query --history 1,260,1196 --candidates 2571,4993,5952,1 \\
      --new_item "Dune: Part Two (2024). Genres: Action, Adventure, Sci-Fi"

The user's history is their last 20 rated movies (oldest first) and the current item the last one,
as in training. Candidates default to the 100 most rated movies the user has not rated. A
`--new_item` is a movie the model has never seen, given by its content text: the content encoder,
served as a model of its own (--encoder_model_name), embeds it, and the ranking model gives it a
Semantic ID from its frozen RQ-VAE (signature rank_with_embeddings).
"""

import argparse
import os
import sys
import time
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from formats import movielens
from formats.interaction_features import NO_USER, SECONDS_PER_DAY, liked
from models.content_encoder import INPUT_KEY as TEXT_INPUT
from models.content_encoder import OUTPUT_KEY as TEXT_EMBEDDING
from models.content_encoder import SERVED_MODEL_NAME as ENCODER_MODEL_NAME
from models.ranking import signatures
from models.recommend import two_stage
from formats.served_models import RANKING_MODEL_NAME, RECOMMEND_MODEL_NAME

DATA_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "ml-latest-small")
HISTORY_LENGTH = 20
NEW_ITEM_IDS = 10 ** 9  # ids of --new_item movies: far above any catalog id
AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE


def read_movielens(data_root: str) -> Tuple[Dict[int, str], Dict[int, List[Tuple[int, int, int]]]]:
  """movie id -> "title. Genres: ..." and user id -> [(timestamp, movie id, liked)] in time order, a
  second's ratings in file order, as ingestion orders them; rows ingestion would reject are left out."""
  paths = movielens.check_files(data_root)
  titles = {m.item_id: f"{m.title}. Genres: {', '.join(m.genres)}"
            for m in _rows(paths[movielens.MOVIES_FILE], movielens.parse_movie)}
  ratings: Dict[int, List[Tuple[int, int, int]]] = {}
  for r in sorted(_rows(paths[movielens.RATINGS_FILE], movielens.parse_rating), key=lambda r: (r.timestamp, r.line)):
    ratings.setdefault(r.user_id, []).append((r.timestamp, r.item_id, liked(r.rating)))
  return titles, ratings


def _rows(path: str, parse) -> Iterator[Any]:
  return (row for row in map(parse, movielens.data_lines(path)) if not isinstance(row, movielens.BadRow))


def _ids(text: Optional[str]) -> List[int]:
  return [int(part) for part in text.split(",") if part.strip()] if text else []


def set_model_spec(spec, model_name: str, version: Optional[int] = None) -> None:
  """Fills a request's model_spec: the model, and the version when pinned (else the latest)."""
  spec.name = model_name
  if version is not None:
    spec.version.value = version


class ModelUnavailable(Exception):
  """The model did not become available: still loading at the deadline, or every version failed."""


def wait_until_available(channel: grpc.Channel, model_name: str, seconds: float) -> None:
  stub = model_service_pb2_grpc.ModelServiceStub(channel)
  deadline = time.monotonic() + seconds
  while True:
    try:
      request = get_model_status_pb2.GetModelStatusRequest()
      set_model_spec(request.model_spec, model_name)
      states = stub.GetModelStatus(request, timeout=5).model_version_status
      if any(status.state == AVAILABLE for status in states):
        return
      failed = [status for status in states if status.status.error_message]
      if failed and len(failed) == len(states):
        raise ModelUnavailable(f"model {model_name!r} failed to load: version {failed[0].version}: "
                           f"{failed[0].status.error_message}")
    except grpc.RpcError as e:
      if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
        raise
    if time.monotonic() > deadline:
      raise ModelUnavailable(f"model {model_name!r} not available after {seconds:.0f} s")
    time.sleep(0.5)


def _available(channel: grpc.Channel, model_name: str) -> bool:
  try:
    wait_until_available(channel, model_name, 0)
    return True
  except ModelUnavailable:
    return False


def _history_inputs(request: predict_pb2.PredictRequest, history: Sequence[int],
                    history_liked: Optional[Sequence[int]], history_age_days: Optional[Sequence[int]]) -> None:
  """The history and, per item, its label (default: liked) and its age in days (default: 0, just now)."""
  for key, values, default in ((signatures.HISTORY, history, None), (signatures.HISTORY_LIKED, history_liked, 1),
                               (signatures.HISTORY_AGE_DAYS, history_age_days, 0)):
    values = [default] * len(history) if values is None else list(values)
    request.inputs[key].CopyFrom(tf.make_tensor_proto(values, tf.int64))


def rank_request(model_name: str, history: Sequence[int], current_item: int, candidates: Sequence[int],
                 embeddings: Optional[np.ndarray] = None, version: Optional[int] = None,
                 user_id: int = NO_USER, history_liked: Optional[Sequence[int]] = None,
                 history_age_days: Optional[Sequence[int]] = None) -> predict_pb2.PredictRequest:
  """A PredictRequest for the `rank` signature, or `rank_with_embeddings` when the candidates' content
  vectors are given. The model looks the user's and the candidates' counters up itself (NO_USER: none).
  `history_liked` defaults to every history item liked, `history_age_days` to 0 days for each."""
  request = predict_pb2.PredictRequest()
  set_model_spec(request.model_spec, model_name, version)
  request.model_spec.signature_name = signatures.RANK_WITH_EMBEDDINGS if embeddings is not None else signatures.RANK
  _history_inputs(request, history, history_liked, history_age_days)
  request.inputs[signatures.CURRENT_ITEM].CopyFrom(tf.make_tensor_proto(current_item, tf.int64))
  request.inputs[signatures.CANDIDATES].CopyFrom(tf.make_tensor_proto(list(candidates), tf.int64))
  request.inputs[signatures.USER_ID].CopyFrom(tf.make_tensor_proto(user_id, tf.int64))
  if embeddings is not None:
    request.inputs[signatures.CANDIDATE_EMBEDDINGS].CopyFrom(tf.make_tensor_proto(embeddings, tf.float32))
  return request


def recommend_request(model_name: str, history: Sequence[int], k: int, user_id: int = NO_USER,
                      history_liked: Optional[Sequence[int]] = None, version: Optional[int] = None,
                      history_age_days: Optional[Sequence[int]] = None) -> predict_pb2.PredictRequest:
  """A PredictRequest for the two-stage model's `recommend` signature (models/recommend/two_stage.py)."""
  request = predict_pb2.PredictRequest()
  set_model_spec(request.model_spec, model_name, version)
  request.model_spec.signature_name = two_stage.RECOMMEND
  _history_inputs(request, history, history_liked, history_age_days)
  for key, value in ((signatures.USER_ID, user_id), ("k", k)):
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value, tf.int64))
  return request


def _print_recommendations(response: predict_pb2.PredictResponse, names: Dict[int, str], milliseconds: float,
                           server: str) -> None:
  outputs = {key: tf.make_ndarray(response.outputs[key]) for key in (
      two_stage.ITEMS, two_stage.RANKING_SCORES, two_stage.RETRIEVAL_SCORES, two_stage.RETRIEVAL_RANK,
      two_stage.SCORED_BY)}
  print(f"{response.model_spec.name} version {response.model_spec.version.value}, signature recommend, {server}: "
        f"{len(outputs[two_stage.ITEMS])} movies recommended over the whole catalog in {milliseconds:.1f} ms "
        "(retrieved by TIGER, then ranked)")
  print(f"{'rank':>4}  {'P(liked)':>8}  {'log P(SID)':>10}  {'retrieved':>9}  {'movie':>7}  {'scored by':<9}  title")
  for position, item in enumerate(outputs[two_stage.ITEMS]):
    print(f"{position + 1:>4}  {outputs[two_stage.RANKING_SCORES][position]:>8.3f}  "
          f"{outputs[two_stage.RETRIEVAL_SCORES][position]:>10.2f}  "
          f"{'#' + str(outputs[two_stage.RETRIEVAL_RANK][position] + 1):>9}  {item:>7}  "
          f"{outputs[two_stage.SCORED_BY][position].decode():<9}  {names.get(int(item), '(unknown id)')}")


def embed_texts(channel: grpc.Channel, texts: Sequence[str], encoder_model_name: str = ENCODER_MODEL_NAME
                ) -> np.ndarray:
  """Content vectors [len(texts), D] from the content encoder's servable (serving_default: text -> embedding)."""
  request = predict_pb2.PredictRequest()
  set_model_spec(request.model_spec, encoder_model_name)
  request.inputs[TEXT_INPUT].CopyFrom(tf.make_tensor_proto([t.encode() for t in texts]))
  response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
  return tf.make_ndarray(response.outputs[TEXT_EMBEDDING])


def candidate_embeddings(channel: grpc.Channel, candidates: Sequence[int], texts: Dict[int, str],
                         encoder_model_name: str = ENCODER_MODEL_NAME) -> np.ndarray:
  """rank_with_embeddings' candidate_embeddings: the encoder's vectors for candidates with a text in `texts`
  (new items), zeros for the others, which the model scores through its catalog."""
  new = [i for i, candidate in enumerate(candidates) if candidate in texts]
  vectors = embed_texts(channel, [texts[candidates[i]] for i in new], encoder_model_name)
  embeddings = np.zeros([len(candidates), vectors.shape[1]], np.float32)
  embeddings[new] = vectors
  return embeddings


def _signature_names(channel: grpc.Channel, model_name: str, version: Optional[int]) -> List[str]:
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
  set_model_spec(request.model_spec, model_name, version)
  response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=10)
  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  response.metadata["signature_def"].Unpack(signature_defs)
  return list(signature_defs.signature_def)


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC model server")
  parser.add_argument("--recommend", action="store_true", help="ask the two-stage model's recommend signature "
                      "(retrieval over the whole catalog, then ranking) instead of ranking candidates")
  parser.add_argument("--model_name",
                      help=f"default: {RECOMMEND_MODEL_NAME} with --recommend, else {RANKING_MODEL_NAME}")
  parser.add_argument("--model_version", type=int, default=None, help="pin a version (default: latest)")
  parser.add_argument("--encoder_model_name", default=ENCODER_MODEL_NAME,
                      help="the content encoder's model on the server, which embeds --new_item texts")
  parser.add_argument("--data_root", default=DATA_ROOT, help="MovieLens directory: titles and users' ratings")
  parser.add_argument("--user", type=int, help="take history and current item from this user's ratings")
  parser.add_argument("--history", help="comma-separated movie ids, oldest first (instead of --user)")
  parser.add_argument("--current_item", type=int, default=None, help="default: the last history item")
  parser.add_argument("--candidates", help="comma-separated movie ids (default: popular unrated movies)")
  parser.add_argument("--num_candidates", type=int, default=100)
  parser.add_argument("--new_item", action="append", default=[], help="content text of a movie not in the "
                      "catalog, e.g. 'Title (2024). Genres: Drama, War' (repeatable)")
  parser.add_argument("--top", type=int, default=10, help="how many ranked candidates to print")
  parser.add_argument("--wait_seconds", type=float, default=0, help="wait this long for the model to load")
  args = parser.parse_args(argv)
  if args.user is None and args.history is None:
    parser.error("give --user or --history")
  if args.recommend and (args.candidates or args.new_item or args.current_item is not None):
    parser.error("--recommend finds its own candidates: --candidates, --new_item and --current_item are for ranking")
  args.model_name = args.model_name or (RECOMMEND_MODEL_NAME if args.recommend else RANKING_MODEL_NAME)

  titles, ratings = read_movielens(args.data_root)
  if args.user is not None:
    if args.user not in ratings:
      parser.error(f"user {args.user} has no ratings in {args.data_root}")
    ordered = ratings[args.user]
    rated = [movie for _, movie, _ in ordered]
    history = rated[-HISTORY_LENGTH:]
    history_liked = [liked for _, _, liked in ordered][-HISTORY_LENGTH:]
    # As if the user came back right after their last rating.
    history_age_days = [(ordered[-1][0] - timestamp) // SECONDS_PER_DAY
                        for timestamp, _, _ in ordered][-HISTORY_LENGTH:]
  else:
    rated = history = _ids(args.history)
    history_liked = history_age_days = None  # given ids: every one counts as liked, just now
  if args.recommend:
    _recommend(args, history, history_liked, history_age_days, titles)
    return
  current = args.current_item if args.current_item is not None else (history[-1] if history else 0)
  candidates = _ids(args.candidates)
  if not candidates:
    popularity = Counter(movie for user in ratings.values() for _, movie, _ in user)
    seen = set(rated)
    candidates = [movie for movie, _ in popularity.most_common() if movie not in seen][:args.num_candidates]
  new_ids = list(range(NEW_ITEM_IDS, NEW_ITEM_IDS + len(args.new_item)))
  names = {**titles, **dict(zip(new_ids, args.new_item))}
  candidates += new_ids

  with grpc.insecure_channel(args.server) as channel:
    try:
      _wait(channel, args)
      embeddings = None
      if new_ids:
        if signatures.RANK_WITH_EMBEDDINGS not in _signature_names(channel, args.model_name, args.model_version):
          print("note: the served model reads no content (random hashing); new items get the fallback score")
        elif not _available(channel, args.encoder_model_name):
          print(f"note: the server has no content encoder model {args.encoder_model_name!r}; new items get the "
                "fallback score")
        else:
          embeddings = candidate_embeddings(channel, candidates, dict(zip(new_ids, args.new_item)),
                                            args.encoder_model_name)
      request = rank_request(args.model_name, history, current, candidates, embeddings, args.model_version,
                             args.user if args.user is not None else NO_USER, history_liked, history_age_days)
      start = time.perf_counter()
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
      milliseconds = (time.perf_counter() - start) * 1e3
    except (grpc.RpcError, ModelUnavailable) as e:
      _exit(e, args.server)

  scores = tf.make_ndarray(response.outputs[signatures.SCORES])
  order = tf.make_ndarray(response.outputs[signatures.RANKING])
  scored_by = [s.decode() for s in tf.make_ndarray(response.outputs[signatures.SCORED_BY])]
  print(f"{response.model_spec.name} version {response.model_spec.version.value}, signature "
        f"{response.model_spec.signature_name}, {args.server}: {len(candidates)} candidates ranked in "
        f"{milliseconds:.1f} ms")
  _print_history(args.user, history, names)
  print(f"{'rank':>4}  {'P(liked)':>8}  {'movie':>7}  {'scored by':<9}  title")
  shown = list(order[:args.top]) + [i for i in order[args.top:] if candidates[i] in new_ids]
  for position, i in enumerate(order):
    if i in shown:
      movie = candidates[i]
      print(f"{position + 1:>4}  {scores[i]:>8.3f}  {movie if movie not in new_ids else 'new':>7}  "
            f"{scored_by[i]:<9}  {names.get(movie, '(unknown id)')}")


def _print_history(user: Optional[int], history: Sequence[int], names: Dict[int, str]) -> None:
  who = f"user {user}" if user is not None else "the given history"
  print(f"History of {who} ({len(history)} items, most recent last): "
        + "; ".join(names.get(i, str(i)).split(". Genres")[0] for i in history[-3:]))


def _wait(channel: grpc.Channel, args: argparse.Namespace) -> None:
  if args.wait_seconds:
    wait_until_available(channel, args.model_name, args.wait_seconds)


def _exit(error: Exception, server: str) -> None:
  if isinstance(error, grpc.RpcError):
    sys.exit(f"error: {server}: {error.code().name}: {error.details()}")
  sys.exit(f"error: {error}")


def _recommend(args: argparse.Namespace, history: List[int], history_liked: Optional[List[int]],
               history_age_days: Optional[List[int]], names: Dict[int, str]) -> None:
  with grpc.insecure_channel(args.server) as channel:
    try:
      _wait(channel, args)
      request = recommend_request(args.model_name, history, args.top,
                                  args.user if args.user is not None else NO_USER, history_liked, args.model_version,
                                  history_age_days)
      start = time.perf_counter()
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
      milliseconds = (time.perf_counter() - start) * 1e3
    except (grpc.RpcError, ModelUnavailable) as e:
      _exit(e, args.server)
  _print_history(args.user, history, names)
  _print_recommendations(response, names, milliseconds, args.server)


if __name__ == "__main__":
  main()
