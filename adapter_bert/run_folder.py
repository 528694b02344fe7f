# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The run folder (`--output_dir`): its manifest and its lock.

One run folder holds one run: its checkpoints, features, results and bundle.
Two things keep another job from passing that run off as its own:

- The manifest, `run.json`: everything that shapes the model, the data and
  the training. Training writes it before its first step. A later start in
  the folder compares its own manifest with it: training compares every
  setting (a rerun with the same ones resumes, any other is refused naming
  the differences), and evaluation, prediction and export compare the
  settings that shape the model (the task, the config, the tuning method...),
  because the learning rate does not change what an eval of the saved model
  means.
- The lock, `.lock`: an exclusive `flock` held for the whole job, so that a
  second job in the same folder stops at once with one line naming the first
  (its pid, host and start time) instead of both reporting the same last
  checkpoint as their own. Locks are local: on `gs://` there is none, and the
  log says so.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys

from absl import logging
import tensorflow.compat.v1 as tf

from adapter_bert import fileio
from adapter_bert import methods

MANIFEST = "run.json"
LOCK = ".lock"
# Training time summed over a run's invocations (a resumed run's included).
TRAINING_TIME = "training_time.json"
MANIFEST_FORMAT = "adapter-bert-run"
MANIFEST_VERSION = 1
# How many differing settings a refusal names (the line stays readable).
MAX_NAMED = 4

# The manifest's entries that shape the trained model. The names are the
# flags', except the three content hashes; every tuning method's options
# (the registry's flags) shape it too.
MODEL_KEYS = (("task_name", "xnli_language", "bert_config", "vocab_sha256",
               "do_lower_case", "max_seq_length", "init_checkpoint_fingerprint",
               "tuning_mode") + tuple(methods.all_options()))
# ...and those that shape the training on top of them.
TRAINING_KEYS = MODEL_KEYS + ("train_sha256", "train_batch_size",
                              "learning_rate", "num_train_epochs",
                              "warmup_proportion", "adam_bias_correction",
                              "seed", "padding", "precision")
# Keys added after manifests existed, with the value an older manifest's run
# had: it then compares as that value, not as missing.
_ADDED_KEYS = {"precision": "float32", "adam_bias_correction": False}
# How a difference in a content hash is named.
_HASH_NAMES = {"vocab_sha256": "--vocab_file's content",
               "init_checkpoint_fingerprint": "--init_checkpoint's weights",
               "train_sha256": "the training data's content"}


def manifest_path(folder):
  return os.path.join(folder, MANIFEST)


def read_manifest(folder):
  """The folder's manifest, or None when it has none.

  Raises:
    ValueError: a manifest that is not one (one line, naming the file).
  """
  path = manifest_path(folder)
  if not tf.io.gfile.exists(path):
    return None
  try:
    manifest = json.loads(fileio.read_text(path))
  except (ValueError, UnicodeDecodeError) as e:
    raise ValueError("%s: not a run manifest (%s)" % (path, e))
  if (not isinstance(manifest, dict) or
      manifest.get("format") != MANIFEST_FORMAT or
      not isinstance(manifest.get("settings"), dict)):
    raise ValueError("%s: not a run manifest of this project" % path)
  return manifest


def write_manifest(folder, settings, information=None):
  """Writes the folder's manifest, atomically.

  Args:
    settings: {key: JSON value} with every key of TRAINING_KEYS.
    information: (optional) {key: value} recorded but never compared
      (paths, the command line, the time).
  """
  missing = [key for key in TRAINING_KEYS if key not in settings]
  if missing:
    raise ValueError("a run manifest needs %s" % ", ".join(missing))
  fileio.write_json(manifest_path(folder), {
      "format": MANIFEST_FORMAT,
      "version": MANIFEST_VERSION,
      "settings": settings,
      "information": dict(information or {}),
  })


def training_time_path(folder):
  return os.path.join(folder, TRAINING_TIME)


def training_seconds(folder):
  """Seconds spent training this run, summed over every invocation that
  trained (a resume counts its own part; one that only evaluates adds
  nothing), or None if none recorded it."""
  return _recorded_training(folder)[0]


def _recorded_training(folder):
  """(seconds or None, invocations) of the folder's training-time record;
  a damaged record reads as none."""
  path = training_time_path(folder)
  if not tf.io.gfile.exists(path):
    return (None, 0)
  try:
    record = json.loads(fileio.read_text(path))
    seconds = record.get("train_seconds")
    invocations = int(record.get("invocations", 0))
  except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
    return (None, 0)
  if not isinstance(seconds, (int, float)):
    return (None, 0)
  return (float(seconds), invocations)


class TrainingClock(object):
  """One invocation's part of the run's training time, recorded in the
  folder as training goes: `record` at every checkpoint writes the earlier
  invocations' total plus this one's time so far (atomically), so a run
  killed without warning (SIGKILL, a lost machine) keeps the time of the
  steps it saved, and the next invocation adds its own to it."""

  def __init__(self, folder):
    self.path = training_time_path(folder)
    (before, invocations) = _recorded_training(folder)
    self.before = before or 0.0
    self.invocations = invocations + 1

  def record(self, seconds):
    """Records `seconds` of this invocation; returns the run's total."""
    total = self.before + seconds
    fileio.write_json(self.path, {"train_seconds": round(total, 3),
                                  "invocations": self.invocations})
    return total


def _describe(value):
  if isinstance(value, float):
    return "%g" % value
  return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def differences(recorded, current, keys):
  """What differs between two manifests' settings, as short phrases.

  Example: ["learning_rate 0.001 (now 0.0003)", "--vocab_file's content"].
  A config differs by its entries: "bert_config.hidden_size 32 (now 64)".
  """
  phrases = []
  for key in keys:
    (old, new) = (recorded.get(key, _ADDED_KEYS.get(key)), current.get(key))
    if old == new:
      continue
    if key in _HASH_NAMES:
      phrases.append(_HASH_NAMES[key])
    elif isinstance(old, dict) and isinstance(new, dict):
      for entry in sorted(set(old) | set(new)):
        if old.get(entry) != new.get(entry):
          phrases.append("%s.%s %s (now %s)" % (key, entry,
                                                _describe(old.get(entry)),
                                                _describe(new.get(entry))))
    else:
      phrases.append("%s %s (now %s)" % (key, _describe(old),
                                         _describe(new)))
  return phrases


def check_manifest(folder, settings, training, what="--output_dir"):
  """Refuses a folder whose run was made with other settings.

  Args:
    folder: the run folder.
    settings: this job's manifest settings.
    training: whether this job trains (every setting is compared) or only
      uses the saved model (the settings that shape it are).
    what: how the folder is named in a message.

  Returns:
    the recorded manifest, or None when the folder has none.

  Raises:
    ValueError: one line naming the folder and each differing setting.
  """
  recorded = read_manifest(folder)
  if recorded is None:
    return None
  phrases = differences(recorded["settings"], settings,
                        TRAINING_KEYS if training else MODEL_KEYS)
  if phrases:
    shown = phrases[:MAX_NAMED]
    if len(phrases) > MAX_NAMED:
      shown.append("and %d more" % (len(phrases) - MAX_NAMED))
    raise ValueError(
        "%s=%s holds a run made with other settings: %s" % (
            what, folder, "; ".join(shown)))
  return recorded


def clear(folder, keep=(LOCK,)):
  """Deletes everything in `folder` but the names in `keep`.

  Returns:
    the names deleted.
  """
  removed = []
  for name in sorted(tf.io.gfile.listdir(folder)):
    name = name.rstrip("/")
    if name in keep:
      continue
    path = os.path.join(folder, name)
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    else:
      tf.io.gfile.remove(path)
    removed.append(name)
  return removed


def _holder():
  return {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now(datetime.timezone.utc).strftime(
              "%Y-%m-%d %H:%M:%S UTC"),
          "command": " ".join(sys.argv)[:300]}


def _describe_holder(text):
  try:
    holder = json.loads(text)
    return "pid %s on %s, started %s (%s)" % (
        holder["pid"], holder["host"], holder["started"], holder["command"])
  except (ValueError, KeyError, TypeError):
    return "another job"


class FolderInUse(ValueError):
  """Another job holds the folder's lock."""


@contextlib.contextmanager
def locked(folder, name=LOCK):
  """Holds the folder's exclusive lock for the `with` block.

  The lock is a `flock` on `<folder>/.lock`, which also records its holder.
  The kernel drops it when the holder dies, however it dies, so a killed run
  never leaves a stale lock.

  Raises:
    FolderInUse: one line naming the folder and the job holding it.
  """
  if fileio.is_url(folder):
    logging.info("No lock on %s: locks are for local folders only", folder)
    yield
    return
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, name)
  handle = open(path, "a+", encoding="utf-8")
  try:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      raise FolderInUse("--output_dir=%s is in use by %s; wait for it to end "
                       "or use another --output_dir" % (
                           folder, _describe_holder(handle.read())))
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(_holder()))
    handle.flush()
    yield
  finally:
    handle.close()  # closing the descriptor releases the lock
