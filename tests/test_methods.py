"""The test matrix: every registered tuning method through the same checks.

Each row of MATRIX is one configuration of a method. The fast checks build
the tiny model in-process: the closed-form count of trained parameters
against the graph, what two optimizer steps really change, the settings'
record round trip, and the per-layer switch. The `slow` checks run the whole
job on the tiny model: training, the bundle round trip with equal
predictions, serving from `MultiTaskPredictor`, and the SavedModel export.

A new method adds its row here (`test_every_registered_method_has_a_row`
fails until it does).
"""

import collections
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import new_session
from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import tiny_bert_config_dict
from conftest import write_sst2_task
from adapter_bert import methods
from adapter_bert.methods import base
import modeling
import optimization

NUM_LABELS = 3
BATCH, SEQ = 4, 7


class Row(collections.namedtuple("Row", "id name options whole_job")):
  """One configuration of a method: its test id, the method's name and
  options, and whether the whole-job check runs on it (at most once per
  method, on its first such row; False where another method's row takes the
  same path through the job, as every method that trains backbone variables
  takes bitfit's: a whole job costs half a minute of CI)."""

  def __new__(cls, row_id, name, options, whole_job=True):
    return super(Row, cls).__new__(cls, row_id, name, options, whole_job)


MATRIX = [
    Row("adapters", "adapters", {"adapter_size": 8}),
    Row("adapters-ffn-noln", "adapters",
        {"adapter_size": 4, "adapter_placement": "ffn",
         "train_layernorm": False}),
    Row("full", "full", {}),
    Row("full-with-adapters", "full",
        {"adapter_size": 4, "adapter_placement": "both"}),
    Row("head", "head", {}),
    Row("head-pooler", "head", {"train_pooler": True}),
    Row("layernorm", "layernorm", {}, whole_job=False),
    Row("top_layers", "top_layers", {"tune_top_layers": 1}, whole_job=False),
    Row("bitfit", "bitfit", {}),
    Row("lora", "lora", {"lora_rank": 2, "lora_alpha": 4.0}),
    Row("lora-all-dropout", "lora",
        {"lora_rank": 3, "lora_targets": "query,key,value,attention_output,"
         "intermediate,output", "lora_dropout": 0.1}, whole_job=False),
    Row("ia3", "ia3", {}),
    # MAM's whole job trains plain prefixes; this one's, prefixes trained
    # through the MLP and stored plain.
    Row("prefix", "prefix", {"prefix_length": 3}, whole_job=False),
    Row("prefix-mlp", "prefix", {"prefix_length": 3, "prefix_projection": 5}),
    Row("parallel_adapters", "parallel_adapters", {"adapter_size": 4}),
    Row("parallel_adapters-both", "parallel_adapters",
        # gelu: with ReLU, a 3-wide bottleneck on the 4 [CLS] rows the last
        # layer computes can be dead for all of them (no gradient at all).
        {"adapter_size": 3, "adapter_placement": "both", "adapter_scale": 1.0,
         "adapter_activation": "gelu"}, whole_job=False),
    Row("pfeiffer", "pfeiffer", {"adapter_size": 4}),
    Row("adapters-ln-before", "adapters",
        {"adapter_size": 4, "adapter_placement": "ffn",
         "adapter_ln_before": True}, whole_job=False),
    Row("mam", "mam", {"prefix_length": 2, "adapter_size": 4}),
]
ROWS = [pytest.param(row.name, row.options, id=row.id) for row in MATRIX]


def tiny_config():
  return modeling.BertConfig.from_dict(tiny_bert_config_dict())


def build(name, options):
  return methods.build(name, options, num_layers=tiny_config().num_hidden_layers)


def classifier_graph(method, init_checkpoint=None):
  """Tiny BERT with `method`'s hooks + run_classifier's head + loss, built
  in the current default graph. Returns (loss, logits)."""
  rng = np.random.RandomState(3)
  input_ids = rng.randint(5, tiny_config().vocab_size,
                          size=[BATCH, SEQ]).astype(np.int32)
  labels = rng.randint(0, NUM_LABELS, size=[BATCH]).astype(np.int32)
  model = modeling.BertModel(tiny_config(), False, tf.constant(input_ids),
                             hooks=method)
  pooled = model.get_pooled_output()
  # A head fixed by numpy: the same in graphs that hold more variables.
  output_weights = tf.get_variable(
      "output_weights", initializer=rng.normal(
          0, 0.02, [NUM_LABELS, int(pooled.shape[-1])]).astype(np.float32))
  output_bias = tf.get_variable("output_bias", [NUM_LABELS],
                                initializer=tf.zeros_initializer())
  logits = tf.nn.bias_add(tf.matmul(pooled, output_weights, transpose_b=True),
                          output_bias)
  if init_checkpoint:
    held = dict(tf.train.list_variables(init_checkpoint))
    tf.train.init_from_checkpoint(init_checkpoint, {
        n: n for n in (base.variable_name(v) for v in tf.global_variables())
        if n in held})
  loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))
  return (loss, logits)


def graph_shapes(method):
  with tf.Graph().as_default():
    classifier_graph(method)
    return {base.variable_name(v): v.shape.as_list()
            for v in tf.global_variables()}


# ---------------------------------------------------------------- the registry


def test_every_registered_method_has_a_row():
  assert sorted({row.name for row in MATRIX}) == sorted(methods.names())


def test_registry_names_are_unique_and_described():
  for (name, cls) in methods.registry().items():
    assert cls.name == name and cls.description
    assert cls.marker
  assert methods.reference().whole_model


def test_all_options_declare_each_flag_once_with_its_type():
  options = methods.all_options()
  assert len(options) == len(set(options))
  for cls in methods.registry().values():
    for option in cls.options:
      assert options[option.name].type is option.type, option.name


def test_an_option_another_method_declares_is_refused():
  with pytest.raises(ValueError, match="--adapter_size does not apply to "
                     "--tuning_mode=head"):
    methods.build("head", {"adapter_size": 8})


def test_unknown_method_names_the_known_ones():
  with pytest.raises(ValueError, match="unknown .known: adapters, full"):
    methods.build("adaptors")


@pytest.mark.parametrize("spec,expected", [
    ("adapters", ("adapters", {})),
    ("adapters:noln", ("adapters", {"train_layernorm": False})),
    ("top_layers:2", ("top_layers", {"tune_top_layers": 2})),
    ("prefix:mlp", ("prefix", {"prefix_projection": 512})),
    ("head:train_pooler=true", ("head", {"train_pooler": True})),
    ("lora:lora_rank=16", ("lora", {"lora_rank": 16})),
    ("top_layers:2:train_pooler=false",
     ("top_layers", {"tune_top_layers": 2, "train_pooler": False})),
    ("adapters:noln:train_pooler=true",
     ("adapters", {"train_layernorm": False, "train_pooler": True})),
])
def test_sweep_spellings_come_from_the_methods(spec, expected):
  assert methods.parse_spec(spec) == expected


@pytest.mark.parametrize("spec,fragment", [
    ("adapters:2", "unknown option '2' for adapters"),
    ("top_layers:x", "unknown option 'x' for top_layers"),
    ("head:noln", "unknown option 'noln' for head (known: option=value)"),
    ("head:dropout=1", "head has no option 'dropout' (its options: "),
    ("head:train_pooler=maybe", "--train_pooler must be true or false"),
    ("lora:lora_rank=x", "--lora_rank must be an integer, got 'x'"),
    ("adapters:noln:train_layernorm=true", "sets --train_layernorm twice"),
    ("top_layers:train_pooler=true", "needs a number, e.g. top_layers:2"),
])
def test_an_unknown_spelling_is_refused(spec, fragment):
  with pytest.raises(ValueError) as e:
    methods.parse_spec(spec)
  assert str(e.value).startswith("method %r" % spec), str(e.value)
  assert fragment in str(e.value)


# ---------------------------------------------------------------- the matrix


@pytest.mark.parametrize("name,options", ROWS)
def test_closed_form_count_equals_the_graph(name, options):
  method = build(name, options)
  shapes = graph_shapes(method)
  trained = sum(int(np.prod(s)) for (n, s) in shapes.items()
                if method.trains(n))
  assert trained == method.trained_parameters(tiny_config(), NUM_LABELS)
  method.check(list(shapes))  # a consistent method passes its own check


@pytest.mark.parametrize("name,options", ROWS)
def test_two_steps_change_exactly_the_trained_variables(tiny_bert, name,
                                                        options):
  """Measured, not asked: the variables whose values move under the real
  optimizer are the method's trained ones, and they are as many scalars as
  its closed form says."""
  method = build(name, options)
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    (loss, _) = classifier_graph(method, tiny_bert["init_checkpoint"])
    trained = method.trained_variables(tf.trainable_variables())
    train_op = optimization.create_optimizer(loss, 1e-2, 10, 0, False, trained)
    variables = tf.trainable_variables()
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      before = session.run(variables)
      session.run(train_op)
      session.run(train_op)
      after = session.run(variables)
  changed = {base.variable_name(v) for (v, a, b) in zip(variables, before,
                                                        after)
             if not np.array_equal(a, b)}
  assert changed == {base.variable_name(v) for v in trained}
  assert sum(int(np.prod(v.shape)) for v in variables
             if base.variable_name(v) in changed) == (
                 method.trained_parameters(tiny_config(), NUM_LABELS))


@pytest.mark.parametrize("name,options", ROWS)
def test_the_settings_record_round_trips_through_json(name, options):
  method = build(name, options)
  record = json.loads(json.dumps(method.to_dict()))
  again = methods.from_dict(record, num_layers=2)
  assert type(again) is type(method)
  assert again.settings == method.settings
  flat = methods.settings_record(method)
  assert flat["tuning_mode"] == name
  assert set(flat) == {"tuning_mode"} | set(methods.all_options())


@pytest.mark.parametrize("name,options", ROWS)
def test_every_layer_switched_off_is_the_pretrained_model(tiny_bert, name,
                                                          options):
  """A method's additions, switched off in every layer, leave exactly the
  pre-trained computation (the paper's ablation, Fig. 6); a method that adds
  nothing says so instead."""
  method = build(name, options)
  if not method.adds_anything:
    with pytest.raises(ValueError, match="adds nothing to switch off"):
      method.with_layers_off([0])
    return
  logits = []
  for hooks in (None, method.with_layers_off([0, 1])):
    with tf.Graph().as_default():
      (_, output) = classifier_graph(hooks, tiny_bert["init_checkpoint"])
      with new_session() as session:
        session.run(tf.global_variables_initializer())
        logits.append(session.run(output))
  np.testing.assert_array_equal(logits[0], logits[1])


def logits_with_layers_off(tiny_bert, method, layer_sets, switches):
  """The classifier's logits for each of `layer_sets` switched off: at build
  time (`with_layers_off`, a graph each) or at run time (`switches`: one
  graph, the layers fed). The method's variables get random values (the
  same in every graph), so that what it adds matters."""
  logits = []
  for layers in layer_sets if not switches else [None]:
    with tf.Graph().as_default():
      fed = tf.placeholder(tf.bool, [2])
      hooks = (method.with_layer_switches(fed) if switches else
               method.with_layers_off(layers))
      (_, output) = classifier_graph(hooks, tiny_bert["init_checkpoint"])
      with new_session() as session:
        session.run(tf.global_variables_initializer())
        for v in tf.global_variables():
          name = base.variable_name(v)
          if method.adds(name):
            seed = sum(map(ord, name))
            v.load(np.random.RandomState(seed).normal(
                0.5, 0.3, v.shape.as_list()), session)
        for layers in (layer_sets if switches else [layers]):
          logits.append(session.run(output, {fed: [i not in layers
                                                   for i in range(2)]}))
  return logits


@pytest.mark.parametrize("name,options", ROWS)
def test_switches_fed_at_run_time_equal_layers_built_off(tiny_bert, name,
                                                         options):
  """An ablation's spans in one session (`with_layer_switches`) give what a
  graph built with those layers off gives."""
  method = build(name, options)
  if not method.adds_anything:
    return
  layer_sets = [(), (0,), (1,), (0, 1)]
  built = logits_with_layers_off(tiny_bert, method, layer_sets, False)
  fed = logits_with_layers_off(tiny_bert, method, layer_sets, True)
  # The method moves the logits (the head's are ~1e-2) well beyond the
  # tolerance, so the comparisons can fail.
  assert np.max(np.abs(built[0] - built[3])) > 2e-5
  for (a, b) in zip(built, fed):
    np.testing.assert_allclose(a, b, atol=1e-7, rtol=0)


# ---------------------------------------------------------------- the pipeline


def train_row(tiny_bert, tmp_path, name, options):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  settings = dict({"adapter_size": None}, **options)
  run_classifier_in_process(tiny_bert, data_dir, output_dir, tuning_mode=name,
                            do_predict=True, **settings)
  return (data_dir, output_dir)


def read_test_results(output_dir):
  with open(os.path.join(output_dir, "test_results.tsv")) as f:
    return np.array([[float(x) for x in line.split("\t")] for line in f])


def first_row_of_each_method():
  """The whole job runs once per method (its first whole_job row)."""
  seen = set()
  for (row, param) in zip(MATRIX, ROWS):
    if (row.whole_job and row.name not in seen and
        not methods.get(row.name).whole_model):
      seen.add(row.name)
      yield param


@pytest.mark.slow
@pytest.mark.parametrize("name,options", list(first_row_of_each_method()))
def test_bundle_serves_what_training_predicted(tiny_bert, tmp_path, name,
                                               options):
  """Train, export the bundle, then predict from the bundle alone on the
  backbone (run_classifier --adapter_bundle), from MultiTaskPredictor, and
  from the SavedModel: the same probabilities every time."""
  from adapter_bert import glue
  from adapter_bert import multitask
  from adapter_bert import savedmodel
  from test_export_savedmodel import serve_in_fresh_process
  (data_dir, output_dir) = train_row(tiny_bert, tmp_path, name, options)
  trained = read_test_results(output_dir)
  bundle = os.path.join(output_dir, "adapter_bundle")

  served_dir = str(tmp_path / "served")
  run_classifier_in_process(tiny_bert, data_dir, served_dir, do_train=False,
                            do_eval=True, do_predict=True, adapter_bundle=bundle,
                            adapter_size=None)
  np.testing.assert_allclose(read_test_results(served_dir), trained, atol=1e-6)
  assert read_eval_results(served_dir) == pytest.approx(
      read_eval_results(output_dir), abs=1e-6)

  predictor = multitask.MultiTaskPredictor(
      modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"]),
      tiny_bert["init_checkpoint"], tiny_bert["vocab_file"], 8,
      tiny_bert["bert_config_file"])
  task = predictor.add_task(bundle)
  examples = glue.get_task(task).get_test_examples(data_dir)
  rows = predictor.predict(task, examples)
  np.testing.assert_allclose([r["probabilities"] for r in rows], trained,
                             atol=1e-5)

  export_dir = str(tmp_path / "saved_model")
  savedmodel.export(multitask.Backbone(
      tiny_bert["bert_config_file"], tiny_bert["vocab_file"],
      tiny_bert["init_checkpoint"]), [bundle], export_dir)
  (answer,) = serve_in_fresh_process(export_dir, [
      ("sst2", {"text_a": [e.text_a for e in examples]})])
  np.testing.assert_allclose(answer["probabilities"], trained, atol=1e-5)

  if not methods.get(name).mergeable:
    return
  # Merged into plain BERT: the same probabilities, and none of the
  # method's variables left in the graph.
  merged = multitask.MultiTaskPredictor(
      modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"]),
      tiny_bert["init_checkpoint"], tiny_bert["vocab_file"], 8,
      tiny_bert["bert_config_file"])
  merged.add_task(bundle, merge=True)
  np.testing.assert_allclose(
      [r["probabilities"] for r in merged.predict(task, examples)], trained,
      atol=1e-5)
  method = methods.build(name, options)
  with merged.graph.as_default():
    names = [base.variable_name(v) for v in tf.global_variables()]
  assert not [n for n in names if method.adds(n)]
  merged_dir = str(tmp_path / "saved_model_merged")
  savedmodel.export(multitask.Backbone(
      tiny_bert["bert_config_file"], tiny_bert["vocab_file"],
      tiny_bert["init_checkpoint"]), [bundle], merged_dir,
                    merge=True)
  (answer,) = serve_in_fresh_process(merged_dir, [
      ("sst2", {"text_a": [e.text_a for e in examples]})])
  np.testing.assert_allclose(answer["probabilities"], trained, atol=1e-5)


# ---------------------------------------------------------------- no literals


def method_name_literals(source, names):
  """(line, text) of string constants naming a method, docstrings aside:
  the name itself, a sweep spelling ("name:x") or "--tuning_mode=name"."""
  import ast
  tree = ast.parse(source)
  docstrings = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef,
                         ast.AsyncFunctionDef)):
      body = getattr(node, "body", [])
      if (body and isinstance(body[0], ast.Expr) and
          isinstance(body[0].value, ast.Constant)):
        docstrings.add(id(body[0].value))
  found = []
  for node in ast.walk(tree):
    if (isinstance(node, ast.Constant) and isinstance(node.value, str) and
        id(node) not in docstrings):
      text = node.value
      if any(text == n or text.startswith(n + ":") or
             "tuning_mode=%s" % n in text for n in names):
        found.append((node.lineno, text))
  return sorted(found)


def method_files():
  """The methods' own files: the registry's modules and their base."""
  import importlib
  files = {os.path.abspath(importlib.import_module(m).__file__)
           for m in methods.METHOD_MODULES}
  return files | {os.path.abspath(base.__file__),
                  os.path.abspath(methods.__file__)}


def test_no_method_name_literal_outside_the_methods():
  import glob
  from conftest import REPO_ROOT
  paths = []
  for pattern in ("*.py", "adapter_bert/**/*.py", "scripts/*.py",
                  "benchmarks/*.py"):
    paths += glob.glob(os.path.join(REPO_ROOT, pattern), recursive=True)
  offenders = []
  for path in sorted(set(os.path.abspath(p) for p in paths) - method_files()):
    with open(path, encoding="utf-8") as f:
      for (line, text) in method_name_literals(f.read(), methods.names()):
        offenders.append("%s:%d %r" % (os.path.relpath(path, REPO_ROOT),
                                       line, text))
  assert offenders == []


def test_the_literal_check_sees_a_method_name():
  source = ('"""Docstrings may say adapters."""\n'
            'x = "adapters"\ny = ["top_layers:2"]\n'
            'z = "--tuning_mode=head --x"\nw = "adaptersX"\n')
  assert method_name_literals(source, methods.names()) == [
      (2, "adapters"), (3, "top_layers:2"), (4, "--tuning_mode=head --x")]


def test_a_manifest_records_only_what_shapes_the_model():
  """Options of parts a method does not build are None in its record, as
  manifests written before the registry had them: such a run resumes."""
  record = methods.settings_record(build("full", {}))
  assert (record["adapter_placement"], record["adapter_size"],
          record["adapter_activation"], record["adapter_init_scale"]) == (
              "none", None, None, None)
  record = methods.settings_record(build("full", {"adapter_size": 4,
                                                  "adapter_placement": "ffn"}))
  assert (record["adapter_size"], record["adapter_placement"]) == (4, "ffn")
  assert methods.settings_record(build("head", {}))["adapter_size"] is None
