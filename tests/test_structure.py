"""The walls between library and command lines: flags are read in main() only,
library modules define none, no command line imports another, and the top
level holds only the design card's files."""

import ast
import glob
import os
import subprocess

import pytest

import conftest
from conftest import REPO_ROOT
from conftest import run_cli
from adapter_bert import classifier
import run_classifier

# Files with a command line (flags read in `main()`, a `__main__` block).
COMMAND_LINES = ("run_classifier.py",
                 os.path.join("scripts", "convert_bundle.py"),
                 os.path.join("scripts", "convert_hf_checkpoint.py"),
                 os.path.join("scripts", "export_savedmodel.py"),
                 os.path.join("scripts", "plot_results.py"),
                 os.path.join("scripts", "predict_multitask.py"),
                 os.path.join("scripts", "prepare_movie_reviews.py"),
                 os.path.join("scripts", "sweep.py"),
                 os.path.join("scripts", "flags_doc.py"),
                 os.path.join("benchmarks", "bundle_size.py"),
                 os.path.join("benchmarks", "precision_gradients.py"),
                 os.path.join("benchmarks", "precision_training.py"),
                 os.path.join("benchmarks", "serving.py"),
                 os.path.join("benchmarks", "serving_ops.py"),
                 os.path.join("benchmarks", "throughput.py"))
# Flag definitions several command lines share: no `main`, and no library
# imports them.
SHARED_FLAGS = (os.path.join("scripts", "common_flags.py"),)
# The top-level modules of Google BERT's layout (plus adapters.py).
TOP_LEVEL_LIBRARIES = ("adapters.py", "modeling.py", "optimization.py",
                       "tokenization.py")
# Every other top-level file the design card allows.
TOP_LEVEL_FILES = ("LICENSE", "Makefile", "README.md", "pytest.ini",
                   "requirements.txt", ".gitignore")
TOP_LEVEL_FOLDERS = (".ci", "adapter_bert", "benchmarks", "docs", "results",
                     "scripts", "tests")


def package_files():
  """Every module of the adapter_bert package (all of it is library)."""
  files = glob.glob(os.path.join(REPO_ROOT, "adapter_bert", "**", "*.py"),
                    recursive=True)
  return tuple(sorted(os.path.relpath(f, REPO_ROOT) for f in files))


# What several benchmarks share (no `main`).
BENCHMARK_HELPERS = (os.path.join("benchmarks", "precision_parts.py"),)

# Library modules: they take arguments and never touch flags.
LIBRARIES = TOP_LEVEL_LIBRARIES + package_files() + BENCHMARK_HELPERS


def python_files():
  files = []
  for folder in ("", "scripts", "benchmarks"):
    files += glob.glob(os.path.join(REPO_ROOT, folder, "*.py"))
  files += glob.glob(os.path.join(REPO_ROOT, "adapter_bert", "**", "*.py"),
                     recursive=True)
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
  assert sorted(COMMAND_LINES + SHARED_FLAGS + LIBRARIES) == python_files()


def test_the_top_level_holds_only_the_design_cards_files():
  allowed = set(("run_classifier.py",) + TOP_LEVEL_LIBRARIES +
                TOP_LEVEL_FILES +
                TOP_LEVEL_FOLDERS)
  try:
    listing = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, check=True,
                             capture_output=True, text=True).stdout
  except (OSError, subprocess.CalledProcessError):
    pytest.skip("not a git checkout")
  tracked = {path.split("/")[0] for path in listing.splitlines()}
  assert sorted(tracked - allowed) == []


@pytest.mark.parametrize("path", COMMAND_LINES + SHARED_FLAGS + LIBRARIES)
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


def imported_modules(tree):
  """Every module `tree` imports, by its full name: `from adapter_bert
  import glue` counts as adapter_bert.glue (and as adapter_bert)."""
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update("%s.%s" % (node.module, a.name) for a in node.names)
  return names


def is_command_line(tree):
  """A file with a function `main` and an `if __name__ == "__main__":`."""
  has_main = any(isinstance(node, ast.FunctionDef) and node.name == "main"
                 for node in tree.body)
  has_block = any(
      isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and
      isinstance(node.test.left, ast.Name) and
      node.test.left.id == "__name__" for node in tree.body)
  return has_main and has_block


def command_line_modules(paths):
  """The names a command line's file can be imported by: `sweep` (its
  folder on sys.path, as when it runs) and `scripts.sweep`."""
  names = set()
  for path in paths:
    dotted = os.path.splitext(path)[0].replace(os.sep, ".")
    names.update({dotted, dotted.split(".")[-1]})
  return names


def imported_command_lines(tree, command_lines):
  return sorted(imported_modules(tree) & command_line_modules(command_lines))


def test_the_command_lines_are_the_files_with_a_main():
  found = [p for p in python_files() if is_command_line(parse(p))]
  assert sorted(found) == sorted(COMMAND_LINES)


@pytest.mark.parametrize("path", COMMAND_LINES)
def test_no_command_line_imports_another_command_line(path):
  others = [p for p in COMMAND_LINES if p != path]
  assert imported_command_lines(parse(path), others) == [], path


@pytest.mark.parametrize("path", SHARED_FLAGS + LIBRARIES)
def test_nothing_else_imports_a_command_line(path):
  assert imported_command_lines(parse(path), COMMAND_LINES) == [], path


def test_the_check_sees_a_command_line_imported():
  tree = ast.parse("import os\nimport sweep\n"
                   "from scripts import predict_multitask\n"
                   "from adapter_bert import sweeps\n"
                   "def main(argv):\n  pass\n"
                   "if __name__ == '__main__':\n  main([])\n")
  assert is_command_line(tree)
  assert imported_command_lines(tree, COMMAND_LINES) == [
      "scripts.predict_multitask", "sweep"]
  assert not is_command_line(ast.parse("def main(argv):\n  pass\n"))


@pytest.mark.slow
def test_predict_multitask_help_lists_its_own_flags():
  result = run_cli(os.path.join("scripts", "predict_multitask.py"), "--help")
  help_text = result.stdout
  # absl lists a script's own flags under its file name.
  assert "predict_multitask.py:\n" in help_text, result.stderr[-2000:]
  for flag in ("adapter_bundles", "data_dirs", "bert_config_file",
               "vocab_file", "init_checkpoint", "output_dir", "split",
               "predict_batch_size"):
    assert "--%s" % flag in help_text, flag
  assert "--do_train" not in help_text


def test_every_setting_is_a_flag_with_the_same_default():
  """A job setting's default is its flag's; a method option's setting is
  None (not given: the method's own default applies), and its flag shows the
  methods' shared default, or None where they differ."""
  from absl import flags
  from adapter_bert import methods
  defaults = classifier.Settings()
  options = methods.all_options()
  for name in classifier.Settings.field_names():
    assert name in flags.FLAGS, name
    if name in options:
      assert getattr(defaults, name) is None, name
      shared = set(map(repr, methods.option_defaults(name).values()))
      assert flags.FLAGS[name].default == (
          options[name].default if len(shared) == 1 else None), name
    else:
      assert flags.FLAGS[name].default == getattr(defaults, name), name
  assert set(options) <= set(classifier.Settings.field_names())


def test_run_classifier_exports_no_library_names():
  """Google BERT's importers call its run_classifier's functions with BERT's
  signatures (create_model(..., use_one_hot_embeddings), model_fn_builder,
  the DataProcessors), which this project does not have: the command line
  pretends to offer none of them."""
  assert not hasattr(run_classifier, "__all__")
  for name in ("create_model", "model_fn_builder", "convert_single_example",
               "file_based_convert_examples_to_features",
               "file_based_input_fn_builder", "InputFeatures",
               "PaddingInputExample", "DataProcessor", "input_fn_builder"):
    assert not hasattr(run_classifier, name), name


# ---------------------------------------------------------------- size

# A library function's limits: lines (its whole body, nested functions
# included) and parameters (args and keyword-only ones, *args and **kwargs
# one each; self and cls not counted).
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 8
def parameter_count(function):
  args = function.args
  names = [a.arg for a in args.posonlyargs + args.args]
  count = len(names) + len(args.kwonlyargs)
  count += bool(args.vararg) + bool(args.kwarg)
  return count - (1 if names and names[0] in ("self", "cls") else 0)


def oversized_functions(tree):
  """[(line, name, lines, parameters)] of the functions over the limits."""
  found = []
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      lines = node.end_lineno - node.lineno + 1
      count = parameter_count(node)
      if lines > MAX_FUNCTION_LINES or count > MAX_PARAMETERS:
        found.append((node.lineno, node.name, lines, count))
  return found


@pytest.mark.parametrize("path", LIBRARIES)
def test_functions_are_short(path):
  assert oversized_functions(parse(path)) == [], path


def test_the_check_sees_a_long_function_and_a_long_signature():
  long_body = "def long(x):\n" + "  x += 1\n" * MAX_FUNCTION_LINES
  wide = "def wide(self, a, b, c, d, e, f, g, *args, **kwargs):\n  pass\n"
  fine = "def fine(self, a, b, c, d, e, f, g, h):\n  pass\n"
  found = oversized_functions(ast.parse(long_body + wide + fine))
  assert [(name, lines, count) for (_, name, lines, count) in found] == [
      ("long", MAX_FUNCTION_LINES + 1, 1), ("wide", 2, 9)]


def test_the_long_files_started_first_are_test_files():
  # A renamed file would silently fall back to the default order.
  tests_dir = os.path.join(REPO_ROOT, "tests")
  missing = [name for name in conftest.LONG_FILES
             if not os.path.isfile(os.path.join(tests_dir, name))]
  assert not missing, missing
