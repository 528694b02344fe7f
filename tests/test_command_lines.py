"""One check per command line, in a process of its own: bad input is one
`<program>: error:` line and a non-zero exit, with no traceback and none of
TensorFlow's start-up noise. Every other one-line-error check runs in-process
(the library raises `errors.InputError`)."""

import os

import pytest

from conftest import assert_one_line_error
from conftest import run_cli

# TensorFlow's and CUDA's start-up lines that `console.quiet_tensorflow_startup`
# hides.
NOISE = ("cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc", "cudart_stub.cc",
         "cpu_feature_guard.cc", "TF-TRT Warning", "oneDNN custom operations")

# program: (arguments, fragments of its one error line)
BAD_INPUTS = {
    "run_classifier.py": ((), ("--bert_config_file is required",)),
    "scripts/convert_bundle.py": (
        ("--to=peft", "--bundle=/nonexistent", "--output_dir=/tmp/unused_out",
         "--base_model=x"), ("/nonexistent: no such folder",)),
    "scripts/convert_hf_checkpoint.py": (
        ("--hf_dir=/nonexistent", "--output_dir=/tmp/unused"),
        ("--hf_dir /nonexistent is not a folder",)),
    "scripts/export_savedmodel.py": ((), ("--bert_config_file is required",)),
    "scripts/plot_results.py": (("--results=/nonexistent.csv",),
                                ("/nonexistent.csv",)),
    "scripts/predict_multitask.py": ((), ("--bert_config_file is required",)),
    "scripts/prepare_movie_reviews.py": (
        ("--source=/nonexistent.tar.gz", "--output_dir=/tmp/unused"),
        ("/nonexistent.tar.gz: no such file",)),
    "scripts/sweep.py": (("--methods=adaptors", "--dry_run"),
                         ("--methods", "adaptors", "unknown")),
}


def test_every_command_line_has_its_check():
  from test_structure import COMMAND_LINES  # pylint: disable=g-import-not-at-top
  programs = {p for p in COMMAND_LINES if not p.startswith("benchmarks")}
  programs.discard(os.path.join("scripts", "flags_doc.py"))  # writes docs only
  assert programs == set(BAD_INPUTS)


@pytest.mark.parametrize("program", sorted(BAD_INPUTS))
def test_bad_input_is_one_quiet_line(program):
  (args, fragments) = BAD_INPUTS[program]
  result = run_cli(program, *args)
  assert_one_line_error(result, *fragments,
                        program=os.path.basename(program))
  noise = [line for line in result.stderr.splitlines()
           if any(n in line for n in NOISE)]
  assert noise == []


def test_sweep_help_is_quiet():
  """The sweep's --help loads the method registry (and so TensorFlow): its
  start-up noise stays hidden there too."""
  result = run_cli("scripts/sweep.py", "--help")
  assert "--methods" in result.stdout, result.stderr[-2000:]  # absl exits 1
  noise = [line for line in (result.stdout + result.stderr).splitlines()
           if any(n in line for n in NOISE)]
  assert noise == []
