"""The walls between library and command lines: flags are read in main() only,
library modules define none, and each command line lists its own flags."""

import ast
import glob
import os

import pytest

from conftest import REPO_ROOT
from conftest import run_cli
import classifier
import run_classifier

# Files with a command line (flags read in `main()`).
COMMAND_LINES = ("run_classifier.py", "predict_multitask.py", "sweep.py",
                 "export_savedmodel.py",
                 "plot_results.py",
                 "convert_hf_checkpoint.py", "prepare_movie_reviews.py",
                 os.path.join("benchmarks", "bundle_size.py"),
                 os.path.join("benchmarks", "serving.py"),
                 os.path.join("benchmarks", "throughput.py"))
# Library modules: they take arguments and never touch flags.
LIBRARIES = ("adapters.py", "bundles.py", "classifier.py", "console.py",
             "errors.py",
             "fileio.py", "glue.py", "metrics.py", "modeling.py",
             "optimization.py", "run_folder.py", "tokenization.py",
             "tuning.py")


def python_files():
  files = glob.glob(os.path.join(REPO_ROOT, "*.py")) + glob.glob(
      os.path.join(REPO_ROOT, "benchmarks", "*.py"))
  return sorted(os.path.relpath(f, REPO_ROOT) for f in files)


def parse(relative_path):
  with open(os.path.join(REPO_ROOT, relative_path), encoding="utf-8") as f:
    return ast.parse(f.read(), relative_path)


def flags_uses_outside_main(tree):
  """Lines that read or write FLAGS outside a function called main.

  The module-level `FLAGS = flags.FLAGS` is allowed: it only names the object.
  """
  inside_main = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.FunctionDef) and node.name == "main":
      inside_main.update(id(n) for n in ast.walk(node))
  alias = set()
  for node in tree.body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1 and
        isinstance(node.targets[0], ast.Name) and
        node.targets[0].id == "FLAGS"):
      alias.update(id(n) for n in ast.walk(node))
  lines = []
  for node in ast.walk(tree):
    is_flags = ((isinstance(node, ast.Name) and node.id == "FLAGS") or
                (isinstance(node, ast.Attribute) and node.attr == "FLAGS"))
    if is_flags and id(node) not in inside_main and id(node) not in alias:
      lines.append(node.lineno)
  return lines


def test_the_file_lists_are_complete():
  assert sorted(COMMAND_LINES + LIBRARIES) == python_files()


@pytest.mark.parametrize("path", COMMAND_LINES + LIBRARIES)
def test_flags_are_read_only_in_main(path):
  assert flags_uses_outside_main(parse(path)) == [], path


def test_the_check_sees_a_flag_read_outside_main():
  tree = ast.parse("FLAGS = flags.FLAGS\n"
                   "def helper():\n  return FLAGS.output_dir\n"
                   "def main(argv):\n  return FLAGS.task_name\n")
  assert flags_uses_outside_main(tree) == [3]


@pytest.mark.parametrize("path", LIBRARIES)
def test_libraries_do_not_import_flags(path):
  for node in ast.walk(parse(path)):
    if isinstance(node, ast.ImportFrom):
      assert not (node.module == "absl" and
                  any(a.name == "flags" for a in node.names)), path
    if isinstance(node, ast.Import):
      assert not any(a.name == "absl.flags" for a in node.names), path


def imported_modules(path):
  names = set()
  for node in ast.walk(parse(path)):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
  return names


@pytest.mark.parametrize("path", [p for p in COMMAND_LINES + LIBRARIES
                                  if p != "run_classifier.py"])
def test_nothing_imports_the_run_classifier_command_line(path):
  assert "run_classifier" not in imported_modules(path), path


def test_predict_multitask_help_lists_its_own_flags():
  result = run_cli("predict_multitask.py", "--help")
  help_text = result.stdout
  # absl lists a script's own flags under its file name.
  assert "predict_multitask.py:\n" in help_text, result.stderr[-2000:]
  for flag in ("adapter_bundles", "data_dirs", "bert_config_file",
               "vocab_file", "init_checkpoint", "output_dir", "split",
               "predict_batch_size"):
    assert "--%s" % flag in help_text, flag
  assert "--do_train" not in help_text


def test_every_setting_is_a_flag_with_the_same_default():
  from absl import flags
  defaults = classifier.Settings()
  for name in classifier.Settings.field_names():
    assert name in flags.FLAGS, name
    assert flags.FLAGS[name].default == getattr(defaults, name), name
  # ... and the old names stay importable from run_classifier.
  for name in run_classifier.__all__:
    assert hasattr(run_classifier, name), name
