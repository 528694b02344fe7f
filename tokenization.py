# coding=utf-8
# Licensed under the Apache License, Version 2.0
"""WordPiece tokenization that reproduces Google BERT's reference tokenizer."""

import collections
import re
import unicodedata

# Paths such as gs://bucket/vocab.txt need TensorFlow's file system layer;
# plain local paths are read with `open` so tokenizing never pays for (or
# requires) a TensorFlow import.
_REMOTE_PATH_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# Google's released checkpoints unpack to <model_name>/bert_model.ckpt. The
# name says how the vocabulary was built, so it tells us which
# --do_lower_case the checkpoint was pre-trained with.
_SMALL_BERT_MODELS = [
    "uncased_L-%d_H-%d_A-%d" % (layers, hidden, hidden // 64)
    for layers in (2, 4, 6, 8, 10, 12)
    for hidden in (128, 256, 512, 768)
]
_UNCASED_MODELS = frozenset([
    "uncased_L-12_H-768_A-12",
    "uncased_L-24_H-1024_A-16",
    "wwm_uncased_L-24_H-1024_A-16",
    "multilingual_L-12_H-768_A-12",
    "chinese_L-12_H-768_A-12",
] + _SMALL_BERT_MODELS)
_CASED_MODELS = frozenset([
    "cased_L-12_H-768_A-12",
    "cased_L-24_H-1024_A-16",
    "wwm_cased_L-24_H-1024_A-16",
    "multi_cased_L-12_H-768_A-12",
])

# Tokens that the classifier pipeline writes into every example.
_REQUIRED_SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]")


def _one_line(text):
  """Collapses whitespace so an error message stays on a single line."""
  return " ".join(str(text).split())


def _checkpoint_model_name(init_checkpoint):
  """Returns the known Google model name in a checkpoint path, or None.

  Path components are compared whole (never as substrings) because
  "uncased_L-12_H-768_A-12" contains "cased_L-12_H-768_A-12". The component
  nearest the checkpoint file wins, so a fine-tuning run stored under a model
  folder is judged by that folder.

  Args:
    init_checkpoint: A checkpoint path, local or remote (gs://...).

  Returns:
    The model name as a string, or None if no component is a known name.
  """
  parts = [part for part in re.split(r"[/\\]", init_checkpoint) if part]
  for part in reversed(parts):
    if part in _UNCASED_MODELS or part in _CASED_MODELS:
      return part
  return None


def validate_case_matches_checkpoint(do_lower_case, init_checkpoint):
  """Checks that `do_lower_case` agrees with a known Google checkpoint.

  Fine-tuning an uncased model on cased text (or the reverse) silently maps
  most words to the wrong ids, so this fails loudly instead. Checkpoints whose
  path holds no known Google model name are accepted without comment.

  Args:
    do_lower_case: The value of the --do_lower_case flag.
    init_checkpoint: The value of the --init_checkpoint flag; may be None or
      empty.

  Raises:
    ValueError: If the checkpoint is a known cased model and do_lower_case is
      True, or a known uncased model and do_lower_case is False.
  """
  if not init_checkpoint:
    return
  model_name = _checkpoint_model_name(init_checkpoint)
  if model_name is None:
    return
  model_is_uncased = model_name in _UNCASED_MODELS
  if bool(do_lower_case) == model_is_uncased:
    return
  kind = "an uncased (lower-cased)" if model_is_uncased else "a cased"
  raise ValueError(
      "--do_lower_case=%s does not match --init_checkpoint=%s: `%s` is %s "
      "Google BERT model, so pass --do_lower_case=%s (rename the checkpoint "
      "folder if this check is wrong)." %
      (bool(do_lower_case), init_checkpoint, model_name, kind,
       model_is_uncased))


def convert_to_unicode(text):
  """Returns `text` as a str, decoding bytes as UTF-8 and dropping bad bytes.

  Args:
    text: A str or bytes object.

  Returns:
    The text as a str.

  Raises:
    ValueError: If `text` is neither str nor bytes.
  """
  if isinstance(text, str):
    return text
  if isinstance(text, bytes):
    return text.decode("utf-8", "ignore")
  raise ValueError("Unsupported string type: %s" % type(text).__name__)


def printable_text(text):
  """Returns `text` in a form suitable for print() or logging (a str)."""
  # In Python 3 the printable form and the unicode form are the same thing;
  # the separate name is kept because data-processing code logs with it.
  return convert_to_unicode(text)


def _read_lines(path):
  """Reads a file as a list of raw byte lines (split on b"\\n" only)."""
  if _REMOTE_PATH_RE.match(path):
    import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(path, "rb") as reader:
      return reader.readlines()
  # Binary mode splits only on "\n", exactly like GFile, so local and remote
  # vocabularies get identical ids even if a token contained a stray "\r".
  with open(path, "rb") as reader:
    return reader.readlines()


def load_vocab(vocab_file):
  """Loads a vocabulary file (one token per line) into an ordered dict.

  Each line gets the id of its position, so blank lines still use up an id
  and the ids stay aligned with the rows of the embedding table.

  Args:
    vocab_file: Path to the vocabulary, local or remote (gs://...).

  Returns:
    A collections.OrderedDict mapping token (str) to id (int).

  Raises:
    ValueError: If the file cannot be read or holds no tokens.
  """
  if not vocab_file:
    raise ValueError("vocab_file %r: no path given" % (vocab_file,))
  try:
    lines = _read_lines(vocab_file)
  except Exception as e:  # pylint: disable=broad-except
    # OSError for local files, tf.errors.OpError subclasses for GFile; both
    # mean the same thing to the user.
    raise ValueError("vocab_file %s: cannot read it (%s: %s)" %
                     (vocab_file, type(e).__name__,
                      _one_line(e) or "no details")) from None
  vocab = collections.OrderedDict()
  for index, line in enumerate(lines):
    token = convert_to_unicode(line).strip()
    vocab[token] = index
  if not any(vocab):
    raise ValueError("vocab_file %s: is empty (no tokens found)" % vocab_file)
  return vocab


def convert_by_vocab(vocab, items, item_name="item"):
  """Maps each item through `vocab`.

  Args:
    vocab: A dict, token -> id or id -> token.
    items: An iterable of keys of `vocab`.
    item_name: What an item is called in the error message ("token", "id").

  Returns:
    A list with the mapped value of each item.

  Raises:
    ValueError: If an item is not a key of `vocab`.
  """
  output = []
  for item in items:
    try:
      output.append(vocab[item])
    except KeyError:
      raise ValueError("%s %r is not in the vocabulary" %
                       (item_name, item)) from None
  return output


def convert_tokens_to_ids(vocab, tokens):
  """Maps wordpiece tokens to ids; raises ValueError for unknown tokens."""
  return convert_by_vocab(vocab, tokens, item_name="token")


def convert_ids_to_tokens(inv_vocab, ids):
  """Maps ids to wordpiece tokens; raises ValueError for unknown ids."""
  return convert_by_vocab(inv_vocab, ids, item_name="id")


def whitespace_tokenize(text):
  """Strips `text` and splits it on runs of whitespace."""
  text = text.strip()
  if not text:
    return []
  return text.split()


class FullTokenizer(object):
  """Runs basic tokenization followed by WordPiece tokenization."""

  def __init__(self, vocab_file, do_lower_case=True):
    """Builds the tokenizer.

    Args:
      vocab_file: Path to a BERT vocab.txt (local or gs://).
      do_lower_case: Whether to lower-case and strip accents; must match how
        the checkpoint's vocabulary was built.
    """
    self.vocab_file = vocab_file
    self.do_lower_case = do_lower_case
    self.vocab = load_vocab(vocab_file)
    self.inv_vocab = {v: k for k, v in self.vocab.items()}
    self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
    self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)

  def tokenize(self, text):
    """Splits `text` (str or UTF-8 bytes) into wordpiece tokens.

    Args:
      text: The raw text.

    Returns:
      A list of wordpiece strings.
    """
    split_tokens = []
    for token in self.basic_tokenizer.tokenize(text):
      split_tokens.extend(self.wordpiece_tokenizer.tokenize(token))
    return split_tokens

  def convert_tokens_to_ids(self, tokens):
    """Maps tokens to ids.

    Args:
      tokens: An iterable of wordpiece strings.

    Returns:
      A list of ints.

    Raises:
      ValueError: Naming the first token that is not in the vocabulary.
    """
    try:
      return convert_tokens_to_ids(self.vocab, tokens)
    except ValueError as e:
      raise ValueError("%s (vocab_file %s)" % (e, self.vocab_file)) from None

  def convert_ids_to_tokens(self, ids):
    """Maps ids to tokens.

    Args:
      ids: An iterable of ints.

    Returns:
      A list of wordpiece strings.

    Raises:
      ValueError: Naming the first id that is not in the vocabulary.
    """
    try:
      return convert_ids_to_tokens(self.inv_vocab, ids)
    except ValueError as e:
      raise ValueError("%s (vocab_file %s)" % (e, self.vocab_file)) from None

  def check_special_tokens(self, tokens=_REQUIRED_SPECIAL_TOKENS):
    """Fails early if the vocabulary lacks tokens the pipeline relies on.

    WordPiece needs "[UNK]" and the classifier writes "[CLS]" and "[SEP]";
    without this check the failure would only surface at the first example.

    Args:
      tokens: The tokens that must be present.

    Raises:
      ValueError: Naming every missing token and the vocab file.
    """
    missing = [token for token in tokens if token not in self.vocab]
    if missing:
      raise ValueError("vocab_file %s: missing special token(s) %s" %
                       (self.vocab_file, ", ".join(missing)))


class BasicTokenizer(object):
  """Cleans text and splits it on whitespace, punctuation and CJK characters."""

  def __init__(self, do_lower_case=True):
    """Builds the tokenizer.

    Args:
      do_lower_case: Whether to lower-case the input and strip accents.
    """
    self.do_lower_case = do_lower_case

  def tokenize(self, text):
    """Splits `text` (str or UTF-8 bytes) into basic tokens.

    Args:
      text: The raw text.

    Returns:
      A list of token strings, none of them empty or containing whitespace.
    """
    text = convert_to_unicode(text)
    if text.isascii():
      return self._tokenize_ascii(text)
    return self._tokenize_unicode(text)

  def _tokenize_ascii(self, text):
    """`_tokenize_unicode` for ASCII text, with str methods and one regex.

    The same tokens (tests/test_tokenization.py checks every real sentence):
    in ASCII the control characters are 0-31 and 127 (tab, newline and
    carriage return are whitespace), nothing is a CJK ideograph or an accent,
    and the punctuation is exactly _ASCII_PUNCTUATION.
    """
    text = text.translate(_ASCII_CLEAN_TABLE)
    if self.do_lower_case:
      text = text.lower()
    tokens = []
    for word in text.split():
      tokens.extend(_ASCII_PUNCTUATION_SPLIT.findall(word))
    return tokens

  def _tokenize_unicode(self, text):
    """The reference algorithm, character by character (any text)."""
    text = self._clean_text(text)
    # CJK ideographs are padded with spaces before the split: the
    # multilingual and Chinese models treat each of them as its own word.
    # English models have few of them in the vocab, so this is harmless there.
    text = self._tokenize_chinese_chars(text)
    split_tokens = []
    for token in whitespace_tokenize(text):
      if self.do_lower_case:
        token = token.lower()
        token = self._run_strip_accents(token)
      split_tokens.extend(self._run_split_on_punc(token))
    # Accent stripping can leave an empty string (a word made only of
    # combining marks); re-splitting drops it.
    return whitespace_tokenize(" ".join(split_tokens))

  def _run_strip_accents(self, text):
    """Removes combining marks (category Mn) after NFD decomposition."""
    text = unicodedata.normalize("NFD", text)
    return "".join(
        char for char in text if unicodedata.category(char) != "Mn")

  def _run_split_on_punc(self, text):
    """Splits `text` so that each punctuation character is its own token."""
    output = []
    start_new_word = True
    for char in text:
      if _is_punctuation(char):
        output.append([char])
        start_new_word = True
      else:
        if start_new_word:
          output.append([])
        start_new_word = False
        output[-1].append(char)
    return ["".join(chars) for chars in output]

  def _tokenize_chinese_chars(self, text):
    """Adds a space on both sides of every CJK ideograph."""
    output = []
    for char in text:
      if _is_chinese_char(ord(char)):
        output.extend((" ", char, " "))
      else:
        output.append(char)
    return "".join(output)

  def _clean_text(self, text):
    """Drops invalid and control characters; maps whitespace to a space."""
    output = []
    for char in text:
      cp = ord(char)
      if cp == 0 or cp == 0xFFFD or _is_control(char):
        continue
      output.append(" " if _is_whitespace(char) else char)
    return "".join(output)


# WordPiece's default limit: a longer word is one unknown token.
MAX_INPUT_CHARS_PER_WORD = 200


class WordpieceTokenizer(object):
  """Greedy longest-match-first WordPiece tokenization."""

  def __init__(self, vocab, unk_token="[UNK]",
               max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD):
    """Builds the tokenizer.

    Args:
      vocab: A container of wordpiece strings (usually the token -> id dict);
        continuation pieces carry a "##" prefix.
      unk_token: The token emitted for a word that cannot be covered.
      max_input_chars_per_word: Longer words become `unk_token` outright,
        which bounds the quadratic cost of the greedy search.
    """
    self.vocab = vocab
    self.unk_token = unk_token
    self.max_input_chars_per_word = max_input_chars_per_word
    # Words recur (Zipf): each distinct word is split once. Bounded, so a
    # stream of unique strings cannot grow it without end.
    self._pieces_cache = {}

  def tokenize(self, text):
    """Splits already basic-tokenized text into wordpieces.

    For example, "unaffable" -> ["un", "##aff", "##able"] given a vocabulary
    holding those pieces. A word that cannot be covered completely becomes a
    single unk_token rather than partial pieces.

    Args:
      text: A single token or whitespace-separated tokens that have already
        been through BasicTokenizer.

    Returns:
      A list of wordpiece strings.
    """
    text = convert_to_unicode(text)
    output_tokens = []
    for token in whitespace_tokenize(text):
      pieces = self._pieces_cache.get(token)
      if pieces is None:
        pieces = self._word_pieces(token)
        if len(self._pieces_cache) >= _PIECES_CACHE_SIZE:
          self._pieces_cache.clear()
        self._pieces_cache[token] = pieces
      output_tokens.extend(pieces)
    return output_tokens

  def _word_pieces(self, token):
    """The wordpieces of one token, [unk_token] if it can't be covered."""
    if len(token) > self.max_input_chars_per_word:
      return [self.unk_token]
    return self._split_word(token) or [self.unk_token]

  def _split_word(self, word):
    """Returns the greedy wordpieces of `word`, or None if it can't be covered.

    Args:
      word: A single token without whitespace.

    Returns:
      A list of wordpieces, or None.
    """
    pieces = []
    start = 0
    while start < len(word):
      piece = None
      # Try the longest remaining substring first and shrink from the right.
      for end in range(len(word), start, -1):
        candidate = word[start:end]
        if start > 0:
          candidate = "##" + candidate
        if candidate in self.vocab:
          piece = candidate
          break
      if piece is None:
        return None
      pieces.append(piece)
      start = end
    return pieces


_PIECES_CACHE_SIZE = 1 << 18


def _is_whitespace(char):
  """Returns True for characters BERT treats as whitespace."""
  # \t, \n and \r are control characters in Unicode, but in text they
  # separate words, so they count as whitespace here.
  if char in (" ", "\t", "\n", "\r"):
    return True
  return unicodedata.category(char) == "Zs"


def _is_control(char):
  """Returns True for control/format characters that should be dropped."""
  # \t, \n and \r are handled as whitespace instead (see _is_whitespace).
  if char in ("\t", "\n", "\r"):
    return False
  # Only Cc and Cf: Google's tokenizer keeps private-use (Co) and unassigned
  # (Cn) characters, which then usually become [UNK].
  return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
  """Returns True for characters that are split off as their own token."""
  cp = ord(char)
  # Every non-alphanumeric printable ASCII character counts, including ones
  # like "$", "^", "`" and "+" that Unicode files under symbols (S*), so that
  # ASCII text is split consistently.
  if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (
      123 <= cp <= 126):
    return True
  return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
  """Returns True if code point `cp` is in a CJK Unified Ideographs block.

  Only ideographs count: Hangul, Hiragana and Katakana lie outside these
  blocks and go through whitespace splitting and WordPiece like any other
  script.

  Args:
    cp: An integer code point.

  Returns:
    Whether the code point is a CJK ideograph.
  """
  return ((0x4E00 <= cp <= 0x9FFF) or  # CJK Unified Ideographs
          (0x3400 <= cp <= 0x4DBF) or  # Extension A
          (0x20000 <= cp <= 0x2A6DF) or  # Extension B
          (0x2A700 <= cp <= 0x2B73F) or  # Extension C
          (0x2B740 <= cp <= 0x2B81F) or  # Extension D
          (0x2B820 <= cp <= 0x2CEAF) or  # Extension E
          (0xF900 <= cp <= 0xFAFF) or  # Compatibility Ideographs
          (0x2F800 <= cp <= 0x2FA1F))  # Compatibility Ideographs Supplement


# The ASCII fast path's tables, derived from the character classes above so
# that the two paths cannot drift apart.
# ASCII characters that are punctuation for BERT.
_ASCII_PUNCTUATION = "".join(
    chr(cp) for cp in range(128) if _is_punctuation(chr(cp)))
# A punctuation character alone, or a run of anything else.
_ASCII_PUNCTUATION_SPLIT = re.compile(
    "[%s]|[^%s]+" % (re.escape(_ASCII_PUNCTUATION),
                     re.escape(_ASCII_PUNCTUATION)))
# What _clean_text does to ASCII: NUL and control characters dropped,
# whitespace made a space.
_ASCII_CLEAN_TABLE = {}
for _cp in range(128):
  if _cp == 0 or _is_control(chr(_cp)):
    _ASCII_CLEAN_TABLE[_cp] = None
  elif _is_whitespace(chr(_cp)):
    _ASCII_CLEAN_TABLE[_cp] = " "
del _cp
