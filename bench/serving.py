"""Serving load generator over loopback: latency and throughput of serving/server.py, and a version swap.

Starts the server in its own process on a copy of the pushed model (version 1), then for 1, 8 and 32
concurrent clients sends `rank` requests (20 history items, 100 candidates) for at most --requests
requests or --seconds seconds per level, and prints p50/p99 latency, requests/s and failures. Then
the swap: under the same load (8 clients), version 2 is published (copied, then renamed into
place); the window from publication until version 2 answers every request is compared with the
steady state. Targets (issue 6): p99 < 10 ms with one client, no failed request and p99 at most 2x
during the swap.

  .venv/bin/python bench/serving.py [--clients 1,8,32] [--requests 3000] [--seconds 20]
      (after ./scripts/run_pipeline.sh, which pushes a model to outputs/serving/sid_ranking)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grpc  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top

from pipeline import configs  # pylint: disable=g-import-not-at-top
from serving import demo, query, versions  # pylint: disable=g-import-not-at-top

NAME = configs.PIPELINE_NAME


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


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_base_path", default=os.path.join(configs.OUTPUT_ROOT, "serving", NAME))
  parser.add_argument("--clients", default="1,8,32")
  parser.add_argument("--swap_clients", type=int, default=8)
  parser.add_argument("--requests", type=int, default=3000, help="at most this many requests per level")
  parser.add_argument("--seconds", type=float, default=20, help="at most this long per level")
  parser.add_argument("--candidates", type=int, default=100)
  args = parser.parse_args(argv)
  on_disk = versions.versions_on_disk(args.model_base_path)
  if not on_disk:
    sys.exit(f"No model under {args.model_base_path}: run ./scripts/run_pipeline.sh first.")
  source = on_disk[max(on_disk)]
  titles, _ = query.read_movielens(query.DATA_ROOT)
  movies = np.array(sorted(titles))

  def request_of(rng):
    history = rng.choice(movies, 20, replace=False).tolist()
    return query.rank_request(NAME, history, history[-1], rng.choice(movies, args.candidates, replace=False).tolist())

  with tempfile.TemporaryDirectory() as base:
    shutil.copytree(source, os.path.join(base, "1"))
    port = demo.free_port()
    server = subprocess.Popen([sys.executable, "-m", "serving.server", "--model_name", NAME, "--model_base_path",
                               base, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
      with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        query.wait_until_available(channel, NAME, 300)
      print(f"model {source} ({os.cpu_count()} CPUs, server and clients on this machine), "
            f"{args.candidates} candidates per request")
      Load(port, 1, 200, 30, request_of).run().join()  # warm-up
      steady = {}
      for clients in [int(c) for c in args.clients.split(",")]:
        load = Load(port, clients, args.requests, args.seconds, request_of).run().join()
        steady[clients] = load
        print(f"{clients:>3} clients: {_summary(load.latencies, load.end_time - load.start_time)}  "
              f"failed {len(load.failures)}")

      clients = args.swap_clients
      load = Load(port, clients, 10 ** 9, 300, request_of).run()
      time.sleep(2)
      published = time.monotonic()
      staging = os.path.join(base, ".staging")
      shutil.copytree(source, staging)
      os.rename(staging, os.path.join(base, "2"))
      while not load.versions or load.versions[-1] != 2:
        time.sleep(0.05)
      swapped = time.monotonic()
      time.sleep(2)
      load.stop()
      during = [(t, latency) for t, latency in load.latencies if published <= t <= swapped]
      baseline = steady.get(clients) or load
      p99 = lambda latencies: np.percentile([latency for _, latency in latencies], 99)
      print(f"swap, {clients} clients: version 2 published, serving it {swapped - published:.1f} s later; "
            f"{_summary(during, swapped - published)}  failed {len(load.failures)}")
      print(f"  p99 during swap / steady p99 at {clients} clients: {p99(during) / p99(baseline.latencies):.2f}x; "
            f"versions answered: {sorted(set(load.versions))}")
      for failure in sorted(set(load.failures))[:5]:
        print("  failure:", failure)
    finally:
      server.terminate()
      server.wait()


if __name__ == "__main__":
  main()
