"""The documentation's own rules: a short README that links every page, links
that resolve, and reference text with no story of how the work went."""

import glob
import os
import re

import pytest

from conftest import REPO_ROOT

README = os.path.join(REPO_ROOT, "README.md")
PAGES = sorted(glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
DOCUMENTS = ([README] + PAGES +
             [os.path.join(REPO_ROOT, "benchmarks", "README.md"),
              os.path.join(REPO_ROOT, "results", "README.md")])

# Phrases of a lab notebook, not of reference documentation.
STORY = [r"\bearlier runs?\b", r"\bthat (evening|morning|night|afternoon)\b",
         r"\bissue #?\d+\b", r"\(issue", r"\bthis session\b",
         r"\blast session\b", r"\bsession \d+\b", r"\bfirst default\b"]


def read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


def links(text):
  """Relative link targets of a Markdown text (no URLs, no anchors only),
  outside fenced code blocks, where `a[i](x)` is code, not a link."""
  prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
  targets = re.findall(r"\]\(([^)\s]+)\)", prose)
  return [t for t in targets if not re.match(r"^[a-z]+:", t) and
          not t.startswith("#")]


def test_readme_is_at_most_12_kb():
  assert os.path.getsize(README) <= 12 * 1024


def test_readme_links_every_docs_page():
  linked = {os.path.normpath(os.path.join(REPO_ROOT, t.split("#")[0]))
            for t in links(read(README))}
  assert [p for p in PAGES if p not in linked] == []


@pytest.mark.parametrize("path", DOCUMENTS,
                         ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_relative_links_resolve(path):
  folder = os.path.dirname(path)
  missing = [t for t in links(read(path))
             if not os.path.exists(os.path.join(folder, t.split("#")[0]))]
  assert missing == []


@pytest.mark.parametrize("path", DOCUMENTS,
                         ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_no_story_of_the_work(path):
  text = read(path)
  found = [m.group(0) for pattern in STORY
           for m in re.finditer(pattern, text, re.IGNORECASE)]
  assert found == []


def test_the_story_check_sees_a_story():
  text = "Earlier runs gave 0.82 (issue 11), measured that evening."
  assert len([p for p in STORY if re.search(p, text, re.IGNORECASE)]) == 4


# The results tables sweep.py summarizes from a committed CSV (the .md beside
# it), and the command each names as its maker.
SUMMARIES = sorted(p for p in glob.glob(os.path.join(REPO_ROOT, "results",
                                                      "*.md"))
                   if read(p).startswith("# Sweep summary\n"))


@pytest.mark.parametrize("path", SUMMARIES,
                         ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_a_committed_summary_is_what_its_csv_gives(path, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  text = read(path)
  made_by = re.search(r"Made by:\n\n```shell\n(.+)\n```", text).group(1)
  name = os.path.basename(path)[:-len(".md")]
  shutil.copy(path[:-len(".md")] + ".csv", tmp_path / (name + ".csv"))
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, "scripts", "sweep.py"),
       "--results=%s" % (tmp_path / (name + ".csv")), "--summarize_only",
       "--made_by=" + made_by], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert read(str(tmp_path / (name + ".md"))) == text


def test_the_readme_results_are_rows_of_a_committed_summary():
  section = read(README).split("\n## Results")[1].split("\n## ")[0]
  rows = [l for l in section.splitlines() if l.startswith("| ")]
  assert len(rows) > 3  # a header, its rule and methods
  assert any(all(row in read(p).splitlines() for row in rows)
             for p in SUMMARIES), "the README's results table is in no summary"
