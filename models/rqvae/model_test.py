import numpy as np
import pytest

from models.rqvae import model as rqvae

SMALL = rqvae.RQVAEConfig(input_dim=16, hidden_dim=32, decoder_hidden_dim=32, latent_dim=8, num_levels=3,
                          codebook_size=16, batch_size=128, pretrain_epochs=2, epochs=3, refine_epochs=2,
                          kmeans_iterations=5)


def _clusters(n=512, dim=16, centers=24, seed=0):
  rng = np.random.default_rng(seed)
  means = rng.normal(size=(centers, dim))
  points = means[rng.integers(0, centers, n)] + 0.05 * rng.normal(size=(n, dim))
  return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_encode_decode_shapes_and_code_range():
  model = rqvae.RQVAE(SMALL)
  data = _clusters()
  history = rqvae.train(model, data, log=lambda _: None)
  codes = model.encode(data).numpy()
  assert codes.shape == (512, 3) and codes.dtype == np.int32
  assert codes.min() >= 0 and codes.max() < SMALL.codebook_size
  assert model.decode(codes).shape == (512, 16)
  assert [h["phase"] for h in history] == ["pretrain"] * 2 + ["train"] * 3 + ["refine"] * 2
  assert history[-1]["reconstruction"] < history[2]["reconstruction"]


def test_kmeans_init_puts_codewords_on_the_whole_corpus():
  model = rqvae.RQVAE(SMALL)
  # Sorted by cluster: the first batch holds few clusters, an init from it would miss the rest.
  data = _clusters()
  data = data[np.argsort(data[:, 0])]
  before = rqvae.code_usage(model.encode(data).numpy(), SMALL.codebook_size)
  rqvae.fit_codebooks(model, data, np.random.default_rng(0))
  after = rqvae.code_usage(model.encode(data).numpy(), SMALL.codebook_size)
  assert after[0]["utilisation"] >= 0.9
  assert after[0]["perplexity"] > before[0]["perplexity"]


def test_kmeans_in_chunks_matches_all_at_once(monkeypatch):
  model = rqvae.RQVAE(SMALL)
  data = _clusters()
  rqvae.fit_codebooks(model, data, np.random.default_rng(0))
  whole = model.codebooks.numpy()
  monkeypatch.setattr(rqvae, "CHUNK", 37)
  rqvae.fit_codebooks(model, data, np.random.default_rng(0))
  np.testing.assert_allclose(model.codebooks.numpy(), whole, atol=1e-6)


def test_a_fixed_seed_gives_the_same_codes():
  data = _clusters()
  runs = []
  for seed in (0, 0, 1):
    model = rqvae.RQVAE(rqvae.RQVAEConfig(**{**SMALL.__dict__, "seed": seed}))
    rqvae.train(model, data, log=lambda _: None)
    runs.append(model.encode(data).numpy())
  np.testing.assert_array_equal(runs[0], runs[1])
  assert (runs[0] != runs[2]).any()


@pytest.mark.parametrize("reset", [False, True])
def test_dead_code_reset_revives_a_collapsed_codebook(reset):
  config = rqvae.RQVAEConfig(**{**SMALL.__dict__, "kmeans_init": False, "reset_dead_codes": reset,
                                "pretrain_epochs": 0, "epochs": 2, "refine_epochs": 0})
  model = rqvae.RQVAE(config)
  # Collapse by construction: every codeword but the first sits far from any latent.
  far = np.full(model.codebooks.shape, 100.0, np.float32)
  far[:, 0, :] = 0.0
  model.codebooks.assign(far)
  history = rqvae.train(model, _clusters(), log=lambda _: None)
  utilisation = history[-1]["utilisation"]
  if reset:
    assert min(utilisation) >= 0.5, utilisation
  else:
    assert max(utilisation) == 1 / config.codebook_size, utilisation


@pytest.mark.parametrize("data, message", [
    (np.zeros((0, 16), np.float32), "non-empty"),
    (np.zeros((64, 8), np.float32), "dimension 8, the model expects 16"),
    (np.full((64, 16), np.nan, np.float32), "NaN or Inf"),
    (np.ones((8, 16), np.float32), "fewer than codebook_size=16"),
])
def test_bad_embeddings_are_refused(data, message):
  with pytest.raises(ValueError, match=message):
    rqvae.train(rqvae.RQVAE(SMALL), data, log=lambda _: None)


def test_saved_model_round_trip(tmp_path):
  from models.rqvae import saved_model
  import tensorflow as tf
  model = rqvae.RQVAE(SMALL)
  data = _clusters()
  rqvae.train(model, data, log=lambda _: None)
  export_dir = saved_model.export(model, str(tmp_path / "rqvae"))
  assert saved_model.load_config(export_dir) == SMALL
  signatures = saved_model.load_signatures(export_dir)
  codes = signatures[saved_model.ENCODE](embeddings=tf.constant(data))[saved_model.CODES_KEY].numpy()
  np.testing.assert_array_equal(codes, model.encode(data).numpy())
  decoded = signatures[saved_model.DECODE](codes=tf.constant(codes))[saved_model.RECONSTRUCTION_KEY]
  np.testing.assert_allclose(decoded.numpy(), model.decode(codes).numpy(), atol=1e-6)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  return (a != b).mean(0)


def test_a_warm_start_keeps_the_codes_of_unchanged_items(tmp_path):
  from models.rqvae import saved_model
  data = _clusters()
  old = rqvae.RQVAE(SMALL)
  rqvae.train(old, data, log=lambda _: None)
  export_dir = saved_model.export(old, str(tmp_path / "old"))
  old_codes = old.encode(data).numpy()

  untrained = rqvae.RQVAE(rqvae.RQVAEConfig(**{**SMALL.__dict__, "epochs": 0, "refine_epochs": 0, "seed": 1}))
  saved_model.restore(untrained, export_dir)
  np.testing.assert_array_equal(untrained.encode(data).numpy(), old_codes)

  # A refresh over the old items and new ones from the same clusters: warm-started, most old items keep
  # their codes at every level; from scratch (another seed) the code values are drawn anew.
  corpus = np.concatenate([data, _clusters(n=128, seed=0)[::-1] + 0.01])
  warm = rqvae.RQVAE(rqvae.RQVAEConfig(**{**SMALL.__dict__, "seed": 1}))
  saved_model.restore(warm, export_dir)
  history = rqvae.train(warm, corpus, log=lambda _: None, warm_start=True)
  assert [h["phase"] for h in history] == ["train"] * 3 + ["refine"] * 2
  scratch = rqvae.RQVAE(rqvae.RQVAEConfig(**{**SMALL.__dict__, "seed": 1}))
  rqvae.train(scratch, corpus, log=lambda _: None)
  warm_changed = _changed(old_codes, warm.encode(data).numpy())
  scratch_changed = _changed(old_codes, scratch.encode(data).numpy())
  assert warm_changed[0] < 0.2 < 0.5 < scratch_changed[0]


def test_a_warm_start_refuses_another_architecture(tmp_path):
  from models.rqvae import saved_model
  export_dir = saved_model.export(rqvae.RQVAE(SMALL), str(tmp_path / "old"))
  wider = rqvae.RQVAE(rqvae.RQVAEConfig(**{**SMALL.__dict__, "codebook_size": 32, "latent_dim": 4}))
  with pytest.raises(ValueError, match=r"another architecture \(latent_dim: 8 -> 4; codebook_size: 16 -> 32\)"):
    saved_model.restore(wider, export_dir)
