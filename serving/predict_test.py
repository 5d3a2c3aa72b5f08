import numpy as np
import pytest
import tensorflow as tf

from serving import predict


@pytest.mark.parametrize("value", [
    np.array([1.5, 2], np.float32), np.arange(6, dtype=np.int64).reshape(2, 3), np.array([1.0, 2.0]),
    np.array([3, 4], np.int32), np.array([7, 8], np.uint8), np.int32(3), np.array([1.0], np.float32),
    np.array([], np.float32), np.zeros((0, 4), np.int64), np.array([True, False]), np.array([b"a", b"bc"]),
    np.array([b"a", b"", b"\xff\x00"], dtype=object), np.array([[b"x"], [b"yz"]], dtype=object),
    np.array([b"one"], dtype=object)])
def test_tensor_protos_are_tensorflows(value):
  assert predict.tensor_proto(value) == tf.make_tensor_proto(value)
