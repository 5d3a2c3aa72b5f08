from formats import movielens


def _line(text: str, number: int = 7) -> movielens.CsvLine:
  return movielens.CsvLine("ratings.csv", number, text)


def test_parse_rating_valid():
  assert movielens.parse_rating(_line("3,42,4.5,964982703")) == movielens.Rating(3, 42, 4.5, 964982703, 7)


def test_parse_rating_names_each_reason():
  cases = {
      "1,2,6.0,964982703": "rating out of range",
      "1,2,0.0,964982703": "rating out of range",
      "1,2,nan,964982703": "rating out of range",
      "1,2,4.0,yesterday": "unparsable timestamp",
      "1,2,4.0,99": "timestamp outside",
      "1,,4.0,964982703": "missing field movieId",
      "1,2,4.0": "wrong column count (3, expected 4)",
      "userId,movieId,rating,timestamp": "duplicate header",
      "x,2,4.0,964982703": "userId is not a positive integer",
      "1,2,four,964982703": "rating is not a number",
  }
  for text, reason in cases.items():
    bad = movielens.parse_rating(_line(text))
    assert isinstance(bad, movielens.BadRow), text
    assert bad.reason.startswith(reason), (text, bad.reason)
    assert bad.describe().startswith("ratings.csv:7: "), bad.describe()


def test_parse_movie_quoted_title_year_and_no_genres():
  movie = movielens.parse_movie(movielens.CsvLine("movies.csv", 2, '11,"American President, The (1995)",Comedy|Drama'))
  assert movie == movielens.Movie(11, "American President, The (1995)", 1995, ("Comedy", "Drama"), 2)
  bare = movielens.parse_movie(movielens.CsvLine("movies.csv", 3, "12,Untitled,(no genres listed)"))
  assert bare.year == 0 and bare.genres == ()
  ranged = movielens.parse_movie(movielens.CsvLine("movies.csv", 4, "13,Series (2007-),Drama"))
  assert ranged.year == 2007


def test_check_header():
  assert movielens.check_header(movielens.CsvLine("tags.csv", 1, "userId,movieId,tag,timestamp"),
                           movielens.TAGS_HEADER) is None
  problem = movielens.check_header(movielens.CsvLine("tags.csv", 1, "1,2,funny,3"), movielens.TAGS_HEADER)
  assert "tags.csv:1: expected header" in problem


def test_read_numbered_lines_skips_blank_lines_keeps_numbers(tmp_path):
  path = tmp_path / "ratings.csv"
  path.write_bytes(b"a\n\nb\r\n")
  assert [(line.number, line.text) for line in movielens.read_numbered_lines(str(path))] == [(1, "a"), (3, "b")]


def test_file_pieces_read_back_every_line_once_numbered_as_the_whole_file(tmp_path):
  path = tmp_path / "ratings.csv"
  content = b"userId,movieId\n1,2\n\n3,4\r\n5,\xff6\n\n\n7,8"
  path.write_bytes(content)
  whole = list(movielens.read_numbered_lines(str(path)))
  for piece_bytes in range(1, len(content) + 2):
    pieces = movielens.file_pieces(str(path), piece_bytes)
    assert [(p.start, p.end) for p in pieces] == list(zip([0] + [p.end for p in pieces[:-1]],
                                                          [p.end for p in pieces]))
    assert pieces[-1].end == len(content) and {p.pieces for p in pieces} == {len(pieces)}
    assert [line for p in pieces for line in movielens.read_piece_lines(p)] == whole, piece_bytes
  assert len(movielens.file_pieces(str(path), len(content))) == 1


def test_numbered_lines_read_back_with_the_numbers_they_carry(tmp_path):
  lines = [movielens.CsvLine("ratings.csv", 7, '1,2,"a, b",3'), movielens.CsvLine("ratings.csv", 3, "x\ufffdy")]
  path = tmp_path / "ratings.csv"
  path.write_text("".join(map(movielens.numbered_text, lines)), encoding="utf-8")
  for piece_bytes in (1, 10, 1000):
    pieces = movielens.file_pieces(str(path), piece_bytes, numbered=True)
    assert [line for p in pieces for line in movielens.read_piece_lines(p)] == lines, piece_bytes
