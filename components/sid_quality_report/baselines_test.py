import faiss
import numpy as np
import pytest

from components.sid_quality_report import baselines


def _data():
  return np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)


def test_faiss_codes_unpack_to_what_faiss_decodes():
  result = baselines.faiss_residual_quantizer(_data(), levels=3, codebook_size=16)
  quantizer, codes = result["quantizer"], result["codes"]
  assert codes.shape == (600, 3)
  # The sum of each level's codeword for the unpacked codes is FAISS's own decoding of its packed codes.
  codebooks = faiss.vector_to_array(quantizer.codebooks).reshape(3, 16, 8)
  summed = sum(codebooks[level, codes[:, level]] for level in range(3))
  np.testing.assert_allclose(summed, quantizer.decode(quantizer.compute_codes(_data())), atol=1e-5)
  assert len(np.unique(codes[:, 0])) == 16 and 0 < result["mse"] < np.var(_data())


def test_unpack_codes_little_endian():
  packed = np.array([[0b00100001, 0b0000_0011]], np.uint8)  # codes 1, 2, 3 of 4 bits... and 0
  assert baselines.unpack_codes(packed, levels=3, bits=4).tolist() == [[1, 2, 3]]


def test_rq_kmeans_reduces_error_with_each_level():
  one = baselines.rq_kmeans(_data(), levels=1, codebook_size=16)
  two = baselines.rq_kmeans(_data(), levels=2, codebook_size=16)
  assert two["mse"] < one["mse"] < np.var(_data())


def test_faiss_needs_a_power_of_two():
  with pytest.raises(ValueError, match="power-of-two"):
    baselines.faiss_residual_quantizer(_data(), levels=2, codebook_size=12)
