# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""What a job may write over: never what it did not write itself.

Two rules, checked before any work (so a refusal costs nothing and leaves
nothing behind):

- An export target (an adapter bundle folder, a SavedModel folder) is
  replaced whole, so it must be absent, an empty folder, or a previous export
  of the same kind: that kind's marker file present and nothing else but
  what such an export holds. A run folder, a backbone folder, a folder of
  other files or a plain file is refused, naming what is there.
- No output of a job is, contains, or sits inside one of its inputs (a
  bundle, the data, a run folder read from), and none is or contains an input
  file (the checkpoint's files, the vocabulary, the BERT config). A bundle
  target is never, nor contains, the job's own run folder.

Local paths are compared after resolving symbolic links, so an alias of an
input is caught too.
"""

import collections
import os
import re

import tensorflow.compat.v1 as tf

from adapter_bert import fileio
from adapter_bert.errors import InputError

# What an export of each kind holds at its top level: its marker file, and a
# pattern every entry matches.
ExportKind = collections.namedtuple("ExportKind", "what marker entries")

ADAPTER_BUNDLE = ExportKind(
    "an adapter bundle", "adapter_bundle.json",
    re.compile(r"^(adapter_bundle\.json|variables\.(index|data-\d+-of-\d+))$"))
SAVED_MODEL = ExportKind(
    "a SavedModel", "saved_model.pb",
    re.compile(r"^(saved_model\.pb|saved_model\.pbtxt|fingerprint\.pb|"
               r"variables|assets|assets\.extra)$"))
ADAPTERHUB_FOLDER = ExportKind(
    "an AdapterHub adapter folder", "adapter_config.json",
    re.compile(r"^(adapter_config\.json|pytorch_adapter\.bin|"
               r"adapter\.safetensors|head_config\.json|"
               r"pytorch_model_head\.bin|model_head\.safetensors|"
               r"backbone_patch\.safetensors)$"))
PEFT_FOLDER = ExportKind(
    "a PEFT adapter folder", "adapter_config.json",
    re.compile(r"^(adapter_config\.json|adapter_model\.(safetensors|bin)|"
               r"README\.md)$"))

# How many names an error lists.
LISTED_NAMES = 4


def _listing(names):
  # Hidden names (a lock, temporary files) last: the others tell more.
  shown = ", ".join(sorted(names, key=lambda n: (n.startswith("."), n))[
      :LISTED_NAMES])
  more = len(names) - LISTED_NAMES
  return shown + (", and %d more" % more if more > 0 else "")


def check_export_target(path, kind, flag):
  """Refuses an export target that is not absent, empty or a previous
  export of `kind`.

  Args:
    path: the folder the export would replace.
    kind: its `ExportKind`.
    flag: the flag that named it (for the message).

  Raises:
    InputError: naming what is there.
  """
  where = "--%s=%s" % (flag, path)
  if not tf.io.gfile.exists(path):
    return
  if not tf.io.gfile.isdir(path):
    raise InputError("%s is a file, not %s folder; it is not replaced: name "
                     "a new folder" % (where, kind.what))
  names = [name.rstrip("/") for name in tf.io.gfile.listdir(path)]
  if not names:
    return
  foreign = [name for name in names if not kind.entries.match(name)]
  if kind.marker in names and not foreign:
    return  # A previous export of the same kind: replaced, atomically.
  raise InputError(
      "%s is not %s folder: it holds %s%s; it is not replaced: name a new or "
      "empty folder, or a previous export of this kind" % (
          where, kind.what, _listing(foreign or names),
          "" if foreign else " but no " + kind.marker))


def _resolved(path):
  """An absolute, normalised path; local ones with their links resolved."""
  if fileio.is_url(path):
    return fileio.normpath(path).rstrip("/")
  return os.path.realpath(os.path.abspath(path))


def _inside(path, folder):
  """Whether `path` lies under `folder` (both resolved)."""
  return path.startswith(folder.rstrip("/") + "/")


def checkpoint_inputs(flag, prefix):
  """The files of the checkpoint `prefix` as (flag, path) input files."""
  if not prefix:
    return []
  return [(flag, path) for path in fileio.checkpoint_files(prefix)] or [
      (flag, prefix)]


def check_apart(outputs, input_folders=(), input_files=()):
  """Refuses an output that is, contains or sits inside an input.

  Args:
    outputs: (flag, path) of every folder the job writes into or replaces.
    input_folders: (flag, path) of every folder it reads as a whole (bundle,
      data, a run folder read from): an output may not be it, contain it or
      sit inside it.
    input_files: (flag, path) of every file it reads (checkpoint files,
      vocabulary, config): an output may not be it or contain it.

  Raises:
    InputError: naming both flags.
  """
  for (out_flag, out_path) in outputs:
    if not out_path:
      continue
    out = _resolved(out_path)
    for (in_flag, in_path, may_hold) in (
        [(f, p, True) for (f, p) in input_folders if p] +
        [(f, p, False) for (f, p) in input_files if p]):
      given = _resolved(in_path)
      if out == given:
        relation = "is"
      elif _inside(given, out):
        relation = "contains"
      elif may_hold and _inside(out, given):
        relation = "sits inside"
      else:
        continue
      raise InputError(
          "--%s=%s %s the input --%s=%s: a job's output may not be, contain "
          "or sit inside what it reads; name another folder" % (
              out_flag, out_path, relation, in_flag, in_path))


def check_bundle_beside_run(bundle_flag, bundle_dir, output_dir):
  """Refuses a bundle target that is, or contains, the run folder (the
  bundle replaces its target whole: it would take the run with it)."""
  if not bundle_dir or not output_dir:
    return
  (bundle, run) = (_resolved(bundle_dir), _resolved(output_dir))
  if bundle == run or _inside(run, bundle):
    raise InputError(
        "--%s=%s %s --output_dir=%s: the bundle replaces its folder whole; "
        "name a folder of its own (default: adapter_bundle inside "
        "--output_dir)" % (bundle_flag, bundle_dir,
                           "is" if bundle == run else "contains",
                           output_dir))
