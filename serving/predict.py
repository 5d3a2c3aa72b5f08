"""PredictionService.Predict and GetModelMetadata on a loaded Servable, with TF Serving's checks and
status codes: every malformed request is refused with a message, never crashes the server."""

import os
from typing import Dict

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_log_pb2

from serving.versions import WARMUP_FILE, Servable

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"
# tf.errors codes are gRPC's canonical codes.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>")


class ServingError(Exception):
  """A request refused with a gRPC status code, as TF Serving would."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code, self.message = code, message


def _invalid(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _op_error(error: tf.errors.OpError) -> ServingError:
  """The model's own message (e.g. a failed assertion), without TensorFlow's graph boilerplate."""
  lines = [line.strip() for line in error.message.splitlines()]
  message = " ".join(line for line in lines if line and not line.startswith(_TF_NOISE))
  return ServingError(_GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), message)


def _inputs(signature_name: str, specs: Dict[str, tf.TensorSpec], request: predict_pb2.PredictRequest,
            max_batch_size: int) -> Dict[str, tf.Tensor]:
  sent, expected = set(request.inputs), set(specs)
  if sent != expected:
    raise _invalid(
        f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) != "
        f"len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
        f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
  tensors = {}
  for key, spec in specs.items():
    proto = request.inputs[key]
    if proto.dtype != spec.dtype.as_datatype_enum:
      got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
      raise _invalid(f"input '{key}' of signature '{signature_name}' must be {spec.dtype.name}, got {got}")
    try:
      array = tf.make_ndarray(proto)
    except (ValueError, TypeError) as e:
      raise _invalid(f"input '{key}' is not a valid {spec.dtype.name} tensor: {e}") from e
    if not spec.shape.is_compatible_with(array.shape):
      raise _invalid(f"input '{key}' of signature '{signature_name}' has shape {list(array.shape)}, expected "
                     f"{spec.shape.as_list() if spec.shape.rank is not None else 'any'} (-1/None: any size)")
    if array.ndim and array.shape[0] > max_batch_size:
      raise _invalid(f"Task size {array.shape[0]} of input '{key}' is larger than maximum input batch size "
                     f"{max_batch_size}")
    tensors[key] = tf.constant(array, dtype=spec.dtype)
  return tensors


def predict(servable: Servable, request: predict_pb2.PredictRequest,
            max_batch_size: int) -> predict_pb2.PredictResponse:
  signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
  function = servable.signatures.get(signature_name)
  if function is None:
    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.')
  inputs = _inputs(signature_name, function.structured_input_signature[1], request, max_batch_size)
  output_names = list(function.structured_outputs)
  wanted = list(request.output_filter) or output_names
  for alias in wanted:
    if alias not in output_names:
      raise _invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                     f"{{{','.join(sorted(output_names))}}}.")
  if len(set(wanted)) != len(wanted):
    raise _invalid(f"duplicate output tensor alias in output_filter: {list(request.output_filter)}")
  try:
    outputs = function(**inputs)
  except tf.errors.OpError as e:
    raise _op_error(e) from e
  response = predict_pb2.PredictResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.model_spec.signature_name = signature_name
  for alias in wanted:
    response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
  return response


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

