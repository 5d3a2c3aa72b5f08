"""Serving load generator over loopback: latency and throughput of serving/server.py, and a version swap.

Starts the server in its own process on a copy of the pushed model (version 1), then for 1, 8 and 32
concurrent clients sends `rank` requests (20 history items, 100 candidates) for at most --requests
requests or --seconds seconds, and prints p50/p99 latency, requests/s and failures; then, under the
same load, publishes the next version (copied, then renamed into place) and reports the window from
publication until the new version answers (plus 2 s for the old one's unloading) the same way; then the
server's memory (resident and peak), and a restart: the server stopped and started again, timed from the
new process's start to its first answered `rank` request. Targets (issue 14): at least 500 requests/s at 8
and 32 clients, p99 < 10 ms with one client, no failed request, p99 at most 1.5x steady during the swap,
a restart within 10 s.

  .venv/bin/python bench/serving.py [--output_root outputs] [--clients 1,8,32] [--requests 3000] [--seconds 20]
      (after the main command, whose daily runs push a model to <output_root>/serving/<pipeline name>)

Requests draw their movies from the loop's backfill input (<input_base>/backfill/movies.csv).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grpc  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top

from bench import loop  # pylint: disable=g-import-not-at-top
from pipeline import partition  # pylint: disable=g-import-not-at-top
from serving import demo, query, versions  # pylint: disable=g-import-not-at-top
from serving import server as server_lib  # pylint: disable=g-import-not-at-top


class Load:
  """`clients` threads, one channel each, sending requests until stopped or out of budget."""

  def __init__(self, port: int, clients: int, requests: int, seconds: float, request_of):
    self.latencies, self.failures, self.versions = [], [], []
    self._lock, self._stop = threading.Lock(), threading.Event()
    self._budget, self._deadline = requests, time.monotonic() + seconds
    self._threads = [threading.Thread(target=self._client, args=(port, request_of, seed)) for seed in range(clients)]

  def _client(self, port, request_of, seed):
    rng = np.random.default_rng(seed)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      while not self._stop.is_set() and time.monotonic() < self._deadline:
        with self._lock:
          if self._budget <= 0:
            return
          self._budget -= 1
        request = request_of(rng)
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
    self.start_time = time.monotonic()
    for thread in self._threads:
      thread.start()
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


def _swap(port, clients, request_of, source, base, version):
  """Load from `clients` while `version` is published; the latencies from publication until the
  new version answers, that window's length, and the Load."""
  load = Load(port, clients, 10 ** 9, 600, request_of).run()
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


def _first_answer_seconds(port: int, request_of, started: float, timeout: float = 300) -> float:
  """Seconds from `started` (time.monotonic()) until the server answers a `rank` request."""
  rng = np.random.default_rng(0)
  with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    while time.monotonic() - started < timeout:
      try:
        stub.Predict(request_of(rng), timeout=1)
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
  parser.add_argument("--requests", type=int, default=3000, help="at most this many requests per level")
  parser.add_argument("--seconds", type=float, default=20, help="at most this long per level")
  parser.add_argument("--candidates", type=int, default=100)
  parser.add_argument("--server_processes", type=int, default=1, help="the server's --server_processes")
  args, config = loop.parse(parser, argv)
  model_base_path = args.model_base_path or config.serving_model_dir
  on_disk = versions.versions_on_disk(model_base_path)
  if not on_disk:
    sys.exit(f"No model under {model_base_path}: no daily run has pushed one yet (pipeline.replay runs more).")
  source = on_disk[max(on_disk)]
  titles, _ = query.read_movielens(os.path.join(config.input_base, partition.BACKFILL))
  movies = np.array(sorted(titles))
  name = config.pipeline_name

  def request_of(rng):
    history = rng.choice(movies, 20, replace=False).tolist()
    return query.rank_request(name, history, history[-1], rng.choice(movies, args.candidates, replace=False).tolist())

  with tempfile.TemporaryDirectory() as base:
    shutil.copytree(source, os.path.join(base, "1"))
    port = demo.free_port()

    def start_server():
      return subprocess.Popen([sys.executable, "-m", "serving.server", "--model_name", name, "--model_base_path",
                               base, "--port", str(port), "--server_processes", str(args.server_processes)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = start_server()
    try:
      with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        query.wait_until_available(channel, name, 300)
      _wait_listening(port, args.server_processes)
      print(f"model {source} ({os.cpu_count()} CPUs, server and clients on this machine, "
            f"{args.server_processes} server process(es)), {args.candidates} candidates per request")
      Load(port, 1, 200, 30, request_of).run().join()  # warm-up
      version = 1
      for clients in [int(c) for c in args.clients.split(",")]:
        steady = Load(port, clients, args.requests, args.seconds, request_of).run().join()
        print(f"{clients:>3} clients, steady: {_summary(steady.latencies, steady.end_time - steady.start_time)}  "
              f"failed {len(steady.failures)}")
        version += 1
        during, seconds, swap = _swap(port, clients, request_of, source, base, version)
        ratio = _p99(during) / _p99(steady.latencies) if during else float("nan")
        print(f"{clients:>3} clients, swap:   {_summary(during, seconds)}  failed {len(swap.failures)}  "
              f"p99 {ratio:.2f}x steady; version {version} served {seconds:.1f} s after it was published")
        for failure in sorted(set(swap.failures))[:5]:
          print("  failure:", failure)
      for pid in [server.pid] + server_lib.child_processes(server.pid):
        resident, peak = _memory_mb(pid)
        print(f"server process {pid}: {resident:.0f} MB resident, {peak:.0f} MB peak")
      server.terminate()
      server.wait()
      started = time.monotonic()
      server = start_server()
      print(f"restart: first request answered {_first_answer_seconds(port, request_of, started):.1f} s after "
            "the server process started")
    finally:
      server.terminate()
      server.wait()


if __name__ == "__main__":
  loop.run(main)
