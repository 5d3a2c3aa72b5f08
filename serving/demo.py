"""The main command's last step: serve the pushed models (the ranker, the two-stage recommender beside it, and
the content encoder) with serving/server.py (its own process, on a free loopback port), answer two queries
over gRPC with serving/query.py (recommend over the whole catalog; rank a list with a new film in it),
then stop the server.

  python -m serving.demo --model_base_path outputs/serving/sid_ranking
      [--encoder_base_path outputs/serving/content_encoder]   (default: beside --model_base_path)
"""

import argparse
import os
import socket
import subprocess
import sys
from typing import Optional, Sequence

from models.content_encoder import SERVED_MODEL_NAME as ENCODER_MODEL_NAME
from formats.served_models import RANKING_MODEL_NAME, RECOMMEND_MODEL_NAME
from serving import model_config, query, versions
from serving.model_config import ModelConfig

# A film released after the data ends (2018): the model has never seen it, only its text.
NEW_ITEM = "Dune: Part Two (2024). Genres: Action, Adventure, Drama, Sci-Fi"


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def most_active_user(data_root: str) -> int:
  _, ratings = query.read_movielens(data_root)
  return max(ratings, key=lambda user: (len(ratings[user]), -user))


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_base_path", required=True)
  parser.add_argument("--model_name", default=RANKING_MODEL_NAME)
  parser.add_argument("--encoder_base_path", help="the pushed content encoder, which embeds the new item's text "
                      f"(default: {ENCODER_MODEL_NAME}/ beside --model_base_path; without it, the fallback score)")
  parser.add_argument("--user", type=int, help="default: the user with the most ratings in --data_root")
  parser.add_argument("--data_root", default=query.DATA_ROOT)
  args = parser.parse_args(argv)
  if not versions.versions_on_disk(args.model_base_path):
    sys.exit(f"No model version under {args.model_base_path}: no step was blessed yet, so nothing was pushed.")
  user = args.user if args.user is not None else most_active_user(args.data_root)
  port = free_port()
  serving_root = os.path.dirname(os.path.abspath(args.model_base_path))
  encoder_base_path = args.encoder_base_path or os.path.join(serving_root, ENCODER_MODEL_NAME)
  models = [ModelConfig(args.model_name, os.path.abspath(args.model_base_path))]
  if versions.versions_on_disk(encoder_base_path):
    models.append(ModelConfig(ENCODER_MODEL_NAME, os.path.abspath(encoder_base_path)))
  recommender_base_path = os.path.join(serving_root, RECOMMEND_MODEL_NAME)
  if versions.versions_on_disk(recommender_base_path):
    models.append(ModelConfig(RECOMMEND_MODEL_NAME, recommender_base_path))
  else:
    print(f"No two-stage model under {recommender_base_path} yet (no retrieval model was blessed): ranking only.")
  config_path, log_path = os.path.join(serving_root, "models.config"), os.path.join(serving_root, "server.log")
  with open(config_path, "w") as f:
    f.write(model_config.render(models))
  print(f"Serving {', '.join(m.base_path for m in models)} on 127.0.0.1:{port} (log: {log_path})", flush=True)
  with open(log_path, "w") as log:
    server = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model_config_file", config_path, "--port", str(port)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=log, stderr=subprocess.STDOUT)
    try:
      if models[-1].name == RECOMMEND_MODEL_NAME:
        query.main(["--server", f"127.0.0.1:{port}", "--recommend", "--user", str(user), "--data_root",
                    args.data_root, "--wait_seconds", "300"])
        print()
      query.main(["--server", f"127.0.0.1:{port}", "--model_name", args.model_name, "--user", str(user),
                  "--data_root", args.data_root, "--new_item", NEW_ITEM, "--wait_seconds", "300"])
    finally:
      server.terminate()
      server.wait()


if __name__ == "__main__":
  main()
