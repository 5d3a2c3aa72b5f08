"""tf.Example encodings of interactions and items: the contract with schemas/*.pbtxt."""

from typing import Dict, Iterable, List, NamedTuple, Sequence, Tuple

import numpy as np
import tensorflow as tf

from formats import interaction_features as fields, movielens, tf_examples
from formats.interaction_features import NO_ITEM
NEVER = -1  # `first_seen` of an item nobody rated.
# Evaluation slices of an interaction by its item, from data before the interaction's span only
# (Singh et al. 2023, section 4): first rated in this span, or rated fewer than this many times
# before it (on ml-latest-small: 23% of 2016-18 interactions), or else head (68%).
COLD_START, LONG_TAIL, HEAD = "cold_start", "long_tail", "head"
HEAD_MIN_PRIOR_INTERACTIONS = 10


class PriorCounts(NamedTuple):
  """A user's or an item's interactions strictly before an example: a causal counter, all-time and decayed
  (the decayed count and likes as of `decayed_at`, a timestamp)."""
  count: int = 0
  liked: int = 0
  rating_sum: float = 0.0
  decayed_count: float = 0.0
  decayed_liked: float = 0.0
  decayed_at: int = 0

  def decayed(self, timestamp: int, half_life_days: float) -> Tuple[float, float]:
    """The decayed (count, liked) at `timestamp`."""
    return fields.decayed(self.decayed_count, self.decayed_liked, self.decayed_at, timestamp, half_life_days)

  def add(self, rating: float, timestamp: int, half_life_days: float) -> "PriorCounts":
    count, liked = self.decayed(timestamp, half_life_days)
    label = fields.liked(rating)
    # Rounded as the state's float32 stores them: a span-by-span ingestion then equals one over everything.
    return PriorCounts(self.count + 1, self.liked + label, self.rating_sum + rating, float(np.float32(count + 1)),
                       float(np.float32(liked + label)), timestamp)


def item_segment(span: int, item_first_seen_span: int, item_prior_interactions: int) -> str:
  if item_first_seen_span == span:
    return COLD_START
  return HEAD if item_prior_interactions >= HEAD_MIN_PRIOR_INTERACTIONS else LONG_TAIL


class HistoryItem(NamedTuple):
  """An item the user rated before an example: the example's history holds its id, label and age."""
  item_id: int
  liked: int
  timestamp: int


def user_interactions(ratings: Sequence[movielens.Rating], history_length: int,
                      earlier: Sequence[HistoryItem] = ()) -> Iterable[Tuple[movielens.Rating, List[HistoryItem]]]:
  """Each of a user's ratings in time order with the items rated strictly before it (oldest first, at most
  `history_length`): `earlier` (from earlier inputs, oldest first), then the earlier of `ratings`.

  Ratings within the same second keep file order: MovieLens bulk imports share timestamps, and the
  file order is the only order left.
  """
  ordered = sorted(ratings, key=lambda r: (r.timestamp, r.line))
  items = list(earlier) + [HistoryItem(r.item_id, fields.liked(r.rating), r.timestamp) for r in ordered]
  for i, rating in enumerate(ordered, start=len(earlier)):
    yield rating, items[max(0, i - history_length):i]


def interaction_example(rating: movielens.Rating, history: Sequence[HistoryItem], span: int,
                        item_first_seen_span: int, item_prior_interactions: int,
                        user_prior: PriorCounts = PriorCounts(),
                        item_prior: PriorCounts = PriorCounts(), *, half_life_days: float) -> tf.train.Example:
  """`item_prior_interactions` counts the item's ratings in spans before `span` (what the segment is
  cut by); `user_prior` and `item_prior` count every interaction strictly before this one, the decayed
  counters with `half_life_days`."""
  user, item = fields.USER_COUNTERS, fields.ITEM_COUNTERS
  items = [h.item_id for h in history]
  decayed = {}
  for names, prior in ((fields.USER_DECAYED, user_prior), (fields.ITEM_DECAYED, item_prior)):
    decayed.update(zip(names, ([value] for value in prior.decayed(rating.timestamp, half_life_days))))
  return tf_examples.example(
      int64s={fields.USER_ID: [rating.user_id], fields.ITEM_ID: [rating.item_id], fields.TIMESTAMP: [rating.timestamp],
              fields.LABEL: [fields.liked(rating.rating)], fields.HISTORY: items,
              fields.HISTORY_LIKED: [h.liked for h in history],
              fields.HISTORY_AGE_DAYS: [(rating.timestamp - h.timestamp) // fields.SECONDS_PER_DAY for h in history],
              fields.CURRENT_ITEM: [items[-1] if items else NO_ITEM],
              "span": [span], "item_first_seen_span": [item_first_seen_span],
              "item_prior_interactions": [item_prior_interactions],
              user.count: [user_prior.count], user.liked: [user_prior.liked],
              item.count: [item_prior.count], item.liked: [item_prior.liked]},
      floats={"rating": [rating.rating], user.rating_sum: [user_prior.rating_sum],
              item.rating_sum: [item_prior.rating_sum], **decayed},
      strings={fields.ITEM_SEGMENT: [item_segment(span, item_first_seen_span, item_prior_interactions)]})


def aggregate_tags(tags: Iterable[movielens.Tag], max_tags: int) -> List[str]:
  """Distinct tags, most used first (ties: first used first), at most `max_tags`."""
  counts: Dict[str, Tuple[int, int]] = {}
  for tag in sorted(tags, key=lambda t: t.timestamp):
    count, first = counts.get(tag.tag, (0, tag.timestamp))
    counts[tag.tag] = (count + 1, first)
  return sorted(counts, key=lambda t: (-counts[t][0], counts[t][1], t))[:max_tags]


def content_text(movie: movielens.Movie, tags: Sequence[str]) -> str:
  """The text the content encoder embeds: '<title (year)>. Genres: a, b. Tags: x, y'."""
  parts = [movie.title]
  if movie.genres:
    parts.append("Genres: " + ", ".join(movie.genres))
  if tags:
    parts.append("Tags: " + ", ".join(tags))
  return ". ".join(parts)


def item_example(movie: movielens.Movie, tags: Sequence[str], first_seen: int, first_seen_span: int,
                 num_ratings: int) -> tf.train.Example:
  return tf_examples.example(
      int64s={"item_id": [movie.item_id], "year": [movie.year], "first_seen": [first_seen],
              "first_seen_span": [first_seen_span], "num_ratings": [num_ratings]},
      strings={"title": [movie.title], "genres": movie.genres, "tags": tags,
               "content_text": [content_text(movie, tags)]})
