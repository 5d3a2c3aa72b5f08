"""What each SID adaptation costs and shares: the paper's Figure 4 and table rows used.

Singh et al. 2023, Figure 4: embedding lookups per item against table size, for SPM and N-grams,
for head items (the most impressed 10%) and the rest. SPM spends one lookup on a whole popular SID
and several on a rare one; N-grams spend the same on every item. Hashed adaptations are reported
with the share of distinct keys (item ids, SID prefixes) that land on a row shared with another key.
"""

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from components.figures import plt, save_png
from models.sid_adaptation import tokenizers

HEAD_FRACTION = 0.1
FIGURE = "figure4.png"
COLORS = {kind: f"C{index}" for index, kind in enumerate(tokenizers.KINDS)}


def head_mask(weights: np.ndarray, fraction: float = HEAD_FRACTION) -> np.ndarray:
  """The most impressed `fraction` of items (ties broken by position), as a boolean mask."""
  head = np.zeros(len(weights), bool)
  head[np.argsort(-weights, kind="stable")[:int(np.ceil(fraction * len(weights)))]] = True
  return head


def shared_row_fraction(keys: Sequence[Any], rows: Sequence[int]) -> float:
  """Share of distinct keys whose row also holds another distinct key."""
  keys_per_row: Dict[int, set] = {}
  for key, row in zip(keys, rows):
    keys_per_row.setdefault(row, set()).add(key)
  distinct = sum(len(k) for k in keys_per_row.values())
  return sum(len(k) for k in keys_per_row.values() if len(k) > 1) / max(distinct, 1)


def _hash_keys(tokenizer: tokenizers.SidTokenizer, ids: np.ndarray, codes: np.ndarray) -> List[Any]:
  if tokenizer.kind == "random_hash":
    return ids.tolist()
  return [row[:n] for row in map(tuple, codes.tolist()) for n in range(1, len(row) + 1)]


def adaptation_stats(tokenizer: tokenizers.SidTokenizer, pieces: tf.RaggedTensor, ids: np.ndarray,
                     codes: np.ndarray, weights: np.ndarray, budget: Optional[int]) -> Dict[str, Any]:
  """Rows and lookups of `pieces` (the tokenizer's output for every item)."""
  lengths = pieces.row_lengths().numpy()
  flat = pieces.flat_values.numpy()
  impressed = np.repeat(weights > 0, lengths)
  head = head_mask(weights)
  stats = {
      "adaptation": tokenizer.kind, "table_budget": budget, "table_rows": int(tokenizer.num_rows),
      "rows_used": int(len(np.unique(flat))),
      "rows_used_by_impressed_items": int(len(np.unique(flat[impressed]))),
      "lookups_per_item": float(lengths.mean()),
      "lookups_head": float(lengths[head].mean()),
      "lookups_rest": float(lengths[~head].mean()) if (~head).any() else None,
      "lookups_per_impression": float(np.average(lengths, weights=weights)),
  }
  if tokenizer.kind in ("random_hash", "prefix_ngram"):
    stats["keys_sharing_a_row"] = shared_row_fraction(_hash_keys(tokenizer, ids, codes), flat.tolist())
  return stats


def frequent_pieces(tokenizer: tokenizers.SidTokenizer, pieces: tf.RaggedTensor, ids: np.ndarray,
                    weights: np.ndarray, titles: Dict[int, str], count: int = 10,
                    max_titles: int = 5) -> List[Dict[str, Any]]:
  """The most impressed pieces spanning more than one code, with the items whose SID holds them."""
  impressions: Dict[int, int] = {}
  holders: Dict[int, List[int]] = {}
  for index, item_pieces in enumerate(pieces.to_list()):
    for piece in item_pieces:
      spelled = tokenizer.piece_codes(piece)
      if spelled and len(spelled) > 1:
        impressions[piece] = impressions.get(piece, 0) + int(weights[index])
        holders.setdefault(piece, []).append(index)
  top = sorted(impressions, key=lambda p: (-impressions[p], p))[:count]
  return [{"piece": int(p), "codes": [list(pair) for pair in tokenizer.piece_codes(p)],
           "impressions": impressions[p], "items": len(holders[p]),
           "titles": [titles.get(int(ids[i]), str(ids[i]))
                      for i in sorted(holders[p], key=lambda i: -weights[i])[:max_titles]]}
          for p in top]


def _stats(tokenizer: tokenizers.SidTokenizer, ids: np.ndarray, codes: np.ndarray, weights: np.ndarray,
           budget: Optional[int]) -> Dict[str, Any]:
  return adaptation_stats(tokenizer, tokenizer(tf.constant(ids), tf.constant(codes)), ids, codes, weights, budget)


def build(ids: np.ndarray, codes: np.ndarray, weights: np.ndarray, num_levels: int,
          codebook_size: int, spm_models: Dict[int, bytes], titles: Dict[int, str],
          max_bigram_rows: int) -> Dict[str, Any]:
  """report.json's content: one row per adaptation and budget, and SPM's most used pieces."""
  rows: List[Dict[str, Any]] = []
  examples: Dict[str, Any] = {}
  fixed = [("unigram", {}), ("bigram", {"max_rows": max_bigram_rows})]
  for kind, options in fixed:
    try:
      tokenizer = tokenizers.create(kind, num_levels, codebook_size, **options)
    except ValueError as e:
      rows.append({"adaptation": kind, "refused": str(e)})
      continue
    rows.append(_stats(tokenizer, ids, codes, weights, None))
  for budget, model in sorted(spm_models.items()):
    spm_tokenizer = tokenizers.create("spm", num_levels, codebook_size, spm_model=model)
    pieces = spm_tokenizer(tf.constant(ids), tf.constant(codes))
    rows.append(adaptation_stats(spm_tokenizer, pieces, ids, codes, weights, budget))
    examples[str(budget)] = frequent_pieces(spm_tokenizer, pieces, ids, weights, titles)
    for kind in ("prefix_ngram", "random_hash"):
      rows.append(_stats(tokenizers.create(kind, num_levels, codebook_size, num_rows=budget),
                         ids, codes, weights, budget))
  return {"items": int(len(ids)), "impressed_items": int((weights > 0).sum()),
          "impressions": int(weights.sum()), "head_items": int(head_mask(weights).sum()),
          "num_levels": num_levels, "codebook_size": codebook_size,
          "adaptations": rows, "spm_frequent_pieces": examples}


def write_figure(directory: str, report: Dict[str, Any]) -> str:
  """Figure 4: lookups per item vs table rows (head and rest), and rows used vs rows."""
  rows = [r for r in report["adaptations"] if "refused" not in r]
  figure, (lookups, used) = plt.subplots(1, 2, figsize=(11, 4))
  spm_rows = [r for r in rows if r["adaptation"] == "spm"]
  for part, style in (("head", "-"), ("rest", "--")):
    lookups.plot([r["table_rows"] for r in spm_rows], [r[f"lookups_{part}"] for r in spm_rows],
                 style, marker="o", color=COLORS["spm"], label=f"SPM, {part}")
    for kind in ("unigram", "bigram"):
      for r in (r for r in rows if r["adaptation"] == kind):
        lookups.scatter(r["table_rows"], r[f"lookups_{part}"], color=COLORS[kind],
                        marker="o" if part == "head" else "x", label=f"{kind}, {part}")
  lookups.set(xscale="log", xlabel="embedding table rows", ylabel="embedding lookups per item",
              title=f"Head = most impressed {HEAD_FRACTION:.0%} of items")
  lookups.legend(fontsize=8)
  for kind, color in COLORS.items():
    of_kind = sorted((r for r in rows if r["adaptation"] == kind), key=lambda r: r["table_rows"])
    used.plot([r["table_rows"] for r in of_kind], [r["rows_used"] for r in of_kind], marker="o",
              color=color, label=kind)
  used.set(xscale="log", yscale="log", xlabel="embedding table rows", ylabel="rows used by the corpus",
           title=f"{report['items']:,} items")
  used.legend(fontsize=8)
  return save_png(figure, directory, FIGURE)
