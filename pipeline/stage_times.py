"""The main command's time per stage: where a run of the loop spends its wall time, slowest first.

Example:
  print(format_stage_times(prepare_seconds, refresh_components, refresh_seconds, daily_records))
"""

from typing import Any, Dict, List, Sequence

Components = Dict[str, Dict[str, Any]]  # {component: {"seconds": float, "cached": bool}}


SHOWN_FROM_SECONDS = 0.1  # resolvers and cached nodes take ~0 s: naming them says nothing


def _components(components: Components) -> str:
  ordered = sorted(((name, c) for name, c in components.items() if c["seconds"] >= SHOWN_FROM_SECONDS),
                   key=lambda item: -item[1]["seconds"])
  return ", ".join(f"{name} {c['seconds']:.1f}{' (cached)' if c.get('cached') else ''}" for name, c in ordered)


def format_stage_times(prepare_seconds: float, refresh: Components, refresh_seconds: float,
                       daily_records: Sequence[Dict[str, Any]]) -> str:
  """Lines of 'stage  seconds  what inside it took how long'; a daily run's start-up is its process time
  the components do not account for (interpreter, imports, compiling the pipeline, ML Metadata)."""
  rows: List[tuple] = [("settings and partition", prepare_seconds, ""),
                       ("SID refresh", refresh_seconds, _components(refresh))]
  for record in daily_records:
    wall = record.get("process_seconds", record["seconds"])
    components = record.get("components") or {}
    start_up = wall - sum(c["seconds"] for c in components.values())
    rows.append((f"daily run, span {record['span']}", wall,
                 f"{_components(components)}; start-up {start_up:.1f}" if components else ""))
  total = sum(seconds for _, seconds, _ in rows)
  lines = ["Stage times (wall seconds):"]
  lines += [f"  {name:<26}{seconds:>7.1f}  {detail}".rstrip() for name, seconds, detail in rows]
  lines.append(f"  {'pipeline total':<26}{total:>7.1f}")
  return "\n".join(lines)
