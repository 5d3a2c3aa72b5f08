import numpy as np
import pytest

import conftest

from formats import artifacts, item_embeddings
from components.embedding_importer import executor
from formats.errors import InputDataError


@pytest.fixture(scope="module")
def items(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("corpus")
  items = conftest.tiny_items(tmp)
  return items


def _import(items, tmp_path, ids, vectors, dim=None):
  path = tmp_path / "vectors.npz"
  np.savez(path, item_ids=np.asarray(ids), embeddings=np.asarray(vectors, np.float32))
  output = artifacts.ItemEmbeddings()
  output.uri = str(tmp_path / "out")
  (tmp_path / "out").mkdir()
  executor.Executor().Do({"items": [items]}, {"embeddings": [output]},
                         {"embeddings_path": str(path), "dim": dim})
  return output


def _vectors(n, dim=8, seed=0):
  return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_valid_embeddings_round_trip(items, tmp_path):
  vectors = _vectors(4)
  output = _import(items, tmp_path, [4, 3, 2, 1], vectors)
  ids, loaded = item_embeddings.load(output)
  assert ids.tolist() == [1, 2, 3, 4]
  np.testing.assert_allclose(loaded, vectors[::-1])
  assert output.get_int_custom_property("dim") == 8
  assert output.get_int_custom_property("count") == 4


@pytest.mark.parametrize("mutate, message", [
    (lambda ids, v: (ids, np.where(np.arange(4)[:, None] == 2, np.nan, v)), "NaN or Inf values: 1 items: 3"),
    (lambda ids, v: (ids, np.where(np.arange(4)[:, None] == 0, 0.0, v)), "all-zero vector: 1 items: 1"),
    (lambda ids, v: ([1, 2, 2, 4], v), "duplicate item ids: 1 items: 2"),
    (lambda ids, v: ([1, 2, 3, 99], v), "item ids absent from the item corpus: 1 items: 99"),
    (lambda ids, v: (ids[:3], v[:3]), "corpus items without an embedding: 1 items: 4"),
])
def test_bad_embeddings_name_the_items(items, tmp_path, mutate, message):
  ids, vectors = mutate([1, 2, 3, 4], _vectors(4))
  with pytest.raises(InputDataError, match=message):
    _import(items, tmp_path, ids, vectors)


def test_wrong_dimension_and_malformed_files(items, tmp_path):
  with pytest.raises(InputDataError, match="dimension 8, expected 16: 4 items: 1, 2, 3, 4"):
    _import(items, tmp_path, [1, 2, 3, 4], _vectors(4), dim=16)
  (tmp_path / "bad.npz").write_bytes(b"not an npz")
  with pytest.raises(InputDataError, match="expected an .npz file"):
    executor.load_npz(str(tmp_path / "bad.npz"))
  with pytest.raises(InputDataError, match="not found"):
    executor.load_npz(str(tmp_path / "missing.npz"))
  np.savez(tmp_path / "ragged.npz", item_ids=np.arange(3), embeddings=np.ones((2, 4)))
  with pytest.raises(InputDataError, match=r"'embeddings' must be \[3, D\]"):
    executor.load_npz(str(tmp_path / "ragged.npz"))
