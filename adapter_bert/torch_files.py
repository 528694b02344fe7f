# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""PyTorch's state-dict files (`torch.save`'s zip format), without PyTorch.

AdapterHub saves an adapter as `pytorch_adapter.bin` and loads it with
`torch.load(..., weights_only=True)`. This module reads and writes that
format for a flat {name: array} dict, so the project can exchange adapters
with it while never importing torch.

The format (torch >= 1.6): a zip archive, entries stored uncompressed under
one folder `<archive>/`:

    data.pkl     a pickle of the dict; each tensor is
                 torch._utils._rebuild_tensor_v2(storage, offset, size,
                 stride, requires_grad, backward_hooks), its storage a
                 persistent id ("storage", torch.FloatStorage, key, "cpu",
                 numel)
    data/<key>   the storage's raw little-endian bytes
    version      "3"
    byteorder    "little"

The writer emits only what `weights_only=True` accepts (those two globals and
collections.OrderedDict); each storage starts on a 64-byte boundary, as
torch's own writer aligns them.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from adapter_bert import fileio

# torch storage class name <-> numpy dtype (little-endian).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_ALIGNMENT = 64
_ARCHIVE = "archive"


class TorchFileError(ValueError):
  """A file that is not a state dict this module can read."""


# ---------------------------------------------------------------- reading


class _StorageType(object):
  def __init__(self, name):
    self.name = name


def _rebuild_tensor(storage, offset, size, stride, *unused):
  """torch._utils._rebuild_tensor_v2 as a numpy view of its storage."""
  itemsize = storage.dtype.itemsize
  if not size:
    return np.array(storage[offset])
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size),
      strides=tuple(s * itemsize for s in stride))
  return np.array(view)  # a copy, contiguous, independent of the archive


def _rebuild_parameter(data, *unused):
  return data


class _Unpickler(pickle.Unpickler):
  """Unpickles a state dict's data.pkl: only tensors, dicts and plain data."""

  def __init__(self, data, archive, prefix, path):
    super(_Unpickler, self).__init__(io.BytesIO(data))
    (self._archive, self._prefix, self._path) = (archive, prefix, path)
    self._storages = {}

  def find_class(self, module, name):
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise TorchFileError("%s: holds %s.%s, which is not a tensor of a state "
                         "dict this reader knows (float, int or bool "
                         "tensors)" % (self._path, module, name))

  def persistent_load(self, pid):
    if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
        or not isinstance(pid[1], _StorageType)):
      raise TorchFileError("%s: unknown storage reference %r" %
                           (self._path, pid[:2] if isinstance(pid, tuple)
                            else pid))
    (_, storage_type, key, _, numel) = pid
    if key not in self._storages:
      dtype = _STORAGE_DTYPES[storage_type.name]
      try:
        raw = self._archive.read(self._prefix + "data/" + str(key))
      except KeyError:
        raise TorchFileError("%s: storage %s is missing" % (self._path, key))
      if len(raw) != numel * dtype.itemsize:
        raise TorchFileError("%s: storage %s has %d bytes, expected %d" %
                             (self._path, key, len(raw),
                              numel * dtype.itemsize))
      self._storages[key] = np.frombuffer(raw, dtype=dtype)
    return self._storages[key]


def read_state_dict(path):
  """Reads a state dict saved by `torch.save` (zip format).

  Args:
    path: the file (local or any TF file system).

  Returns:
    collections.OrderedDict from name to numpy array, in the file's order.

  Raises:
    TorchFileError: not a zip-format state dict of tensors (the message names
      the file).
  """
  return read_state_dict_bytes(fileio.read_bytes(path), path)


def read_state_dict_bytes(data, path):
  """`read_state_dict` of a file's bytes; `path` names it in messages."""
  try:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
  except zipfile.BadZipFile:
    raise TorchFileError("%s: not a PyTorch zip file (saved by torch.save "
                         "with torch >= 1.6)" % path)
  pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
  if len(pickles) != 1:
    raise TorchFileError("%s: no single data.pkl in the archive" % path)
  prefix = pickles[0][:-len("data.pkl")]
  try:
    state = _Unpickler(archive.read(pickles[0]), archive, prefix,
                       path).load()
  except TorchFileError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # A damaged pickle fails in many ways; each becomes the same one line.
    raise TorchFileError("%s: damaged data.pkl (%s: %s)" %
                         (path, type(e).__name__, e))
  if not isinstance(state, dict) or not all(
      isinstance(k, str) and isinstance(v, np.ndarray)
      for (k, v) in state.items()):
    raise TorchFileError("%s: not a flat state dict of named tensors" % path)
  return collections.OrderedDict(state)


# ---------------------------------------------------------------- writing


def _pickle_int(value):
  if 0 <= value < 256:
    return b"K" + struct.pack("<B", value)           # BININT1
  if -2 ** 31 <= value < 2 ** 31:
    return b"J" + struct.pack("<i", value)           # BININT
  encoded = value.to_bytes((value.bit_length() + 8) // 8, "little",
                           signed=True)
  return b"\x8a" + struct.pack("<B", len(encoded)) + encoded  # LONG1


def _pickle_str(value):
  encoded = value.encode("utf-8")
  return b"X" + struct.pack("<I", len(encoded)) + encoded  # BINUNICODE


def _pickle_tuple(items):
  return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def _global(module, name):
  return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _storage_name(dtype):
  for (name, known) in _STORAGE_DTYPES.items():
    if known == dtype.newbyteorder("<"):
      return name
  raise TorchFileError("no torch storage holds dtype %s" % dtype)


def _data_pickle(names, arrays):
  """data.pkl for a dict of contiguous tensors, one storage each."""
  out = [b"\x80\x02", b"}", b"("]  # PROTO 2, EMPTY_DICT, MARK
  for (key, (name, array)) in enumerate(zip(names, arrays)):
    strides = []
    step = 1
    for dim in reversed(array.shape):
      strides.insert(0, step)
      step *= dim
    storage = _pickle_tuple([
        _pickle_str("storage"), _global("torch", _storage_name(array.dtype)),
        _pickle_str(str(key)), _pickle_str("cpu"), _pickle_int(array.size)])
    tensor = (_global("torch._utils", "_rebuild_tensor_v2") + _pickle_tuple([
        storage + b"Q",  # BINPERSID
        _pickle_int(0),
        _pickle_tuple([_pickle_int(d) for d in array.shape]),
        _pickle_tuple([_pickle_int(s) for s in strides]),
        b"\x89",  # NEWFALSE: requires_grad
        _global("collections", "OrderedDict") + b")R",  # backward hooks
    ]) + b"R")  # REDUCE
    out.append(_pickle_str(name) + tensor)
  out.append(b"u.")  # SETITEMS, STOP
  return b"".join(out)


def _aligned_entry(archive, name, payload):
  """Writes an uncompressed entry whose data starts on a 64-byte boundary,
  padding the local header's extra field as torch's writer does."""
  info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
  info.compress_type = zipfile.ZIP_STORED
  header_end = archive.fp.tell() + 30 + len(name.encode("utf-8"))
  padding = (-(header_end + 4)) % _ALIGNMENT
  # Extra field: id "FB" (torch's), length, zero bytes.
  info.extra = b"FB" + struct.pack("<H", padding) + b"\0" * padding
  archive.writestr(info, payload)


def state_dict_bytes(tensors):
  """The bytes of `torch.save(tensors)` for {name: numpy array}."""
  names = list(tensors)
  arrays = [np.ascontiguousarray(tensors[n]) for n in names]
  arrays = [a.astype(a.dtype.newbyteorder("<")) for a in arrays]
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
    _aligned_entry(archive, _ARCHIVE + "/data.pkl",
                   _data_pickle(names, arrays))
    _aligned_entry(archive, _ARCHIVE + "/byteorder", b"little")
    for (key, array) in enumerate(arrays):
      _aligned_entry(archive, "%s/data/%d" % (_ARCHIVE, key),
                     array.tobytes())
    _aligned_entry(archive, _ARCHIVE + "/version", b"3\n")
  return buffer.getvalue()


def write_state_dict(tensors, path):
  """Writes {name: numpy array} as `torch.save` would, atomically."""
  fileio.write_bytes(path, state_dict_bytes(tensors))
