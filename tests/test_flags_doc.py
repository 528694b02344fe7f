"""docs/flags.md is generated from the flag definitions: stale means fail."""

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


def flags_doc_module():
  sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))
  import flags_doc  # pylint: disable=g-import-not-at-top
  return flags_doc


@pytest.mark.slow
def test_flags_doc_is_up_to_date():
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, "scripts", "flags_doc.py"),
       "--check"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
  assert result.returncode == 0, result.stderr[-2000:]


def test_one_row_per_flag_and_any_change_is_stale(tmp_path, monkeypatch):
  flags_doc = flags_doc_module()
  monkeypatch.setattr(flags_doc, "own_flags", lambda command_line: [
      ("padding", "string enum", "auto", "<static|batch>: How batches are "
       "padded.")])
  page = flags_doc.render(["run_classifier.py"])
  assert ("| `--padding` | string enum | `auto` | &lt;static\\|batch&gt;: How "
          "batches are padded. |") in page
  path = str(tmp_path / "flags.md")
  assert flags_doc.is_stale(path, page)  # missing
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  assert not flags_doc.is_stale(path, page)
  assert flags_doc.is_stale(path, page.replace("auto", "bucket"))
