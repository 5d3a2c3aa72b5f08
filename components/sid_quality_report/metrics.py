"""Quality measures of a Semantic-ID assignment (Singh et al. 2023, section 3.2 and Table 1)."""

from typing import Dict, List, Sequence

import numpy as np


def prefix_groups(codes: np.ndarray, length: int) -> np.ndarray:
  """Group index of every item by its first `length` codes."""
  return np.unique(codes[:, :length], axis=0, return_inverse=True)[1].reshape(-1)


def reconstruction_mse(reconstruction: np.ndarray, embeddings: np.ndarray) -> float:
  """Mean squared error in the embedding space, over items and dimensions: one scale for every
  quantizer, whatever space it quantizes in."""
  return float(np.mean((reconstruction - embeddings) ** 2))


def unique_ratio(codes: np.ndarray) -> float:
  return float(len(np.unique(codes, axis=0)) / max(len(codes), 1))


def _pair_counts(sizes: np.ndarray) -> float:
  return float((sizes * (sizes - 1) // 2).sum())


def prefix_similarity(codes: np.ndarray, embeddings: np.ndarray) -> List[Dict[str, float]]:
  """Table 1 of the paper: per shared-prefix length, the mean cosine similarity over all pairs of
  items sharing that prefix, and the 25th-75th percentile sizes of the sub-tries; level 0 is the
  whole corpus (the random-pair baseline)."""
  unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  rows = []
  for length in range(codes.shape[1] + 1):
    groups = prefix_groups(codes, length) if length else np.zeros(len(codes), np.int64)
    sums = np.zeros((groups.max() + 1, unit.shape[1]))
    np.add.at(sums, groups, unit)
    sizes = np.bincount(groups)
    # Sum of pairwise cosines in a group = (|sum of unit vectors|^2 - size) / 2.
    pair_cosine = ((sums ** 2).sum(1) - sizes) / 2
    pairs = _pair_counts(sizes)
    rows.append({"prefix_length": length,
                 "mean_pairwise_cosine": float(pair_cosine.sum() / pairs) if pairs else float("nan"),
                 "pairs": pairs,
                 "subtries": int(len(sizes)),
                 "subtrie_size_p25": float(np.percentile(sizes, 25)),
                 "subtrie_size_p50": float(np.percentile(sizes, 50)),
                 "subtrie_size_p75": float(np.percentile(sizes, 75))})
  return rows


def prefix_agreement(codes_a: np.ndarray, codes_b: np.ndarray) -> List[Dict[str, float]]:
  """How two SID assignments of the same items agree, per prefix length: of the item pairs sharing a
  prefix under A, the share that also shares one under B (and the reverse), and the adjusted Rand
  index of the two prefix partitions. Code values themselves are arbitrary, so only pairs count."""
  rows = []
  for length in range(1, min(codes_a.shape[1], codes_b.shape[1]) + 1):
    a, b = prefix_groups(codes_a, length), prefix_groups(codes_b, length)
    joint = np.unique(np.stack([a, b], 1), axis=0, return_counts=True)[1]
    together_both = _pair_counts(joint)
    together_a, together_b = _pair_counts(np.bincount(a)), _pair_counts(np.bincount(b))
    total = _pair_counts(np.array([len(a)]))
    expected = together_a * together_b / total if total else 0.0
    denominator = (together_a + together_b) / 2 - expected
    rows.append({"prefix_length": length,
                 "pairs_kept_a_to_b": together_both / together_a if together_a else float("nan"),
                 "pairs_kept_b_to_a": together_both / together_b if together_b else float("nan"),
                 "adjusted_rand_index": (together_both - expected) / denominator if denominator else 1.0})
  return rows


def code_changes(previous_ids: np.ndarray, previous_codes: np.ndarray, ids: np.ndarray,
                 codes: np.ndarray) -> Dict[str, object]:
  """What a SID refresh changed for the items both assignments cover: per level the share whose code
  changed, the share whose SID (any level) changed, and the label-free prefix_agreement."""
  common, previous_rows, rows = np.intersect1d(previous_ids, ids, return_indices=True)
  levels = min(previous_codes.shape[1], codes.shape[1])
  a, b = previous_codes[previous_rows, :levels], codes[rows, :levels]
  changed = a != b
  return {"items_in_both": int(len(common)), "items_new": int(len(ids) - len(common)),
          "changed_share": changed.mean(0).tolist() if len(common) else [],
          "sid_changed_share": float(changed.any(1).mean()) if len(common) else float("nan"),
          "prefix_agreement": prefix_agreement(a, b) if len(common) > 1 else []}


def example_subtries(codes: np.ndarray, titles: Sequence[str], length: int, count: int,
                     max_items: int, rng: np.random.Generator) -> List[Dict[str, object]]:
  """A few sub-tries at a prefix length with their item titles (the paper's figures 6-7)."""
  groups = prefix_groups(codes, length)
  sizes = np.bincount(groups)
  candidates = np.flatnonzero((sizes >= 2) & (sizes <= 4 * max_items)) if length else np.arange(1)
  chosen = rng.choice(candidates, size=min(count, len(candidates)), replace=False) if len(candidates) else []
  examples = []
  for group in chosen:
    members = np.flatnonzero(groups == group)
    examples.append({"prefix": codes[members[0], :length].tolist(), "size": int(len(members)),
                     "titles": [titles[i] for i in members[:max_items]]})
  return examples
