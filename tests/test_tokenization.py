# coding=utf-8
# Licensed under the Apache License, Version 2.0
"""Tests for tokenization.py: BERT's basic + WordPiece tokenizer."""

import collections
import os
import unicodedata

import pytest

import tokenization

# A tiny vocabulary; its ids are the line numbers of the written file.
_VOCAB_TOKENS = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]",
    "un", "##want", "##wa", "##ed", "want", "wa", "runn", "##ing",
    "hello", "Hello", "world", ",", "!", "?", "café", "cafe",
]

_UNCASED_CKPT = "uncased_L-12_H-768_A-12/bert_model.ckpt"
_CASED_CKPT = "cased_L-12_H-768_A-12/bert_model.ckpt"


# ---------------------------------------------------------------- helpers --


def _write_vocab(tmp_path, tokens=_VOCAB_TOKENS, name="vocab.txt",
                 newline="\n"):
  """Writes `tokens` one per line and returns the file path as a str."""
  path = tmp_path / name
  path.write_bytes("".join(t + newline for t in tokens).encode("utf-8"))
  return str(path)


def _assert_basic(text, expected, do_lower_case=True):
  """Checks BasicTokenizer output for `text`."""
  tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
  assert tokenizer.tokenize(text) == expected


def _assert_wordpiece(text, expected, vocab_tokens=_VOCAB_TOKENS, **kwargs):
  """Checks WordpieceTokenizer output for `text` over `vocab_tokens`."""
  vocab = {token: i for i, token in enumerate(vocab_tokens)}
  tokenizer = tokenization.WordpieceTokenizer(vocab=vocab, **kwargs)
  assert tokenizer.tokenize(text) == expected


def _assert_full(vocab_file, text, expected, do_lower_case=True):
  """Checks FullTokenizer output for `text` and that every piece has an id."""
  tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)
  tokens = tokenizer.tokenize(text)
  assert tokens == expected
  ids = tokenizer.convert_tokens_to_ids(tokens)
  assert tokenizer.convert_ids_to_tokens(ids) == tokens
  return ids


def _assert_value_error(fn, *needles):
  """Checks that fn() raises a one-line ValueError containing each needle."""
  with pytest.raises(ValueError) as info:
    fn()
  message = str(info.value)
  assert "\n" not in message
  for needle in needles:
    assert needle in message, (needle, message)
  return message


# ------------------------------------------------------- text conversion --


def test_convert_to_unicode():
  assert tokenization.convert_to_unicode(u"héllo") == u"héllo"
  assert tokenization.convert_to_unicode(u"héllo".encode("utf-8")) == u"héllo"
  # Invalid UTF-8 bytes are dropped, not replaced or raised on.
  assert tokenization.convert_to_unicode(b"a\xffb") == u"ab"
  _assert_value_error(lambda: tokenization.convert_to_unicode(3), "int")


# ------------------------------------------------------- BasicTokenizer --


def test_lower_case_strips_accents():
  _assert_basic(u"Héllo", ["hello"])
  # The same word already decomposed (e + COMBINING ACUTE ACCENT).
  _assert_basic(u"He\u0301llo", ["hello"])
  _assert_basic(u" \tHeLLo!how  \n Are yoU?  ",
                ["hello", "!", "how", "are", "you", "?"])
  # A "word" made only of combining marks vanishes entirely.
  _assert_basic(u"a \u0301\u0300 b", ["a", "b"])


def test_cased_keeps_case_and_accents():
  _assert_basic(u"Héllo", [u"Héllo"], do_lower_case=False)
  _assert_basic(u" \tHeLLo!how  \n Are yoU?  ",
                ["HeLLo", "!", "how", "Are", "yoU", "?"], do_lower_case=False)


def test_punctuation_split():
  _assert_basic(u"hi,there!", ["hi", ",", "there", "!"])
  _assert_basic(u"$5.00", ["$", "5", ".", "00"])
  # ASCII symbols outside Unicode's P* categories still split.
  _assert_basic(u"a^b`c+d~e", ["a", "^", "b", "`", "c", "+", "d", "~", "e"])
  # Non-ASCII punctuation (category P*) splits; each char is its own token.
  _assert_basic(u"«hi»...", [u"«", "hi", u"»", ".", ".", "."])
  # A non-ASCII symbol (So) is not punctuation.
  _assert_basic(u"a©b", [u"a©b"])
  # Like Google's tokenizer (unlike HF's never_split), special-token text in
  # the input is not protected.
  _assert_basic(u"[CLS] x", ["[", "cls", "]", "x"])


def test_chinese_characters_become_tokens():
  _assert_basic(u"ah\u535a\u63a8zz", ["ah", u"\u535a", u"\u63a8", "zz"])
  # CJK Extension B (outside the BMP) counts too.
  _assert_basic(u"x\U00020000y", ["x", u"\U00020000", "y"])
  # Kana and Hangul are not ideographs, so they stay whole.
  _assert_basic(u"こんにちは 안녕", [u"こんにちは", u"안녕"],
                do_lower_case=False)
  # Google quirk kept on purpose: with lower-casing, the accent-stripping
  # NFD pass decomposes Hangul syllables into conjoining jamo (category Lo,
  # so they survive), which is what the uncased multilingual vocab expects.
  _assert_basic(u"안녕", [unicodedata.normalize("NFD", u"안녕")])
  assert len(unicodedata.normalize("NFD", u"안녕")) == 6


def test_control_and_invalid_characters_removed():
  # NUL, U+FFFD, BEL (Cc) and ZERO WIDTH SPACE (Cf) are all dropped.
  _assert_basic(u"a\x00b\ufffdc\x07d\u200be", ["abcde"])
  # The same holds for UTF-8 bytes input.
  _assert_basic(u"a\x00b\x1bc".encode("utf-8"), ["abc"])
  # Only Cc/Cf count as control (Google's rule; HF also drops Co/Cn), so a
  # private-use character is kept.
  _assert_basic(u"a\ue000b", [u"a\ue000b"])


def test_whitespace_handling():
  # NBSP (U+00A0) and IDEOGRAPHIC SPACE (U+3000) are category Zs.
  _assert_basic(u"a\tb\nc\rd\u00a0e\u3000f  g",
                ["a", "b", "c", "d", "e", "f", "g"])
  # The cleaning pass itself maps Zs characters to a plain space.
  assert tokenization.BasicTokenizer()._clean_text(
      u"a\u00a0b\tc\u3000d") == u"a b c d"
  _assert_basic(u"", [])
  _assert_basic(u" \t\n\u00a0 ", [])


# --------------------------------------------------- WordpieceTokenizer --


def test_wordpiece_greedy_longest_match():
  # "##want" must win over the shorter "##wa".
  _assert_wordpiece(u"unwanted running",
                    ["un", "##want", "##ed", "runn", "##ing"])
  _assert_wordpiece(u"want wa", ["want", "wa"])
  _assert_wordpiece(u"", [])


def test_wordpiece_unknown_words():
  # A word that can only be partly covered becomes ONE [UNK], not pieces.
  _assert_wordpiece(u"unwantedX running", ["[UNK]", "runn", "##ing"])
  _assert_wordpiece(u"xyz", ["[UNK]"])
  _assert_wordpiece(u"xyz", ["<unk>"], unk_token="<unk>")


def test_wordpiece_max_input_chars_per_word():
  vocab_tokens = ["[UNK]", "a", "##a"]
  _assert_wordpiece(u"aaaaa", ["a", "##a", "##a", "##a", "##a"],
                    vocab_tokens=vocab_tokens, max_input_chars_per_word=5)
  _assert_wordpiece(u"aaaaaa a", ["[UNK]", "a"],
                    vocab_tokens=vocab_tokens, max_input_chars_per_word=5)
  # The default limit is Google's 200, not Hugging Face's 100.
  _assert_wordpiece(u"a" * 200, ["a"] + ["##a"] * 199,
                    vocab_tokens=vocab_tokens)
  _assert_wordpiece(u"a" * 201, ["[UNK]"], vocab_tokens=vocab_tokens)


# -------------------------------------------------------- FullTokenizer --


def test_full_tokenizer_lower_vs_cased(tmp_path):
  vocab_file = _write_vocab(tmp_path)
  ids = _assert_full(vocab_file, u"Hello, WORLD! Unwanted café",
                     ["hello", ",", "world", "!", "un", "##want", "##ed",
                      "cafe"])
  assert ids == [12, 15, 14, 16, 4, 5, 7, 19]
  _assert_full(vocab_file, u"Hello, WORLD! Unwanted café",
               ["Hello", ",", "[UNK]", "!", "[UNK]", u"café"],
               do_lower_case=False)
  assert tokenization.FullTokenizer(vocab_file).do_lower_case is True
  assert tokenization.FullTokenizer(vocab_file, False).do_lower_case is False


def test_vocab_ids_follow_line_order(tmp_path):
  # CRLF endings and trailing spaces are stripped from tokens.
  vocab_file = _write_vocab(tmp_path, ["[UNK]", "b ", "a", "##c"],
                            newline="\r\n")
  vocab = tokenization.load_vocab(vocab_file)
  assert isinstance(vocab, collections.OrderedDict)
  assert list(vocab.items()) == [("[UNK]", 0), ("b", 1), ("a", 2), ("##c", 3)]
  tokenizer = tokenization.FullTokenizer(vocab_file)
  assert tokenizer.vocab == vocab
  assert tokenizer.inv_vocab == {0: "[UNK]", 1: "b", 2: "a", 3: "##c"}


def test_blank_and_duplicate_lines_keep_ids_aligned(tmp_path):
  # Ids must equal line numbers (rows of the embedding table), so a blank
  # line still uses an id and a repeated token keeps its last line's id
  # (the earlier id is then unreachable, as in Google's tokenizer).
  vocab_file = _write_vocab(tmp_path, ["[UNK]", "a", "", "a", "b"])
  tokenizer = tokenization.FullTokenizer(vocab_file)
  assert tokenizer.vocab == {"[UNK]": 0, "a": 3, "": 2, "b": 4}
  assert tokenizer.inv_vocab == {0: "[UNK]", 2: "", 3: "a", 4: "b"}
  assert tokenizer.convert_tokens_to_ids(["b", "a"]) == [4, 3]
  _assert_value_error(lambda: tokenizer.convert_ids_to_tokens([1]), "1")


def test_tokens_ids_round_trip(tmp_path):
  tokenizer = tokenization.FullTokenizer(_write_vocab(tmp_path))
  assert tokenizer.convert_tokens_to_ids(_VOCAB_TOKENS) == list(
      range(len(_VOCAB_TOKENS)))
  assert tokenizer.convert_ids_to_tokens(range(len(_VOCAB_TOKENS))) == (
      _VOCAB_TOKENS)
  assert tokenizer.convert_tokens_to_ids([]) == []


def test_missing_vocab_file(tmp_path):
  path = str(tmp_path / "no_such_vocab.txt")
  _assert_value_error(lambda: tokenization.load_vocab(path), path)
  _assert_value_error(lambda: tokenization.FullTokenizer(path), path)
  # A directory is not a vocab file either.
  _assert_value_error(lambda: tokenization.load_vocab(str(tmp_path)),
                      str(tmp_path))


def test_empty_vocab_file(tmp_path):
  for name, tokens in (("empty.txt", []), ("blank.txt", ["", " "])):
    path = _write_vocab(tmp_path, tokens, name=name)
    _assert_value_error(lambda: tokenization.load_vocab(path), path, "empty")


def test_token_or_id_not_in_vocab(tmp_path):
  vocab_file = _write_vocab(tmp_path, ["[UNK]", "hello"])
  tokenizer = tokenization.FullTokenizer(vocab_file)
  _assert_value_error(
      lambda: tokenizer.convert_tokens_to_ids(["hello", "[CLS]"]),
      "'[CLS]'", vocab_file)
  _assert_value_error(lambda: tokenizer.convert_ids_to_tokens([1, 7]),
                      "7", vocab_file)
  _assert_value_error(tokenizer.check_special_tokens, "[CLS]", "[SEP]",
                      vocab_file)
  # The full vocabulary has all of them.
  tokenization.FullTokenizer(_write_vocab(tmp_path, name="full.txt")
                            ).check_special_tokens()


def test_vocab_through_tf_gfile():
  # Remote paths (gs://...) go through tf.io.gfile; ram:// exercises that.
  tf = pytest.importorskip("tensorflow")
  path = "ram://tokenization_test/vocab.txt"
  with tf.io.gfile.GFile(path, "wb") as writer:
    writer.write(u"[UNK]\nhello\n##s\n".encode("utf-8"))
  vocab = tokenization.load_vocab(path)
  assert list(vocab.items()) == [("[UNK]", 0), ("hello", 1), ("##s", 2)]
  missing = "ram://tokenization_test/missing.txt"
  _assert_value_error(lambda: tokenization.load_vocab(missing), missing)


# --------------------------------------- validate_case_matches_checkpoint --


def test_validate_case_raises_on_mismatch():
  cases = [
      (_UNCASED_CKPT, False),
      (_CASED_CKPT, True),
      ("gs://bucket/wwm_uncased_L-24_H-1024_A-16/bert_model.ckpt", False),
      ("/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt", True),
      ("/m/chinese_L-12_H-768_A-12/bert_model.ckpt", False),
      ("/m/uncased_L-2_H-128_A-2/bert_model.ckpt", False),
      # A fine-tuning run stored under the model folder is still uncased.
      ("/m/uncased_L-12_H-768_A-12/mrpc_out/model.ckpt-300", False),
  ]
  for checkpoint, do_lower_case in cases:
    _assert_value_error(
        lambda: tokenization.validate_case_matches_checkpoint(
            do_lower_case, checkpoint),
        "--do_lower_case", checkpoint)


def test_validate_case_passes():
  cases = [
      (_UNCASED_CKPT, True),
      (_CASED_CKPT, False),
      # "uncased_..." contains "cased_..."; it must not be read as cased.
      ("/m/uncased_L-24_H-1024_A-16/bert_model.ckpt", True),
      ("/m/wwm_cased_L-24_H-1024_A-16/bert_model.ckpt", False),
      # Folder names are compared whole, so these are unknown names.
      ("/m/my_uncased_L-12_H-768_A-12_copy/bert_model.ckpt", False),
      ("/m/uncased_L-12_H-768_A-12x/bert_model.ckpt", False),
      ("/m/my_model/bert_model.ckpt", True),
      ("/m/my_model/bert_model.ckpt", False),
      ("/m/all-MiniLM-L6-v2/bert_model.ckpt", True),
      (None, False),
      ("", True),
  ]
  for checkpoint, do_lower_case in cases:
    tokenization.validate_case_matches_checkpoint(do_lower_case, checkpoint)


# ------------------------------------------------------------ real vocab --


@pytest.mark.real
def test_real_uncased_vocab(minilm_hf_dir):
  vocab_file = os.path.join(minilm_hf_dir, "vocab.txt")
  tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
  assert len(tokenizer.vocab) == 30522
  tokenizer.check_special_tokens()
  assert tokenizer.convert_tokens_to_ids(
      ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 100, 101, 102, 103]
  assert _assert_full(vocab_file, u"Hello, world!",
                      ["hello", ",", "world", "!"]) == [7592, 1010, 2088, 999]
  _assert_full(vocab_file, u"unaffable", ["una", "##ffa", "##ble"])
  _assert_full(vocab_file, u"UNwant\u00e9d,running",
               ["unwanted", ",", "running"])
  _assert_full(vocab_file, u"John Johanson's house",
               ["john", "johan", "##son", "'", "s", "house"])


# ------------------------------------------------- the ASCII fast path --


def _assert_fast_path_matches_reference(texts):
  """BasicTokenizer's ASCII path gives the reference tokens, both cases."""
  checked = 0
  for do_lower_case in (True, False):
    tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    for text in texts:
      if not text.isascii():
        continue
      assert tokenizer._tokenize_ascii(text) == (
          tokenizer._tokenize_unicode(text)), repr(text)
      checked += 1
  return checked


def test_ascii_fast_path_matches_reference_on_every_ascii_character():
  rng = __import__("random").Random(0)
  alphabet = [chr(cp) for cp in range(128)]
  texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
           for _ in range(3000)]
  # Runs of the characters Python's str.split() also splits on.
  texts += ["a\x1cb\x1dc\x1ed\x1fe\x0bf\x0cg", "x\x7fy", "\x00", " \t\n\r "]
  assert _assert_fast_path_matches_reference(texts) == 2 * len(texts)


def test_wordpiece_cache_is_bounded_and_exact(monkeypatch):
  monkeypatch.setattr(tokenization, "_PIECES_CACHE_SIZE", 3)
  vocab = {t: i for (i, t) in enumerate(_VOCAB_TOKENS)}
  tokenizer = tokenization.WordpieceTokenizer(vocab)
  text = "unwanted wanted want runnin runnings unwanted"
  expected = tokenization.WordpieceTokenizer(vocab).tokenize(text)
  for _ in range(3):
    assert tokenizer.tokenize(text) == expected
    assert len(tokenizer._pieces_cache) <= 3
  assert expected == ["un", "##want", "##ed", "want", "##ed", "want",
                      "[UNK]", "[UNK]", "un", "##want", "##ed"]


def _real_texts(glue_dir, movie_reviews_dir):
  """Every text field of the real GLUE files and the movie-review task."""
  texts = []
  for folder in (glue_dir, movie_reviews_dir):
    for (root, _, files) in os.walk(folder):
      for name in sorted(files):
        if not name.endswith(".tsv"):
          continue
        with open(os.path.join(root, name), encoding="utf-8") as f:
          for line in f:
            texts.extend(field for field in line.rstrip("\n").split("\t")
                         if any(c.isalpha() for c in field))
  return texts


@pytest.mark.real
def test_ascii_fast_path_matches_reference_on_real_text(glue_dir):
  from conftest import MOVIE_REVIEWS_DIR
  if not os.path.isdir(MOVIE_REVIEWS_DIR):
    pytest.skip("%s not found; run `make assets`" % MOVIE_REVIEWS_DIR)
  texts = _real_texts(glue_dir, MOVIE_REVIEWS_DIR)
  assert len(texts) > 200000
  checked = _assert_fast_path_matches_reference(texts)
  # Nearly all of it is ASCII; the rest takes the reference path anyway.
  assert checked > 0.95 * 2 * len(texts)
