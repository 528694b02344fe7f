"""One batch, many tasks: rows of seven tasks (Houlsby adapters with and
without their own LayerNorms, parallel adapters, LoRA, IA3, prefix tuning,
a regression head) through one routed forward pass give each task's own
outputs (`MultiTaskPredictor.add_mixed`); the weights are the real
AdapterHub's and PEFT's golden files (tests/data/interop)."""

import os

import numpy as np
import pytest

from adapter_bert import bundles
from adapter_bert import conversion
from adapter_bert import glue
from adapter_bert import library_folders
from adapter_bert import methods
from adapter_bert import multitask
import modeling
import test_interop_golden as golden
from test_interop_golden import tiny_backbone  # pylint: disable=unused-import

# task: (golden case it takes the method's weights from, its library)
TASKS = {"MRPC": "houlsby", "RTE": "parallel", "QNLI": "lora",
         "WNLI": "ia3", "SST-2": "prefix"}


def build_bundles(backbone, folder):
  """The golden imports as bundles of different tasks, plus adapters with
  their own LayerNorms (CoLA) and a LoRA regressor (STS-B)."""
  paths = {}
  for (task, case) in TASKS.items():
    paths[task] = os.path.join(folder, task)
    conversion.import_folder(golden.CASES[case][0],
                             os.path.join(golden.DATA, case), backbone, task,
                             16, True, paths[task])
  config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
  rng = np.random.RandomState(3)
  for (task, source, options, head) in (
      ("CoLA", "MRPC", {"adapter_size": 8, "train_layernorm": True}, 2),
      ("STS-B", "QNLI", {"lora_rank": 4, "lora_alpha": 8.0}, 1)):
    base_bundle = bundles.read_bundle(paths[source])
    method = methods.build(base_bundle.tuning_mode, dict(
        base_bundle.tuning_method().settings, **options),
                           config.num_hidden_layers)
    values = {n: v for (n, v) in base_bundle.values.items()
              if method.adds(n)}
    values["output_weights"] = rng.normal(size=(head, 32)).astype(np.float32)
    values["output_bias"] = rng.normal(size=(head,)).astype(np.float32)
    shapes = library_folders.classifier.describe_model(
        config, method, head, 16)
    for name in shapes:
      if "LayerNorm" in name and method.trains(name):
        values[name] = (1.0 if name.endswith("gamma") else 0.0) + rng.normal(
            scale=0.3, size=shapes[name]).astype(np.float32)
    paths[task] = os.path.join(folder, task)
    bundles.write_bundle_of_values(
        paths[task], method, values, shapes, backbone.init_checkpoint,
        bundles.Description(glue.get_task(task), config,
                            bundles.FeatureSettings(16, True)), "test")
  return paths


def predictor_of(backbone, paths):
  config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
  predictor = multitask.MultiTaskPredictor(config, backbone.init_checkpoint,
                                           backbone.vocab_file)
  for path in paths.values():
    predictor.add_task(path)
  return predictor


def test_a_mixed_batch_gives_each_row_its_task_s_outputs(tiny_backbone,
                                                          tmp_path):
  paths = build_bundles(tiny_backbone, str(tmp_path))
  predictor = predictor_of(tiny_backbone, paths)
  (serving, outputs) = predictor.add_mixed()
  reference = dict(np.load(os.path.join(golden.DATA, "lora.npz")))
  (ids, mask, segments) = (reference["input_ids"], reference["attention_mask"],
                           reference["token_type_ids"])
  rng = np.random.RandomState(0)
  names = list(paths)
  order = rng.randint(0, len(names), size=24)
  rows = rng.randint(0, len(ids), size=24)
  feed = {serving["task"]: [names[i] for i in order],
          serving["input_ids"]: ids[rows], serving["input_mask"]: mask[rows],
          serving["segment_ids"]: segments[rows]}
  mixed = predictor.session.run(outputs, feed)
  for (index, name) in enumerate(names):
    entry = predictor.tasks[glue.get_task(name).name]
    alone = predictor.session.run(entry["outputs"], dict(zip(
        entry["inputs"], (ids, mask, segments))))
    for (row, source) in zip(np.flatnonzero(order == index),
                             rows[order == index]):
      if entry["task"].num_labels == 1:
        np.testing.assert_allclose(mixed["scores"][row],
                                   alone["predictions"][source], atol=1e-5)
        assert mixed["labels"][row] == b""
      else:
        width = entry["task"].num_labels
        np.testing.assert_allclose(mixed["probabilities"][row][:width],
                                   alone["probabilities"][source], atol=1e-5)
        label = entry["task"].get_labels()[alone["predictions"][source]]
        assert mixed["labels"][row].decode() == str(label)
        assert np.isnan(mixed["scores"][row])


def test_merged_tasks_take_their_unmerged_method_in_a_mixed_batch(
    tiny_backbone, tmp_path):
  """Served merged (LoRA, IA3 folded into their own kernels), the tasks'
  rows in a mixed batch still equal their own models: the routed model runs
  their methods on the shared backbone."""
  paths = build_bundles(tiny_backbone, str(tmp_path))
  chosen = {t: paths[t] for t in ("QNLI", "WNLI", "MRPC")}  # lora, ia3, ...
  config = modeling.BertConfig.from_json_file(tiny_backbone.bert_config_file)
  predictor = multitask.MultiTaskPredictor(
      config, tiny_backbone.init_checkpoint, tiny_backbone.vocab_file)
  for path in chosen.values():
    predictor.add_task(path, merge=True)
  assert [e["merged"] for e in predictor.tasks.values()] == [True, True,
                                                             False]
  (serving, outputs) = predictor.add_mixed()
  reference = dict(np.load(os.path.join(golden.DATA, "lora.npz")))
  names = list(chosen) * 2
  rows = [0, 1, 2, 3, 2, 1]
  mixed = predictor.session.run(outputs["probabilities"], {
      serving["task"]: names,
      serving["input_ids"]: reference["input_ids"][rows],
      serving["input_mask"]: reference["attention_mask"][rows],
      serving["segment_ids"]: reference["token_type_ids"][rows]})
  for (row, (name, source)) in enumerate(zip(names, rows)):
    entry = predictor.tasks[glue.get_task(name).name]
    alone = predictor.session.run(entry["outputs"]["probabilities"], dict(
        zip(entry["inputs"], (reference["input_ids"][source:source + 1],
                              reference["attention_mask"][source:source + 1],
                              reference["token_type_ids"][source:source + 1]))))
    np.testing.assert_allclose(mixed[row][:2], alone[0], atol=1e-5)


def test_a_bundle_training_the_pooler_cannot_share_a_batch(tiny_backbone,
                                                           tmp_path):
  paths = build_bundles(tiny_backbone, str(tmp_path))
  bundle = bundles.read_bundle(paths["QNLI"])
  config = modeling.BertConfig.from_json_file(
      tiny_backbone.bert_config_file)
  method = methods.build("lora", dict(bundle.tuning_method().settings,
                                      train_pooler=True), 2)
  shapes = library_folders.classifier.describe_model(config, method, 2, 16)
  values = dict(bundle.values)
  values["bert/pooler/dense/kernel"] = np.eye(32, dtype=np.float32)
  values["bert/pooler/dense/bias"] = np.zeros(32, np.float32)
  pooled = str(tmp_path / "pooled")
  bundles.write_bundle_of_values(
      pooled, method, values, shapes, tiny_backbone.init_checkpoint,
      bundles.Description(glue.get_task("QQP"),
                          config, bundles.FeatureSettings(16, True)), "test")
  predictor = predictor_of(tiny_backbone, {"MRPC": paths["MRPC"],
                                           "QQP": pooled})
  with pytest.raises(ValueError, match="beyond its LayerNorms.*pooler"):
    predictor.add_mixed()


@pytest.mark.slow
def test_the_saved_model_s_mixed_signature_equals_the_per_task_ones(
    tiny_backbone, tmp_path):
  """Raw text of seven tasks in one request, served from a fresh process:
  each row as its task's own signature answers it; a row of a
  single-sentence task ignores its text_b."""
  from test_export_savedmodel import serve_in_fresh_process  # pylint: disable=g-import-not-at-top
  from adapter_bert import savedmodel  # pylint: disable=g-import-not-at-top
  paths = build_bundles(tiny_backbone, str(tmp_path / "bundles"))
  export_dir = str(tmp_path / "saved")
  names = savedmodel.export(tiny_backbone, list(paths.values()), export_dir,
                            mixed=True)
  assert names[savedmodel.MIXED_SIGNATURE] == "+".join(paths)
  rng = np.random.RandomState(1)
  words = ["w%02d" % i for i in range(59)]

  def text(count):
    return " ".join(rng.choice(words, count))

  rows = [(glue.get_task(t), text(rng.randint(1, 12)), text(rng.randint(0, 9)))
          for t in rng.choice(list(paths), 20)]
  requests = [("mixed", {"task": [t.key for (t, _, _) in rows],
                         "text_a": [a for (_, a, _) in rows],
                         "text_b": [b for (_, _, b) in rows]})]
  for (task, a, b) in rows:
    requests.append((task.key, dict({"text_a": [a]},
                                    **({"text_b": [b]} if task.is_pair
                                       else {}))))
  answers = serve_in_fresh_process(export_dir, requests)
  mixed = answers[0]
  for (row, ((task, _, _), alone)) in enumerate(zip(rows, answers[1:])):
    if task.num_labels == 1:
      np.testing.assert_allclose(mixed["scores"][row], alone["scores"][0],
                                 atol=1e-5)
    else:
      np.testing.assert_allclose(
          mixed["probabilities"][row][:task.num_labels],
          alone["probabilities"][0], atol=1e-5)
      assert mixed["labels"][row] == alone["labels"][0]


def test_an_unknown_task_in_a_mixed_request_fails_naming_the_known_ones(
    tiny_backbone, tmp_path):
  paths = build_bundles(tiny_backbone, str(tmp_path))
  predictor = predictor_of(tiny_backbone, {"MRPC": paths["MRPC"]})
  (serving, outputs) = predictor.add_mixed()
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  with pytest.raises(tf.errors.InvalidArgumentError, match="known: mrpc"):
    predictor.session.run(outputs, {
        serving["task"]: ["mprc"], serving["input_ids"]: [[2, 3]],
        serving["input_mask"]: [[1, 1]], serving["segment_ids"]: [[0, 0]]})
