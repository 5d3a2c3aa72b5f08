"""TF Serving's REST API (tensorflow.org/tfx/serving/api_rest) over the gRPC server's handlers.

  GET  /v1/models/{name}[/versions/{v}]             model status (GetModelStatus as JSON)
  GET  /v1/models/{name}[/versions/{v}]/metadata    signature defs (GetModelMetadata as JSON)
  GET  <metrics path>                               request metrics, Prometheus' text format (serving/metrics.py)
  POST /v1/models/{name}[/versions/{v}]:predict     {"signature_name": ..., "instances": [...]} (row format)
                                                    or {"inputs": {...}} (columnar), as TF Serving takes them

A request becomes the same PredictRequest a gRPC client would send, so both APIs share every check and
status; a refusal answers {"error": message} with the HTTP code TF Serving maps its status to. Binary
strings travel as {"b64": "..."}.

Example:
  httpd, port = serve_rest(Handlers(models, 1000), "127.0.0.1", 8501)
  curl -d '{"inputs": {"history": [1], "history_liked": [1], "history_age_days": [0], "current_item": 1,
            "candidates": [5, 9], "user_id": 0}, "signature_name": "rank"}' localhost:8501/v1/models/sid_ranking:predict
"""

import base64
import http.server
import json
import re
import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from serving import predict

if TYPE_CHECKING:  # serving.server starts this API: a run-time import would be circular
  from serving.server import Handlers

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<rest>/metadata|:predict)?$")
# gRPC status -> HTTP status, as TF Serving's REST handler maps them.
_HTTP = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
         grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.UNIMPLEMENTED: 501,
         grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNAVAILABLE: 503,
         grpc.StatusCode.DEADLINE_EXCEEDED: 504}
# A body larger than what predict.MAX_REQUEST_BYTES lets the inputs declare, with room for JSON's overhead.
MAX_BODY_BYTES = 4 * predict.MAX_REQUEST_BYTES


def _invalid(message: str) -> predict.ServingError:
  return predict.ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _from_json(value: Any, dtype: tf.DType) -> np.ndarray:
  """A JSON value (nested lists; strings, or {"b64": ...} for bytes) as an array of `dtype`."""
  if dtype == tf.string:
    def decode(v):
      if isinstance(v, list):
        return [decode(x) for x in v]
      if isinstance(v, dict) and set(v) == {"b64"}:
        return base64.b64decode(v["b64"], validate=True)
      if isinstance(v, str):
        return v.encode()
      raise ValueError(f"expected a string or {{\"b64\": ...}}, got {v!r}")
    return np.array(decode(value), dtype=object)
  return np.array(value, dtype=dtype.as_numpy_dtype)


def _to_json(array: np.ndarray) -> Any:
  if array.dtype == object:
    def encode(v):
      if isinstance(v, list):
        return [encode(x) for x in v]
      try:
        return v.decode()
      except UnicodeDecodeError:
        return {"b64": base64.b64encode(v).decode()}
    return encode(array.tolist())
  return array.tolist()


def predict_request(name: str, version: Optional[int], body: Dict[str, Any],
                    signatures: Dict[str, Any]) -> Tuple[predict_pb2.PredictRequest, bool]:
  """The PredictRequest of a REST body, and whether it used the row format (answered as predictions)."""
  if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
    raise _invalid('the body must be a JSON object with one of "instances" (row format) or "inputs" (columnar)')
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  request.model_spec.signature_name = body.get("signature_name", predict.DEFAULT_SIGNATURE)
  signature = signatures.get(request.model_spec.signature_name)
  if signature is None:  # predict() says so with TF Serving's status
    return request, "instances" in body
  names = sorted(signature.inputs)
  rows = "instances" in body
  if rows:
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
      raise _invalid('"instances" must be a non-empty list')
    if all(isinstance(i, dict) and set(i) != {"b64"} for i in instances):
      # Keys not in every instance are left out: predict() names them as missing.
      keys = set.intersection(*(set(i) for i in instances))
      columns = {key: [instance[key] for instance in instances] for key in keys}
    elif len(names) == 1:
      columns = {names[0]: instances}
    else:
      raise _invalid(f"each instance must be an object of the inputs {names}")
  else:
    inputs = body["inputs"]
    if isinstance(inputs, dict) and (len(names) != 1 or names[0] in inputs):
      columns = inputs
    elif len(names) == 1:
      columns = {names[0]: inputs}
    else:
      raise _invalid(f'"inputs" must be an object of the inputs {names}')
  for key, value in columns.items():
    if key not in signature.inputs:  # a placeholder: predict() names the extra inputs
      request.inputs[key].CopyFrom(tf.make_tensor_proto(0))
      continue
    dtype = tf.dtypes.as_dtype(signature.inputs[key].dtype)
    try:
      request.inputs[key].CopyFrom(tf.make_tensor_proto(_from_json(value, dtype), dtype))
    except (ValueError, TypeError) as e:
      raise _invalid(f"input '{key}' is not a valid {dtype.name} value: {e}") from e
  return request, rows


class _RestHandler(http.server.BaseHTTPRequestHandler):
  handlers: "Handlers"  # set by serve_rest
  metrics_path: Optional[str] = None
  protocol_version = "HTTP/1.1"

  def log_message(self, format, *args):
    pass  # one line per request on stderr is noise at hundreds of requests a second

  def _send(self, status: int, payload: Dict[str, Any]) -> None:
    self._send_bytes(status, json.dumps(payload).encode(), "application/json")

  def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def _route(self) -> Tuple[str, Optional[int], str]:
    match = _PATH.match(self.path)
    if not match:
      raise predict.ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.command} {self.path}")
    version = match.group("version")
    return match.group("name"), int(version) if version else None, match.group("rest") or ""

  def _answer(self, call) -> None:
    try:
      self._send(200, call())
    except predict.ServingError as e:
      self._send(_HTTP.get(e.code, 500), {"error": e.message})
    except Exception as e:
      self._send(500, {"error": f"{type(e).__name__}: {e}"})

  def do_GET(self) -> None:
    if self.metrics_path and self.path == self.metrics_path:
      self._send_bytes(200, self.handlers.metrics.render().encode(), "text/plain; version=0.0.4")
      return

    def call():
      name, version, rest = self._route()
      if rest == ":predict":
        raise predict.ServingError(grpc.StatusCode.INVALID_ARGUMENT, "predict takes a POST")
      if rest == "/metadata":
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[predict.SIGNATURE_DEF_FIELD])
        _spec(request.model_spec, name, version)
        response = self.handlers.observed("GetModelMetadata", request, self.handlers.metadata)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[predict.SIGNATURE_DEF_FIELD].Unpack(signature_defs)
        return {"model_spec": _json(response.model_spec),
                "metadata": {predict.SIGNATURE_DEF_FIELD: _json(signature_defs)}}
      request = get_model_status_pb2.GetModelStatusRequest()
      _spec(request.model_spec, name, version)
      return _json(self.handlers.observed("GetModelStatus", request, self.handlers.status))
    self._answer(call)

  def do_POST(self) -> None:
    def call():
      name, version, rest = self._route()
      length = int(self.headers.get("Content-Length") or 0)
      if length > MAX_BODY_BYTES:
        self.close_connection = True  # the body is not read
        raise predict.ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"the body of {length} bytes is larger than {MAX_BODY_BYTES} bytes")
      raw = self.rfile.read(length)
      if rest != ":predict":
        raise predict.ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"POST takes :predict, not {self.path}")
      try:
        body = json.loads(raw)
      except (ValueError, UnicodeDecodeError) as e:
        raise _invalid(f"the body is not JSON: {e}") from e
      counted = predict_pb2.PredictRequest()  # what the metrics know of the request, whatever fails
      _spec(counted.model_spec, name, version)
      counted.model_spec.signature_name = (body.get("signature_name") if isinstance(body, dict) else None) or \
          predict.DEFAULT_SIGNATURE
      formats = []

      def run(spec_only: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature_defs = self.handlers.servable(spec_only.model_spec).signature_defs
        request, rows = predict_request(name, version, body, signature_defs)
        formats.append(rows)
        return self.handlers.predict(request)
      response = self.handlers.observed("Predict", counted, run)
      rows = formats[0]
      outputs = {alias: _to_json(tf.make_ndarray(proto)) for alias, proto in response.outputs.items()}
      if rows:
        if len(outputs) == 1:
          return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{alias: values[i] for alias, values in outputs.items()} for i in range(count)]}
      return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    self._answer(call)


def _json(message) -> Dict[str, Any]:
  """A proto as TF Serving's REST API writes it: field names as in the .proto, defaults included."""
  return json_format.MessageToDict(message, preserving_proto_field_name=True, including_default_value_fields=True)


def _spec(model_spec, name: str, version: Optional[int]) -> None:
  model_spec.name = name
  if version is not None:
    model_spec.version.value = version


def serve_rest(handlers: "Handlers", host: str, port: int, metrics_path: Optional[str] = None,
               reuse_port: bool = False) -> Tuple[http.server.ThreadingHTTPServer, int]:
  """Starts the REST API in a background thread; returns the HTTP server and its bound port (0: any free).
  With `metrics_path`, GET there answers the request metrics in Prometheus' text format. With `reuse_port`,
  other processes may bind the same port (SO_REUSEPORT)."""
  handler = type("RestHandler", (_RestHandler,), {"handlers": handlers, "metrics_path": metrics_path})
  server_class = type("RestServer", (http.server.ThreadingHTTPServer,), {"allow_reuse_port": reuse_port})
  httpd = server_class((host, port), handler)
  httpd.daemon_threads = True
  threading.Thread(target=httpd.serve_forever, name="rest", daemon=True).start()
  return httpd, httpd.server_address[1]
