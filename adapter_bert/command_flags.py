# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The flags a command line defines, asked of the command line itself.

A command line is run with `--helpxml` (absl's machine-readable help) in a
process of its own: nothing here imports it, so its flags never collide with
the caller's (sweep.py and run_classifier.py define flags of the same names),
and a flag a tuning method declares appears as run_classifier.py registers it.
"""

import collections
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

Flag = collections.namedtuple("Flag", ["name", "type", "default", "meaning"])


def own_flags(script, cwd=None):
  """[Flag] of the flags `script` (a path) defines itself (absl's key flags:
  its own and those of its shared definitions), sorted by name.

  Raises:
    RuntimeError: the script printed no help (it failed to start).
  """
  result = subprocess.run(
      [sys.executable, script, "--helpxml"], capture_output=True, text=True,
      cwd=cwd or os.path.dirname(os.path.abspath(script)), timeout=300,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  start = result.stdout.find("<?xml")
  if start < 0:
    raise RuntimeError("%s --helpxml printed no XML: %s" % (
        script, result.stderr[-500:]))
  root = ElementTree.fromstring(result.stdout[start:])
  return sorted(
      Flag(flag.findtext("name"), flag.findtext("type"),
           flag.findtext("default") or "", flag.findtext("meaning"))
      for flag in root.iter("flag") if flag.findtext("key") == "yes")
