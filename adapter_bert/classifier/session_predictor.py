# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A trained model built once, in one graph and one `tf.Session`, that
predicts every split and every ablation span a job asks for.

`Estimator.predict` builds the graph, starts a session and restores the
checkpoint on every call: per split, and per span of an ablation. Here the
model is built once on a feedable iterator; each split adds only its input
pipeline, and the layers a tuning method is switched off in are a fed
boolean vector (`TuningMethod.with_layer_switches`), not a rebuilt graph.

CPU and GPU only: on TPU, prediction stays with TPUEstimator (infeed,
outfeed, static shapes).
"""

import collections
import dataclasses

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert.classifier import checkpoints
from adapter_bert.classifier import evaluation
from adapter_bert.classifier import inputs
from adapter_bert.classifier import model_fn
from adapter_bert.methods import base

# What the model returns per example, and which example it is.
_OUTPUTS = ("predictions", "per_example_loss", "probabilities")
_IDENTITY = ("example_index", "is_real_example")


def _placeholders():
  """The model's inputs: any batch, any width (the pipelines pad)."""
  features = {name: tf.placeholder(tf.int32, [None, None], name=name)
              for name in inputs.SEQUENCE_FEATURES}
  features["label_ids"] = tf.placeholder(tf.float32, [None], "label_ids")
  return features


class SessionPredictor(object):
  """A model in one session, for any batch size and any set of layers
  switched off (`bound` gives what `evaluation.evaluate_split` calls).

  Args:
    model: the `model_fn.Model` (its method's build-time switches unused).
    checkpoints_in_order: the checkpoints that hold its weights, the first
      holding a variable wins (a run's latest checkpoint, then
      --init_checkpoint; or a bundle's, then the backbone's).
    feature_cache: the `features.FeatureCache` of the task.
    padding: "static", "batch" or "bucket".
    config: the session's `tf.ConfigProto` (`devices.session_config`), or
      None.
  """

  def __init__(self, model, checkpoints_in_order, feature_cache,
               padding="static", config=None):
    self._feature_cache = feature_cache
    self._padding = padding
    self._num_layers = model.bert_config.num_hidden_layers
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._features = _placeholders()
      self._switches = tf.placeholder_with_default(
          tf.ones([self._num_layers], tf.bool), [self._num_layers],
          name="layer_switches")
      method = model.method.with_layers_off(()).with_layer_switches(
          self._switches) if model.method.adds_anything else model.method
      (compute_dtype, _) = model_fn.PRECISIONS[model.precision]
      outputs = model_fn.create_model(model.bert_config, False,
                                      self._features, model.num_labels,
                                      method, compute_dtype)
      self._fetches = {name: outputs[name] for name in _OUTPUTS
                       if name in outputs}
      # Fed to resume a pass above a layer (`_span_runs`).
      self._layer_outputs = outputs["encoder_layers"][:-1]
      variables = {base.variable_name(v): v for v in tf.global_variables()}
      # A Saver per checkpoint, not init_from_checkpoint: a Saver finds a
      # checkpoint prefix by its .index on every file system (ram://, gs://),
      # where init_from_checkpoint takes any path that answers isdir() for
      # a folder.
      savers = []
      restored = set()
      for (path, assignment) in checkpoints.checkpoint_assignment_maps(
          list(variables.values()), checkpoints_in_order):
        if assignment:
          savers.append((path, tf.train.Saver(
              {name: variables[name] for name in assignment})))
          restored.update(assignment)
      missing = [name for name in variables if name not in restored]
      if missing:
        # Never a prediction from initial values.
        raise errors.InputError(
            "%s: no checkpoint holds %d of the model's variables (%s%s)" % (
                ", ".join(checkpoints_in_order), len(missing),
                ", ".join(missing[:3]), ", ..." if len(missing) > 3 else ""))
    self._session = tf.Session(graph=self._graph, config=config)
    with self._graph.as_default():
      for (path, saver) in savers:
        saver.restore(self._session, path)

  def bound_each(self, batch_size, spans):
    """For each set of layers off in `spans`, this model with `batch_size`
    rows per batch and the additions of those layers bypassed: an object
    with `predict(split_name, examples, input_file)`, as
    `evaluation.Predictor`. The first `predict` of a split predicts it for
    all of them at once (`predict_spans`)."""
    shared = _SharedSpans(self, batch_size, tuple(tuple(s) for s in spans))
    return [_Bound(shared, tuple(span)) for span in shared.spans]

  def predict(self, split_name, examples, input_file, batch_size,
              layers_off=()):
    """One output dict per example of `examples`, in order (see
    `evaluation.predict_examples`)."""
    span = tuple(layers_off)
    return self.predict_spans(split_name, examples, input_file, batch_size,
                              [span])[span]

  def predict_spans(self, split_name, examples, input_file, batch_size,
                    spans):
    """{layers off: one output dict per example, in order} for each entry
    of `spans` (tuples of layer indices).

    Each batch runs the layers below a span's first switched-off layer once
    for all spans that share them, and a layer's output once for all spans
    that agree up to it (`_span_runs`): all 21 spans of a 6-layer model cost
    about as many layers as 9 plain passes, not 21.
    """
    features_file = self._feature_cache.features_file(
        split_name, examples, input_file, sort_by_length=True)
    with self._graph.as_default():
      dataset = inputs.file_based_input_fn_builder(
          input_file=features_file,
          seq_length=self._feature_cache.max_seq_length, is_training=False,
          drop_remainder=False, padding=self._padding)(
              {"batch_size": batch_size})
      next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
    logging.info("***** Running %s on %s (in one session%s) *****",
                 split_name, input_file,
                 ", %d ablations" % len(spans) if len(spans) > 1 else "")
    outputs = {span: [] for span in spans}
    while True:
      try:
        batch = self._session.run(next_batch)
      except tf.errors.OutOfRangeError:
        break
      feed = {self._features[name]: batch[name] for name in self._features}
      for (span, values) in self._span_runs(feed, spans):
        for row in range(len(batch["example_index"])):
          output = {name: values[name][row] for name in values}
          output.update({name: batch[name][row] for name in _IDENTITY})
          outputs[span].append(output)
    return {span: evaluation.outputs_in_order(rows, len(examples),
                                              features_file)
            for (span, rows) in outputs.items()}

  def _span_runs(self, feed, spans):
    """Yields (span, fetched outputs) for each span, on one batch's `feed`.

    The output of layer m with the layers `off` among 0..m switched off,
    (m, off), is the same for every span that switches off exactly `off`
    below m + 1, except that a method may change what comes below a layer
    when every layer is off (prefix tuning's positions then start at 0, as
    the pre-trained model's): the point records that too. Each run feeds
    the highest such output already computed (the session then runs only
    the layers above it) and keeps those of its own that a later span will
    read.
    """
    below_top = range(self._num_layers - 1)  # the top layer's is [CLS] only

    def points(span):
      every_layer_off = len(set(span)) == self._num_layers
      return [(m, tuple(layer for layer in span if layer <= m),
               every_layer_off) for m in below_top]

    readers = collections.Counter(p for span in spans for p in points(span))
    kept = {}
    for span in spans:
      span_points = points(span)
      for point in span_points:
        readers[point] -= 1
      start = max([m for (m, point) in enumerate(span_points)
                   if point in kept], default=-1)
      switches = np.ones([self._num_layers], bool)
      switches[list(span)] = False
      run_feed = dict(feed)
      run_feed[self._switches] = switches
      if start >= 0:
        run_feed[self._layer_outputs[start]] = kept[span_points[start]]
      wanted = {point: self._layer_outputs[m]
                for (m, point) in enumerate(span_points)
                if m > start and readers[point] > 0 and point not in kept}
      (values, computed) = self._session.run((self._fetches, wanted),
                                             run_feed)
      kept.update(computed)
      for point in span_points:
        if not readers[point]:
          kept.pop(point, None)
      yield (span, values)

  def close(self):
    self._session.close()


class _SharedSpans(object):
  """The predictions of one model for several sets of layers off, made
  together on a split's first request (`SessionPredictor.bound_each`)."""

  def __init__(self, model, batch_size, spans):
    self.model = model
    self.batch_size = batch_size
    self.spans = spans
    self._pending = {}  # (split, input file): {span: outputs} not yet read

  def predict(self, split_name, examples, input_file, span):
    key = (split_name, input_file)
    if key not in self._pending:
      self._pending[key] = self.model.predict_spans(
          split_name, examples, input_file, self.batch_size, self.spans)
    outputs = self._pending[key].pop(span)
    if not self._pending[key]:
      del self._pending[key]  # every span has read it: a new request
    return outputs


@dataclasses.dataclass(frozen=True)
class _Bound(object):
  """One span of `SessionPredictor.bound_each`: `evaluation.Predictor`'s
  `predict`."""

  shared: _SharedSpans
  layers_off: tuple

  def predict(self, split_name, examples, input_file):
    return self.shared.predict(split_name, examples, input_file,
                               self.layers_off)
