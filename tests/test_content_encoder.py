"""The TensorFlow all-MiniLM-L6-v2 against sentence-transformers' reference vectors."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops for loading)
from tensorflow_serving.apis import predict_pb2

from models.content_encoder import encoder as content_encoder
from serving import predict, versions

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "testdata", "minilm")
MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def reference():
  with open(os.path.join(REFERENCE_DIR, "reference.json")) as f:
    meta = json.load(f)
  vectors = np.load(os.path.join(REFERENCE_DIR, "reference_embeddings.npz"))["embeddings"]
  return meta, vectors


@pytest.fixture(scope="module")
def encoder():
  return content_encoder.build_encoder()


def test_token_ids_match_the_reference_tokenizer(encoder, reference):
  meta, _ = reference
  sentences = meta["sentences"]
  # Ids are given for the first eight and the last eight sentences (accents, CJK, empty, long...).
  checked = sentences[:8] + sentences[-8:]
  ids, mask = (t.numpy() for t in encoder.tokenizer(tf.constant(checked)))
  for row, (sentence, expected) in enumerate(zip(checked, meta["token_ids_first8_last8"])):
    assert ids[row][mask[row] == 1].tolist() == expected, sentence
  assert ids.shape[1] == meta["max_seq_length"]  # the 400-word text is cut at 256 tokens


def _pieces(encoder, texts):
  """Token ids without [CLS] and [SEP], one list per text."""
  ids, mask = (t.numpy() for t in encoder.tokenizer(tf.constant(texts)))
  return [row[keep == 1][1:-1].tolist() for row, keep in zip(ids, mask)]


def test_tokenizer_normalizes_like_huggingface(encoder):
  # HuggingFace's BertNormalizer drops format characters, makes Unicode whitespace a space, strips
  # accents and lower-cases character by character (Σ -> σ, never ς); unlike tensorflow-text's
  # lower_case=True it does not NFKC-fold "½", "³", "ß" or "…" (all in MovieLens titles).
  with open(os.path.join(content_encoder.default_model_dir(), "vocab.txt"), encoding="utf-8") as f:
    vocab = {piece: i for i, piece in enumerate(f.read().splitlines())}
  pairs = [("zero\u200bwidth soft\u00adhyphen\x00", "zerowidth softhyphen"),
           ("no\u00a0break\u2028line\u3000space", "no break line space"),
           ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"), ("AMÉLIE Dvořák", "amelie dvorak")]
  pieces = _pieces(encoder, [text for pair in pairs for text in pair] + ["½ ³ ß …"])
  for i, (text, same_as) in enumerate(pairs):
    assert pieces[2 * i] == pieces[2 * i + 1], (text, same_as)
  assert pieces[-1] == [vocab[c] for c in "½³ß…"]
  # Words over 100 characters, not bytes, are [UNK].
  too_long, longest, cyrillic = _pieces(encoder, ["x" * 101, "x" * 100, "я" * 60])
  assert too_long == [vocab["[UNK]"]]
  assert vocab["[UNK]"] not in longest + cyrillic


def _cosines(vectors: np.ndarray, expected: np.ndarray) -> np.ndarray:
  return np.sum(vectors * expected, axis=1) / (
      np.linalg.norm(vectors, axis=1) * np.linalg.norm(expected, axis=1))


def test_embeddings_match_sentence_transformers(encoder, reference):
  meta, expected = reference
  vectors = encoder(tf.constant(meta["sentences"])).numpy()
  assert vectors.shape == (56, content_encoder.EMBEDDING_DIM) and vectors.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
  cosines = _cosines(vectors, expected)
  worst = int(np.argmin(cosines))
  assert cosines.min() >= MIN_COSINE, (meta["sentences"][worst][:80], cosines.min())


def test_batching_does_not_change_vectors(encoder, reference):
  meta, _ = reference
  sentences = meta["sentences"][:6] + meta["sentences"][-3:]
  together = encoder(tf.constant(sentences)).numpy()
  alone = np.concatenate([encoder(tf.constant([s])).numpy() for s in sentences])
  np.testing.assert_allclose(together, alone, atol=1e-5)


def test_length_sorted_batches_keep_the_order_and_the_vectors(encoder, reference):
  meta, _ = reference
  texts = meta["sentences"][:10] + meta["sentences"][-4:]
  lengths = encoder.token_counts(tf.constant(texts)).numpy()
  assert list(lengths) != sorted(lengths)
  vectors = content_encoder.embed_by_length(texts, 4, encoder, lengths)
  alone = np.concatenate([encoder(tf.constant([t])).numpy() for t in texts])
  np.testing.assert_allclose(vectors, alone, atol=1e-6)


def test_exported_saved_model_reproduces_the_reference(tmp_path, reference):
  meta, expected = reference
  export_dir = content_encoder.export_saved_model(str(tmp_path / "encoder"))
  assert os.path.exists(os.path.join(export_dir, "assets", "vocab.txt"))
  serve = tf.saved_model.load(export_dir).signatures["serving_default"]
  vectors = serve(text=tf.constant(meta["sentences"]))[content_encoder.OUTPUT_KEY].numpy()
  assert _cosines(vectors, expected).min() >= MIN_COSINE
  # As ContentEmbedder embeds a corpus: by the SavedModel's token counts, in batches.
  np.testing.assert_allclose(content_encoder.load_saved_model(export_dir)(meta["sentences"], 8), vectors,
                             atol=1e-6)
  # As the model server serves it, a model of its own: warmed up, then the same vectors over the API.
  servable = versions.load("content_encoder", 1, export_dir)
  assert predict.warmup(servable, max_batch_size=100) == 1
  request = predict_pb2.PredictRequest()
  request.inputs[content_encoder.INPUT_KEY].CopyFrom(tf.make_tensor_proto(meta["sentences"]))
  served = predict.predict(servable, request, max_batch_size=100).outputs[content_encoder.OUTPUT_KEY]
  np.testing.assert_allclose(tf.make_ndarray(served), vectors, atol=1e-6)


def test_broken_model_folder_is_a_clear_error(tmp_path):
  model_dir = tmp_path / "model"
  shutil.copytree(content_encoder.default_model_dir(), model_dir)
  (model_dir / "model.safetensors").write_bytes(b"\x00" * 64)
  with pytest.raises(ValueError, match="model.safetensors: cannot read safetensors weights"):
    content_encoder.build_encoder(str(model_dir))
  (model_dir / "model.safetensors").unlink()
  with pytest.raises(ValueError, match="cannot read safetensors weights"):
    content_encoder.build_encoder(str(model_dir))


def test_weights_that_do_not_fit_the_config_are_named(tmp_path):
  model_dir = tmp_path / "model"
  shutil.copytree(content_encoder.default_model_dir(), model_dir)
  config = json.loads((model_dir / "config.json").read_text())
  config["intermediate_size"] = 1024
  (model_dir / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match=r"encoder.layer.0.intermediate.dense.weight has shape \(384, 1536\)"):
    content_encoder.build_encoder(str(model_dir))
