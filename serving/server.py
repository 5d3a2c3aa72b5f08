"""A gRPC model server implementing TF Serving's API, for machines without `tensorflow_model_server`.

PredictionService.Predict and GetModelMetadata (signature_def), ModelService.GetModelStatus, from
the tensorflow-serving-api protos, so a client written for TF Serving works against it unchanged.
Flags follow tensorflow_model_server's; unlike it, the server binds 127.0.0.1 unless --host says
otherwise. Classify, Regress, MultiInference and HandleReloadConfigRequest answer UNIMPLEMENTED.

  python -m serving.server --model_name sid_ranking --model_base_path outputs/serving/sid_ranking \\
      --port 8500

Requests name the model; with no version they get the latest available one, with
`model_spec.version` that version if loaded (the policy decides which are: --model_version_policy).

With --server_processes N, N server processes share the gRPC and REST ports (SO_REUSEPORT: the kernel
spreads connections over them), as multi-process servers do where one process's interpreter is the limit.
The first starts the others, restarts one that dies and stops them when it stops; each loads and swaps
the models on its own, and a metrics scrape answered by any of them counts every process's requests.
"""

import argparse
import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from typing import Callable, Dict, List, Optional, Sequence

import grpc
from absl import logging
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import metrics, model_config, predict, rest, versions
from serving.batching import Batching, BatchingParameters
from serving.metrics import Metrics
from serving.model_config import ModelConfig
from serving.versions import ModelVersions, Servable, VersionPolicy

DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_WORKERS = 16


def _model_spec_version(model_spec) -> Optional[int]:
  """The pinned version (None: latest); refuses a spec without a name or with a version label."""
  if not model_spec.name:
    raise predict.ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec name")
  if model_spec.version_label:
    raise predict.ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Unrecognized servable version label: {model_spec.version_label}")
  return model_spec.version.value if model_spec.HasField("version") else None


class Handlers(prediction_service_pb2_grpc.PredictionServiceServicer, model_service_pb2_grpc.ModelServiceServicer):
  """Maps each RPC onto the model's versions; a ServingError becomes the call's status. The REST API
  (serving/rest.py) calls the same `predict`, `metadata` and `status` with the same request protos."""

  def __init__(self, models: Dict[str, ModelVersions], max_batch_size: int, metrics: Optional[Metrics] = None,
               batching: Optional[Batching] = None):
    self._models, self._max_batch_size, self._batching = models, max_batch_size, batching
    self.metrics = metrics or Metrics()

  def servable(self, model_spec) -> Servable:
    version = _model_spec_version(model_spec)
    model = self._models.get(model_spec.name)
    servable = model.get(version) if model else None
    if servable is None:
      wanted = f"Latest({model_spec.name})" if version is None else f"Specific({model_spec.name}, {version})"
      raise predict.ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted}")
    return servable

  @staticmethod
  def _answer(context: grpc.ServicerContext, call: Callable[[], object]):
    try:
      return call()
    except predict.ServingError as e:
      context.abort(e.code, e.message)
    except Exception as e:
      # An unexpected failure fails this request only.
      logging.exception("Request failed")
      context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

  def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    return predict.predict(self.servable(request.model_spec), request, self._max_batch_size, self._batching)

  def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
               ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    return predict.metadata(self.servable(request.model_spec), request)

  def observed(self, api: str, request, method: Callable):
    """method(request), counted in the metrics with its status, version and latency."""
    start, status, response = time.perf_counter(), "OK", None
    try:
      response = method(request)
      return response
    except predict.ServingError as e:
      status = e.code.name
      raise
    except Exception:
      status = grpc.StatusCode.INTERNAL.name
      raise
    finally:
      spec = request.model_spec
      served = getattr(response, "model_spec", None)
      version = served.version.value if served is not None and served.HasField("version") else \
          spec.version.value if spec.HasField("version") else None
      signature = getattr(spec, "signature_name", "") or (predict.DEFAULT_SIGNATURE if api == "Predict" else "")
      self.metrics.observe(spec.name, version, signature, api, status, time.perf_counter() - start)

  def Predict(self, request, context):
    return self._answer(context, lambda: self.observed("Predict", request, self.predict))

  def GetModelMetadata(self, request, context):
    return self._answer(context, lambda: self.observed("GetModelMetadata", request, self.metadata))

  def GetModelStatus(self, request, context):
    return self._answer(context, lambda: self.observed("GetModelStatus", request, self.status))

  def status(self, request: get_model_status_pb2.GetModelStatusRequest) -> get_model_status_pb2.GetModelStatusResponse:
    spec = request.model_spec
    version = _model_spec_version(spec)
    model = self._models.get(spec.name)
    states = model.states() if model else {}
    if not states:
      raise predict.ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
    if version is not None:
      if version not in states:
        raise predict.ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {version} of model {spec.name}")
      states = {version: states[version]}
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, (state, error) in sorted(states.items(), reverse=True):
      status = response.model_version_status.add(version=number, state=state)
      status.status.SetInParent()  # OK unless set below, as TF Serving answers
      if error:
        status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
        status.status.error_message = error
    return response


def serve_models(configs: Sequence[ModelConfig], host: str = "127.0.0.1", port: int = 8500,
                 poll_seconds: float = 1.0, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 workers: int = DEFAULT_WORKERS,
                 max_num_load_retries: int = versions.MAX_NUM_LOAD_RETRIES,
                 load_retry_interval_seconds: float = versions.LOAD_RETRY_INTERVAL_SECONDS,
                 request_metrics: Optional[Metrics] = None, reuse_port: bool = False,
                 batching: Optional[Batching] = None, load_lock: str = "",
                 session_config: Optional[config_pb2.ConfigProto] = None):
  """Starts the server for every model of `configs`; returns (grpc server, bound port, {name: ModelVersions}).
  Port 0 picks a free one. With `reuse_port`, other processes may bind the same port (SO_REUSEPORT);
  without, a port already bound is an error. With `batching`, batchable signatures batch concurrent
  requests (serving/batching.py). `load_lock`: a file the processes serving these models share, so that
  they load versions one at a time. `session_config`: the versions' sessions' (thread pools)."""
  models = {config.name: ModelVersions(config.name, config.base_path, VersionPolicy(config.policy),
                                       warmup=lambda servable: predict.warmup(servable, max_batch_size),
                                       loader=functools.partial(versions.load, config=session_config),
                                       max_num_load_retries=max_num_load_retries,
                                       load_retry_interval_seconds=load_retry_interval_seconds, load_lock=load_lock)
            for config in configs}
  for model in models.values():
    model.start(poll_seconds)
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
                       options=[("grpc.so_reuseport", int(reuse_port))])
  handlers = Handlers(models, max_batch_size, request_metrics, batching)
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(handlers, server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(handlers, server)
  try:
    bound = server.add_insecure_port(f"{host}:{port}")
  except RuntimeError:  # grpc's "Failed to bind": the port is taken
    bound = 0
  if not bound:
    for model in models.values():
      model.stop()
    raise OSError(f"cannot bind {host}:{port}")
  server.start()
  return server, bound, models


def serve(model_name: str, model_base_path: str, host: str = "127.0.0.1", port: int = 8500,
          policy: str = "latest:1", **options):
  """One model: returns (grpc server, bound port, its ModelVersions); `options` as serve_models'."""
  server, bound, models = serve_models([ModelConfig(model_name, model_base_path, policy)], host, port, **options)
  return server, bound, models[model_name]


def _model_configs(args) -> List[ModelConfig]:
  if args.model_config_file:
    if args.model_base_path:
      raise ValueError("give --model_config_file or --model_base_path, not both")
    with open(args.model_config_file) as f:
      return model_config.parse(f.read(), args.model_config_file)
  if not args.model_base_path:
    raise ValueError("give --model_base_path (one model) or --model_config_file (several)")
  return [ModelConfig(args.model_name, args.model_base_path, args.model_version_policy)]


_LOAD_LOCK = "load.lock"  # in --shared_dir: one process loads a version at a time (serving/versions.py)


class _OtherProcesses:
  """The server processes the first one starts (--server_processes): each runs this server's command line
  with its own --process_index, is restarted if it dies, and ends when the first one ends."""

  def __init__(self, argv: Sequence[str], count: int, shared_dir: str):
    self._commands = [[sys.executable, "-m", "serving.server", *argv, "--process_index", str(index),
                       "--shared_dir", shared_dir] for index in range(1, count)]
    self._processes: List[subprocess.Popen] = []
    self._stopping = threading.Event()

  def start(self) -> None:
    # No preexec_fn: Python code run between fork and exec in this many-threaded process (gRPC, TensorFlow)
    # can deadlock. Each process arranges to end with this one itself (end_with_parent).
    self._processes = [subprocess.Popen(command) for command in self._commands]
    threading.Thread(target=self._restart_ended, name="processes", daemon=True).start()

  def _restart_ended(self) -> None:
    while not self._stopping.wait(1.0):
      for i, process in enumerate(self._processes):
        if process.poll() is not None and not self._stopping.is_set():
          logging.error("Server process %d ended with status %s; starting it again", i + 1, process.returncode)
          self._processes[i] = subprocess.Popen(self._commands[i])

  def stop(self) -> None:
    self._stopping.set()
    for process in self._processes:
      process.terminate()
    for process in self._processes:
      process.wait()


def _end_with_parent() -> None:
  """A process the first one started gets SIGTERM when the first one ends, even if it is killed."""
  ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
  if os.getppid() == 1:  # the first one ended before this one got there
    sys.exit("error: the first server process has ended")


def _batching(args) -> Optional[Batching]:
  if args.enable_batching == "false":
    if args.batching_parameters_file:
      raise ValueError("--batching_parameters_file is read only with --enable_batching")
    return None
  if not args.batching_parameters_file:
    return Batching(BatchingParameters())
  with open(args.batching_parameters_file) as f:
    return Batching(BatchingParameters.parse(f.read(), args.batching_parameters_file))


def child_processes(pid: int) -> List[int]:
  """The server processes the first one, `pid`, started (Linux /proc): each of its threads lists the
  children it started."""
  children = []
  for thread in os.listdir(f"/proc/{pid}/task"):
    with open(f"/proc/{pid}/task/{thread}/children") as f:
      children += [int(child) for child in f.read().split()]
  return children


def main(argv: Optional[Sequence[str]] = None) -> None:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_name", default="default", help="the name requests use (TF Serving's default)")
  parser.add_argument("--model_base_path", default="", help="directory of <integer version>/ SavedModels")
  parser.add_argument("--model_config_file", default="",
                      help="a ModelServerConfig text proto: several models, each with its base path and version "
                           "policy (serving/model_config.py), instead of --model_name/--model_base_path")
  parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
  parser.add_argument("--rest_api_port", type=int, default=0,
                      help="port of TF Serving's REST API (serving/rest.py); 0, TF Serving's default: none")
  parser.add_argument("--monitoring_config_file", default="",
                      help="a MonitoringConfig text proto; its prometheus_config {enable: true path: ...} serves the "
                           "request metrics on the REST port")
  parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
  parser.add_argument("--model_version_policy", default="latest:1", help="latest:N, all, or specific:V[,V...]")
  parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
  parser.add_argument("--max_batch_size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                      help="largest first dimension of any input")
  parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="concurrent requests per process")
  parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                      help="threads one op may use (0: TensorFlow's choice, the number of CPUs)")
  parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                      help="threads running independent ops (0: TensorFlow's choice, the number of CPUs)")
  parser.add_argument("--server_processes", type=int, default=1,
                      help="server processes sharing the ports (SO_REUSEPORT); more than 1 needs a fixed --port")
  parser.add_argument("--process_index", type=int, default=0, help=argparse.SUPPRESS)  # set for the others
  # What the processes share: the load lock, and each one's request metrics when they are served.
  parser.add_argument("--shared_dir", default="", help=argparse.SUPPRESS)
  parser.add_argument("--enable_batching", nargs="?", const="true", default="false", choices=("true", "false"),
                      help="batch concurrent requests to batchable signatures (serving/batching.py)")
  parser.add_argument("--batching_parameters_file", default="",
                      help="a BatchingParameters text proto (max_batch_size, batch_timeout_micros, "
                           "max_enqueued_batches, num_batch_threads); default: TF Serving's defaults")
  parser.add_argument("--max_num_load_retries", type=int, default=versions.MAX_NUM_LOAD_RETRIES,
                      help="times a version that failed to load is tried again")
  parser.add_argument("--load_retry_interval_micros", type=int,
                      default=int(versions.LOAD_RETRY_INTERVAL_SECONDS * 1e6), help="wait between load retries")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  # Request threads wait at most this long for the GIL while a new version loads (default 5 ms).
  # (A lower OS priority for the loading thread made it worse: it is preempted holding the GIL.)
  sys.setswitchinterval(0.0005)
  shared, first = args.server_processes > 1, args.process_index == 0
  if not first:
    _end_with_parent()
  others: Optional[_OtherProcesses] = None
  try:
    if args.server_processes < 1:
      raise ValueError(f"--server_processes must be >= 1, got {args.server_processes}")
    if shared and args.port == 0:
      raise ValueError("--server_processes shares --port between processes: give a fixed port, not 0")
    configs = _model_configs(args)
    batching = _batching(args)
    metrics_path = None
    if args.monitoring_config_file:
      with open(args.monitoring_config_file) as f:
        metrics_path = metrics.prometheus_path(f.read())
    if shared and first:
      args.shared_dir = tempfile.mkdtemp(prefix="serving-")
    metrics_dir = args.shared_dir if shared and metrics_path else None
    request_metrics = Metrics(metrics_dir, args.process_index)  # one for both APIs
    if metrics_dir:
      request_metrics.start_publishing()
    server, port, models = serve_models(configs, args.host, args.port, args.file_system_poll_wait_seconds,
                                        args.max_batch_size, args.workers, args.max_num_load_retries,
                                        args.load_retry_interval_micros / 1e6, request_metrics, reuse_port=shared,
                                        batching=batching,
                                        load_lock=os.path.join(args.shared_dir, _LOAD_LOCK) if shared else "",
                                        session_config=config_pb2.ConfigProto(
                                            intra_op_parallelism_threads=args.tensorflow_intra_op_parallelism,
                                            inter_op_parallelism_threads=args.tensorflow_inter_op_parallelism))
    rest_note = ""
    if args.rest_api_port:
      try:
        _, rest_port = rest.serve_rest(Handlers(models, args.max_batch_size, request_metrics, batching), args.host,
                                       args.rest_api_port, metrics_path, reuse_port=shared)
      except OSError as e:
        raise OSError(f"cannot bind the REST API on {args.host}:{args.rest_api_port}: {e}") from e
      rest_note = f"; REST API on {args.host}:{rest_port}" + (f", metrics at {metrics_path}" if metrics_path else "")
    if shared and first:
      # Once this one serves: started before, they slowed its load down (a restart took 16 s instead of 9 s).
      others = _OtherProcesses(argv, args.server_processes, args.shared_dir)
      others.start()
  except (ValueError, OSError) as e:
    if others:
      others.stop()
    sys.exit(f"error: {e}")
  for config in configs:
    available = models[config.name].get()
    print(f"Serving model {config.name!r} from {config.base_path} "
          f"({'version ' + str(available.version) if available else 'no version available yet'}; "
          f"policy {config.policy})", flush=True)
  process_note = f" (process {args.process_index + 1} of {args.server_processes})" if shared else ""
  print(f"gRPC on {args.host}:{port}{rest_note}{process_note}", flush=True)
  stopped = threading.Event()
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, lambda *_: stopped.set())
  # Waking every second: a signal that reached another thread runs its Python handler only once the main
  # thread runs again (a server under --server_processes once missed the SIGTERM that stops it).
  while not stopped.wait(1.0):
    pass
  if others:
    others.stop()
  server.stop(grace=2).wait()
  for model in models.values():
    model.stop()
  if shared and first:
    shutil.rmtree(args.shared_dir, ignore_errors=True)


if __name__ == "__main__":
  main()
