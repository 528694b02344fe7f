# coding=utf-8
# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
"""Tests for scripts/prepare_movie_reviews.py (adapter_bert.movie_reviews), on
tiny inputs in the real layout.

The synthetic files mirror the real release: CRLF lines `id<TAB>score<TAB>text`
in movieReviewSnippets_GroundTruth.txt, inside hutto_ICWSM_2014.tar.gz, inside
the vaderSentiment sdist. One `real` test checks the counts of the real sdist.
"""

import io
import os
import subprocess
import sys
import tarfile

from absl import flags
import pytest

from conftest import ASSETS_DIR
from conftest import REPO_ROOT
from adapter_bert import movie_reviews

SCRIPT = os.path.join(REPO_ROOT, "scripts", "prepare_movie_reviews.py")
REAL_SDIST = os.path.join(ASSETS_DIR, "downloads",
                          "vaderSentiment-3.3.2.tar.gz")

# (id, score, text). Out of id order on purpose: the split sorts by id.
ROWS = [
    (3, "-1.5", u"A dull, lifeless remake."),
    (1, "2.26666666667", u"The Rock is destined to be the 21st Century's "
     u"new ''Conan''."),
    (2, "0.0", u"It is a film."),
    (4, "3.1", u"Absorbing study by Andr\u00e9 Turpin \u2013 superb."),
    (5, "-0.0454545454545", u"Not quite \"good\", not quite 'bad'."),
    (6, "0", u"Neither here nor there."),
    (7, "1.0", u"A quote \" alone and a \"quoted\" word."),
    (8, "-2.0", u"Marinated in clich\u00e9s."),
    (9, "0.5", u"Warm and funny."),
    (10, "-3.0", u"A gob of drivel."),
    (11, "2.0", u"Bon app\u00e9tit!"),
    (12, "-1.0", u"Stale."),
]
NONZERO = [(i, s, t) for i, s, t in ROWS if float(s) != 0]


def _snippets_bytes(rows, final_newline=False):
  """The snippets file for `rows`, CRLF-terminated like the release."""
  lines = [u"%s\t%s\t%s" % row for row in rows]
  text = u"\r\n".join(lines) + (u"\r\n" if final_newline else u"")
  return text.encode("utf-8")


def _tar_bytes(members):
  """A gzipped tarball holding {name: bytes}, built in memory."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def _write(path, data):
  with open(str(path), "wb") as f:
    f.write(data)
  return str(path)


@pytest.fixture
def txt_source(tmp_path):
  return _write(tmp_path / movie_reviews.SNIPPETS_NAME, _snippets_bytes(ROWS))


def _inner_tar(snippets):
  return _tar_bytes({
      "hutto_ICWSM_2014/_README_.txt": b"readme\r\n",
      "hutto_ICWSM_2014/" + movie_reviews.SNIPPETS_NAME: snippets,
      "hutto_ICWSM_2014/tweets_GroundTruth.txt": b"1\t1.0\tnot this one\r\n",
  })


def _sdist(snippets):
  return _tar_bytes({
      "vaderSentiment-3.3.2/setup.py": b"# setup\n",
      "vaderSentiment-3.3.2/additional_resources/" + movie_reviews.INNER_TARBALL_NAME:
          _inner_tar(snippets),
  })


@pytest.fixture
def sdist_source(tmp_path):
  return _write(tmp_path / "vaderSentiment-3.3.2.tar.gz",
                _sdist(_snippets_bytes(ROWS)))


def _read_tsv(path):
  """Rows of a GLUE TSV the way BERT reads it: plain TAB split, no quoting."""
  with io.open(path, encoding="utf-8", newline="") as f:
    content = f.read()
  assert content.endswith(u"\n")
  return [line.split(u"\t") for line in content[:-1].split(u"\n")]


def _build(source, out_dir, **kwargs):
  counts = movie_reviews.build_task(source, str(out_dir), **kwargs)
  train = _read_tsv(os.path.join(str(out_dir), "train.tsv"))
  dev = _read_tsv(os.path.join(str(out_dir), "dev.tsv"))
  return counts, train, dev


def test_labels_by_sign_and_zeros_dropped(txt_source, tmp_path):
  counts, train, dev = _build(txt_source, tmp_path / "out")
  expected = {t: str(int(float(s) > 0)) for _, s, t in NONZERO}
  got = {text: label for text, label in train[1:] + dev[1:]}
  assert got == expected
  assert counts["read"] == len(ROWS)
  assert counts["zero_dropped"] == 2
  assert counts["positive"] == sum(float(s) > 0 for _, s, _ in ROWS)
  assert counts["negative"] == sum(float(s) < 0 for _, s, _ in ROWS)


def test_header_and_columns(txt_source, tmp_path):
  _, train, dev = _build(txt_source, tmp_path / "out")
  for rows in (train, dev):
    assert rows[0] == [u"sentence", u"label"]
    assert all(len(row) == 2 and row[1] in (u"0", u"1") for row in rows[1:])
  with open(str(tmp_path / "out" / "train.tsv"), "rb") as f:
    assert b"\r" not in f.read()


def test_train_dev_disjoint_and_cover_all(txt_source, tmp_path):
  counts, train, dev = _build(txt_source, tmp_path / "out")
  train_texts = [row[0] for row in train[1:]]
  dev_texts = [row[0] for row in dev[1:]]
  assert not set(train_texts) & set(dev_texts)
  assert sorted(train_texts + dev_texts) == sorted(t for _, _, t in NONZERO)
  assert (counts["train"], counts["dev"]) == (len(train_texts), len(dev_texts))
  assert counts["train_positive"] == sum(int(r[1]) for r in train[1:])
  assert counts["dev_positive"] == sum(int(r[1]) for r in dev[1:])


def test_dev_fraction_sets_dev_size(txt_source, tmp_path):
  counts, _, _ = _build(txt_source, tmp_path / "a", dev_fraction=0.3)
  assert counts["dev"] == 3  # round(10 * 0.3)
  # Even a tiny fraction keeps one dev sentence, and train is never empty.
  counts, _, _ = _build(txt_source, tmp_path / "b", dev_fraction=0.01)
  assert counts["dev"] == 1
  counts, _, _ = _build(txt_source, tmp_path / "c", dev_fraction=0.99)
  assert counts["train"] == 1


def test_split_deterministic_per_seed(txt_source, tmp_path):
  _, train_a, dev_a = _build(txt_source, tmp_path / "a", dev_fraction=0.3,
                             seed=7)
  _, train_b, dev_b = _build(txt_source, tmp_path / "b", dev_fraction=0.3,
                             seed=7)
  assert (train_a, dev_a) == (train_b, dev_b)
  _, train_c, dev_c = _build(txt_source, tmp_path / "c", dev_fraction=0.3,
                             seed=8)
  assert sorted(train_c + dev_c) == sorted(train_a + dev_a)
  assert dev_c != dev_a


def test_split_ignores_line_order(tmp_path):
  shuffled = _write(tmp_path / "a.txt", _snippets_bytes(ROWS))
  ordered = _write(tmp_path / "b.txt", _snippets_bytes(sorted(ROWS)))
  _, train_a, dev_a = _build(shuffled, tmp_path / "a", seed=3)
  _, train_b, dev_b = _build(ordered, tmp_path / "b", seed=3)
  assert (train_a, dev_a) == (train_b, dev_b)


def test_split_is_pinned():
  # Guards against the split changing across Python versions or refactors.
  sentences = [movie_reviews.Sentence(i, "s%d" % i, i % 2) for i in range(1, 21)]
  train, dev = movie_reviews.split_sentences(sentences, 0.25, 12345)
  assert [s.guid for s in dev] == [4, 9, 17, 19, 20]
  assert len(train) == 15


def test_nested_tarballs_and_txt_agree(txt_source, sdist_source, tmp_path):
  inner = _write(tmp_path / movie_reviews.INNER_TARBALL_NAME,
                 _inner_tar(_snippets_bytes(ROWS)))
  results = [_build(source, tmp_path / name)
             for name, source in (("txt", txt_source), ("inner", inner),
                                  ("sdist", sdist_source))]
  assert results[0][1:] == results[1][1:] == results[2][1:]
  assert results[2][0]["source_member"].endswith(
      "!vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
      "!hutto_ICWSM_2014/" + movie_reviews.SNIPPETS_NAME)


def test_text_kept_verbatim_but_tabs_become_spaces(tmp_path):
  rows = [(1, "1.0", u"He said \"wow\" \u2013 'twice'."),
          (2, "-1.0", u"Tab\there and a \u2028 line separator."),
          (3, "2.0", u"Trailing\tfields\tare text too."),
          (4, "-2.0", u"R&amp;B and caf\u00e9   spacing.")]
  source = _write(tmp_path / "s.txt", _snippets_bytes(rows, final_newline=True))
  _, train, dev = _build(source, tmp_path / "out", dev_fraction=0.25)
  texts = {row[0] for row in train[1:] + dev[1:]}
  assert texts == {u"He said \"wow\" \u2013 'twice'.",
                   u"Tab here and a   line separator.",
                   u"Trailing fields are text too.",
                   u"R&amp;B and caf\u00e9   spacing."}


def test_non_utf8_line_decoded_as_cp1252(tmp_path):
  data = _snippets_bytes(ROWS[:3]) + b"\r\n20\t1.5\tNa\xefve caf\xe9.\r\n"
  source = _write(tmp_path / "s.txt", data)
  counts, train, dev = _build(source, tmp_path / "out")
  assert counts["fallback_decoded"] == 1
  assert [u"Na\u00efve caf\u00e9.", u"1"] in train + dev


@pytest.mark.parametrize("bad_line,message", [
    (b"13\t1.0", "expected 3 TAB-separated columns"),
    (b"13\tgreat\tA film.", "score 'great' is not a number"),
    (b"13\tnan\tA film.", "outside [-4, 4]"),
    (b"13\t4.5\tA film.", "outside [-4, 4]"),
    (b"x13\t1.0\tA film.", "is not a non-negative integer"),
    (b"13\t1.0\t  ", "empty sentence"),
    (b"1\t1.0\tA film.", "duplicate id 1 (first on line 2)"),
])
def test_errors_name_file_and_line(tmp_path, bad_line, message):
  data = _snippets_bytes(ROWS[:4]) + b"\r\n" + bad_line + b"\r\n"
  source = _write(tmp_path / "s.txt", data)
  with pytest.raises(movie_reviews.InputError) as e:
    movie_reviews.build_task(source, str(tmp_path / "out"))
  assert str(e.value).startswith("%s:5: " % source)
  assert message in str(e.value)
  assert not os.path.exists(str(tmp_path / "out"))


def test_error_inside_sdist_names_member(tmp_path):
  data = _snippets_bytes(ROWS[:2]) + b"\r\n13\t?\tA film.\r\n"
  source = _write(tmp_path / "v.tar.gz", _sdist(data))
  with pytest.raises(movie_reviews.InputError) as e:
    movie_reviews.build_task(source, str(tmp_path / "out"))
  assert str(e.value).startswith(source + "!")
  assert ("hutto_ICWSM_2014/%s:3: " % movie_reviews.SNIPPETS_NAME) in str(e.value)


def test_missing_file_and_member(tmp_path):
  with pytest.raises(movie_reviews.InputError, match="no such file"):
    movie_reviews.build_task(str(tmp_path / "absent.txt"), str(tmp_path / "out"))
  other = _write(tmp_path / "other.tar.gz", _tar_bytes({"a/b.txt": b"x"}))
  with pytest.raises(movie_reviews.InputError, match="holds neither"):
    movie_reviews.build_task(other, str(tmp_path / "out"))
  truncated = _write(tmp_path / "cut.tar.gz",
                     _sdist(_snippets_bytes(ROWS))[:200])
  with pytest.raises(movie_reviews.InputError, match="not a readable tarball"):
    movie_reviews.build_task(truncated, str(tmp_path / "out"))
  assert not os.path.exists(str(tmp_path / "out"))


def _run_cli(*args):
  return subprocess.run([sys.executable, SCRIPT] + list(args),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, cwd=REPO_ROOT, check=False)


def test_cli_error_is_one_line_and_leaves_nothing(tmp_path):
  out_dir = tmp_path / "out"
  out_dir.mkdir()
  data = _snippets_bytes(ROWS[:4]) + b"\r\n13\tgreat\tA film.\r\n"
  source = _write(tmp_path / "s.txt", data)
  result = _run_cli("--source=" + source, "--output_dir=" + str(out_dir))
  assert result.returncode != 0
  assert result.stderr.splitlines() == [
      "prepare_movie_reviews.py: error: %s:5: score 'great' is not a number"
      % source]
  assert os.listdir(str(out_dir)) == []


@pytest.mark.slow
def test_cli_success_prints_summary(sdist_source, tmp_path):
  out_dir = str(tmp_path / "out")
  result = _run_cli("--source=" + sdist_source, "--output_dir=" + out_dir,
                    "--dev_fraction=0.2", "--seed=1")
  assert result.returncode == 0, result.stderr
  assert "read 12 sentences" in result.stdout
  assert "2 with score 0 dropped" in result.stdout
  assert "train.tsv: 8 sentences" in result.stdout
  assert "dev.tsv: 2 sentences" in result.stdout
  assert sorted(os.listdir(out_dir)) == ["dev.tsv", "train.tsv"]


def test_import_defines_no_flags():
  # Tests import run_classifier.py, which defines --output_dir as other
  # scripts do; a second definition would be a DuplicateFlagError.
  # (--seed is run_classifier.py's too; --dev_fraction is this script's alone.)
  assert "dev_fraction" not in flags.FLAGS


@pytest.mark.real
def test_real_movie_review_snippets(tmp_path):
  if not os.path.exists(REAL_SDIST):
    pytest.skip("%s not found; run `make assets`" % REAL_SDIST)
  counts, train, dev = _build(REAL_SDIST, tmp_path / "out")
  assert counts["read"] == 10605
  assert counts["zero_dropped"] == 37
  assert (counts["positive"], counts["negative"]) == (5242, 5326)
  assert counts["fallback_decoded"] == 0  # The release is clean UTF-8.
  assert (counts["train"], counts["dev"]) == (9511, 1057)
  assert len(train) == 9512 and len(dev) == 1058
  assert all(len(row) == 2 for row in train + dev)
  # Roughly balanced both sides of the split.
  for name in ("train", "dev"):
    assert 0.45 < counts[name + "_positive"] / float(counts[name]) < 0.55
