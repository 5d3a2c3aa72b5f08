"""Test datasets made from a MovieLens directory: the same data at other dates, for fewer users.

A copy shifted by 20 years checks that nothing depends on the bundled data's dates (1996-2018).
"""

import os
import random
import shutil
from typing import Optional, Sequence, Set

from pipeline import data_profile

# Calendar years approximated by Julian years: exact enough to move data by whole periods.
_SECONDS_PER_YEAR = int(365.25 * 86400)


def _kept_users(ratings_path: str, user_fraction: float, seed: int) -> Optional[Set[int]]:
  if user_fraction >= 1:
    return None
  keys = data_profile.read_keys(ratings_path, data_profile.HEADERS[data_profile.RATINGS_FILE], ("userId",))
  users = sorted({user[0] for _, user in keys if not isinstance(user, str)})
  return set(random.Random(seed).sample(users, round(user_fraction * len(users))))


def _shift_file(src: str, dst: str, header: Sequence[str], shift: int, users: Optional[Set[int]]) -> None:
  with open(dst, "w", encoding="utf-8", newline="") as f:
    f.write(",".join(header) + "\n")
    for line, keys in data_profile.read_keys(src, header, ("userId", "timestamp")):
      if isinstance(keys, str):
        f.write(line.text + "\n")  # Bad rows stay as they are, for the ingestion to quarantine.
      elif users is None or keys[0] in users:
        # The timestamp is the last column of ratings.csv and tags.csv: the rest stays verbatim.
        f.write(f"{line.text[:line.text.rindex(',') + 1]}{keys[1] + shift}\n")


def shifted_movielens(src_dir: str, dst_dir: str, years: float = 20, user_fraction: float = 1.0,
                      seed: int = 0) -> str:
  """Copies a MovieLens directory with every rating and tag `years` x 365.25 days later, keeping
  the ratings and tags of round(user_fraction x users) users drawn with `seed` (unparsable rows
  are copied as they are, movies.csv whole). Returns dst_dir."""
  paths = data_profile.check_files(src_dir)
  os.makedirs(dst_dir, exist_ok=True)
  shutil.copyfile(paths[data_profile.MOVIES_FILE], os.path.join(dst_dir, data_profile.MOVIES_FILE))
  users = _kept_users(paths[data_profile.RATINGS_FILE], user_fraction, seed)
  for file in (data_profile.RATINGS_FILE, data_profile.TAGS_FILE):
    if file in paths:
      _shift_file(paths[file], os.path.join(dst_dir, file), data_profile.HEADERS[file],
                  round(years * _SECONDS_PER_YEAR), users)
  return dst_dir
