"""A catalog from codes alone: items that share their codes get suffixes in the order of their ids."""

import numpy as np

from models.retrieval.sid_tokens import SidCatalog


def test_items_sharing_codes_get_suffixes_in_id_order():
  catalog = SidCatalog.from_codes(np.array([5, 3, 9, 1, 7]), np.array([[1, 2], [0, 0], [1, 2], [1, 2], [0, 1]]), 3)
  assert catalog.suffixes.tolist() == [1, 0, 2, 0, 0]
  assert catalog.item_ids.tolist() == [5, 3, 9, 1, 7]
