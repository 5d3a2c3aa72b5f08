from components.span_example_gen import chunks


def test_cut_ends_a_chunk_where_the_next_span_would_take_it_past_the_limit():
  assert chunks.cut({10: 1, 11: 1, 12: 1, 14: 1, 15: 1}, 2) == [11, 14, 15]
  assert chunks.cut({10: 3, 11: 2, 12: 5, 13: 2, 14: 3}, 4) == [10, 11, 12, 13, 14]  # A span alone past it.
  assert chunks.cut({10: 2, 11: 2}, 4) == [11]
  assert chunks.cut({}, 4) == []
