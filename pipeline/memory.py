"""A process's own peak memory.

`getrusage` cannot give it for a process started by a large one: on Linux, exec records the resident size
the child inherited at fork as its peak, so a daily run started by the process that ran a 20 GB refresh
reports 20 GB (`os.wait4` in the parent and RUSAGE_SELF in the child alike). VmHWM, the high-water mark of
the program's own address space, starts again at exec.
"""

import resource


def peak_rss_mb() -> float:
  """Peak resident memory, MB, of this process's program and of the children it has waited for (forked
  from it, so bounded by this process's own size when they started); getrusage's figure where /proc
  is missing (not Linux)."""
  children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB on Linux
  try:
    with open("/proc/self/status") as f:
      own = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))  # kB
  except (OSError, StopIteration):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return round(max(own, children) / 1024, 1)
