"""The bench's learned baselines on tiny data, and bench/retrieval.py end to end."""

import datetime
import json

import numpy as np
import pytest

import conftest
from bench import retrieval, sasrec, tiger, tiger_epochs, two_tower
from bench import retrieval_protocols as protocols
from models.retrieval import baselines
from models.retrieval.baselines import Sequences

CATALOG = np.array([10, 20, 30, 40, 50, 60])
# 40 users go round the cycle 10 -> 20 -> 30 -> 40 -> 50 -> 10, each from its own item; 60 is never rated.
CYCLES = Sequences.of({user: [10 * (1 + (user + i) % 5) for i in range(8)] for user in range(40)})


def test_sasrec_windows_hold_each_new_target_once():
  model = sasrec.SASRec(CATALOG, max_length=2)
  inputs, targets, weights = model.windows(Sequences.of({1: [10, 20, 30, 40, 50], 2: [30, 10]}, context={2: 1}))
  assert inputs.tolist() == [[3, 4], [1, 2], [0, 3]]
  assert targets.tolist() == [[4, 5], [2, 3], [0, 1]]
  assert weights.tolist() == [[1, 1], [1, 1], [0, 1]]
  inputs, targets, weights = model.windows(Sequences.of({1: [10, 20, 30, 40, 50]}, context={1: 4}))
  assert (inputs.tolist(), targets.tolist(), weights.tolist()) == ([[3, 4]], [[4, 5]], [[0, 1]])


def test_sasrec_learns_a_cycle_and_recommends_known_items_only():
  model = sasrec.SASRec(CATALOG, max_length=4, dim=16, epochs=15, batch_size=16, learning_rate=0.01,
                        dropout=0.0).fit(CYCLES)
  recommended = model.recommend([np.array([10, 20]), np.array([40])], k=6)
  assert recommended[:, 0].tolist() == [30, 50]
  assert sorted(recommended[0, :3]) == [30, 40, 50] and recommended[0, 3:].tolist() == [-1] * 3
  model.update(Sequences.of({0: [10, 60]}, context={0: 1}))
  assert 60 in model.recommend([np.array([10])], k=5)[0]


def test_two_tower_recommends_known_items_outside_the_history():
  model = two_tower.TwoTower(CATALOG, np.arange(40), dim=8, epochs=1).fit(CYCLES)
  recommended = model.recommend([np.array([10, 20]), np.array([], np.int64)], k=6, users=np.array([0, 99]))
  assert sorted(recommended[0, :3]) == [30, 40, 50] and recommended[0, 3:].tolist() == [-1] * 3
  assert sorted(recommended[1, :5]) == [10, 20, 30, 40, 50]
  model.update(Sequences.of({0: [10, 60]}, context={0: 1}))
  assert 60 in model.recommend([np.array([10])], k=5, users=np.array([0]))[0]
  with pytest.raises(ValueError, match="needs the users"):
    model.recommend([np.array([10])], k=5)


def test_tiger_examples_are_the_ingestions_next_item_pairs():
  batch = tiger.examples(Sequences.of({7: [10, 20, 30, 40], 8: [50, 60]}, context={7: 1, 8: 0}), history_length=2)
  assert batch["user_id"].numpy().tolist() == [7, 7, 7, 8, 8]
  assert batch["history"].to_list() == [[10], [10, 20], [20, 30], [], [50]]
  assert batch["item_id"].numpy().tolist() == [20, 30, 40, 50, 60]


def test_tiger_warmups_restore_what_was_trained_and_key_by_settings(tmp_path, capsys):
  from models.retrieval.config import RetrievalConfig
  from models.retrieval.sid_tokens import SidCatalog
  catalog = SidCatalog(CATALOG, [[0, 1], [0, 2], [1, 0], [1, 1], [2, 0], [2, 1]], np.zeros(6), codebook_size=3)
  config = RetrievalConfig(encoder_layers=1, decoder_layers=1, heads=2, head_dim=4, d_model=8, mlp_dim=16,
                           user_buckets=0, history_length=3, warmup_epochs=1, beam_width=6, prefix_rows=32)
  histories = [np.array([10, 20]), np.array([30])]
  trained = tiger.Tiger(catalog, config, warmups=str(tmp_path)).fit(CYCLES)
  assert "restored" not in capsys.readouterr().out
  # Other daily-step epochs (a setting the warm-up does not read) restore the same weights and trained items:
  # 60, never trained on, is cold and holds the ceil(0.1 x 3) = 1 slot of cold items.
  restored = tiger.Tiger(catalog, RetrievalConfig(**{**config.__dict__, "epochs": 3}),
                         warmups=str(tmp_path)).fit(CYCLES)
  assert "restored" in capsys.readouterr().out
  assert restored.trained_items.tolist() == [10, 20, 30, 40, 50] and restored.retriever.cold_items == 1
  np.testing.assert_array_equal(restored.recommend(histories, 3), trained.recommend(histories, 3))
  assert [60 in top for top in trained.recommend(histories, 3)] == [True, True]
  tiger.Tiger(catalog, RetrievalConfig(**{**config.__dict__, "learning_rate": 0.01}), warmups=str(tmp_path)).fit(CYCLES)
  assert "restored" not in capsys.readouterr().out


def _ts(month: int, day: int) -> int:
  return int(datetime.datetime(2030, month, day, tzinfo=datetime.timezone.utc).timestamp())


def test_bench_prints_and_writes_a_table_per_protocol(tmp_path, capsys):
  # Users 1-4 rate 10, 20, ..., 80 in that order in January and February, users 5-8 in March and April.
  rows = [(u, 10 * (i + 1), _ts(1 + i // 4 + 2 * (u > 4), u)) for u in range(1, 9) for i in range(8)]
  data_root = conftest.write_movielens(tmp_path / "ml", ratings="userId,movieId,rating,timestamp\n" + "".join(
      f"{u},{i},4.0,{t}\n" for u, i, t in rows), tags=None)
  assert retrieval.main(["--data_root", data_root, "--start_date", "2030-03-01", "--spans", "2",
                         "--min_interactions_per_span", "1", "--models", "popularity,co-occurrence",
                         "--output", str(tmp_path / "out")]) == 0
  report = json.loads((tmp_path / "out" / "report.json").read_text())
  assert list(report["span"]["results"]["co-occurrence"]["per_span"]) == ["2030-03-01", "2030-04-01"]
  assert report["loo"]["results"]["popularity"]["test"]["overall"]["examples"] == 8
  assert (report["args"]["spans"], report["args"]["models"]) == (2, ["popularity", "co-occurrence"])
  assert report["span"]["results"]["popularity"]["test"]["overall"]["examples"] == 32
  # Each next item followed the history's last item in the backfill (ties: the smaller id), or is the first.
  assert report["span"]["results"]["co-occurrence"]["test"]["overall"]["recall@5"] == 1.0
  printed = capsys.readouterr().out
  assert printed.count("| model | Recall@5 | NDCG@5 |") == 2 and "| co-occurrence | 1.0000 |" in printed
  assert (tmp_path / "out" / "report.md").read_text() in printed


def test_bench_refuses_unknown_models_and_bad_data(tmp_path, capsys):
  with pytest.raises(SystemExit):
    retrieval.main(["--data_root", str(tmp_path), "--models", "popularity,no-such-model"])
  assert "unknown model or protocol no-such-model" in capsys.readouterr().err
  assert retrieval.main(["--data_root", str(tmp_path / "missing"), "--protocol", "loo"]) == 2
  assert "no such directory" in capsys.readouterr().err


def test_epoch_scores_score_validation_and_test_after_each_epoch():
  # Training part: 10, 20 (users 1 and 2), 30, 40 (user 3). Every held-out item but user 2's test item 50
  # (never trained on) is the most popular one left after the history.
  items = [10, 20, 30, 40] + [10, 20, 30, 50] + [30, 40, 10, 20]
  data = protocols.leave_one_out(protocols.Ratings.of(np.repeat([1, 2, 3], 4), items, np.arange(12)), 4)
  scores = tiger_epochs.EpochScores(baselines.MostPopular(recent_fraction=1.0).fit(data.train), data)
  scores.on_epoch_end(0, {"loss": 2.5})
  row = scores.rows[0]
  assert (row["epoch"], row["loss"], row["validation"]["recall@10"]) == (1, 2.5, 1.0)
  assert row["test"]["recall@10"] == pytest.approx(2 / 3)
  assert tiger_epochs.table(scores.rows)[2].startswith("| 1 | 2.500 | 1.0000 |")
