"""Adapter bundles: export, loading onto a backbone, refusal, multi-task serving."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import read_eval_results
from conftest import run_classifier_cli
from conftest import run_classifier_in_process
from conftest import run_cli
from conftest import train_tiny_in_process
from conftest import write_mrpc_task
from conftest import write_sst2_task
from conftest import write_tiny_bert
from adapter_bert import bundles
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert import multitask
from adapter_bert import savedmodel
import adapters
import modeling

ADAPTERS = methods.build("adapters", {"adapter_size": 8})


def read_bundle_values(bundle_dir):
  return checkpoint_values(os.path.join(bundle_dir, bundles.VARIABLES_PREFIX))


def read_lines(path):
  with open(path) as f:
    return f.read().splitlines()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert):
  """Two tiny tasks (SST-2, MRPC) trained once, with their bundles."""
  root = tmp_path_factory.mktemp("bundles")
  runs = {}
  for (task_name, write_task) in (("SST-2", write_sst2_task),
                                  ("MRPC", write_mrpc_task)):
    runs[task_name] = train_tiny_in_process(
        tiny_bert, write_task(str(root / task_name / "data")),
        str(root / task_name / "out"), task_name=task_name, do_predict=True,
        max_seq_length=24, num_train_epochs=2.0)
  return runs


@pytest.mark.slow
def test_bundle_holds_exactly_the_trained_variables(trained):
  run = trained["SST-2"]
  final = checkpoint_values(tf.train.latest_checkpoint(run["output_dir"]))
  expected = {name: value for (name, value) in final.items()
              if "adam" not in name and name != "global_step" and
              ADAPTERS.trains(name)}
  in_bundle = read_bundle_values(run["bundle"])
  assert sorted(in_bundle) == sorted(expected)
  assert any("/adapters/" in n for n in in_bundle)
  assert "output_weights" in in_bundle and "output_bias" in in_bundle
  for (name, value) in expected.items():
    assert np.array_equal(in_bundle[name], value), name

  with open(os.path.join(run["bundle"], bundles.BUNDLE_JSON)) as f:
    metadata = json.load(f)
  assert metadata["task_name"] == "SST-2"
  assert metadata["labels"] == ["0", "1"]
  assert metadata["max_seq_length"] == 24
  assert metadata["do_lower_case"] is True
  assert metadata["version"] == bundles.BUNDLE_VERSION
  assert metadata["options"] == ADAPTERS.settings
  assert metadata["options"]["adapter_size"] == 8
  assert "adapter" not in metadata  # versions 1 to 3 only
  assert metadata["tuning_mode"] == "adapters"
  assert metadata["global_step"] == 16
  assert not [n for n in os.listdir(os.path.dirname(run["bundle"]))
              if ".tmp-" in n or ".old-" in n]
  # The log compares the bundle with a full fine-tuned checkpoint.
  assert "Adapter bundle %s:" % run["bundle"] in run["log"]
  assert "with Adam state" in run["log"]


@pytest.mark.slow
def test_fingerprint_covers_every_frozen_weight(trained, tiny_bert):
  with open(os.path.join(trained["SST-2"]["bundle"], bundles.BUNDLE_JSON)) as f:
    metadata = json.load(f)
  initial = checkpoint_values(tiny_bert["init_checkpoint"])
  frozen = sorted(n for n in initial if not ADAPTERS.trains(n))
  assert sorted(metadata["backbone_variables"]) == frozen
  reader = tf.train.load_checkpoint(tiny_bert["init_checkpoint"])
  assert bundles.backbone_fingerprint(reader, frozen) == (
      metadata["backbone_fingerprint"])


def _as_version_3(bundle_dir, folder, adapter, options):
  """A copy of a bundle whose adapter_bundle.json is as version 3 wrote it:
  the adapters' settings under "adapter", the other options under
  "options" (the rest of the file as it is)."""
  shutil.copytree(bundle_dir, folder)
  json_path = os.path.join(folder, bundles.BUNDLE_JSON)
  with open(json_path) as f:
    metadata = json.load(f)
  metadata.update({"version": 3, "tuning_mode": "adapters",
                   "adapter": adapter, "options": options})
  with open(json_path, "w") as f:
    json.dump(metadata, f, indent=2)
  return folder


@pytest.mark.slow
def test_a_version_3_bundle_reads_as_the_same_method(trained, tiny_bert,
                                                     tmp_path):
  run = trained["SST-2"]
  old = _as_version_3(
      run["bundle"], str(tmp_path / "v3"),
      adapter={"size": 8, "activation": "gelu", "init_scale": 0.001,
               "placement": "both"},
      options={"train_layernorm": True, "train_pooler": False})
  with open(os.path.join(old, bundles.BUNDLE_JSON)) as f:
    assert json.load(f)["version"] == 3
  assert 3 in bundles.READABLE_VERSIONS
  bundle = bundles.read_bundle(old)
  current = bundles.read_bundle(run["bundle"])
  method = bundle.tuning_method()
  assert type(method) is adapters.AdaptersMethod
  assert method.settings == current.tuning_method().settings == (
      ADAPTERS.settings)
  assert method.to_dict() == ADAPTERS.to_dict()
  assert bundle.settings() == current.settings()
  assert bundle.settings()["adapter_size"] == 8
  assert bundle.settings()["tune_top_layers"] is None
  # It serves what the version-4 bundle serves.
  task = glue.get_task("SST-2")
  examples = task.read_examples(run["data_dir"], task.dev[0])
  served = [multitask_predictor(tiny_bert, [folder]).predict("SST-2", examples)
            for folder in (old, run["bundle"])]
  for (a, b) in zip(*served):
    assert np.array_equal(a["probabilities"], b["probabilities"])


@pytest.mark.parametrize("adapter,options,expected", [
    # Version 3 without adapters: "adapter" is null.
    (None, {"train_layernorm": False, "train_pooler": True},
     {"adapter_placement": "none", "train_layernorm": False,
      "train_pooler": True}),
    # Versions 1 and 2 recorded no options: the defaults.
    ({"size": 8, "activation": "relu", "init_scale": 0.01,
      "placement": "ffn"}, None,
     {"adapter_size": 8, "adapter_activation": "relu",
      "adapter_init_scale": 0.01, "adapter_placement": "ffn",
      "train_layernorm": True, "train_pooler": False}),
])
def test_older_bundle_records_read_as_their_settings(adapter, options,
                                                     expected):
  record = {"tuning_mode": "adapters", "adapter": adapter}
  if options is not None:
    record["options"] = options
  method = methods.from_dict(json.loads(json.dumps(record)), num_layers=2)
  assert type(method) is adapters.AdaptersMethod
  for (name, value) in expected.items():
    assert method[name] == value, name
  assert method.adds_anything == (adapter is not None)


@pytest.mark.slow
def test_eval_from_backbone_and_bundle_equals_training_checkpoint(
    trained, tiny_bert, tmp_path):
  run = trained["SST-2"]
  output_dir = str(tmp_path / "from_bundle")
  result = run_classifier_cli(
      tiny_bert, run["data_dir"], output_dir, do_train=False,
      do_predict=True, adapter_bundle=run["bundle"], max_seq_length=None)
  assert result.returncode == 0, result.stderr[-3000:]
  assert read_eval_results(output_dir) == read_eval_results(run["output_dir"])
  for name in ("test_results.tsv", "SST-2.tsv"):
    assert read_lines(os.path.join(output_dir, name)) == read_lines(
        os.path.join(run["output_dir"], name)), name
  # No training checkpoint was used or left behind.
  assert tf.train.latest_checkpoint(output_dir) is None
  assert not os.path.exists(os.path.join(output_dir, "bundle_model"))


@pytest.mark.slow
def test_bundle_settings_replace_flags(trained, tiny_bert, tmp_path):
  """max_seq_length and adapter size come from the bundle, not the flags."""
  run = trained["MRPC"]
  result = run_classifier_cli(
      tiny_bert, run["data_dir"], str(tmp_path / "out"), task_name="MRPC",
      do_train=False, adapter_bundle=run["bundle"], max_seq_length=64,
      adapter_size=32)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "--max_seq_length=64 ignored" in result.stderr
  assert read_eval_results(str(tmp_path / "out")) == read_eval_results(
      run["output_dir"])


@pytest.mark.slow
def test_bundle_on_another_backbone_is_refused(trained, tmp_path):
  other = write_tiny_bert(str(tmp_path / "other"), seed=7)  # same shapes
  run = trained["SST-2"]
  assert_input_error(
      lambda: run_classifier_in_process(
          other, run["data_dir"], str(tmp_path / "out"), do_train=False,
          adapter_bundle=run["bundle"]),
      "trained on another backbone", other["init_checkpoint"])


@pytest.mark.slow
def test_bundle_for_another_task_is_refused(trained, tiny_bert, tmp_path):
  run = trained["SST-2"]
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, trained["MRPC"]["data_dir"], str(tmp_path / "out"),
          task_name="MRPC", do_train=False, adapter_bundle=run["bundle"]),
      "was trained for SST-2")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "corrupt_json", "no_json",
                                    "no_variables", "missing"])
def test_damaged_bundle_is_a_one_line_error(trained, tiny_bert, tmp_path,
                                            damage):
  run = trained["SST-2"]
  bundle = str(tmp_path / "bundle")
  shutil.copytree(run["bundle"], bundle)
  data = os.path.join(bundle, "variables.data-00000-of-00001")
  if damage == "truncated":
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
  elif damage == "corrupt_json":
    with open(os.path.join(bundle, bundles.BUNDLE_JSON), "w") as f:
      f.write('{"format": "adapter-bert-bundle", "vers')
  elif damage == "no_json":
    os.remove(os.path.join(bundle, bundles.BUNDLE_JSON))
  elif damage == "no_variables":
    os.remove(os.path.join(bundle, "variables.index"))
  else:
    shutil.rmtree(bundle)
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, run["data_dir"], str(tmp_path / "out"), do_train=False,
          adapter_bundle=bundle),
      bundle)


@pytest.mark.slow
def test_full_mode_bundle_is_refused(trained, tiny_bert, tmp_path):
  """Export a `full` bundle from a full fine-tuning run, then try to load
  it."""
  run = trained["SST-2"]
  full_dir = str(tmp_path / "full_run")
  run_classifier_in_process(tiny_bert, run["data_dir"], full_dir,
                            tuning_mode="full", do_eval=False,
                            max_seq_length=24)
  bundle = str(tmp_path / "full_bundle")
  result = run_classifier_cli(
      tiny_bert, None, str(tmp_path / "export"), do_train=False,
      do_eval=False, export_from_checkpoint=full_dir,
      export_adapter_bundle=bundle, tuning_mode="full", max_seq_length=24)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(bundle, bundles.BUNDLE_JSON)) as f:
    metadata = json.load(f)
  assert metadata["tuning_mode"] == "full"
  assert "bert/encoder/layer_0/attention/self/query/kernel" in (
      metadata["variables"])
  message = assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, run["data_dir"], str(tmp_path / "out"), do_train=False,
          adapter_bundle=bundle),
      "--tuning_mode=full", "whole fine-tuned model",
      "--output_dir=%s --tuning_mode=full" % full_dir)
  # The advice works as given: the run folder evaluates.
  assert "--output_dir=%s " % full_dir in message
  run_classifier_in_process(tiny_bert, run["data_dir"], full_dir,
                            tuning_mode="full", do_train=False,
                            max_seq_length=24)
  assert "eval_accuracy" in read_eval_results(full_dir)


@pytest.mark.slow
def test_export_from_checkpoint_matches_the_training_export(
    trained, tiny_bert, tmp_path):
  run = trained["MRPC"]
  bundle = str(tmp_path / "exported")
  result = run_classifier_cli(
      tiny_bert, None, str(tmp_path / "export"), task_name="MRPC",
      do_train=False, do_eval=False, export_from_checkpoint=run["output_dir"],
      export_adapter_bundle=bundle, max_seq_length=24)
  assert result.returncode == 0, result.stderr[-3000:]
  exported = read_bundle_values(bundle)
  original = read_bundle_values(run["bundle"])
  assert sorted(exported) == sorted(original)
  assert all(np.array_equal(exported[n], original[n]) for n in original)


def multitask_predictor(tiny_bert, bundle_dirs):
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  predictor = multitask.MultiTaskPredictor(
      config, tiny_bert["init_checkpoint"], tiny_bert["vocab_file"],
      batch_size=4)
  for bundle_dir in bundle_dirs:
    predictor.add_task(bundle_dir)
  return predictor


@pytest.mark.slow
def test_two_bundles_in_one_process_equal_each_alone(trained, tiny_bert):
  examples = {}
  for (task_name, run) in trained.items():
    task = glue.get_task(task_name)
    examples[task_name] = task.read_examples(run["data_dir"], task.dev[0])
  both = multitask_predictor(tiny_bert, [trained["SST-2"]["bundle"],
                                         trained["MRPC"]["bundle"]])
  # The backbone exists once: one set of BERT variables for both tasks.
  names = [v.op.name for v in both.graph.get_collection(
      tf.GraphKeys.GLOBAL_VARIABLES)]
  query = "bert/encoder/layer_0/attention/self/query/kernel"
  assert [n for n in names if n.endswith(query)] == [query]
  assert len([n for n in names if n.endswith("output_weights")]) == 2
  for task_name in trained:
    alone = multitask_predictor(tiny_bert, [trained[task_name]["bundle"]])
    together = both.predict(task_name, examples[task_name])
    single = alone.predict(task_name, examples[task_name])
    assert len(together) == len(examples[task_name])
    for (a, b) in zip(together, single):
      assert np.array_equal(a["probabilities"], b["probabilities"])


@pytest.mark.slow
def test_served_predictions_equal_run_classifier(trained, tiny_bert):
  """The serving path computes what run_classifier.py computed."""
  run = trained["MRPC"]
  task = glue.get_task("MRPC")
  predictor = multitask_predictor(tiny_bert, [run["bundle"]])
  outputs = predictor.predict("mrpc", task.read_examples(run["data_dir"],
                                                         task.test[0]))
  expected = [[float(p) for p in line.split("\t")] for line in
              read_lines(os.path.join(run["output_dir"], "test_results.tsv"))]
  assert np.allclose([o["probabilities"] for o in outputs], expected,
                     atol=1e-6)


@pytest.mark.slow
def test_serving_refuses_a_task_twice_and_a_foreign_backbone(
    trained, tiny_bert, tmp_path):
  predictor = multitask_predictor(tiny_bert, [trained["SST-2"]["bundle"]])
  with pytest.raises(ValueError, match="loaded already"):
    predictor.add_task(trained["SST-2"]["bundle"])
  other = write_tiny_bert(str(tmp_path / "other"), seed=7)
  config = modeling.BertConfig.from_json_file(other["bert_config_file"])
  foreign = multitask.MultiTaskPredictor(
      config, other["init_checkpoint"], other["vocab_file"])
  with pytest.raises(ValueError, match="another backbone"):
    foreign.add_task(trained["SST-2"]["bundle"])


@pytest.mark.slow
def test_bundle_that_contradicts_its_settings_leaves_the_predictor_usable(
    trained, tiny_bert, tmp_path):
  """A bundle whose json says another adapter size is refused up front."""
  bad = str(tmp_path / "bad_bundle")
  shutil.copytree(trained["MRPC"]["bundle"], bad)
  json_path = os.path.join(bad, bundles.BUNDLE_JSON)
  with open(json_path) as f:
    metadata = json.load(f)
  metadata["options"]["adapter_size"] = 3
  with open(json_path, "w") as f:
    json.dump(metadata, f)
  predictor = multitask_predictor(tiny_bert, [])
  with pytest.raises(ValueError, match="the model it describes needs"):
    predictor.add_task(bad)
  # Nothing half-built stays behind: the real bundles still load and serve.
  predictor.add_task(trained["MRPC"]["bundle"])
  predictor.add_task(trained["SST-2"]["bundle"])
  task = glue.get_task("SST-2")
  examples = task.read_examples(trained["SST-2"]["data_dir"], task.dev[0])
  assert len(predictor.predict("SST-2", examples)) == len(examples)


@pytest.mark.slow
def test_multitask_cli_writes_every_task_file(trained, tiny_bert, tmp_path):
  output_dir = str(tmp_path / "submission")
  result = run_cli(
      "scripts/predict_multitask.py",
      bert_config_file=tiny_bert["bert_config_file"],
      vocab_file=tiny_bert["vocab_file"],
      init_checkpoint=tiny_bert["init_checkpoint"],
      adapter_bundles="%s,%s" % (trained["SST-2"]["bundle"],
                                 trained["MRPC"]["bundle"]),
      data_dirs="%s,%s" % (trained["SST-2"]["data_dir"],
                           trained["MRPC"]["data_dir"]),
      output_dir=output_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "process memory with 2 task(s)" in result.stdout
  for (task_name, run) in trained.items():
    assert read_lines(os.path.join(output_dir, task_name + ".tsv")) == (
        read_lines(os.path.join(run["output_dir"], task_name + ".tsv")))


def run_multitask(tiny_bert, bundle_dirs, data_dirs, output_dir, **options):
  """What predict_multitask.py runs, in this process."""
  return multitask.run(
      multitask.Backbone(tiny_bert["bert_config_file"],
                         tiny_bert["vocab_file"], tiny_bert["init_checkpoint"]),
      bundle_dirs, data_dirs, output_dir, **options)


@pytest.mark.slow
def test_multitask_data_dirs_in_the_wrong_order_write_nothing(trained,
                                                              tiny_bert,
                                                              tmp_path):
  output_dir = str(tmp_path / "submission")
  # MRPC's test file read as SST-2 took the id column as text and wrote a
  # garbage SST-2.tsv before failing on the second task. Its labelled dev
  # file is read first (the RTE/WNLI swap has the same header otherwise).
  assert_input_error(
      lambda: run_multitask(
          tiny_bert, [trained["SST-2"]["bundle"], trained["MRPC"]["bundle"]],
          [trained["MRPC"]["data_dir"], trained["SST-2"]["data_dir"]],
          output_dir),
      os.path.join(trained["MRPC"]["data_dir"], "dev.tsv") + ":1:",
      "not 'sentence'", "this is not SST-2's dev.tsv")
  assert os.listdir(output_dir) == []


@pytest.mark.slow
def test_multitask_refuses_an_empty_dev_set_and_another_length(trained,
                                                               tiny_bert,
                                                               tmp_path,
                                                               capsys):
  empty = str(tmp_path / "empty")
  os.makedirs(empty)
  with open(os.path.join(empty, "dev.tsv"), "w") as f:
    f.write("sentence\tlabel\n")
  capsys.readouterr()
  assert_input_error(
      lambda: run_multitask(tiny_bert, [trained["SST-2"]["bundle"]], [empty],
                            None, split="dev"),
      os.path.join(empty, "dev.tsv"), "no examples to predict")
  assert "accuracy" not in capsys.readouterr().out
  assert_input_error(
      lambda: run_multitask(tiny_bert, [trained["SST-2"]["bundle"]],
                            [trained["SST-2"]["data_dir"]], None, split="dev",
                            max_seq_length=128),
      "--max_seq_length=128", "trained with max_seq_length=24")
  run_multitask(tiny_bert, [trained["SST-2"]["bundle"]],
                [trained["SST-2"]["data_dir"]], None, split="dev",
                max_seq_length=24)
  assert "eval_accuracy = " in capsys.readouterr().out


@pytest.mark.slow
def test_multitask_writes_every_file_or_none(trained, tiny_bert, tmp_path,
                                             monkeypatch):
  """A failure while writing the second file leaves not even the first."""
  output_dir = str(tmp_path / "submission")
  real_write = glue.write_submission
  calls = []

  def write_then_fail(path, *args):
    calls.append(path)
    if len(calls) == 2:
      raise OSError(28, "No space left on device", path)
    real_write(path, *args)

  monkeypatch.setattr(glue, "write_submission", write_then_fail)
  with pytest.raises(OSError):
    multitask.run(
        multitask.Backbone(tiny_bert["bert_config_file"],
                           tiny_bert["vocab_file"],
                           tiny_bert["init_checkpoint"]),
        [trained["SST-2"]["bundle"], trained["MRPC"]["bundle"]],
        [trained["SST-2"]["data_dir"], trained["MRPC"]["data_dir"]],
        output_dir)
  assert len(calls) == 2
  assert os.listdir(output_dir) == []


# ---------------------------------------------------------------- settings


def _checkpoint_on_backbone(tiny_bert, folder, method, num_labels):
  """A training checkpoint whose frozen weights are tiny_bert's own."""
  from adapter_bert.classifier import checkpoints
  from adapter_bert.classifier import model_fn
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  with tf.Graph().as_default():
    input_ids = tf.zeros([1, 8], dtype=tf.int32)
    model_fn.create_model(config, False, {"input_ids": input_ids,
                                          "input_mask": input_ids,
                                          "segment_ids": input_ids},
                          num_labels, method)
    for (checkpoint, assignment_map) in checkpoints.checkpoint_assignment_maps(
        tf.global_variables(), [tiny_bert["init_checkpoint"]]):
      tf.train.init_from_checkpoint(checkpoint, assignment_map)
    tf.train.get_or_create_global_step()
    saver = tf.train.Saver()
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      saver.save(session, os.path.join(folder, "model.ckpt"))
  return config


def test_bundle_records_the_xnli_language_and_serves_in_it(tiny_bert,
                                                           tmp_path):
  method = methods.build("adapters", {"adapter_size": 4})
  config = _checkpoint_on_backbone(tiny_bert, str(tmp_path / "train"), method,
                                   num_labels=3)
  bundle_dir = str(tmp_path / "xnli_de")
  bundles.export_bundle(str(tmp_path / "train"), bundle_dir, method,
                        glue.get_task("XNLI", language="de"), config,
                        bundles.FeatureSettings(24, True))
  bundle = bundles.read_bundle(bundle_dir)
  assert bundle.language == "de"
  assert bundle.task().language == "de"
  assert bundle.settings()["xnli_language"] == "de"
  # The shared task object never changes language.
  assert glue.get_task("XNLI").language == "zh"
  predictor = multitask_predictor(tiny_bert, [bundle_dir])
  assert predictor.tasks["XNLI"]["task"].language == "de"
  assert predictor.tasks["XNLI"]["max_seq_length"] == 24


@pytest.mark.slow
def test_settings_are_immutable_and_a_bundle_replaces_them_before_checks(
    trained, tiny_bert, tmp_path):
  import dataclasses

  from adapter_bert import classifier
  from adapter_bert.classifier import settings as settings_lib
  settings = classifier.Settings(max_seq_length=24)
  with pytest.raises(dataclasses.FrozenInstanceError):
    settings.max_seq_length = 0
  run = trained["MRPC"]
  given = classifier.Settings(
      task_name="MRPC", adapter_bundle=run["bundle"], max_seq_length=0,
      adapter_size=1, tuning_mode="full", xnli_language="fr")
  merged, bundle = settings_lib.with_bundle_settings(given, explicit=())
  assert bundle.task_name == "MRPC"
  assert (merged.max_seq_length, merged.adapter_size, merged.tuning_mode,
          merged.adapter_placement) == (24, 8, "adapters", "both")
  assert merged.xnli_language == "fr"  # an English task records none
  assert given.max_seq_length == 0  # the given object is unchanged
  # A value the bundle replaces is never validated: --max_seq_length=0 runs.
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, run["data_dir"], output_dir,
                            task_name="MRPC", do_train=False,
                            adapter_bundle=run["bundle"], max_seq_length=0)
  assert read_eval_results(output_dir) == read_eval_results(run["output_dir"])


def swapped_vocab(vocab_file, path):
  """The vocabulary with its last two words swapped: same size, other ids."""
  words = read_lines(vocab_file)
  words[-1], words[-2] = words[-2], words[-1]
  with open(path, "w") as f:
    f.write("\n".join(words) + "\n")
  return path


@pytest.mark.slow
def test_a_bundle_on_another_vocab_of_the_same_size_is_refused(
    trained, tiny_bert, tmp_path):
  run = trained["SST-2"]
  vocab = swapped_vocab(tiny_bert["vocab_file"], str(tmp_path / "vocab.txt"))
  with open(os.path.join(run["bundle"], bundles.BUNDLE_JSON)) as f:
    assert json.load(f)["vocab_sha256"] == fileio.file_sha256(
        tiny_bert["vocab_file"])
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, run["data_dir"], str(tmp_path / "eval"), do_train=False,
          do_eval=True, adapter_bundle=run["bundle"], vocab_file=vocab),
      "trained with another vocabulary", "--vocab_file=" + vocab)
  assert not os.path.exists(str(tmp_path / "eval"))
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  predictor = multitask.MultiTaskPredictor(
      config, tiny_bert["init_checkpoint"], vocab)
  with pytest.raises(ValueError, match="another vocabulary"):
    predictor.add_task(run["bundle"])
  assert_input_error(
      lambda: savedmodel.export(multitask.Backbone(
          tiny_bert["bert_config_file"], vocab,
          tiny_bert["init_checkpoint"]),
          [run["bundle"]], str(tmp_path / "served")),
      "another vocabulary")


@pytest.mark.slow
def test_an_older_bundle_without_a_vocab_record_serves_with_a_warning(
    trained, tiny_bert, tmp_path, caplog):
  run = trained["SST-2"]
  old = str(tmp_path / "old_bundle")
  shutil.copytree(run["bundle"], old)
  path = os.path.join(old, bundles.BUNDLE_JSON)
  with open(path) as f:
    metadata = json.load(f)
  del metadata["vocab_sha256"]
  metadata["version"] = 4
  with open(path, "w") as f:
    json.dump(metadata, f)
  caplog.set_level("WARNING")
  results = run_classifier_in_process(
      tiny_bert, run["data_dir"], str(tmp_path / "eval"), do_train=False,
      do_eval=True, adapter_bundle=old)
  assert results
  assert "records no vocabulary" in caplog.text


@pytest.mark.slow
def test_bundles_of_different_methods_share_one_backbone(trained, tiny_bert,
                                                         tmp_path):
  """Adapters for SST-2 and LoRA for MRPC (merged, then kept apart) on one
  backbone: each task predicts what it predicts alone."""
  mrpc = trained["MRPC"]
  lora = train_tiny_in_process(
      tiny_bert, mrpc["data_dir"], str(tmp_path / "lora"), task_name="MRPC",
      tuning_mode="lora", adapter_size=None, lora_rank=2, max_seq_length=24,
      num_train_epochs=2.0)
  examples = {name: glue.get_task(name).read_examples(
      trained[name]["data_dir"], glue.get_task(name).dev[0])
              for name in ("SST-2", "MRPC")}
  for merge in (False, True):
    config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
    both = multitask.MultiTaskPredictor(
        config, tiny_bert["init_checkpoint"], tiny_bert["vocab_file"],
        batch_size=4)
    both.add_task(trained["SST-2"]["bundle"], merge=merge)
    both.add_task(lora["bundle"], merge=merge)
    assert both.tasks["MRPC"]["merged"] == merge
    assert not both.tasks["SST-2"]["merged"]  # adapters cannot merge
    names = [v.op.name for v in both.graph.get_collection(
        tf.GraphKeys.GLOBAL_VARIABLES)]
    query = "bert/encoder/layer_0/attention/self/query/kernel"
    # Merged, MRPC holds its own query kernel; the backbone's stays shared.
    assert len([n for n in names if n.endswith(query)]) == 1 + merge
    for (name, bundle) in (("SST-2", trained["SST-2"]["bundle"]),
                           ("MRPC", lora["bundle"])):
      alone = multitask_predictor(tiny_bert, [bundle])
      together = both.predict(name, examples[name])
      single = alone.predict(name, examples[name])
      np.testing.assert_allclose([r["probabilities"] for r in together],
                                 [r["probabilities"] for r in single],
                                 atol=1e-6)
