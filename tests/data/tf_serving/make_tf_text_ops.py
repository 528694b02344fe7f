# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Writes tf_text_ops.tsv: every op the installed tensorflow-text registers,
and whether tensorflow-text 2.12.1 (what stock tensorflow_model_server 2.14
to 2.19 links, tensorflow/serving's workspace.bzl) has it.

An op is registered under its name as a string literal (REGISTER_OP("Name")),
so an op of 2.12.1's wheel appears as that null-terminated string in one of
its shared libraries; the wheel is fetched with `pip download` (no install:
2.12.1's libraries do not load into TensorFlow 2.15).

  .venv/bin/python tests/data/tf_serving/make_tf_text_ops.py
"""

import glob
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SERVING_TF_TEXT = "2.12.1"


def registered_ops():
  """Names of every op registered in this process."""
  from tensorflow.core.framework import op_def_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow.python.client import pywrap_tf_session  # pylint: disable=g-import-not-at-top
  buffer = pywrap_tf_session.TF_GetAllOpList()
  ops = op_def_pb2.OpList()
  ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(buffer))
  return {op.name for op in ops.op}


def library_strings(wheel):
  """Every null-terminated string in the wheel's shared libraries."""
  found = set()
  with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
      if name.endswith(".so"):
        found.update(s.decode("latin-1") for s in
                     archive.read(name).split(b"\0") if s)
  return found


def main():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,unused-import
  core = registered_ops()
  import tensorflow_text  # pylint: disable=g-import-not-at-top
  text_ops = sorted(registered_ops() - core)
  with tempfile.TemporaryDirectory() as folder:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                    "--quiet", "-d", folder,
                    "tensorflow-text==" + SERVING_TF_TEXT], check=True)
    (wheel,) = glob.glob(os.path.join(folder, "*.whl"))
    strings = library_strings(wheel)
  rows = ["# op\tin tensorflow-text %s (installed: %s)" % (
      SERVING_TF_TEXT, tensorflow_text.__version__)]
  rows += ["%s\t%s" % (op, "yes" if op in strings else "no")
           for op in text_ops]
  path = os.path.join(HERE, "tf_text_ops.tsv")
  with open(path + ".tmp", "w") as f:
    f.write("\n".join(rows) + "\n")
  os.replace(path + ".tmp", path)
  print("wrote %s: %d ops, %d missing from %s" % (
      path, len(text_ops), sum(op not in strings for op in text_ops),
      SERVING_TF_TEXT))


if __name__ == "__main__":
  main()
