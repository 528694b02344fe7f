# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The GLUE tasks: where their files are, what their columns mean, their labels,
official metrics and the format the GLUE server accepts.

Every task reads the official `glue_data` layout. GLUE files are not
CSV-quoted (a `"` is text), so rows are split on tabs only. A row with too few
columns is an error naming file and line, except in QQP and MNLI, whose
official files hold a few broken rows (a question cut by a stray newline):
those are skipped, and counted in the log.
"""

import collections
import math
import os

from absl import logging
import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import metrics

InputError = errors.InputError


class InputExample(object):
  """One example: one or two texts, a label, and its id in a test file."""

  def __init__(self, guid, text_a, text_b=None, label=None, index=None):
    self.guid = guid
    self.text_a = text_a
    self.text_b = text_b
    self.label = label
    self.index = index


def normalize_task_name(name):
  """"STS-B", "sts-b", "stsb" and "sts_b" all become "stsb"."""
  return "".join(c for c in (name or "").lower() if c.isalnum())


# Where a split lives and which columns hold what (None: not in this file).
# `header`: the header's names of the columns read, as ((column, name), ...),
# or None; a file whose header names them otherwise is another task's.
Split = collections.namedtuple(
    "Split", ["name", "file_name", "text_a_column", "text_b_column",
              "label_column", "index_column", "has_header", "header"])


def _header(columns, names):
  """((column, name), ...) for the columns that have a name."""
  return tuple((c, n) for (c, n) in zip(columns, names)
               if c is not None and n is not None) or None


def train_split(file_name, text_a, text_b, label, has_header=True,
                names=(None, None, None)):
  """A training file; `names`: its header's (text_a, text_b, label) names."""
  return Split("train", file_name, text_a, text_b, label, None, has_header,
               _header((text_a, text_b, label), names) if has_header else None)


def dev_split(name, file_name, text_a, text_b, label, has_header=True,
              names=(None, None, None)):
  return Split(name, file_name, text_a, text_b, label, None, has_header,
               _header((text_a, text_b, label), names) if has_header else None)


def test_split(submission_name, file_name, text_a, text_b, index=0,
               names=(None, None, "index")):
  """A test file: a header, no labels, and an id column for the submission.

  `names`: the header's (text_a, text_b, index) names.
  """
  return Split(submission_name, file_name, text_a, text_b, None, index, True,
               _header((text_a, text_b, index), names))


class Task(object):
  """A GLUE task, described by data.

  Attributes:
    name: the task's GLUE name ("STS-B").
    labels: label strings in id order; None for a regression task.
    train: the training Split.
    dev: dev Splits; the first one's results go to eval_results.txt, the
      others' to eval_results_<name>.txt.
    test: test Splits, named as the GLUE server wants their files.
    skip_malformed_rows: skip (and count) rows whose column count differs from
      the header's, instead of failing.
    has_submission: --do_predict also writes the GLUE server's file.
    language: the language of the rows read, for multilingual tasks (XNLI);
      None for the English GLUE tasks.
    metric_names: the metrics GLUE reports for it, in eval_results.txt's
      names (keys of `metrics.METRICS`).
    primary: the one metric the tables report and GLUE-style averages use,
      as in the BERT and adapter papers' tables.
    glue_score: the metrics whose mean is GLUE's score of the task (MRPC:
      F1 and accuracy), by which sweeps select settings: F1 alone would
      prefer a model that answers "paraphrase" everywhere (MRPC dev F1
      0.81) to one that learned (accuracy 0.74, F1 0.79). Default: the
      primary metric.
    score_range: (low, high) of a regression task's scores; its GLUE
      submission is clipped to it. None: not clipped.
  """

  name = None
  labels = None
  train = None
  dev = ()
  test = ()
  skip_malformed_rows = False
  has_submission = True
  language = None
  metric_names = ("accuracy",)
  primary = "accuracy"
  glue_score = None
  score_range = None

  @property
  def key(self):
    return normalize_task_name(self.name)

  @property
  def primary_metric(self):
    """The eval_results.txt key of the task's headline metric."""
    return "eval_" + self.primary

  @property
  def glue_score_metrics(self):
    """The eval_results.txt keys whose mean is GLUE's score of the task."""
    return tuple("eval_" + m for m in (self.glue_score or (self.primary,)))

  @property
  def is_pair(self):
    """Whether each example is a pair of texts (MRPC, RTE, ...)."""
    split = self.train or (self.dev[0] if self.dev else None)
    return split is not None and split.text_b_column is not None

  @property
  def is_regression(self):
    return self.labels is None

  @property
  def num_labels(self):
    return 1 if self.is_regression else len(self.labels)

  def get_labels(self):
    return [] if self.is_regression else list(self.labels)

  def path(self, data_dir, split):
    """The file of a split; an absolute file_name stays as it is.

    Normalised, so `MNLI/../diagnostic` works even where MNLI/ is absent;
    a `gs://` or other URL keeps its scheme.
    """
    return fileio.normpath(os.path.join(data_dir, split.file_name))

  def get_train_examples(self, data_dir):
    return self.read_examples(data_dir, self.train)

  def get_dev_examples(self, data_dir):
    """Examples of the first dev split (matched, for MNLI)."""
    return self.read_examples(data_dir, self.dev[0])

  def get_test_examples(self, data_dir):
    """Examples of the first test split."""
    return self.read_examples(data_dir, self.test[0])

  def check_labelled_data(self, data_dir):
    """Reads the labels of the folder's dev (else train) file, if it holds
    one, so that a test file alone is never taken for this task's when it is
    another's with the same header (RTE's and WNLI's test files differ only
    in rows; their labels differ).

    Raises:
      InputError: that file's labels (or header) are not this task's.
    """
    for split in self.dev[:1] + (self.train,):
      if split.label_column is not None and tf.io.gfile.exists(
          self.path(data_dir, split)):
        try:
          self.read_examples(data_dir, split)
        except InputError as e:
          raise InputError("%s does not hold %s's data: %s" % (
              data_dir, self.name, e))
        return

  def read_examples(self, data_dir, split):
    """Reads a split's file into InputExamples.

    Raises:
      InputError: missing file, short row or bad label; names file and line.
    """
    rows = self._data_rows(self.path(data_dir, split), split)
    examples = []
    for (i, row) in enumerate(rows):
      examples.append(InputExample(
          guid="%s-%d" % (split.name, i),
          text_a=column(row, split.text_a_column, "text"),
          text_b=(None if split.text_b_column is None else
                  column(row, split.text_b_column, "second text")),
          label=self._label(row, split),
          index=(None if split.index_column is None else
                 column(row, split.index_column, "index"))))
    return examples

  def _data_rows(self, path, split):
    """The rows of a file that hold examples (no header, no broken row)."""
    rows = read_tsv(path)
    if split.has_header and rows:
      header, rows = rows[0], rows[1:]
      self._check_header(header, split)
      if self.skip_malformed_rows:
        rows = self._drop_malformed(path, rows, len(header[2]))
      else:
        self._check_no_extra_fields(rows, len(header[2]))
    return rows

  def _check_no_extra_fields(self, rows, num_columns):
    """Refuses a row with more fields than its header: a tab inside a text
    would otherwise silently cut the text at the tab."""
    for (path, line_number, columns) in rows:
      if len(columns) > num_columns:
        raise InputError(
            "%s:%d: %d tab-separated fields, but the header has %d: a tab "
            "inside a text would cut it there; replace that tab by a space" %
            (path, line_number, len(columns), num_columns))

  def _check_header(self, header, split):
    """Refuses a file whose header is not this task's: another task's file
    (`--data_dir` of another task, or `--data_dirs` in the wrong order) would
    otherwise be read with the wrong columns as text."""
    (path, line_number, columns) = header
    for (index, name) in split.header or ():
      found = columns[index] if -len(columns) <= index < len(columns) else None
      if found is None or found.strip().lower() != name.lower():
        raise InputError(
            "%s:%d: column %d of the header is %s, not %r: this is not %s's "
            "%s (header: %s)" % (
                path, line_number, index % max(len(columns), 1) + 1
                if found is not None else index + 1,
                repr(found) if found is not None else "missing", name,
                self.name, split.file_name, " | ".join(columns)[:120]))

  def _label(self, row, split):
    """The row's label, or a placeholder for test rows (they have none)."""
    if split.label_column is None:
      return 0.0 if self.is_regression else self.labels[0]
    text = self.normalize_label(column(row, split.label_column, "label"))
    if self.is_regression:
      try:
        value = float(text)
      except ValueError:
        value = float("nan")
      if not math.isfinite(value):  # float() takes "nan" and "inf" too
        raise InputError("%s:%d: label %r is not a number" %
                         (row[0], row[1], text))
      return value
    if text not in self.labels:
      raise InputError("%s:%d: label %r is not one of %s" %
                       (row[0], row[1], text, ", ".join(self.labels)))
    return text

  def normalize_label(self, text):
    """Maps a file's label spelling to the task's; most tasks need nothing."""
    return text

  def _drop_malformed(self, path, rows, num_columns):
    kept = [row for row in rows if len(row[2]) == num_columns]
    dropped = [row[1] for row in rows if len(row[2]) != num_columns]
    if dropped:
      logging.warning("%s: skipped %d malformed rows (column count is not "
                      "the header's %d), at lines %s%s", path, len(dropped),
                      num_columns, ", ".join(str(n) for n in dropped[:10]),
                      " ..." if len(dropped) > 10 else "")
    return kept

  def label_values(self, examples):
    """Gold labels as numbers: class ids, or scores for regression."""
    if self.is_regression:
      return [float(e.label) for e in examples]
    return [self.labels.index(e.label) for e in examples]

  def metrics(self, predictions, labels):
    """The task's official metrics: {"eval_<name>": value}."""
    return metrics.compute(self.metric_names, predictions, labels)

  def submission_value(self, prediction):
    """A prediction as the GLUE server wants it: a label string or a score."""
    if self.is_regression:
      # The model's raw output may stray outside the task's range.
      value = float(prediction)
      if self.score_range is not None:
        value = min(self.score_range[1], max(self.score_range[0], value))
      return "%.3f" % value
    return self.labels[int(prediction)]


# Header names of the GLUE files' columns that are read.
_PAIR_NAMES = ("sentence1", "sentence2", "index")
_NLI_NAMES = ("sentence1", "sentence2", "label")
_MNLI_NAMES = ("sentence1", "sentence2", "gold_label")
_MRPC_NAMES = ("#1 String", "#2 String", "Quality")
_QQP_NAMES = ("question1", "question2", "is_duplicate")
_QNLI_NAMES = ("question", "sentence", "label")


class ColaTask(Task):
  name = "CoLA"
  labels = ("0", "1")
  metric_names = ("mcc", "accuracy")
  primary = "mcc"
  train = train_split("train.tsv", 3, None, 1, has_header=False)
  dev = (dev_split("dev", "dev.tsv", 3, None, 1, has_header=False),)
  test = (test_split("CoLA", "test.tsv", 1, None,
                     names=("sentence", None, "index")),)


class Sst2Task(Task):
  name = "SST-2"
  labels = ("0", "1")
  train = train_split("train.tsv", 0, None, 1,
                      names=("sentence", None, "label"))
  dev = (dev_split("dev", "dev.tsv", 0, None, 1,
                   names=("sentence", None, "label")),)
  test = (test_split("SST-2", "test.tsv", 1, None,
                     names=("sentence", None, "index")),)


class MrpcTask(Task):
  name = "MRPC"
  labels = ("0", "1")
  metric_names = ("accuracy", "f1")
  primary = "f1"
  glue_score = ("f1", "accuracy")
  train = train_split("train.tsv", 3, 4, 0, names=_MRPC_NAMES)
  dev = (dev_split("dev", "dev.tsv", 3, 4, 0, names=_MRPC_NAMES),)
  test = (test_split("MRPC", "test.tsv", 3, 4,
                     names=("#1 String", "#2 String", "index")),)


class StsbTask(Task):
  name = "STS-B"
  labels = None  # regression: a similarity score
  metric_names = ("pearson", "spearman")
  primary = "spearman"
  glue_score = ("pearson", "spearman")
  score_range = (0.0, 5.0)
  train = train_split("train.tsv", 7, 8, 9, names=_PAIR_NAMES[:2] + ("score",))
  dev = (dev_split("dev", "dev.tsv", 7, 8, 9,
                   names=_PAIR_NAMES[:2] + ("score",)),)
  test = (test_split("STS-B", "test.tsv", 7, 8, names=_PAIR_NAMES),)


class QqpTask(Task):
  name = "QQP"
  labels = ("0", "1")
  metric_names = ("accuracy", "f1")
  primary = "f1"
  glue_score = ("f1", "accuracy")
  skip_malformed_rows = True
  train = train_split("train.tsv", 3, 4, 5, names=_QQP_NAMES)
  dev = (dev_split("dev", "dev.tsv", 3, 4, 5, names=_QQP_NAMES),)
  test = (test_split("QQP", "test.tsv", 1, 2,
                     names=("question1", "question2", "id")),)


class MnliTask(Task):
  """MNLI: matched and mismatched dev/test, and the diagnostic set AX."""
  name = "MNLI"
  labels = ("contradiction", "entailment", "neutral")
  skip_malformed_rows = True
  train = train_split("train.tsv", 8, 9, -1, names=_MNLI_NAMES)
  dev = (dev_split("matched", "dev_matched.tsv", 8, 9, -1, names=_MNLI_NAMES),
         dev_split("mismatched", "dev_mismatched.tsv", 8, 9, -1,
                   names=_MNLI_NAMES))
  test = (test_split("MNLI-m", "test_matched.tsv", 8, 9, names=_PAIR_NAMES),
          test_split("MNLI-mm", "test_mismatched.tsv", 8, 9,
                     names=_PAIR_NAMES),
          test_split("AX", os.path.join("..", "diagnostic", "diagnostic.tsv"),
                     1, 2, names=_PAIR_NAMES))


class QnliTask(Task):
  name = "QNLI"
  labels = ("entailment", "not_entailment")
  train = train_split("train.tsv", 1, 2, 3, names=_QNLI_NAMES)
  dev = (dev_split("dev", "dev.tsv", 1, 2, 3, names=_QNLI_NAMES),)
  test = (test_split("QNLI", "test.tsv", 1, 2,
                     names=("question", "sentence", "index")),)


class RteTask(Task):
  name = "RTE"
  labels = ("entailment", "not_entailment")
  train = train_split("train.tsv", 1, 2, 3, names=_NLI_NAMES)
  dev = (dev_split("dev", "dev.tsv", 1, 2, 3, names=_NLI_NAMES),)
  test = (test_split("RTE", "test.tsv", 1, 2, names=_PAIR_NAMES),)


class WnliTask(Task):
  name = "WNLI"
  labels = ("0", "1")
  train = train_split("train.tsv", 1, 2, 3, names=_NLI_NAMES)
  dev = (dev_split("dev", "dev.tsv", 1, 2, 3, names=_NLI_NAMES),)
  test = (test_split("WNLI", "test.tsv", 1, 2, names=_PAIR_NAMES),)


class XnliTask(Task):
  """XNLI (Conneau et al., 2018) in the layout of its release.

  Trains on `multinli/multinli.train.<language>.tsv` (the machine-translated
  MNLI); dev and test are the rows of `xnli.dev.tsv` / `xnli.test.tsv` in
  that language, given at construction (`--xnli_language`); a task object
  never changes language, so two XNLI tasks can live in one process.
  """
  name = "XNLI"
  labels = ("contradiction", "entailment", "neutral")
  has_submission = False  # not a GLUE task

  def __init__(self, language="zh"):
    if not language or not isinstance(language, str):
      raise InputError("--xnli_language must be a language code such as zh, "
                       "got %r" % (language,))
    self.language = language
  dev = (dev_split("dev", "xnli.dev.tsv", 6, 7, 1),)
  test = (dev_split("test", "xnli.test.tsv", 6, 7, 1),)

  @property
  def train(self):
    return train_split(
        os.path.join("multinli", "multinli.train.%s.tsv" % self.language),
        0, 1, 2)

  def _data_rows(self, path, split):
    rows = super(XnliTask, self)._data_rows(path, split)
    if split.name == "train":
      return rows
    # dev and test hold every language: keep this one's (column 0).
    return [row for row in rows
            if column(row, 0, "language") == self.language]

  def normalize_label(self, text):
    # The translated MNLI says "contradictory" where XNLI says "contradiction".
    return "contradiction" if text == "contradictory" else text


TASKS = {task.key: task for task in (
    ColaTask(), Sst2Task(), MrpcTask(), StsbTask(), QqpTask(), MnliTask(),
    QnliTask(), RteTask(), WnliTask(), XnliTask())}


def get_task(task_name, language=None):
  """The Task of a name, matched case- and dash-insensitively.

  Args:
    task_name: "MRPC", "sts-b", ...
    language: (optional) the language of a multilingual task (XNLI); ignored
      by the English tasks. None keeps the task's default (XNLI: zh).
  """
  key = normalize_task_name(task_name)
  if key not in TASKS:
    raise InputError("--task_name=%s: unknown task (known: %s)" %
                     (task_name, ", ".join(t.name for t in TASKS.values())))
  task = TASKS[key]
  if language is not None and task.language is not None and (
      language != task.language):
    return type(task)(language)
  return task


def read_tsv(input_file):
  """Reads a GLUE TSV file as (path, line_number, columns) rows.

  Raises:
    InputError: the file is missing or not UTF-8.
  """
  if not tf.io.gfile.exists(input_file):
    raise InputError("%s: no such file" % input_file)
  try:
    with tf.io.gfile.GFile(input_file, "rb") as f:
      data = f.read()
    text = data.decode("utf-8-sig")  # MRPC's headers start with a BOM
  except (tf.errors.OpError, OSError) as e:
    raise InputError("%s: cannot read it (%s)" %
                     (input_file, errors.one_line(e)))
  except UnicodeDecodeError as e:
    line_number = data[:e.start].count(b"\n") + 1
    raise InputError("%s:%d: not UTF-8 text" % (input_file, line_number))
  rows = []
  for (index, line) in enumerate(text.split("\n")):
    line = line.rstrip("\r")
    if line:
      rows.append((input_file, index + 1, line.split("\t")))
  return rows


def column(row, index, what):
  """The `index`-th column of a row, or an InputError naming file and line."""
  (path, line_number, columns) = row
  if index >= len(columns) or -index > len(columns):
    raise InputError("%s:%d: expected at least %d tab-separated columns "
                     "(%s), found %d" % (path, line_number,
                                         index + 1 if index >= 0 else -index,
                                         what, len(columns)))
  return columns[index]


def submission_text(task, indices, predictions):
  """A GLUE server file's text: a header, then `index<TAB>prediction` rows."""
  if len(indices) != len(predictions):
    raise ValueError("%d indices for %d predictions" %
                     (len(indices), len(predictions)))
  lines = ["index\tprediction\n"]
  for (index, prediction) in zip(indices, predictions):
    lines.append("%s\t%s\n" % (index, task.submission_value(prediction)))
  return "".join(lines)


def write_submission(path, task, indices, predictions):
  """Writes a GLUE server file (`submission_text`), atomically."""
  fileio.write_text(path, submission_text(task, indices, predictions))
