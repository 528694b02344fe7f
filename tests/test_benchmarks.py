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
from adapter_bert.classifier import devices  # pylint: disable=wrong-import-position


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


def run_benchmark(script, tiny_bert, tmp_path, *args):
  """Runs benchmarks/`script` on the tiny BERT and a small SST-2; its
  stdout lines."""
  import subprocess  # pylint: disable=g-import-not-at-top
  from conftest import write_sst2_task  # pylint: disable=g-import-not-at-top
  write_sst2_task(str(tmp_path / "glue" / "SST-2"))
  result = subprocess.run(
      [sys.executable, os.path.join(os.path.dirname(serving.__file__),
                                    script),
       "--bert_dir=" + os.path.dirname(tiny_bert["init_checkpoint"]),
       "--glue_dir=%s" % (tmp_path / "glue"), "--task=SST-2"] + list(args),
      capture_output=True, text=True, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout.splitlines()


def test_bfloat16_gradients_are_compared_group_by_group(tiny_bert, tmp_path):
  lines = run_benchmark("precision_gradients.py", tiny_bert, tmp_path,
                        "--batch_size=32", "--tuning_mode=adapters")
  rows = {line[:22].strip(): [float(x) for x in line[22:].split()]
          for line in lines[2:]}
  groups = [g for g in rows if g != "mean of the groups"]
  # Each layer's adapters (kernels, biases) and LayerNorms, and the head.
  assert {"layer 0 kernel", "layer 1 bias", "layer 1 LayerNorm",
          "classifier output"} <= set(groups)
  for group in groups:
    (rel_err, norm, cos, signs) = rows[group]
    # bfloat16 keeps 8 bits of mantissa: close to float32, not equal
    # (on a batch of 8 the tiny model's gradients cancel too much for this).
    assert 0 < rel_err < 0.1, (group, rows[group])
    assert 0.9 < norm < 1.1 and cos > 0.99 and 0 <= signs < 0.2, group


def test_serving_ops_finds_each_method_in_its_scope(tiny_bert, tmp_path):
  lines = run_benchmark("serving_ops.py", tiny_bert, tmp_path,
                        "--methods=adapters,lora", "--batch_sizes=1,4",
                        "--rounds=6")
  measured = [line.split()[:3] for line in lines[1:]]
  assert measured == [["adapters", "batch", "1"], ["adapters", "batch", "4"],
                      ["lora", "batch", "1"], ["lora", "batch", "4"]]
  for line in lines[1:]:
    ops = int(line.split("ops in its scope")[0].rsplit(";", 1)[1])
    assert ops > 0, line  # the method's own ops were found in the trace


@pytest.mark.slow
def test_throughput_trains_in_float32_and_as_the_command_line_does(
    tiny_bert, tmp_path):
  lines = run_benchmark("throughput.py", tiny_bert, tmp_path,
                        "--only=train_adapters_auto,train_adapters_default,"
                        "eval_auto,eval_default", "--batch_size=8",
                        "--eval_batch_size=8", "--train_steps=2",
                        "--warmup_steps=1", "--adapter_size=4")
  rows = {line.split()[0]: line for line in lines
          if line.startswith(("train_", "eval_"))}
  assert set(rows) == {"train_adapters_auto", "train_adapters_default",
                       "eval_auto", "eval_default"}
  # Every other figure is float32 on any machine; the default is what
  # --precision=auto resolves to here.
  (native, _) = devices.native_bfloat16(False)
  default = "mixed_bfloat16" if native else "float32"
  assert "(bucket), float32," in rows["train_adapters_auto"]
  assert "(bucket), %s," % default in rows["train_adapters_default"]
  assert "bucket padding, float32," in rows["eval_auto"]
  assert "bucket padding, %s," % default in rows["eval_default"]


@pytest.mark.slow
def test_beside_the_peer_times_each_export_on_the_same_rows(
    tiny_bert, tmp_path, capsys, monkeypatch):
  import collections  # pylint: disable=g-import-not-at-top
  from conftest import write_sst2_task  # pylint: disable=g-import-not-at-top
  write_sst2_task(str(tmp_path / "glue" / "SST-2"))
  # A stand-in for the peer's python: prints adapterhub_serve.py's JSON.
  peer = tmp_path / "peer_python"
  peer.write_text(
      "#!/bin/sh\necho '{\"torch\": \"stand-in\", \"batch1_adapters\": "
      "{\"p50_ms\": 20.0, \"requests_per_s\": 50.0}, \"batch32_adapters\": "
      "{\"p50_ms\": 400.0, \"requests_per_s\": 2.5}}'\n")
  peer.chmod(0o755)
  # Both exports, whatever this machine computes natively.
  monkeypatch.setattr(devices, "native_bfloat16", lambda *a: (True, "test"))
  opts = collections.namedtuple("Options", serving.OPTION_FLAGS)(
      bert_dir=os.path.dirname(tiny_bert["init_checkpoint"]),
      glue_dir=str(tmp_path / "glue"), calls=3, warmup=1, work_dir=None,
      json_out=None, methods="", mixed_tasks=[], peer_python=str(peer))
  figures = serving.beside_the_peer(opts, str(tmp_path / "work"),
                                    methods.names()[0])
  lines = capsys.readouterr().out.splitlines()
  timed = [l for l in lines if "this SavedModel" in l]
  assert [(l.split()[5], l.split()[10]) for l in timed] == [
      ("1", "(float32)"), ("1", "(mixed_bfloat16)"),
      ("32", "(float32)"), ("32", "(mixed_bfloat16)")]
  for (line, (batch, precision)) in zip(timed, [
      (1, "float32"), (1, "mixed_bfloat16"), (32, "float32"),
      (32, "mixed_bfloat16")]):
    ours = figures["peer_ours"][precision]["batch%d" % batch]["p50_ms"]
    assert line.endswith("%.2fx its p50" % (
        ours / (20.0 if batch == 1 else 400.0))), line
  assert set(figures["peer_ours"]) == {"float32", "mixed_bfloat16"}
  # The 13 dev rows through both exports: close, not equal (bfloat16).
  (compared,) = [l for l in lines if "probabilities within" in l]
  difference = float(compared.split("within ")[1].split()[0])
  assert 0 < difference < 0.05, compared
