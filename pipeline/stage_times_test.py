from pipeline import stage_times


def test_stage_times_name_each_stage_its_slowest_parts_and_the_total():
  refresh = {"ContentEmbedder": {"seconds": 100.0, "cached": False}, "RQVAETrainer": {"seconds": 50.5, "cached": False},
             "SpanExampleGen": {"seconds": 20.0, "cached": True}, "Resolver": {"seconds": 0.0, "cached": False}}
  daily = [{"span": 7, "seconds": 40.0, "process_seconds": 60.0,
            "components": {"Evaluator": {"seconds": 10.0, "cached": False},
                           "RankingTrainer": {"seconds": 25.0, "cached": False}}},
           {"span": 8, "seconds": 0.0, "components": {}}]  # refused: no component ran
  assert stage_times.format_stage_times(2.25, refresh, 180.0, daily).splitlines() == [
      "Stage times (wall seconds):",
      "  settings and partition        2.2",
      "  SID refresh                 180.0  ContentEmbedder 100.0, RQVAETrainer 50.5, SpanExampleGen 20.0 (cached)",
      "  daily run, span 7            60.0  RankingTrainer 25.0, Evaluator 10.0; start-up 25.0",
      "  daily run, span 8             0.0",
      "  pipeline total              242.2"]
