"""PredictionService.Predict and GetModelMetadata on a loaded Servable, with TF Serving's checks and
status codes: every malformed request is refused with a message, never crashes the server."""

import dataclasses
import math
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_log_pb2

from formats.served_models import WARMUP_FILE
from serving.versions import Servable

if TYPE_CHECKING:
  from serving.batching import Batching

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"
# tf.errors codes are gRPC's canonical codes.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>")
# What one request's input tensors may declare, checked on the declared shapes before any tensor is built:
# a 14-byte TensorProto can declare a shape of 10^8 values, which building it would fill.
MAX_REQUEST_BYTES = 64 << 20
_STRING_BYTES = 64  # a string element's estimated cost (the array slot and a short value)


class ServingError(Exception):
  """A request refused with a gRPC status code, as TF Serving would."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code, self.message = code, message


def _invalid(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _clean(message: str) -> str:
  """The model's own message (e.g. a failed assertion), without TensorFlow's graph boilerplate."""
  lines = [line.strip() for line in message.splitlines()]
  return " ".join(line for line in lines if line and not line.startswith(_TF_NOISE))


def _op_error(error: tf.errors.OpError) -> ServingError:
  return ServingError(_GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), _clean(error.message))


def _declared_dims(key: str, proto) -> list:
  """The shape a TensorProto declares, refused when it has no rank or a negative size."""
  if proto.tensor_shape.unknown_rank:
    raise _invalid(f"input '{key}' declares no shape")
  dims = [dim.size for dim in proto.tensor_shape.dim]
  if any(size < 0 for size in dims):
    raise _invalid(f"input '{key}' declares a negative size: {dims}")
  return dims


@dataclasses.dataclass(frozen=True)
class _Input:
  """What a signature expects of one input, read once per version from its SignatureDef."""
  key: str
  tensor_name: str
  dtype: tf.dtypes.DType
  dims: Optional[Tuple[Optional[int], ...]]  # None: any rank; a None dimension: any size
  element_bytes: int

  def accepts(self, dims: List[int]) -> bool:
    return self.dims is None or (len(dims) == len(self.dims) and
                                 all(want is None or want == got for want, got in zip(self.dims, dims)))


def _expected_inputs(servable: Servable, signature_name: str,
                     signature: meta_graph_pb2.SignatureDef) -> List[_Input]:
  made = servable.inputs.get(signature_name)
  if made is None:
    made = []
    for key, info in signature.inputs.items():
      dtype, shape = tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape)
      made.append(_Input(key, info.name, dtype, None if shape.rank is None else tuple(shape.as_list()),
                         _STRING_BYTES if dtype == tf.string else dtype.size))
    made = servable.inputs.setdefault(signature_name, made)
  return made


def _inputs(signature_name: str, expected: List[_Input], request: predict_pb2.PredictRequest,
            max_batch_size: int) -> Dict[str, np.ndarray]:
  """The request's inputs checked against the signature's: tensor name -> value."""
  sent, wanted = set(request.inputs), {spec.key for spec in expected}
  if sent != wanted:
    raise _invalid(
        f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) != "
        f"len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
        f"Missing but required: {{{','.join(sorted(wanted - sent))}}}.")
  feed, declared_bytes = {}, 0
  for spec in expected:
    proto, key = request.inputs[spec.key], spec.key
    if proto.dtype != spec.dtype.as_datatype_enum:
      got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
      raise _invalid(f"input '{key}' of signature '{signature_name}' must be {spec.dtype.name}, got {got}")
    dims = _declared_dims(key, proto)
    if not spec.accepts(dims):
      raise _invalid(f"input '{key}' of signature '{signature_name}' has shape {dims}, expected "
                     f"{list(spec.dims) if spec.dims is not None else 'any'} (None: any size)")
    if dims and dims[0] > max_batch_size:
      raise _invalid(f"Task size {dims[0]} of input '{key}' is larger than maximum input batch size "
                     f"{max_batch_size}")
    declared_bytes += math.prod(dims) * spec.element_bytes
    if declared_bytes > MAX_REQUEST_BYTES:
      raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         f"the request's inputs declare more than {MAX_REQUEST_BYTES >> 20} MiB (at input '{key}', "
                         f"shape {dims})")
    try:
      array = tf.make_ndarray(proto)
    except (ValueError, TypeError) as e:
      raise _invalid(f"input '{key}' is not a valid {spec.dtype.name} tensor: {e}") from e
    feed[spec.tensor_name] = array
  return feed


def predict(servable: Servable, request: predict_pb2.PredictRequest, max_batch_size: int,
            batching: Optional["Batching"] = None) -> predict_pb2.PredictResponse:
  """The response to `request`; with `batching` (--enable_batching), run in a batch with concurrent requests
  to the same signature where it is batchable."""
  signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
  signature = servable.signature_defs.get(signature_name)
  if signature is None:
    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.')
  feed = _inputs(signature_name, _expected_inputs(servable, signature_name, signature), request, max_batch_size)
  wanted = list(request.output_filter) or list(signature.outputs)
  for alias in wanted:
    if alias not in signature.outputs:
      raise _invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                     f"{{{','.join(sorted(signature.outputs))}}}.")
  if len(set(wanted)) != len(wanted):
    raise _invalid(f"duplicate output tensor alias in output_filter: {list(request.output_filter)}")
  try:
    # Signatures that cannot be batched (rank) keep the made-once callable of _run.
    batcher = batching.batcher(servable, signature_name, signature, feed) if batching else None
    outputs = batcher.run(feed) if batcher else _run(servable, signature_name, signature, wanted, feed)
  except tf.errors.OpError as e:
    raise _op_error(e) from e
  except UnicodeDecodeError as e:
    # TensorFlow failed to decode the op's error message, which quotes the request's bytes (e.g. a serialized
    # tf.Example that does not parse): the input is at fault, as TF Serving says.
    raise _invalid(_clean(bytes(e.object).decode("utf-8", errors="backslashreplace"))) from e
  response = predict_pb2.PredictResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.model_spec.signature_name = signature_name
  for alias in wanted:
    response.outputs[alias].CopyFrom(tensor_proto(outputs[alias]))
  return response


def _run(servable: Servable, signature_name: str, signature: meta_graph_pb2.SignatureDef, wanted: List[str],
         feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """The signature's `wanted` outputs through a callable made once per version, signature and outputs: one
  C call per request (TF_SessionRunCallable). Session.run, and Session.make_callable with a feed list, which
  calls it, re-analyse the fetches and feeds in Python on every call."""
  key = (signature_name, tuple(wanted))
  made = servable.callables.get(key)
  if made is None:
    names = sorted(feed)
    options = config_pb2.CallableOptions(feed=names, fetch=[signature.outputs[alias].name for alias in wanted])
    # A private method: the public make_callable wraps Session.run when given feeds.
    made = servable.callables.setdefault(key, (names, servable.session._make_callable_from_options(options)))
  names, run = made
  return dict(zip(wanted, run(*[feed[name] for name in names])))


def tensor_proto(value: np.ndarray) -> tensor_pb2.TensorProto:
  """tf.make_tensor_proto(value), built directly for arrays of several numbers or strings (its checks are for
  Python values, not a session's arrays: a fifth of its time for numbers, a tenth for strings); the same proto."""
  value = np.asarray(value)
  if value.size < 2 or value.dtype.kind not in "iufO":  # typed fields (float_val ...), as TensorFlow writes them
    return tf.make_tensor_proto(value)
  if value.dtype.kind == "O":  # a session's string tensor: bytes
    proto = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, string_val=value.ravel().tolist())
  else:
    proto = tensor_pb2.TensorProto(dtype=tf.dtypes.as_dtype(value.dtype).as_datatype_enum,
                                   tensor_content=np.ascontiguousarray(value).tobytes())
  proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in value.shape)
  return proto


def metadata(servable: Servable, request: get_model_metadata_pb2.GetModelMetadataRequest
             ) -> get_model_metadata_pb2.GetModelMetadataResponse:
  if not request.metadata_field:
    raise _invalid("GetModelMetadataRequest must specify at least one metadata_field")
  unsupported = [field for field in request.metadata_field if field != SIGNATURE_DEF_FIELD]
  if unsupported:
    raise _invalid(f"Metadata field {unsupported[0]} is not supported")
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  for name, signature_def in servable.signature_defs.items():
    signature_defs.signature_def[name].CopyFrom(signature_def)
  response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
  return response


def warmup(servable: Servable, max_batch_size: int) -> int:
  """Replays the SavedModel's warmup requests (TF Serving's format); any failure fails the load."""
  path = os.path.join(servable.path, WARMUP_FILE)
  if not tf.io.gfile.exists(path):
    return 0
  count = 0
  for record in tf.data.TFRecordDataset(path):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    if log.WhichOneof("log_type") == "predict_log":
      predict(servable, log.predict_log.request, max_batch_size)
      count += 1
  return count

