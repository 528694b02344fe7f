"""The benchmarks' own arithmetic: what benchmarks/serving.py reports as a
method's latency cost, and which methods it compares."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks"))
import serving  # pylint: disable=g-import-not-at-top,wrong-import-position
from adapter_bert import methods  # pylint: disable=wrong-import-position


def test_a_known_cost_is_found_and_a_copy_costs_nothing():
  rng = np.random.RandomState(3)
  rounds = 400
  # A machine whose speed drifts from round to round, the same for all.
  drift = np.exp(rng.normal(0, 0.3, [rounds, 1]))
  times = drift * np.exp(rng.normal(0, 0.05, [rounds, 3])) * [1.0, 1.0, 1.1]
  figures = serving.cost_figures(times, ["plain", "copy", "slower"])
  assert figures["plain"]["cost_percent"] == 0.0
  assert figures["copy"]["cost_low"] < 0 < figures["copy"]["cost_high"]
  slower = figures["slower"]
  assert slower["cost_low"] < 10.0 < slower["cost_high"]
  assert slower["cost_low"] > 0
  assert slower["p50_ms"] == pytest.approx(1000 * np.median(times[:, 2]))


def test_all_means_every_method_that_adds_to_the_graph():
  (main, chosen, plain) = serving.compared_methods("all")
  assert main == methods.names()[0]
  names = [name for (name, _) in chosen]
  for name in methods.names():
    cls = methods.get(name)
    options = {"tune_top_layers": 1} if name == "top_layers" else {}
    adds = methods.build(name, options, num_layers=2).adds_anything
    assert (name in names) == (adds and not cls.whole_model), name
  assert dict(chosen)["lora"] and not dict(chosen)["prefix"]  # mergeable
  assert not methods.build(plain).adds_anything
  assert "mam" in names  # a composed method adds what its members add


def test_a_whole_model_method_is_refused_in_one_line():
  whole = [n for n in methods.names() if methods.get(n).whole_model][0]
  with pytest.raises(ValueError, match="--methods=%s: a whole model" % whole):
    serving.compared_methods(whole)


def test_the_command_line_refuses_a_whole_model_before_any_work(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  whole = [n for n in methods.names() if methods.get(n).whole_model][0]
  result = subprocess.run(
      [sys.executable, os.path.join(os.path.dirname(serving.__file__),
                                    "serving.py"),
       "--methods=" + whole, "--work_dir=%s" % (tmp_path / "work")],
      capture_output=True, text=True, cwd=str(tmp_path))
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      "serving.py: --methods=%s: a whole model, not served on the shared "
      "backbone" % whole)
  assert not os.path.exists(tmp_path / "work")
