# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A sweep's state: one record per run, in the run's own folder.

A run's folder is `<work_dir>/<run id>-c<context id>`. The context id hashes
what shapes a run beyond its grid settings: the backbone's files (config,
vocab, checkpoint), the task's training and dev files, the sequence length,
the batch sizes and the run_classifier.py flags every run shares
(--run_flag). A command with another --bert_dir, --glue_dir,
--max_seq_length, batch size or run flag therefore gets other folders and
can never inherit old numbers.

A finished run writes `sweep_result.json` in its folder, atomically: its
settings, context, metrics and training time. The results table is derived
from these records, merged under a lock into what the table already holds,
so several sweeps (processes, or machines on one shared work folder) can
fill one grid. A sweep claims a run before running it (`flock` on
`<folder>/.claim`, inherited by the run's own process, so a killed sweep's
run keeps its claim until it has saved and exited); another sweep that finds
the claim taken waits for the record instead of running it again.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time

import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue

RECORD = "sweep_result.json"
CLAIM = ".claim"
RECORD_VERSION = 1

# The row columns a record adds to the grid's: what the context id hashes,
# in the table, so a reader sees what made each number.
CONTEXT_COLUMNS = ("context_id", "backbone_sha256", "data_sha256",
                   "max_seq_length", "train_batch_size", "eval_batch_size",
                   "run_flags")

# The files of the backbone folder that shape a run (the checkpoint's data
# shards are found from its prefix).
BACKBONE_FILES = ("bert_config.json", "vocab.txt")
BACKBONE_CHECKPOINT = "bert_model.ckpt"


def _sha256_of_files(paths):
  """sha256 over the names and contents of `paths`, in order."""
  hasher = hashlib.sha256()
  for path in paths:
    hasher.update(("%s\n" % os.path.basename(path)).encode("utf-8"))
    hasher.update(fileio.file_sha256(path).encode("ascii"))
  return hasher.hexdigest()


class Context(object):
  """What shapes the runs of one sweep command beyond their grid settings."""

  def __init__(self, options):
    self.options = options
    self._backbone = None
    self._data = {}

  def backbone_sha256(self):
    """sha256 over the backbone's config, vocab and checkpoint files."""
    if self._backbone is None:
      bert = self.options["bert_dir"]
      paths = [os.path.join(bert, name) for name in BACKBONE_FILES]
      paths += fileio.checkpoint_files(os.path.join(bert, BACKBONE_CHECKPOINT))
      for path in paths:
        if not tf.io.gfile.exists(path):
          raise errors.InputError("--bert_dir=%s has no %s" % (
              bert, os.path.basename(path)))
      self._backbone = _sha256_of_files(paths)
    return self._backbone

  def data_sha256(self, task_name):
    """sha256 over the task's training and dev files."""
    if task_name not in self._data:
      task = glue.get_task(task_name)
      data_dir = os.path.join(self.options["glue_dir"], task_name)
      paths = [task.path(data_dir, split) for split in
               (task.train,) + tuple(task.dev)]
      for path in paths:
        if not tf.io.gfile.exists(path):
          raise errors.InputError("--glue_dir=%s: %s has no %s" % (
              self.options["glue_dir"], task_name, os.path.relpath(
                  path, data_dir)))
      self._data[task_name] = _sha256_of_files(paths)
    return self._data[task_name]

  def of_backbone(self):
    """The context's settings that every task shares (strings)."""
    return {
        "backbone_sha256": self.backbone_sha256(),
        "max_seq_length": str(self.options["max_seq_length"]),
        "train_batch_size": str(self.options["train_batch_size"]),
        "eval_batch_size": str(self.options["eval_batch_size"]),
        "run_flags": run_flags_text(self.options.get("run_flags") or {}),
    }

  def of(self, task_name):
    """{column: value} of the context of `task_name`'s runs (strings, as
    the table holds them), context_id included."""
    values = dict(self.of_backbone(),
                  data_sha256=self.data_sha256(task_name))
    hashed = dict(values)
    if not hashed["run_flags"]:
      # A sweep without run flags keeps the ids (and so the run folders) of
      # the tables written before they could be given.
      del hashed["run_flags"]
    values["context_id"] = hashlib.sha256(json.dumps(
        hashed, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    return values


def run_flags_text(run_flags):
  """The table's spelling of {run_classifier.py flag: value}: "--name=value"
  in name order, space-separated ("" for none)."""
  return " ".join("--%s=%s" % item for item in sorted(run_flags.items()))


def run_folder(work_dir, run_id, context_id):
  return os.path.join(work_dir, "%s-c%s" % (run_id, context_id))


def differences(row, context):
  """The context settings in which a table row differs from `context`."""
  # A table written before a column existed reads as its empty value.
  return ["%s %s (now %s)" % (name, _short(row.get(name) or "none"),
                              _short(context[name] or "none"))
          for name in CONTEXT_COLUMNS[1:]
          if (row.get(name) or "") != context[name]]


def _short(value):
  return value[:12] if len(value) == 64 else value


# ---------------------------------------------------------------- records


def write_record(folder, run_fields, context, row, command):
  """The run's record, atomically: what a table row is derived from."""
  fileio.write_json(os.path.join(folder, RECORD), {
      "version": RECORD_VERSION, "run": run_fields, "context": context,
      "row": row, "command": command})


def read_record(folder, context_id):
  """The table row a run's folder records, or None where it has none.

  Raises:
    InputError: a record that is not one (edited, or of another context).
  """
  path = os.path.join(folder, RECORD)
  if not tf.io.gfile.exists(path):
    return None
  try:
    record = json.loads(fileio.read_text(path))
    row = record["row"]
    if record["context"]["context_id"] != context_id or (
        record["version"] != RECORD_VERSION):
      raise ValueError("it records context %s, version %s" % (
          record["context"]["context_id"], record["version"]))
  except (ValueError, KeyError, TypeError) as e:
    raise errors.InputError(
        "not a run record of this sweep (%s); remove it to run that run "
        "again" % errors.one_line(e), where=path)
  return row


# ---------------------------------------------------------------- claims


class Claim(object):
  """An exclusive claim on a run's folder: an open descriptor holding a
  `flock`. The kernel drops it when every process holding the descriptor
  has exited, however it died."""

  def __init__(self, handle):
    self.handle = handle

  def fileno(self):
    return self.handle.fileno()

  def release(self):
    self.handle.close()


def try_claim(folder):
  """The run's claim, or None while another sweep (or its run) holds it."""
  if fileio.is_url(folder):
    # No flock on a remote file system: one machine per work folder there,
    # or the scheduler gives each run to one worker.
    tf.io.gfile.makedirs(folder)
    return Claim(open(os.devnull, "a"))
  os.makedirs(folder, exist_ok=True)
  handle = open(os.path.join(folder, CLAIM), "a")
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    handle.close()
    return None
  return Claim(handle)


# ---------------------------------------------------------------- the table


@contextlib.contextmanager
def table_lock(results_path):
  """Holds an exclusive lock on the table's folder for the `with` block: a
  read-merge-write of the table is then one step for every sweep."""
  folder = os.path.dirname(os.path.abspath(results_path))
  if fileio.is_url(results_path) or not os.path.isdir(folder):
    yield
    return
  descriptor = os.open(folder, os.O_RDONLY)
  try:
    while True:
      try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        break
      except OSError as e:  # a signal while waiting: wait on
        if e.errno != errno.EINTR:
          raise
    yield
  finally:
    os.close(descriptor)


def merge_rows(existing, new_rows):
  """The table's rows with `new_rows` added or replacing theirs (same run
  id and context id), existing ones first, in their order; a run is one row
  however often a table lists it."""
  merged = []
  index = {}
  for row in list(existing) + list(new_rows):
    key = (row["run_id"], row.get("context_id"))
    if key in index:
      merged[index[key]] = row
    else:
      index[key] = len(merged)
      merged.append(row)
  return merged


def wait_for(predicate, should_stop, poll_seconds=1.0):
  """Polls `predicate()` until it returns something other than None;
  returns None as soon as `should_stop()`."""
  while True:
    value = predicate()
    if value is not None:
      return value
    if should_stop():
      return None
    time.sleep(poll_seconds)
