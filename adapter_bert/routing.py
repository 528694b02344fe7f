# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Many tasks in one batch: each row through its own task's method.

`RoutedHooks` is the `modeling.GraphHooks` of a batch whose rows belong to
different tasks on one frozen backbone. The backbone computes once for the
whole batch; at every hook each task's method (adapters, LoRA, IA3,
prefixes...) runs on its own rows only (`tf.dynamic_partition`), and the
rows are put back in order (`tf.dynamic_stitch`). A frozen projection that a
method changes is computed on each task's rows separately, which costs the
same multiply-adds as once on the batch. Prefixes of different lengths are
aligned by masked zero keys on the left, which change no attention output.

Used by `multitask.MultiTaskPredictor.add_mixed` (the SavedModel's mixed
signature).
"""

import copy

import tensorflow.compat.v1 as tf

import modeling


def _overrides(method, hook):
  """Whether `method` changes what the base hooks do at `hook`."""
  return method is not None and (getattr(type(method), hook) is not
                                 getattr(modeling.GraphHooks, hook))


class RoutedHooks(modeling.GraphHooks):
  """The hooks of several tasks' methods, routed by each row's task.

  Args:
    methods: one `TuningMethod` (or None: plain BERT) per task index.
    row_task: int32 Tensor [batch]: each row's task index.
    enter_task: function(task index) -> a context manager inside which that
      task's own variables are made and found (the predictor's getter).
    routes_layer_norms: whether some task has LayerNorms of its own (each
      row then takes its task's scale and shift).
  """

  def __init__(self, methods, row_task, enter_task, routes_layer_norms):
    self._layer_norm_epsilon = modeling.GraphHooks.layer_norm_epsilon
    self.methods = list(methods)
    self.row_task = row_task
    self.enter_task = enter_task
    self.routes_layer_norms = routes_layer_norms

  def for_model(self, is_training):
    routed = copy.copy(self)
    routed.methods = [m.for_model(is_training) if m is not None else None
                      for m in self.methods]
    return routed

  @property
  def layer_norm_epsilon(self):
    return self._layer_norm_epsilon

  @layer_norm_epsilon.setter
  def layer_norm_epsilon(self, value):
    # Each task's method applies the model's LayerNorms with it too.
    self._layer_norm_epsilon = value
    for method in self.methods:
      if method is not None:
        method.layer_norm_epsilon = value

  def position_offset(self):
    """One offset, or each row's (a [batch] Tensor) where tasks differ."""
    offsets = [m.position_offset() if m is not None else 0
               for m in self.methods]
    if len(set(offsets)) == 1:
      return offsets[0]
    return tf.gather(tf.constant(offsets, tf.int32), self.row_task)

  def _token_task(self, tensor):
    """The task of each row of a [tokens, ...] tensor: tokens are the rows'
    tokens in order, or one per row (the last layer's [CLS])."""
    batch = tf.shape(self.row_task)[0]
    per_row = tf.shape(tensor)[0] // tf.maximum(batch, 1)
    return tf.repeat(self.row_task, per_row)

  def _partition(self, tasks, tensors):
    """(each task's rows of each of `tensors`: [task][tensor], the rows'
    positions per task, for `tf.dynamic_stitch`)."""
    count = len(self.methods)
    parts = [tf.dynamic_partition(t, tasks, count) for t in tensors]
    positions = tf.dynamic_partition(tf.range(tf.shape(tasks)[0]), tasks,
                                     count)
    return ([[p[index] for p in parts] for index in range(count)], positions)

  def _route(self, tasks, tensors, apply):
    """apply(task index, *its rows of `tensors`) for every task, stitched
    back into the rows' order."""
    (parts, positions) = self._partition(tasks, tensors)
    outputs = []
    for (index, rows) in enumerate(parts):
      with self.enter_task(index):
        outputs.append(apply(index, *rows))
    return tf.dynamic_stitch(positions, outputs)

  def projection(self, layer, name, inputs, project):
    if not any(_overrides(m, "projection") for m in self.methods):
      return project(inputs)

    def apply(index, rows):
      method = self.methods[index]
      if method is None:
        return project(rows)
      return tf.cast(method.projection(layer, name, rows, project),
                     inputs.dtype)

    return self._route(self._token_task(inputs), [inputs], apply)

  def layer_norm(self, normalized, scale_and_shift):
    if not self.routes_layer_norms:
      return scale_and_shift(normalized)
    width = normalized.shape[-1]
    rows = tf.reshape(normalized, [-1, width])  # [tokens, hidden]
    routed = self._route(self._token_task(rows), [rows],
                         lambda index, part: scale_and_shift(part))
    return tf.reshape(routed, tf.shape(normalized))

  def sublayer_output(self, layer, name, inputs, outputs):
    if not any(_overrides(m, "sublayer_output") for m in self.methods):
      return outputs

    def apply(index, rows_in, rows_out):
      method = self.methods[index]
      if method is not None:
        rows_out = method.sublayer_output(layer, name, rows_in, rows_out)
      return tf.cast(rows_out, tf.float32)

    return self._route(self._token_task(outputs), [inputs, outputs], apply)

  def keys_values(self, layer, keys, values, attention_mask):
    if not any(_overrides(m, "keys_values") for m in self.methods):
      return (keys, values, attention_mask)
    if attention_mask is None:
      attention_mask = tf.ones(tf.stack([tf.shape(keys)[0], 1,
                                         tf.shape(keys)[2]]), tf.float32)
    (parts, positions) = self._partition(self.row_task,
                                         [keys, values, attention_mask])
    results = []
    for (index, (k, v, m)) in enumerate(parts):
      method = self.methods[index]
      if method is not None:
        with self.enter_task(index):
          (k, v, m) = method.keys_values(layer, k, v, m)
      results.append((k, v, m))
    # Each task's keys grew by its prefix length; align them on the left
    # with zero keys that the mask hides.
    added = [tf.shape(k)[2] - tf.shape(keys)[2] for (k, _, _) in results]
    longest = tf.reduce_max(tf.stack(added))
    padded = ([], [], [])
    for ((k, v, m), grown) in zip(results, added):
      extra = longest - grown
      padded[0].append(tf.pad(k, [[0, 0], [0, 0], [extra, 0], [0, 0]]))
      padded[1].append(tf.pad(v, [[0, 0], [0, 0], [extra, 0], [0, 0]]))
      padded[2].append(tf.pad(m, [[0, 0], [0, 0], [extra, 0]]))
    return tuple(tf.dynamic_stitch(positions, p) for p in padded)


def task_indices(names, keys):
  """Each row's task index from its task name.

  Args:
    names: string Tensor [batch]: a task's signature key ("mrpc") or GLUE
      name ("MRPC") per row.
    keys: [(key, GLUE name)] per task index.

  Returns:
    int32 Tensor [batch]; an unknown name fails the run with a message
    naming the known ones.
  """
  spellings = [k for (k, _) in keys] + [n for (_, n) in keys]
  matches = tf.equal(tf.expand_dims(names, 1),
                     tf.expand_dims(tf.constant(spellings), 0))  # [B, 2T]
  known = tf.reduce_any(matches, axis=1)
  check = tf.Assert(tf.reduce_all(known), [
      "unknown task; known: " + ", ".join(spellings), names], summarize=8)
  with tf.control_dependencies([check]):
    index = tf.argmax(tf.cast(matches, tf.int32), axis=1, output_type=tf.int32)
  return index % len(keys)


def routed_outputs(logits, tasks, row_task):
  """Each row's outputs from every task's head on the whole batch.

  Args:
    logits: per task index, float32 [batch, its num_labels].
    tasks: the `glue.Task` per index.
    row_task: int32 [batch].

  Returns:
    {"labels": string [batch] (its task's label; "" for a regression task),
     "probabilities": float32 [batch, most labels] (its task's, then zeros),
     "scores": float32 [batch] (a regression task's score; NaN otherwise)}.
  """
  width = max(max(t.num_labels for t in tasks), 2)
  batch = tf.shape(row_task)[0]
  probabilities, scores, tables = [], [], []
  for (task_logits, task) in zip(logits, tasks):
    if task.num_labels == 1:
      probabilities.append(tf.zeros(tf.stack([batch, width])))
      scores.append(task_logits[:, 0])
      tables.append([""] * width)
    else:
      probs = tf.nn.softmax(task_logits, axis=-1)
      probabilities.append(tf.pad(probs, [[0, 0],
                                          [0, width - task.num_labels]]))
      scores.append(tf.fill(tf.expand_dims(batch, 0), float("nan")))
      tables.append([str(l) for l in task.get_labels()] +
                    [""] * (width - task.num_labels))
  rows = tf.stack([row_task, tf.range(batch)], axis=1)
  chosen = tf.gather_nd(tf.stack(probabilities), rows)  # [batch, width]
  regression = tf.gather(tf.constant([t.num_labels == 1 for t in tasks]),
                         row_task)
  label_ids = tf.argmax(chosen, axis=1, output_type=tf.int32)
  labels = tf.gather_nd(tf.constant(tables),
                        tf.stack([row_task, label_ids], axis=1))
  return {"labels": tf.where(regression, tf.fill(tf.shape(labels), ""),
                             labels),
          "probabilities": chosen,
          "scores": tf.gather_nd(tf.stack(scores), rows)}
