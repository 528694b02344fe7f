"""What a person sees: quiet start-up unless --verbose, progress lines with
an ETA, conversion progress, and TensorBoard scalars in --output_dir."""

import logging
import re

import pytest

from conftest import train_tiny
from conftest import scalar_events
from conftest import write_sst2_task
from adapter_bert import console
from adapter_bert import glue
from adapter_bert.classifier import features
import tokenization

# `08:12:03 step 4/16 (25%): loss = 0.6931, 2.41 steps/s, 19.3 examples/s, ETA 5s`
PROGRESS_LINE = re.compile(
    r"^\d\d:\d\d:\d\d step (\d+)/16 \((\d+)%\): loss = [\d.]+, [\d.]+ "
    r"steps/s, [\d.]+ examples/s, ETA \d+s$", re.MULTILINE)
# What TensorFlow prints by itself: C++ start-up logs, Python deprecation
# warnings, the Estimator's own INFO lines.
TENSORFLOW_NOISE = ("cuda", "oneDNN", "deprecat", "WARNING:tensorflow",
                    "Calling model_fn", "Graph was finalized")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert):
  root = tmp_path_factory.mktemp("console")
  data_dir = write_sst2_task(str(root / "data"))
  found = {}
  for verbose in (False, True):
    found[verbose] = train_tiny(
        tiny_bert, data_dir, str(root / ("verbose" if verbose else "quiet")),
        log_every_n_steps=4, num_train_epochs=2.0, verbose=verbose)
  return found


@pytest.mark.slow
def test_quiet_by_default_with_a_progress_line_and_eta(runs):
  log = runs[False]["log"]
  for noise in TENSORFLOW_NOISE:
    assert noise not in log, noise
  steps = logged_steps(log)
  assert len(steps) == 3 and steps[-1] <= 16, log[-2000:]
  assert [b - a for (a, b) in zip(steps, steps[1:])] == [4, 4]
  percents = [int(m.group(2)) for m in PROGRESS_LINE.finditer(log)]
  assert percents == [round(100 * s / 16) for s in steps]
  assert "eval_accuracy = " in log


def logged_steps(log):
  return [int(m.group(1)) for m in PROGRESS_LINE.finditer(log)]


@pytest.mark.slow
def test_verbose_shows_what_tensorflow_prints(runs):
  log = runs[True]["log"]
  assert "Calling model_fn" in log
  assert "*** Example train-0 ***" in log  # Google BERT's first-rows dump
  assert PROGRESS_LINE.search(log) is None  # absl's full format instead
  assert re.search(r"hooks.py:\d+\] step \d+/16 \(\d+%\): loss", log)


@pytest.mark.slow
def test_tensorboard_scalars_are_in_the_output_dir(runs):
  scalars = scalar_events(runs[False]["output_dir"])
  steps = logged_steps(runs[False]["log"])
  for tag in ("train/loss", "train/learning_rate",
              "train/examples_per_second"):
    assert [step for (step, _) in scalars[tag]] == steps, tag
  # The schedule after its 1 warmup step: linear decay from 1e-2 to 0 at
  # step 16 (read in the step's own run: the step's or the next one's).
  for (step, rate) in scalars["train/learning_rate"]:
    assert min(abs(rate - 1e-2 * (1 - s / 16)) for s in (step, step + 1)) < 1e-7
  assert all(0 < v < 5 for (_, v) in scalars["train/loss"])


def test_large_file_conversion_logs_its_progress(tmp_path, monkeypatch,
                                                 caplog, tiny_bert):
  monkeypatch.setattr(features, "CONVERSION_PROGRESS_ROWS", 20)
  examples = [glue.InputExample(str(i), "the movie was good .", None, "1")
              for i in range(64)]
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"])
  with caplog.at_level(logging.INFO):
    features.file_based_convert_examples_to_features(
        examples, ["0", "1"], 16, tokenizer, str(tmp_path / "f.tf_record"))
  lines = [r.getMessage() for r in caplog.records
           if r.getMessage().startswith("Converting")]
  assert [l.split(": ", 1)[1].split(",")[0] for l in lines] == [
      "64 rows", "20/64 (31%)", "40/64 (62%)", "60/64 (94%)"]


@pytest.mark.parametrize("seconds,text", [
    (0.4, "0s"), (45, "45s"), (59.6, "1m00s"), (185, "3m05s"),
    (7620, "2h07m")])
def test_duration(seconds, text):
  assert console.duration(seconds) == text


def test_progress_has_an_eta_only_while_running():
  assert console.progress(0, 100, 10.0, 20.0) == "0/100 (0%)"
  assert console.progress(25, 100, 10.0, 20.0) == "25/100 (25%), ETA 30s"
  assert console.progress(100, 100, 10.0, 20.0) == "100/100 (100%)"
  assert console.progress(20000, 67349, 0.0, 1.0).startswith("20,000/67,349")


@pytest.mark.parametrize("argv,verbose", [
    (["x"], False), (["x", "--verbose"], True), (["x", "--verbose=true"], True),
    (["x", "--verbose=false"], False), (["x", "--noverbose"], False),
    (["x", "--verbose_other=1"], False)])
def test_verbose_is_read_before_flags_parse(argv, verbose):
  assert console.wants_verbose(argv) == verbose
