"""Serving load generator over loopback: latency and throughput of serving/server.py, and a version swap.

Starts the server in its own process on a copy of the pushed model (version 1), then for 1, 8 and 32
concurrent clients, each with its own connection, sends `rank` requests (20 history items, 100 candidates;
256 distinct ones built beforehand) for at most --requests requests or --seconds seconds, timed from when
every client is connected, and prints p50/p99 latency, requests/s and failures; then the same beside a
busy loop at nice 19 in another process (what any work on these cores, such as loading a version, costs
the requests: the floor of the swap ratio below); then, under the same load, publishes the next version
(copied, then renamed into place) and reports the window from publication until the new version answers
(plus 2 s for the old one's unloading) the same way; then the server's memory (resident and peak), and a
restart: the server stopped and started again, timed from the new process's start to its first answered
`rank` request. Targets (issue 14): at least 500 requests/s at 8
and 32 clients, p99 < 10 ms with one client, no failed request, p99 at most 1.5x steady during the swap,
a restart within 10 s.

  .venv/bin/python bench/serving.py [--output_root outputs] [--clients 1,8,32] [--requests 10000] [--seconds 15]
      [--signature recommend [--top 10]] [--steady_only]
      (after the main command, whose daily runs push a model to <output_root>/serving/<pipeline name>)

Requests draw their movies from the loop's backfill input (<input_base>/backfill/movies.csv). With
`--signature recommend` the requests go to the two-stage model (<output_root>/serving/sid_recommend): 20
history items and a user id each; it retrieves 100 items of the whole catalog by constrained beam search and
ranks them (issue 23's targets: p99 at most 50 ms for 1 client, requests/s at 8 clients).
"""

import argparse
import itertools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Sequence, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grpc
import numpy as np
from tensorflow_serving.apis import prediction_service_pb2_grpc

from bench import loop
from pipeline import partition
from pipeline.configs import RECOMMEND_MODEL_NAME
from serving import demo, query, versions
from serving import server as server_lib


# Each client its own TCP connection, as separate clients have: channels to one address in one process
# otherwise share a connection, and all of them would reach the one server process that accepted it.
_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
_DISTINCT_REQUESTS = 256


class Load:
  """`clients` threads, each with its own connection, sending `requests` in turn (each from its own offset)
  until stopped or out of budget; the clock starts once every client is connected."""

  def __init__(self, port: int, clients: int, budget: int, seconds: float, requests: Sequence):
    self.latencies, self.failures, self.versions = [], [], []
    self._lock, self._stop = threading.Lock(), threading.Event()
    self._budget, self._seconds, self._requests = budget, seconds, requests
    self._connected = threading.Barrier(clients + 1, action=self._start_clock, timeout=60)
    self._threads = [threading.Thread(target=self._client, args=(port, i * len(requests) // clients))
                     for i in range(clients)]

  def _start_clock(self):
    self.start_time = time.monotonic()
    self._deadline = self.start_time + self._seconds

  def _client(self, port, offset):
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=_OWN_CONNECTION) as channel:
      try:
        grpc.channel_ready_future(channel).result(timeout=60)
      except grpc.FutureTimeoutError:
        self._connected.abort()
        raise
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      self._connected.wait()
      for request in itertools.islice(itertools.cycle(self._requests), offset, None):
        if self._stop.is_set() or time.monotonic() >= self._deadline:
          return
        with self._lock:
          if self._budget <= 0:
            return
          self._budget -= 1
        start = time.perf_counter()
        try:
          version = stub.Predict(request, timeout=10).model_spec.version.value
        except grpc.RpcError as e:
          with self._lock:
            self.failures.append(f"{e.code().name}: {e.details()}")
          continue
        elapsed = time.perf_counter() - start
        with self._lock:
          self.latencies.append((time.monotonic(), elapsed))
          self.versions.append(version)

  def run(self):
    for thread in self._threads:
      thread.start()
    self._connected.wait()
    return self

  def stop(self):
    self._stop.set()
    self.join()

  def join(self):
    for thread in self._threads:
      thread.join()
    self.end_time = time.monotonic()
    return self


def _summary(latencies, seconds):
  ms = np.array([latency for _, latency in latencies]) * 1e3
  if not len(ms):
    return "no successful request"
  return (f"{len(ms):>6} requests  p50 {np.percentile(ms, 50):6.2f} ms  p99 {np.percentile(ms, 99):6.2f} ms  "
          f"{len(ms) / seconds:7.1f} req/s")


def _p99(latencies) -> float:
  return float(np.percentile([latency for _, latency in latencies], 99))


def _swap(port, clients, requests, source, base, version):
  """Load from `clients` while `version` is published; the latencies from publication until the
  new version answers, that window's length, and the Load."""
  load = Load(port, clients, 10 ** 9, 600, requests).run()
  time.sleep(2)
  published = time.monotonic()
  staging = os.path.join(base, ".staging")
  shutil.copytree(source, staging)
  os.rename(staging, os.path.join(base, str(version)))
  while not load.versions or load.versions[-1] != version:
    if time.monotonic() - published > 600:
      load.stop()
      raise RuntimeError(f"version {version} was not served within 600 s of its publication")
    time.sleep(0.05)
  served = time.monotonic()
  time.sleep(2)  # the old version is unloaded after the new one serves
  load.stop()
  return [(t, latency) for t, latency in load.latencies if published <= t <= served + 2], served - published, load


def _beside_busy_loop(port, clients, budget, seconds, requests) -> Load:
  """The steady load again beside a busy loop at the lowest priority (nice 19) in another process: what
  any work on these cores costs the requests, with no server work at all; the floor of a swap's ratio,
  as every server process loads the new version on the same cores."""
  busy = subprocess.Popen([sys.executable, "-c", "import os\nos.nice(19)\nwhile True: pass"])
  try:
    return Load(port, clients, budget, seconds, requests).run().join()
  finally:
    busy.kill()
    busy.wait()


def _memory_mb(pid: int) -> Tuple[float, float]:
  """(resident, peak resident) MB of a process (Linux /proc)."""
  with open(f"/proc/{pid}/status") as f:
    fields = dict(line.split(":", 1) for line in f)
  return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def _listening(port: int) -> int:
  """How many sockets listen on `port` (Linux /proc/net): one per server process that is serving."""
  count = 0
  for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as f:
      next(f)
      for line in f:
        local, state = line.split()[1], line.split()[3]
        count += int(local.rsplit(":", 1)[1], 16) == port and state == "0A"
  return count


def _wait_listening(port: int, processes: int, timeout: float = 300) -> None:
  """Until every server process listens: one loads its models before it binds, and connections made before
  then would all go to the others."""
  deadline = time.monotonic() + timeout
  while _listening(port) < processes:
    if time.monotonic() > deadline:
      raise RuntimeError(f"{_listening(port)} of {processes} server processes listen after {timeout:.0f} s")
    time.sleep(0.1)


def _first_answer_seconds(port: int, request, started: float, timeout: float = 300) -> float:
  """Seconds from `started` (time.monotonic()) until the server answers `request`."""
  with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    while time.monotonic() - started < timeout:
      try:
        stub.Predict(request, timeout=1)
        return time.monotonic() - started
      except grpc.RpcError as e:
        if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                            grpc.StatusCode.DEADLINE_EXCEEDED):
          raise
      time.sleep(0.02)
  raise RuntimeError(f"the restarted server did not answer within {timeout:.0f} s")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_base_path", help="default: the loop's serving directory")
  parser.add_argument("--clients", default="1,8,32")
  parser.add_argument("--requests", type=int, default=10000, help="at most this many requests per level")
  parser.add_argument("--seconds", type=float, default=15, help="at most this long per level")
  parser.add_argument("--candidates", type=int, default=100)
  parser.add_argument("--signature", choices=("rank", "recommend"), default="rank",
                      help="recommend: the two-stage model (retrieve 100 of the whole catalog, rank, return --top)")
  parser.add_argument("--top", type=int, default=10, help="k of recommend requests")
  parser.add_argument("--steady_only", action="store_true", help="skip the busy loop, the swap and the restart")
  parser.add_argument("--server_processes", type=int, default=1, help="the server's --server_processes")
  parser.add_argument("--server_flags", default="", help="more flags for the server, e.g. '--workers 4'")
  args, config = loop.parse(parser, argv)
  recommend = args.signature == "recommend"
  model_base_path = args.model_base_path or (config.recommender_serving_dir if recommend else config.serving_model_dir)
  on_disk = versions.versions_on_disk(model_base_path)
  if not on_disk:
    sys.exit(f"No model under {model_base_path}: no daily run has pushed one yet (pipeline.replay runs more).")
  source = on_disk[max(on_disk)]
  titles, _ = query.read_movielens(os.path.join(config.input_base, partition.BACKFILL))
  movies = np.array(sorted(titles))
  name = RECOMMEND_MODEL_NAME if recommend else config.pipeline_name

  def request_of(rng):
    history = rng.choice(movies, 20, replace=False).tolist()
    if recommend:
      return query.recommend_request(name, history, args.top, user_id=int(rng.integers(1, 1000)))
    return query.rank_request(name, history, history[-1], rng.choice(movies, args.candidates, replace=False).tolist())
  rng = np.random.default_rng(0)
  # Built before the clock: building them would take the clients' CPU from the server on these shared cores.
  requests = [request_of(rng) for _ in range(_DISTINCT_REQUESTS)]

  with tempfile.TemporaryDirectory() as base:
    shutil.copytree(source, os.path.join(base, "1"))
    port = demo.free_port()

    def start_server():
      return subprocess.Popen([sys.executable, "-m", "serving.server", "--model_name", name, "--model_base_path",
                               base, "--port", str(port), "--server_processes", str(args.server_processes),
                              *shlex.split(args.server_flags)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = start_server()
    try:
      with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        query.wait_until_available(channel, name, 300)
      _wait_listening(port, args.server_processes)
      what = (f"recommend: top {args.top} of the retrieved and ranked" if recommend
              else f"rank: {args.candidates} candidates")
      print(f"model {source} ({os.cpu_count()} CPUs, server and clients on this machine, "
            f"{args.server_processes} server process(es)), {what} per request")
      Load(port, 1, 200, 30, requests).run().join()  # warm-up
      version = 1
      for clients in [int(c) for c in args.clients.split(",")]:
        steady = Load(port, clients, args.requests, args.seconds, requests).run().join()
        print(f"{clients:>3} clients, steady: {_summary(steady.latencies, steady.end_time - steady.start_time)}  "
              f"failed {len(steady.failures)}")
        if args.steady_only:
          continue
        busy = _beside_busy_loop(port, clients, args.requests, args.seconds, requests)
        print(f"{clients:>3} clients, busy:   {_summary(busy.latencies, busy.end_time - busy.start_time)}  "
              f"failed {len(busy.failures)}  p99 {_p99(busy.latencies) / _p99(steady.latencies):.2f}x steady")
        version += 1
        during, seconds, swap = _swap(port, clients, requests, source, base, version)
        ratio = _p99(during) / _p99(steady.latencies) if during else float("nan")
        print(f"{clients:>3} clients, swap:   {_summary(during, seconds)}  failed {len(swap.failures)}  "
              f"p99 {ratio:.2f}x steady; version {version} served {seconds:.1f} s after it was published")
        for failure in sorted(set(swap.failures))[:5]:
          print("  failure:", failure)
      for pid in [server.pid] + server_lib.child_processes(server.pid):
        resident, peak = _memory_mb(pid)
        print(f"server process {pid}: {resident:.0f} MB resident, {peak:.0f} MB peak")
      if args.steady_only:
        return
      server.terminate()
      server.wait()
      started = time.monotonic()
      server = start_server()
      print(f"restart: first request answered {_first_answer_seconds(port, requests[0], started):.1f} s after "
            "the server process started")
    finally:
      server.terminate()
      server.wait()


if __name__ == "__main__":
  loop.run(main)
