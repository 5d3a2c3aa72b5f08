"""Settings of the generative retrieval model (TIGER, Rajput et al. 2023, arXiv 2305.05065, section 4.1).

The paper's model: 4 + 4 layers, 6 heads of 64, d_model 128, MLP 1,024, dropout 0.1, 2,000 hashed user
tokens, the last 20 items. Defaults here are smaller (2 + 2 layers, 4 heads of 16, d_model 64, MLP 256,
2 warm-up epochs): the bundled backfill is about 70k interactions over 7k items, and the loop trains the
model on 2 CPUs inside the main command, where the paper's sizes trained at 168 examples/s (7 minutes an
epoch). Prefix pieces and prefix logits (model.py) are on: with them the model tells items apart by their
whole Semantic ID and learns faster per epoch; with 16 warm-up epochs it reached SASRec's leave-one-out
Recall@10 on ml-latest-small. The main command trains 2 (its time budget). docs/retrieval.md gives the
figures behind each choice.
"""

import dataclasses

from models.settings import Settings

# What the encoder attends over: every SID token of the history (the paper), or one vector per item, the sum
# of its tokens' embeddings (P times fewer positions: the default, for training on CPUs).
TOKENS, ITEMS = "tokens", "items"


@dataclasses.dataclass(frozen=True)
class RetrievalConfig(Settings):
  """encoder_layers / decoder_layers: Transformer blocks of each stack; heads x head_dim: attention;
  d_model: token vectors; mlp_dim: feed-forward width; user_buckets: hashed user tokens (0: none);
  history_length: items read (the most recent); suffix_size: collision-suffix tokens, so at most this many
  items may share their L codes (a catalog over it is refused, new items over it are not retrievable);
  beam_width: beams of the evaluation's constrained beam search (at least the largest cutoff);
  encoder_input: TOKENS or ITEMS, what the encoder's positions are;
  prefix_rows: rows of the hashed table of SID prefixes whose row each item token adds (0: tokens alone);
  prefix_logits: each candidate token's logit also scores the row of the prefix it would make (model.py);
  cold_start_share: TIGER's epsilon (section 4.3): up to ceil(share x k) of each answer's k items may be
  items the model was never trained on, found by a beam search of their own (serving.py; 0: none);
  evaluation_examples: a span is scored (Recall, NDCG; by the trainer before training and by the
  RetrievalEvaluator) on a fixed random sample of at most this many of its interactions (0: all): a beam
  search per interaction, about 50 ms each on 2 CPUs, would make a span of 100,000 interactions take hours;
  at 2,000, Recall@10's standard error is about 0.006 (at 0.08);
  epochs (daily steps) / warmup_epochs (the SID refresh's first training, from scratch) / warmup_examples
  (the warm-up's interactions: the backfill's latest this many, 0: all; it bounds a refresh's training time,
  which is otherwise linear in the history); remap_examples / remap_tokens: a SID refresh's remap warm start
  (pipeline refresh_warm_start "remap") trains the previous model, its tokens remapped (remap.py: "fit" or
  "copy"), `epochs` passes over the latest remap_examples interactions (0: all) at step_learning_rate."""
  KIND = "retrieval"
  encoder_layers: int = 2
  decoder_layers: int = 2
  heads: int = 4
  head_dim: int = 16
  d_model: int = 64
  mlp_dim: int = 256
  dropout: float = 0.1
  user_buckets: int = 2000
  history_length: int = 20
  suffix_size: int = 32
  learning_rate: float = 1e-3
  step_learning_rate: float = 3e-4
  batch_size: int = 256
  epochs: int = 1
  warmup_epochs: int = 2
  warmup_examples: int = 100_000
  remap_examples: int = 20_000
  remap_tokens: str = "fit"
  evaluation_examples: int = 2000
  beam_width: int = 50
  encoder_input: str = ITEMS
  prefix_rows: int = 1 << 16
  prefix_logits: bool = True
  cold_start_share: float = 0.1
  seed: int = 0

  def __post_init__(self):
    for name in ("encoder_layers", "decoder_layers", "heads", "head_dim", "d_model", "mlp_dim",
                 "history_length", "suffix_size", "batch_size", "epochs", "warmup_epochs", "beam_width"):
      if getattr(self, name) < 1:
        raise ValueError(f"retrieval setting {name} must be >= 1, got {getattr(self, name)}")
    for name in ("user_buckets", "prefix_rows", "warmup_examples", "remap_examples", "evaluation_examples"):
      if getattr(self, name) < 0:
        raise ValueError(f"retrieval setting {name} must be >= 0, got {getattr(self, name)}")
    if self.encoder_input not in (TOKENS, ITEMS):
      raise ValueError(f"encoder_input must be {TOKENS!r} or {ITEMS!r}, got {self.encoder_input!r}")
    if self.remap_tokens not in ("fit", "copy"):
      raise ValueError(f"remap_tokens must be 'fit' or 'copy', got {self.remap_tokens!r}")
    if self.prefix_logits and not self.prefix_rows:
      raise ValueError("prefix_logits needs prefix_rows > 0")
    if not 0 <= self.cold_start_share <= 1:
      raise ValueError(f"cold_start_share must be in [0, 1], got {self.cold_start_share}")
    if not 0 <= self.dropout < 1:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
