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
  children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
  own = status_mb("self", "VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return round(max(own, children), 1)


def status_mb(pid, field: str) -> float:
  """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in MB; 0 where it cannot be read (the process
  ended, or no /proc)."""
  try:
    with open(f"/proc/{pid}/status") as f:
      return next((int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":")), 0.0)
  except OSError:
    return 0.0
