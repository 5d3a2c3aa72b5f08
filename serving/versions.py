"""The versions of one model under a TF Serving base directory, loaded and swapped like TF Serving.

`<base>/<integer version>/saved_model.pb` is a version (the TFX Pusher writes saved_model.pb last,
so a half-copied version is not seen). A watcher polls the base directory; versions chosen by the
policy are loaded and warmed up (assets.extra/tf_serving_warmup_requests) before they take traffic,
and a version leaves only after its successor is available, so no request fails during a swap.
A version that fails to load is reported (GetModelStatus: END with its error) and the one already
serving keeps serving; its load is retried like TF Serving's (--max_num_load_retries times, every
--load_retry_interval_micros), so a version fixed in place loads without a restart, and a newer version
is loaded meanwhile. In-flight requests keep the servable they started with. Processes serving the same
models (--server_processes) share a load lock, so one of them loads a new version at a time: loads use
every CPU, and the requests served meanwhile wait less when they do not all load at once.
"""

import contextlib
import dataclasses
import fcntl
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the tf-text ops, as TF Serving links them in)
from absl import logging
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow_serving.apis import get_model_status_pb2

from formats.served_models import versions_on_disk

State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class Servable:
  """One loaded version: a session over its MetaGraph, and its SignatureDefs (tensor names)."""
  name: str
  version: int
  path: str
  session: tf.compat.v1.Session
  signature_defs: Dict[str, meta_graph_pb2.SignatureDef]
  # (Batching, signature) -> the signature's request batcher (serving/batching.py, --enable_batching): they go
  # with the version.
  batchers: Dict[Any, Any] = dataclasses.field(default_factory=dict)
  # Made once per version by serving/predict.py: (signature, outputs) -> (feed names, the session's callable),
  # and signature -> what its inputs must be.
  callables: Dict[Any, Any] = dataclasses.field(default_factory=dict)
  inputs: Dict[str, Any] = dataclasses.field(default_factory=dict)


def load(name: str, version: int, path: str, config: Optional[config_pb2.ConfigProto] = None) -> Servable:
  """Loads the SavedModel's `serve` MetaGraph into its own graph and session (with `config`: thread pools),
  as TF Serving's SavedModelBundle does: graph import and variable restore run in TensorFlow's C++ code,
  which keeps a load from holding Python's GIL against the requests being served (unlike
  tf.saved_model.load, whose object-graph revival is Python). The session closes when the last request
  using it ends."""
  graph = tf.Graph()
  session = tf.compat.v1.Session(graph=graph, config=config)
  with graph.as_default():
    meta_graph = tf.compat.v1.saved_model.loader.load(session, [tf.saved_model.SERVING], path)
  return Servable(name, version, path, session, dict(meta_graph.signature_def))


class VersionPolicy:
  """TF Serving's model_version_policy: `latest:N` (default latest:1), `all`, or `specific:V[,V...]`."""

  def __init__(self, spec: str = "latest:1"):
    kind, _, value = spec.partition(":")
    try:
      if kind == "latest":
        self._latest, self._specific = int(value or 1), None
        valid = self._latest >= 1
      elif kind == "all" and not value:
        self._latest, self._specific, valid = None, None, True
      elif kind == "specific":
        self._latest, self._specific = None, {int(v) for v in value.split(",")}
        valid = bool(self._specific)
      else:
        valid = False
    except ValueError:
      valid = False
    if not valid:
      raise ValueError(f"model version policy {spec!r}: expected latest:N (N >= 1), all, or specific:V[,V...]")
    self.spec = spec

  def select(self, versions: List[int]) -> Set[int]:
    if self._latest:
      return set(sorted(versions)[-self._latest:])
    if self._specific is not None:
      return self._specific & set(versions)
    return set(versions)


@dataclasses.dataclass(frozen=True)
class _Failure:
  path: str
  attempts: int
  retry_at: float  # time.monotonic()


# TF Serving's defaults (model_servers/main.cc).
MAX_NUM_LOAD_RETRIES = 5
LOAD_RETRY_INTERVAL_SECONDS = 60.0


@contextlib.contextmanager
def _one_load_at_a_time(lock_path: str):
  """Holds an exclusive lock on `lock_path` (shared by the server's processes); nothing if empty."""
  if not lock_path:
    yield
    return
  with open(lock_path, "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


class ModelVersions:
  """Serves the versions of `name` found under `base_path`, reloading as the directory changes.

  `warmup(servable)` runs before a version takes traffic; an exception there fails the load. With
  `load_lock` (a file's path), loads wait for every other load holding it.
  """

  def __init__(self, name: str, base_path: str, policy: VersionPolicy,
               warmup: Callable[[Servable], None] = lambda servable: None,
               loader: Callable[[str, int, str], Servable] = load,
               max_num_load_retries: int = MAX_NUM_LOAD_RETRIES,
               load_retry_interval_seconds: float = LOAD_RETRY_INTERVAL_SECONDS, load_lock: str = ""):
    if max_num_load_retries < 0 or load_retry_interval_seconds < 0:
      raise ValueError("load retries and their interval must be >= 0")
    self.name, self.base_path, self.policy = name, base_path, policy
    self._warmup, self._loader = warmup, loader
    self._max_retries, self._retry_interval = max_num_load_retries, load_retry_interval_seconds
    self._load_lock = load_lock
    self._serving: Dict[int, Servable] = {}  # replaced, never mutated: readers need no lock
    self._states: Dict[int, Tuple[int, str]] = {}  # version -> (State, error message)
    self._failed: Dict[int, _Failure] = {}  # version -> its latest failed load
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def get(self, version: Optional[int] = None) -> Optional[Servable]:
    """The latest available version, or `version`; None if it is not available."""
    serving = self._serving
    if version is None:
      return serving[max(serving)] if serving else None
    return serving.get(version)

  def states(self) -> Dict[int, Tuple[int, str]]:
    with self._lock:
      return dict(self._states)

  def _set_state(self, version: int, state: int, error: str = "") -> None:
    with self._lock:
      self._states[version] = (state, error)

  def poll(self) -> None:
    """One pass over the base directory: load what the policy wants, then unload what it dropped."""
    on_disk = versions_on_disk(self.base_path)
    wanted = self.policy.select([v for v, path in on_disk.items() if self._loadable(v, path)])
    for version in sorted(wanted - set(self._serving), reverse=True):
      self._load(version, on_disk[version])
    newest_wanted_available = any(v in self._serving for v in wanted)
    leaving = [v for v in self._serving if v not in wanted and (v not in on_disk or newest_wanted_available)]
    if leaving:
      for version in leaving:
        self._set_state(version, State.UNLOADING)
      self._serving = {v: s for v, s in self._serving.items() if v not in leaving}
      for version in leaving:
        self._set_state(version, State.END)
        logging.info("Unloaded %s version %d", self.name, version)

  def _loadable(self, version: int, path: str) -> bool:
    """Not failed, or failed with retries left and due (a version moved to another path starts afresh)."""
    failure = self._failed.get(version)
    return (failure is None or failure.path != path
            or (failure.attempts <= self._max_retries and time.monotonic() >= failure.retry_at))

  def _load(self, version: int, path: str) -> None:
    self._set_state(version, State.START)
    self._set_state(version, State.LOADING)
    start = time.perf_counter()
    try:
      with _one_load_at_a_time(self._load_lock):
        servable = self._loader(self.name, version, path)
        self._warmup(servable)
    except Exception as e:
      # A broken version must not take the server down: it is reported and the old one serves on.
      previous = self._failed.get(version)
      attempts = previous.attempts + 1 if previous and previous.path == path else 1
      self._failed[version] = _Failure(path, attempts, time.monotonic() + self._retry_interval)
      retry = (f"retry {attempts} of {self._max_retries} in {self._retry_interval:g} s"
               if attempts <= self._max_retries else "no retries left")
      self._set_state(version, State.END, f"{type(e).__name__}: {e} ({retry})")
      logging.error("Failed to load %s version %d from %s: %s (%s)", self.name, version, path, e, retry)
      return
    self._failed.pop(version, None)
    self._serving = {**self._serving, version: servable}
    self._set_state(version, State.AVAILABLE)
    logging.info("Loaded %s version %d from %s in %.1f s", self.name, version, path, time.perf_counter() - start)

  def start(self, poll_seconds: float) -> None:
    """Polls now, then every `poll_seconds` in a background thread until stop()."""
    self.poll()

    def watch():
      while not self._stop.wait(poll_seconds):
        try:
          self.poll()
        except Exception as e:
          logging.error("Polling %s failed: %s", self.base_path, e)
    self._thread = threading.Thread(target=watch, name=f"watch-{self.name}", daemon=True)
    self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread:
      self._thread.join()
