# coding=utf-8
# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
r"""Builds an SST-2-format binary sentiment task from real movie-review snippets.

The sentences are the 10,605 sentence-level snippets of the
rottentomatoes.com reviews of Pang & Lee (2004) that Hutto & Gilbert (VADER,
ICWSM 2014) had rated from -4 to 4 by human raters. They ship inside the
`vaderSentiment==3.3.2` sdist, in `additional_resources/hutto_ICWSM_2014.tar.gz`
(`hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt`): UTF-8, CRLF lines of
`id<TAB>mean score<TAB>sentence`, no line break after the last one.

A sentence is labelled 1 if its score is > 0 and 0 if it is < 0; sentences
scored exactly 0 have no polarity and are dropped (37 of them in the release,
leaving 5,242 positive and 5,326 negative). The rest is split at random, with a
fixed seed, into `train.tsv` and `dev.tsv` in the GLUE SST-2 layout
(`sentence<TAB>label` header, no quoting), so an SST-2 reader takes them as
they are. Sentences are kept verbatim (including the release's `''` quotes and
`&amp;` entities) except that TABs and line breaks become spaces.

Usage:
  python scripts/prepare_movie_reviews.py \
    --source=.cache/assets/downloads/vaderSentiment-3.3.2.tar.gz \
    --output_dir=.cache/assets/movie_reviews

`--source` may be the outer sdist, the inner `hutto_ICWSM_2014.tar.gz`, or
the extracted `.txt` itself. Tarballs are read in memory.
"""

from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import io
import math
import os
import random
import re
import tarfile

from adapter_bert import errors

InputError = errors.InputError

SNIPPETS_NAME = "movieReviewSnippets_GroundTruth.txt"
INNER_TARBALL_NAME = "hutto_ICWSM_2014.tar.gz"

# Each score is the mean of the raters' ratings on a -4..4 scale.
MAX_ABS_SCORE = 4.0

# Everything Python's str.splitlines() breaks on, plus TAB: any of these left
# inside a sentence would shift the columns or rows of a TSV reader.
_BREAKING_CHARS = u"\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_TO_SPACE = {ord(c): u" " for c in _BREAKING_CHARS}


class Sentence(object):
  """One labelled snippet."""

  def __init__(self, guid, text, label):
    self.guid = guid
    self.text = text
    self.label = label


def _is_tarball(name, data):
  """Whether `data` should be read as a (possibly gzipped) tarball."""
  lower = name.lower()
  if lower.endswith((".tar.gz", ".tgz", ".tar")):
    return True
  # gzip magic number: a tarball whatever the file is called.
  return data[:2] == b"\x1f\x8b"


def _find_member(tar, basename):
  """Returns the regular-file member of `tar` called `basename`, or None."""
  for member in tar.getmembers():
    if member.isfile() and member.name.rsplit("/", 1)[-1] == basename:
      return member
  return None


def _read_snippets_bytes(where, data):
  """Finds the snippets file in `data`, descending into nested tarballs.

  Args:
    where: How to name `data` in messages (a path, `!`-joined for members).
    data: The bytes of the source or of a member of it.

  Returns:
    A pair (where, bytes) for the snippets file itself.

  Raises:
    InputError: if `data` is an unreadable tarball or holds neither the
      snippets file nor the inner tarball.
  """
  if not _is_tarball(where, data):
    return where, data
  try:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
      # Prefer the text file; else go one level down (the sdist holds it
      # only inside hutto_ICWSM_2014.tar.gz).
      for basename in (SNIPPETS_NAME, INNER_TARBALL_NAME):
        member = _find_member(tar, basename)
        if member is not None:
          inner = tar.extractfile(member).read()
          inner_where = "%s!%s" % (where, member.name)
          if basename == SNIPPETS_NAME:
            return inner_where, inner
          return _read_snippets_bytes(inner_where, inner)
  except (tarfile.TarError, EOFError, OSError, ValueError) as e:
    # zlib.error derives from Exception only; gzip reports it as an OSError.
    raise InputError("not a readable tarball (%s)" % e, where=where)
  raise InputError("holds neither %s nor %s" %
                   (SNIPPETS_NAME, INNER_TARBALL_NAME), where=where)


def _decode_line(raw):
  """Decodes one line of the snippets file.

  The released file is valid UTF-8 (accented names, en dashes, two curly
  quotes), but the _README_.txt beside it is Windows-1252, so a line that is
  not valid UTF-8 is read as cp1252 rather than failing or being dropped; the
  five bytes cp1252 leaves undefined become U+FFFD. The summary counts such
  lines.

  Args:
    raw: The line's bytes, without its line ending.

  Returns:
    A pair (text, used_fallback).
  """
  try:
    return raw.decode("utf-8"), False
  except UnicodeDecodeError:
    return raw.decode("cp1252", errors="replace"), True


def _parse_line(where, line_number, text):
  """Parses `id<TAB>score<TAB>sentence` into (id, score, sentence).

  Raises:
    InputError: naming `where` and `line_number` if the line is malformed.
  """
  # maxsplit=2: a TAB inside the sentence stays part of the sentence.
  fields = text.split(u"\t", 2)
  if len(fields) < 3:
    raise InputError("expected 3 TAB-separated columns "
                     "(id, score, sentence), found %d" % len(fields), where=where, line=line_number)
  guid, score_text, sentence = fields
  guid = guid.strip()
  if not guid.isdigit():
    raise InputError("id %r is not a non-negative integer" % guid,
                     where=where, line=line_number)
  try:
    score = float(score_text)
  except ValueError:
    raise InputError("score %r is not a number" % score_text, where=where,
                     line=line_number)
  if not math.isfinite(score) or abs(score) > MAX_ABS_SCORE:
    raise InputError("score %r is outside [-4, 4]" % score_text,
                     where=where, line=line_number)
  sentence = sentence.translate(_TO_SPACE)
  if not sentence.strip():
    raise InputError("empty sentence", where=where, line=line_number)
  return int(guid), score, sentence


def _read_source(source):
  """The bytes of `source`: a local file, or any TF file system's URL."""
  if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
    from adapter_bert import fileio  # pylint: disable=g-import-not-at-top
    import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
    if not tf.io.gfile.exists(source) or tf.io.gfile.isdir(source):
      raise InputError("no such file", where=source)
    return fileio.read_bytes(source)
  if not os.path.isfile(source):
    raise InputError("no such file", where=source)
  with open(source, "rb") as f:
    return f.read()


def read_snippets(source):
  """Reads and labels the snippets.

  Args:
    source: Path of the sdist, the inner tarball or the .txt file.

  Returns:
    A dict with "sentences" (list of Sentence for non-zero scores, in file
    order), "read" (lines parsed), "zero" (dropped for a score of 0) and
    "fallback_decoded" (lines that were not valid UTF-8).

  Raises:
    InputError: for a missing or malformed source.
  """
  data = _read_source(source)
  where, data = _read_snippets_bytes(source, data)

  if b"\x00" in data:
    # Text in any 8-bit encoding or UTF-8 has no NUL; a zip or image does.
    line = data[:data.index(b"\x00")].count(b"\n") + 1
    raise InputError("NUL byte: a binary file, not the snippets text",
                     where=where, line=line)
  if data.startswith(b"\xef\xbb\xbf"):  # A UTF-8 byte-order mark.
    data = data[3:]
  sentences = []
  first_line_of_id = {}
  read = zero = fallback_decoded = 0
  # Split on LF only: str.splitlines() would also break on U+2028, U+0085
  # and friends inside a sentence and shift every later line number.
  for line_number, raw in enumerate(data.split(b"\n"), 1):
    raw = raw.rstrip(b"\r")
    if not raw.strip():
      continue  # Blank lines, e.g. after a final newline.
    text, used_fallback = _decode_line(raw)
    fallback_decoded += int(used_fallback)
    guid, score, sentence = _parse_line(where, line_number, text)
    if guid in first_line_of_id:
      raise InputError("duplicate id %d (first on line %d)" %
                       (guid, first_line_of_id[guid]), where=where, line=line_number)
    first_line_of_id[guid] = line_number
    read += 1
    if score == 0:
      zero += 1
      continue
    sentences.append(Sentence(guid, sentence, 1 if score > 0 else 0))
  return {"sentences": sentences, "read": read, "zero": zero,
          "fallback_decoded": fallback_decoded, "where": where}


def split_sentences(sentences, dev_fraction, seed):
  """Splits sentences into (train, dev), reproducibly.

  Sorting by id first makes the split independent of line order, and
  random.Random(int).shuffle gives the same order on every Python 3.

  Args:
    sentences: List of Sentence.
    dev_fraction: Fraction in (0, 1) that goes to dev.
    seed: Integer seed.

  Returns:
    A pair of lists (train, dev), each sorted by id.
  """
  ordered = sorted(sentences, key=lambda s: s.guid)
  random.Random(seed).shuffle(ordered)
  num_dev = int(round(len(ordered) * dev_fraction))
  # Both files must hold at least one sentence to be of any use.
  num_dev = min(max(num_dev, 1), len(ordered) - 1)
  dev = sorted(ordered[:num_dev], key=lambda s: s.guid)
  train = sorted(ordered[num_dev:], key=lambda s: s.guid)
  return train, dev


def _tsv_bytes(sentences):
  """The GLUE SST-2 file for `sentences`: header, then text<TAB>label rows."""
  lines = [u"sentence\tlabel\n"]
  lines.extend(u"%s\t%d\n" % (s.text, s.label) for s in sentences)
  return u"".join(lines).encode("utf-8")


def build_task(source, output_dir, dev_fraction=0.1, seed=12345):
  """Reads the snippets and writes output_dir/{train,dev}.tsv.

  Args:
    source: Path of the sdist, the inner tarball or the .txt file.
    output_dir: Directory for the two TSV files (created if missing).
    dev_fraction: Fraction in (0, 1) of the labelled sentences for dev.
    seed: Seed of the split.

  Returns:
    A dict of counts: read, zero_dropped, positive, negative, train, dev,
    train_positive, dev_positive, fallback_decoded; and source_member, the
    `!`-joined name of the file actually read.

  Raises:
    InputError: for bad input; nothing is written then.
    ValueError: for a dev_fraction outside (0, 1).
  """
  if not 0.0 < dev_fraction < 1.0:
    raise ValueError("dev_fraction must be in (0, 1), got %r" % dev_fraction)
  snippets = read_snippets(source)
  sentences = snippets["sentences"]
  if len(sentences) < 2:
    raise InputError("only %d sentences with a non-zero "
                     "score; need at least 2 to split" % len(sentences), where=snippets["where"])
  train, dev = split_sentences(sentences, dev_fraction, seed)

  # TensorFlow loads only now: a bad input is reported without its slow and
  # noisy start-up.
  from adapter_bert import fileio  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  train_path = os.path.join(output_dir, "train.tsv")
  dev_path = os.path.join(output_dir, "dev.tsv")
  try:
    # Both are written before either is renamed, dev.tsv first: train.tsv is
    # the file `make` checks for, so it must be the last to appear.
    with fileio.atomic_path(train_path) as train_temp:
      with fileio.atomic_path(dev_path) as dev_temp:
        fileio.write_bytes(dev_temp, _tsv_bytes(dev))
        fileio.write_bytes(train_temp, _tsv_bytes(train))
  except tf.errors.OpError as e:
    # Output folder not writable, disk full: still one line.
    raise InputError(errors.one_line(e), where=output_dir)

  positive = sum(s.label for s in sentences)
  return {
      "source_member": snippets["where"],
      "read": snippets["read"],
      "zero_dropped": snippets["zero"],
      "fallback_decoded": snippets["fallback_decoded"],
      "positive": positive,
      "negative": len(sentences) - positive,
      "train": len(train),
      "dev": len(dev),
      "train_positive": sum(s.label for s in train),
      "dev_positive": sum(s.label for s in dev),
  }


def format_summary(counts, output_dir):
  """Human-readable summary lines of build_task's counts."""
  lines = [
      "read %d sentences from %s" % (counts["read"], counts["source_member"]),
      "  %d positive (score > 0), %d negative (score < 0), "
      "%d with score 0 dropped" % (counts["positive"], counts["negative"],
                                   counts["zero_dropped"]),
  ]
  if counts["fallback_decoded"]:
    lines.append("  %d lines were not valid UTF-8 and were decoded as cp1252"
                 % counts["fallback_decoded"])
  for name in ("train", "dev"):
    size = counts[name]
    lines.append("%s: %d sentences, %.1f%% positive" % (
        os.path.join(output_dir, name + ".tsv"), size,
        100.0 * counts[name + "_positive"] / max(size, 1)))
  return lines

