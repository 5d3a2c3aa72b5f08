"""PNG plots of the SID quality report (matplotlib, no display needed)."""

from typing import Any, Dict, List

from components.figures import plt, save_png


def write_all(directory: str, report: Dict[str, Any]) -> List[str]:
  names = []
  figure, axis = plt.subplots(figsize=(6, 3.5))
  for row in (r for r in report["comparison"] if "utilisation" in r):
    axis.plot(range(1, len(row["utilisation"]) + 1), row["utilisation"], marker="o", label=row["method"])
  axis.set(xlabel="level", ylabel="codes used / K", title="Codebook utilisation", ylim=(0, 1.05))
  axis.legend()
  names.append(save_png(figure, directory, "utilisation.png"))

  similarity = report["prefix_similarity"]
  figure, axis = plt.subplots(figsize=(6, 3.5))
  axis.plot([r["prefix_length"] for r in similarity], [r["mean_pairwise_cosine"] for r in similarity],
            marker="o")
  axis.set(xlabel="shared prefix length (0 = any two items)", ylabel="mean pairwise cosine",
           title="Items sharing a longer prefix are more similar")
  names.append(save_png(figure, directory, "prefix_similarity.png"))
  return names
