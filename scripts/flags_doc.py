# coding=utf-8
# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
"""Writes docs/flags.md from the flag definitions of every command line.

  python scripts/flags_doc.py            # rewrites docs/flags.md
  python scripts/flags_doc.py --check    # exit 1 if docs/flags.md is stale

Each command line is asked for its own flags (`--helpxml`, absl's machine-
readable help) in a process of its own, so nothing here imports a command
line, and a flag a tuning method declares appears as run_classifier.py
registers it. tests/test_flags_doc.py runs the check.
"""

from concurrent import futures
import os
import sys

# `python scripts/<name>.py` puts scripts/ on sys.path, not the repository
# root that holds adapter_bert/: add it.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

# Before TensorFlow loads (adapter_bert.fileio imports it): no start-up noise.
from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from adapter_bert import command_flags
from adapter_bert import fileio

FLAGS = flags.FLAGS
PROGRAM = "flags_doc.py"
DOC = os.path.join(REPO_ROOT, "docs", "flags.md")

# The command lines, in the order the page lists them.
COMMAND_LINES = ("run_classifier.py", "scripts/predict_multitask.py",
                 "scripts/export_savedmodel.py", "scripts/sweep.py",
                 "scripts/plot_results.py", "scripts/convert_bundle.py",
                 "scripts/convert_hf_checkpoint.py",
                 "scripts/prepare_movie_reviews.py")


def define_flags():
  flags.DEFINE_bool("check", False, "Do not write: exit 1 if %s is stale." %
                    os.path.relpath(DOC, REPO_ROOT))


def own_flags(command_line):
  """[(name, type, default, meaning)] of the flags `command_line` defines
  itself (absl's key flags: its own and those of its shared definitions)."""
  return command_flags.own_flags(os.path.join(REPO_ROOT, command_line),
                                 cwd=REPO_ROOT)


def portable(text):
  """Defaults that are paths of this checkout, written as the checkout's
  own (`REPO/...`, `REPO/../...`): the page is the same in every clone."""
  parent = os.path.dirname(REPO_ROOT)
  return text.replace(REPO_ROOT, "REPO").replace(parent + "/", "REPO/../")


def cell(text):
  text = portable(text)
  return (" ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")
          .replace(">", "&gt;"))


def render(command_lines=COMMAND_LINES):
  """The page: one table per command line (their --helpxml runs side by
  side: each is a TensorFlow start-up)."""
  with futures.ThreadPoolExecutor(max_workers=4) as pool:
    tables = list(pool.map(own_flags, command_lines))
  return render_tables(command_lines, tables)


def render_tables(command_lines, tables):
  lines = ["# Flags", "",
           "Every flag of every command line, generated from their "
           "definitions by `python scripts/flags_doc.py` (a test fails when "
           "this page is stale). A tuning method's flags are declared by the "
           "method (adapter_bert/methods/) and registered by "
           "run_classifier.py.", ""]
  for (command_line, table) in zip(command_lines, tables):
    lines += ["## `%s`" % command_line, "",
              "| flag | type | default | meaning |", "|---|---|---|---|"]
    for (name, kind, default, meaning) in table:
      lines.append("| `--%s` | %s | %s | %s |" % (
          name, cell(kind), ("`%s`" % cell(default)) if default else "",
          cell(meaning)))
    lines.append("")
  return "\n".join(lines)


def is_stale(path, text):
  """Whether the page at `path` differs from `text` (or is missing)."""
  if not os.path.exists(path):
    return True
  with open(path, encoding="utf-8") as f:
    return f.read() != text


def main(argv):
  del argv  # Unused.
  text = render()
  if FLAGS.check:
    if is_stale(DOC, text):
      sys.stderr.write("%s: error: %s is stale; run python "
                       "scripts/flags_doc.py\n" % (PROGRAM, DOC))
      sys.exit(1)
    return
  fileio.write_text(DOC, text)
  print("wrote %s" % DOC)


if __name__ == "__main__":
  define_flags()
  app.run(main)
