"""The two evaluation protocols of the retrieval bench (bench/retrieval.py), from a MovieLens-format directory.

Every rating is an interaction; each user's interactions are ordered by (timestamp, line of ratings.csv).

leave-one-out (TIGER, Rajput et al. 2023, arXiv 2305.05065, Table 1, as in SASRec, Kang and McAuley 2018):
  a user's last interaction is the test target, the second last the validation target, the rest trains.
  Users with fewer than `min_user_interactions` (default 5, the user side of the paper's 5-core filter) only
  train. Items are not filtered: rarely rated items stay in the catalog and make the new-item slice.
per span: calendar spans (formats/spans.py) from a start date, by default pipeline/data_profile.py's choice
  (the first span start with 70% of the ratings before it). The backfill before it trains; then each span is
  scored before it is trained on. Only spans holding ratings count, the first `max_spans` of them.

An example is a user, their history (previous items, oldest first, at most `max_history`; across spans and
earlier in the same span), the target item and its timestamp, and `new_item`: the target is absent from the
training part (leave-one-out) or was first rated in the example's span (per span).

Example:
  ratings = read_ratings("data/ml-latest-small")
  loo = leave_one_out(ratings)  # loo.train fits a model, loo.test scores it
  stream = per_span(ratings, "month", max_spans=6)  # stream.backfill, then stream.spans in order
"""

import dataclasses
from typing import List, Optional

import numpy as np

from formats import movielens, spans
from formats.errors import InputDataError
from models.retrieval.baselines import Sequences
from pipeline import data_profile

MAX_HISTORY = 20
MIN_USER_INTERACTIONS = 5
_SECONDS_PER_DAY = 86400


@dataclasses.dataclass(frozen=True)
class Ratings:
  """A ratings.csv's interactions sorted by (user, timestamp, line)."""
  users: np.ndarray  # int64 [n]
  items: np.ndarray  # int64 [n]
  timestamps: np.ndarray  # int64 [n], Unix seconds
  unparsed: int  # rows without a readable userId, movieId and timestamp, left out
  source: str

  @classmethod
  def of(cls, users, items, timestamps, unparsed: int = 0, source: str = "") -> "Ratings":
    """Sorts the interactions given in file order."""
    users, items, timestamps = (np.asarray(a, np.int64) for a in (users, items, timestamps))
    order = np.lexsort((np.arange(len(users)), timestamps, users))
    return cls(users[order], items[order], timestamps[order], unparsed, source)

  def user_starts(self) -> np.ndarray:
    """[n] index of the first interaction of each interaction's user."""
    return np.searchsorted(self.users, self.users)


def read_ratings(data_root: str) -> Ratings:
  """The interactions of DIR/ratings.csv; InputDataError for a missing or malformed file or no readable row."""
  path = movielens.check_files(data_root)[movielens.RATINGS_FILE]
  header = movielens.HEADERS[movielens.RATINGS_FILE]
  read = [keys for _, keys in movielens.read_keys(path, header, ("userId", "movieId", "timestamp"))]
  good = [keys for keys in read if not isinstance(keys, str)]
  if not good:
    raise InputDataError(f"{path}: no row with a readable userId, movieId and timestamp "
                         f"({len(read)} unparsable rows)")
  users, items, timestamps = np.array(good, np.int64).T
  return Ratings.of(users, items, timestamps, len(read) - len(good), data_root)


@dataclasses.dataclass(frozen=True)
class Examples:
  """Next-item examples to score, one per target."""
  user_ids: np.ndarray  # int64 [n]
  histories: List[np.ndarray]  # int64 each, oldest first
  targets: np.ndarray  # int64 [n]
  timestamps: np.ndarray  # int64 [n], the target's
  new_item: np.ndarray  # bool [n]

  def __len__(self) -> int:
    return len(self.targets)


def _examples(ratings: Ratings, rows: np.ndarray, new_item: np.ndarray, max_history: int) -> Examples:
  starts = ratings.user_starts()
  return Examples(ratings.users[rows], [ratings.items[max(starts[i], i - max_history):i] for i in rows],
                  ratings.items[rows], ratings.timestamps[rows], new_item[rows])


def _sequences(ratings: Ratings, rows: np.ndarray, context: int) -> Sequences:
  """The interactions `rows` (ascending) per user, each after up to `context` of the user's earlier ones."""
  users, firsts = np.unique(ratings.users[rows], return_index=True)
  ends = np.append(firsts[1:], len(rows))
  starts = ratings.user_starts()
  parts = [np.arange(max(starts[rows[a]], rows[a] - context), rows[a]) for a in firsts]
  picked = [np.concatenate([part, rows[a:b]]) for part, a, b in zip(parts, firsts, ends)]
  return Sequences(users, [ratings.items[p] for p in picked], [ratings.timestamps[p] for p in picked],
                   np.array([len(part) for part in parts], np.int64))


@dataclasses.dataclass(frozen=True)
class LeaveOneOut:
  train: Sequences
  validation: Examples
  test: Examples
  catalog: np.ndarray  # every item id rated
  users: np.ndarray  # every user id


def leave_one_out(ratings: Ratings, min_user_interactions: int = MIN_USER_INTERACTIONS,
                  max_history: int = MAX_HISTORY) -> LeaveOneOut:
  """The last interaction of each user with at least `min_user_interactions` tests, the one before validates,
  everything else trains. The validation history is the training part; the test history adds the
  validation item."""
  if min_user_interactions < 3:
    raise ValueError(f"min_user_interactions must be at least 3 (a training, a validation and a test item), "
                     f"got {min_user_interactions}")
  users, starts, counts = np.unique(ratings.users, return_index=True, return_counts=True)
  per_row = np.repeat(counts, counts)
  from_end = per_row - (np.arange(len(ratings.users)) - np.repeat(starts, counts))  # 1: the user's last
  evaluated = per_row >= min_user_interactions
  if not evaluated.any():
    raise InputDataError(f"{ratings.source}: no user has {min_user_interactions} interactions "
                         f"(min_user_interactions); the most is {counts.max()}")
  train = ~(evaluated & (from_end <= 2))
  new_item = ~np.isin(ratings.items, ratings.items[train])
  return LeaveOneOut(
      _sequences(ratings, np.flatnonzero(train), 0),
      _examples(ratings, np.flatnonzero(evaluated & (from_end == 2)), new_item, max_history),
      _examples(ratings, np.flatnonzero(evaluated & (from_end == 1)), new_item, max_history),
      np.unique(ratings.items), users)


@dataclasses.dataclass(frozen=True)
class Span:
  span: int
  start: str  # ISO date of its first day
  examples: Examples  # scored before training on the span
  train: Sequences  # the span's interactions, each user's earlier items (at most max_history) as context


@dataclasses.dataclass(frozen=True)
class PerSpan:
  period: str
  start_date: str
  reasons: List[str]  # why this period and start date (pipeline/data_profile.py)
  backfill: Sequences
  spans: List[Span]
  catalog: np.ndarray  # every item id rated up to the last span
  users: np.ndarray  # every user id rated up to the last span


def _first_per_item(ratings: Ratings, values: np.ndarray) -> np.ndarray:
  """[n] the smallest of `values` [n] over each interaction's item."""
  items, inverse = np.unique(ratings.items, return_inverse=True)
  first = np.full(len(items), np.iinfo(np.int64).max)
  np.minimum.at(first, inverse, values)
  return first[inverse]


def _profile(ratings: Ratings) -> data_profile.DataProfile:
  days, per_day = np.unique(ratings.timestamps // _SECONDS_PER_DAY, return_counts=True)
  first_rated = dict(zip(ratings.items.tolist(), _first_per_item(ratings, ratings.timestamps).tolist()))
  return data_profile.DataProfile(ratings.source, len(ratings.items), ratings.unparsed,
                                  dict(zip(days.tolist(), per_day.tolist())), first_rated)


def span_numbers(timestamps: np.ndarray, period: str) -> np.ndarray:
  """formats.spans numbers of Unix timestamps."""
  days, inverse = np.unique(np.asarray(timestamps) // _SECONDS_PER_DAY, return_inverse=True)
  return np.array([data_profile.day_to_span(int(day), period) for day in days], np.int64)[inverse]


def per_span(ratings: Ratings, span_period: str = "month", start_date: Optional[str] = None,
             max_spans: Optional[int] = None, max_history: int = MAX_HISTORY,
             min_interactions_per_span: int = data_profile.MIN_INTERACTIONS_PER_SPAN) -> PerSpan:
  """The backfill before `start_date` (default: data_profile.choose's, a span start with 70% of the ratings
  before it; a given one must start a span) and the first `max_spans` spans with ratings from it (all when
  None). data_profile.choose refuses periods whose spans hold a median below `min_interactions_per_span`."""
  choice = data_profile.choose(_profile(ratings), span_period, start_date, min_interactions_per_span)
  period, first = choice.span_period, spans.span_of_date(choice.start_date, choice.span_period)
  of_row = span_numbers(ratings.timestamps, period)
  evaluated = np.unique(of_row[of_row >= first])[:max_spans]
  if not len(evaluated):
    raise InputDataError(f"{ratings.source}: no rating from {choice.start_date} on")
  kept = of_row <= evaluated[-1]
  new_item = of_row == _first_per_item(ratings, of_row)
  return PerSpan(
      period, choice.start_date, choice.reasons, _sequences(ratings, np.flatnonzero(of_row < first), 0),
      [Span(int(s), spans.span_start(int(s), period).isoformat(),
            _examples(ratings, np.flatnonzero(of_row == s), new_item, max_history),
            _sequences(ratings, np.flatnonzero(of_row == s), max_history)) for s in evaluated],
      np.unique(ratings.items[kept]), np.unique(ratings.users[kept]))
