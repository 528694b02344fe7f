# coding=utf-8
"""glue.py on the real GLUE files: example counts equal MANIFEST.md's.

One parametrized test per row of MANIFEST.md's Files table (so a file added to
the manifest is picked up). Each file is mapped to the task split that reads
it (diagnostic/diagnostic.tsv is MNLI's AX split, read from <glue>/MNLI even
though that folder is absent); files the manifest lists but the folder lacks
are skipped.
"""

import collections
import os
import re

import pytest

from adapter_bert import glue
from conftest import GLUE_DIR

pytestmark = pytest.mark.real

# Label counts the manifest's notes quote (and the published GLUE statistics).
LABEL_COUNTS = {
    "CoLA/train.tsv": {"1": 6023, "0": 2528},
    "SST-2/train.tsv": {"1": 37569, "0": 29780},
    "MRPC/train.tsv": {"1": 2474, "0": 1194},
    "RTE/train.tsv": {"entailment": 1249, "not_entailment": 1241},
    "WNLI/train.tsv": {"0": 323, "1": 312},
}


def parse_manifest_files(manifest_path):
  """The rows of the `## Files` table: [{"file": ..., "rows": int, ...}]."""
  with open(manifest_path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  start = lines.index("## Files")
  table = []
  header = None
  for line in lines[start + 1:]:
    if not line.startswith("|"):
      if header is not None:
        break  # the table ended
      continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if header is None:
      header = cells
    elif set(cells[0]) <= set("-: "):
      continue  # the |---|---:| line
    else:
      row = dict(zip(header, cells))
      row["file"] = row["file"].strip("`")
      table.append(row)
  return table


def _manifest_rows():
  path = os.path.join(GLUE_DIR, "MANIFEST.md")
  if not os.path.exists(path):
    # Collected anyway; the glue_dir fixture skips it.
    return [pytest.param(None, id="no-manifest")]
  return [pytest.param(row, id=row["file"])
          for row in parse_manifest_files(path)]


def split_for_file(rel_path):
  """(task, split, data_dir relative to glue) of the split reading a file."""
  rel_path = os.path.normpath(rel_path)
  for task in glue.TASKS.values():
    if task.name == "XNLI":
      continue  # not part of glue_data
    for split in [task.train] + list(task.dev) + list(task.test):
      if os.path.normpath(os.path.join(task.name, split.file_name)) == rel_path:
        return task, split, task.name
  return None


def test_manifest_table_is_parsed(glue_dir):
  rows = parse_manifest_files(os.path.join(glue_dir, "MANIFEST.md"))
  files = [r["file"] for r in rows]
  assert "CoLA/train.tsv" in files and "diagnostic/diagnostic.tsv" in files
  assert len(files) == len(set(files))
  # The extra-files table (MRPC raw files) is not part of it.
  assert "MRPC/msr_paraphrase_train.txt" not in files
  for row in rows:
    assert re.match(r"^\d+$", row["rows"]), row


@pytest.mark.parametrize("row", _manifest_rows())
def test_real_file_reads_manifest_row_count(glue_dir, row):
  rel_path = row["file"]
  path = os.path.join(glue_dir, rel_path)
  if not os.path.exists(path):
    pytest.skip("%s is in the manifest but not in %s" % (rel_path, glue_dir))
  found = split_for_file(rel_path)
  assert found is not None, "%s: no task split reads this file" % rel_path
  task, split, data_dir = found

  examples = task.read_examples(os.path.join(glue_dir, data_dir), split)

  assert len(examples) == int(row["rows"])
  assert int(row["rows"]) == int(row["official rows"])
  for e in examples:
    assert e.text_a, (rel_path, e.guid)
    if split.text_b_column is not None:
      assert e.text_b is not None
  if split.index_column is not None:  # a test file
    indices = [e.index for e in examples]
    assert all(index.strip() for index in indices), rel_path
    assert len(set(indices)) == len(indices), rel_path
  elif task.is_regression:
    scores = [e.label for e in examples]
    assert all(type(s) is float and 0.0 <= s <= 5.0 for s in scores)
  else:
    counts = collections.Counter(e.label for e in examples)
    assert set(counts) == set(task.labels), (rel_path, counts)
    if rel_path in LABEL_COUNTS:
      assert dict(counts) == LABEL_COUNTS[rel_path]


def test_ax_path_goes_through_the_absent_mnli_folder(glue_dir):
  mnli = glue.get_task("MNLI")
  ax = [s for s in mnli.test if s.name == "AX"][0]
  data_dir = os.path.join(glue_dir, "MNLI")
  path = mnli.path(data_dir, ax)
  assert os.path.normpath(path) == os.path.normpath(
      os.path.join(glue_dir, "diagnostic", "diagnostic.tsv"))
  # Normalised: the path works for any reader even where MNLI/ is missing.
  assert ".." not in path.split(os.sep) and os.path.exists(path)
  examples = mnli.read_examples(data_dir, ax)
  assert [e.index for e in examples[:3]] == ["0", "1", "2"]
  assert examples[0].text_a == "The cat sat on the mat."
  assert examples[0].text_b == "The cat did not sit on the mat."


def test_real_text_with_unbalanced_quotes_is_kept(glue_dir):
  # MANIFEST: STS-B dev has stray `"` characters; a CSV reader would merge
  # rows. The count test above catches merging; here the quote is in a text.
  task = glue.get_task("STS-B")
  examples = task.get_dev_examples(os.path.join(glue_dir, "STS-B"))
  texts = [e.text_a + e.text_b for e in examples]
  assert any(t.count('"') % 2 for t in texts)


def test_real_mrpc_bom_is_not_in_any_text(glue_dir):
  task = glue.get_task("MRPC")
  for split in (task.train, task.dev[0]):
    for e in task.read_examples(os.path.join(glue_dir, "MRPC"), split):
      assert u"\ufeff" not in e.text_a + e.text_b + e.label


def test_real_rte_and_wnli_folders_swapped_are_refused(glue_dir):
  for (task_name, other) in (("RTE", "WNLI"), ("WNLI", "RTE")):
    with pytest.raises(glue.InputError, match="does not hold %s's data" %
                       task_name):
      glue.get_task(task_name).check_labelled_data(
          os.path.join(glue_dir, other))
    glue.get_task(task_name).check_labelled_data(
        os.path.join(glue_dir, task_name))
