# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Files through `tf.io.gfile`, written atomically.

Every file the project reads or writes goes through here or through a TF op
(checkpoints, TFRecords), so any path may be local, `gs://` (Cloud TPU jobs),
`ram://` (the tests) or any other TensorFlow file system. Outputs are written
under a temporary name in the same folder and renamed into place, so a reader
never sees half a file and a failure leaves no partial output behind.
"""

import contextlib
import hashlib
import json
import os
import posixpath
import re
import struct
import uuid

import tensorflow.compat.v1 as tf

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$")


def is_url(path):
  """Whether `path` names a TF file system by scheme (`gs://...`, `ram://...`)."""
  return bool(_URL.match(path))


def normpath(path):
  """`os.path.normpath` that keeps a URL's `scheme://` intact.

  `os.path.normpath("gs://b/x/../y")` would give `gs:/b/y`, a local folder.
  """
  match = _URL.match(path)
  if not match:
    return os.path.normpath(path)
  rest = posixpath.normpath(match.group(2)) if match.group(2) else ""
  return match.group(1) + ("" if rest == "." else rest)


def abspath(path):
  """An absolute local path; a URL is already absolute and stays as it is."""
  return path if is_url(path) else os.path.abspath(path)


def temporary_name(path):
  """A sibling of `path` no other writer uses: same folder, same file system."""
  folder, name = os.path.split(path.rstrip("/"))
  return os.path.join(folder, ".%s.tmp-%d-%s" % (name, os.getpid(),
                                                  uuid.uuid4().hex[:8]))


def check_writable_folder(folder):
  """Makes `folder` (and its parents) and writes and deletes a probe file in
  it, so that an unwritable output is found before any work, not after.

  Raises:
    ValueError: one line saying why `folder` cannot take files.
  """
  try:
    if tf.io.gfile.exists(folder) and not tf.io.gfile.isdir(folder):
      raise ValueError("it is a file, not a folder")
    tf.io.gfile.makedirs(folder)
    probe = temporary_name(os.path.join(folder, "write_probe"))
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    message = getattr(e, "message", None) or str(e)
    raise ValueError("cannot write there (%s)" % message.splitlines()[0])


_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}(\.old)?$")


def remove_orphans(folder):
  """Deletes the temporary files and folders of writers that died.

  A process killed while writing leaves its `temporary_name` behind (the
  name holds its pid). On a local disk, those whose process is gone are
  removed; on other file systems another machine may be the writer, so
  nothing is touched there.

  Returns:
    the names removed.
  """
  if is_url(folder) or not os.path.isdir(folder):
    return []
  removed = []
  for name in sorted(os.listdir(folder)):
    match = _TEMPORARY.match(name)
    if match and not _process_alive(int(match.group(1))):
      remove_quietly(os.path.join(folder, name))
      removed.append(name)
  return removed


# TensorFlow's own temporary names, which no pid marks:
# `file_io.atomic_write_string_to_file` (graph.pbtxt, a checkpoint's .meta)
# writes `<name>.tmp<32 hex>` and renames it; a checkpoint save writes its
# shards under `<prefix>_temp/` first, each as `<name>.tempstate<digits>`.
_TF_TEMPORARY_FILE = re.compile(r"^.+(\.tmp[0-9a-f]{32}|\.tempstate[0-9]+)$")
_TF_TEMPORARY_FOLDER = re.compile(r"^.+_temp$")


def remove_tensorflow_leftovers(folder):
  """Deletes the temporary files TensorFlow left in `folder` (and its
  subfolders) when a job died or a disk filled mid-write, and cuts event
  files back to their last whole record. Only for a folder that no live job
  writes (one holds its lock); local folders only.

  Returns:
    the paths removed or cut, relative to `folder`.
  """
  if is_url(folder) or not os.path.isdir(folder):
    return []
  changed = []
  for (root, folders, files) in os.walk(folder):
    for name in list(folders):
      if _TF_TEMPORARY_FOLDER.match(name):
        remove_quietly(os.path.join(root, name))
        folders.remove(name)
        changed.append(os.path.relpath(os.path.join(root, name), folder))
    for name in files:
      path = os.path.join(root, name)
      if _TF_TEMPORARY_FILE.match(name):
        remove_quietly(path)
        changed.append(os.path.relpath(path, folder))
      elif name.startswith("events.out.tfevents.") and (
          cut_to_whole_records(path)):
        changed.append(os.path.relpath(path, folder))
  return changed


def cut_to_whole_records(path):
  """Cuts a TFRecord file (an event file) after its last whole record, as a
  write cut short leaves it; returns whether it was cut. Each record is a
  uint64 length, its 4-byte CRC, the data and the data's 4-byte CRC."""
  with open(path, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    end = 0
    while end + 12 <= size:
      f.seek(end)
      (length,) = struct.unpack("<Q", f.read(8))
      if end + 16 + length > size:
        break
      end += 16 + length
  if end == size:
    return False
  os.truncate(path, end)
  return True


def _process_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # someone else's live process
  return True


def remove_quietly(path):
  """Deletes a file or a folder tree if it exists; never raises."""
  try:
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  except (tf.errors.OpError, OSError):
    pass


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary file name; on success it is renamed to `path`.

  Example:

  ```python
  with fileio.atomic_path("gs://b/train.tf_record") as temp:
    writer = tf.io.TFRecordWriter(temp) ...
  ```

  On an exception the temporary file is deleted and `path` is untouched.
  """
  folder = os.path.dirname(path)
  if folder:
    tf.io.gfile.makedirs(folder)
  temp = temporary_name(path)
  try:
    yield temp
    tf.io.gfile.rename(temp, path, overwrite=True)
  except BaseException:
    remove_quietly(temp)
    raise


@contextlib.contextmanager
def atomic_directory(path, marker=None):
  """Yields a temporary folder; on success it replaces the folder `path`.

  Locally the folder is renamed into place: an existing `path` is moved aside
  first and deleted after the swap, so at every moment `path` is either the
  old folder or the complete new one. Object stores (`gs://`) and `ram://`
  have no folder rename; there the files are moved one by one, `marker` last,
  so a reader that checks for `marker` never takes a half-moved folder.

  Args:
    path: the folder to write.
    marker: (optional) name of the file that marks a complete folder.
  """
  parent = os.path.dirname(path.rstrip("/"))
  if parent:
    tf.io.gfile.makedirs(parent)
  # What a killed writer left beside the target (its temporary folder, or
  # the old folder it had moved aside) goes first.
  remove_orphans(parent or ".")
  temp = temporary_name(path)
  tf.io.gfile.makedirs(temp)
  try:
    yield temp
    if is_url(path):
      _move_files(temp, path, marker)
    else:
      old = None
      if tf.io.gfile.exists(path):
        old = temporary_name(path) + ".old"
        tf.io.gfile.rename(path, old)
      tf.io.gfile.rename(temp, path)
      if old:
        remove_quietly(old)
  except BaseException:
    remove_quietly(temp)
    raise


def _move_files(source, target, marker):
  """Replaces folder `target` by the files of `source`, `marker` last."""
  remove_quietly(target)
  move_files_into(source, target, last=marker)
  remove_quietly(source)


def move_files_into(source, target, last=None):
  """Moves every file under folder `source` into folder `target`.

  Files of the same name in `target` are replaced; others stay. The file
  named `last` moves last: its presence marks a complete folder.
  """
  moves = []
  for (folder, _, files) in tf.io.gfile.walk(source):
    relative = folder[len(source):].lstrip("/")
    for name in files:
      moves.append((os.path.join(folder, name),
                    os.path.join(target, relative, name) if relative else
                    os.path.join(target, name)))
  moves.sort(key=lambda move: (os.path.basename(move[0]) == last, move[0]))
  for (from_path, to_path) in moves:
    tf.io.gfile.makedirs(os.path.dirname(to_path))
    tf.io.gfile.rename(from_path, to_path, overwrite=True)
  return [to_path for (_, to_path) in moves]


def write_text(path, text):
  """Writes `text` (UTF-8) to `path`, atomically."""
  with atomic_path(path) as temp:
    with tf.io.gfile.GFile(temp, "w") as f:
      f.write(text)


def write_bytes(path, data):
  """Writes `data` to `path`, atomically."""
  with atomic_path(path) as temp:
    with tf.io.gfile.GFile(temp, "wb") as f:
      f.write(data)


def write_json(path, value):
  """Writes `value` as indented, key-sorted JSON, atomically."""
  write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_text(path):
  with tf.io.gfile.GFile(path, "r") as f:
    return f.read()


def read_bytes(path):
  with tf.io.gfile.GFile(path, "rb") as f:
    return f.read()


def file_sha256(path):
  """sha256 of a file's contents, read in 1 MB blocks."""
  hasher = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    while True:
      block = f.read(1 << 20)
      if not block:
        break
      hasher.update(block)
  return hasher.hexdigest()


def directory_size(path):
  """Bytes of every file under a folder."""
  total = 0
  for (folder, _, files) in tf.io.gfile.walk(path):
    for name in files:
      total += tf.io.gfile.stat(os.path.join(folder, name)).length
  return total


def checkpoint_files(prefix):
  """The files of a TF checkpoint: its index and its data shards."""
  return (tf.io.gfile.glob(prefix + ".index") +
          tf.io.gfile.glob(prefix + ".data-*"))


def checkpoint_size(prefix):
  """Size on disk of a checkpoint (its index and data shards)."""
  return sum(tf.io.gfile.stat(f).length for f in checkpoint_files(prefix))


def human_bytes(count):
  """1234567 -> "1.2 MB" (decimal units, as disk sizes are quoted)."""
  for (unit, size) in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
    if count >= size:
      return "%.1f %s" % (count / size, unit)
  return "%d B" % count


_DATA_SHARD = re.compile(r"\.data-(\d+)-of-(\d+)$")


def checkpoint_reader(path):
  """A reader of the checkpoint at `path`: a prefix, or a folder (its
  latest checkpoint).

  tf.train.load_checkpoint takes any path that answers isdir() for a folder,
  and on some TensorFlow file systems (ram://) every path does: a prefix is
  known by its .index file here, so every file system works.
  """
  if tf.io.gfile.exists(path + ".index"):
    return tf.train.NewCheckpointReader(path)
  return tf.train.load_checkpoint(path)


def checkpoint_variables(path):
  """[(name, shape)] of a checkpoint, as tf.train.list_variables."""
  shapes = checkpoint_reader(path).get_variable_to_shape_map()
  return sorted(shapes.items())


def check_checkpoint_data(prefix):
  """Refuses a checkpoint whose data files are missing or cut short.

  Reading a checkpoint opens only its index; a data file truncated by a full
  disk or an interrupted copy is found when a tensor is read, deep in a
  session. This compares the data files' sizes with the bytes the index says
  the numeric tensors take (no tensor is read, so it costs nothing).

  Raises:
    ValueError: one line saying what is missing or short.
  """
  try:
    reader = checkpoint_reader(prefix)
  except (tf.errors.OpError, ValueError) as e:
    message = getattr(e, "message", None) or str(e)
    raise ValueError("cannot read it (%s)" % " ".join(message.split())[:200])
  shards = tf.io.gfile.glob(prefix + ".data-*")
  counts = {int(m.group(2)) for m in
            (_DATA_SHARD.search(s) for s in shards) if m}
  expected = counts.pop() if len(counts) == 1 else None
  if not shards or expected is None or len(shards) != expected:
    raise ValueError("its data files are missing (%d found of %s)" % (
        len(shards), expected if expected is not None else "at least 1"))
  shapes = reader.get_variable_to_shape_map()
  dtypes = reader.get_variable_to_dtype_map()
  needed = 0
  for (name, shape) in shapes.items():
    dtype = tf.as_dtype(dtypes[name])
    if dtype != tf.string:
      count = 1
      for dim in shape:
        count *= dim
      needed += count * dtype.size
  found = sum(tf.io.gfile.stat(s).length for s in shards)
  if found < needed:
    raise ValueError("its data is cut short: %d bytes of the %d its index "
                     "describes (a copy or a write that did not finish)" %
                     (found, needed))
