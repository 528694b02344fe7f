# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Adam with decoupled weight decay, BERT's learning-rate schedule, and clipping.

Only the variables a tuning method trains are touched: gradients are asked for
those alone (so no weight-gradient matmuls are built for frozen weights), and
Adam's two moment slots exist only for them (for BERT-base with adapters of
size 64 that is ~5M slot scalars instead of ~220M).
"""

import dataclasses
import re

import tensorflow.compat.v1 as tf

from adapter_bert.methods import base
import modeling

# Variables whose names contain one of these get no weight decay (BERT's rule).
NO_DECAY_PATTERNS = ("LayerNorm", "layer_norm", "bias")
# BERT's decoupled weight decay (not applied to NO_DECAY_PATTERNS), and the
# global norm gradients are clipped to.
WEIGHT_DECAY_RATE = 0.01
CLIP_NORM = 1.0

# Starts the message of the assertion that stops a diverging run; the caller
# (classifier.run) turns it into one line naming the step.
DIVERGED_MARKER = "TRAINING_DIVERGED"


def learning_rate_schedule(global_step, init_lr, num_train_steps,
                           num_warmup_steps):
  """Linear warmup from 0 to `init_lr`, then linear decay to 0 at the last step.

  Args:
    global_step: int64 scalar Tensor.
    init_lr: peak learning rate.
    num_train_steps: step at which the rate reaches 0.
    num_warmup_steps: steps of linear warmup (0 for none).

  Returns:
    float32 scalar Tensor.
  """
  step = tf.cast(global_step, tf.float32)
  decay_fraction = tf.maximum(
      0.0, 1.0 - step / float(max(num_train_steps, 1)))
  learning_rate = init_lr * decay_fraction
  if num_warmup_steps:
    warmup_rate = init_lr * step / float(num_warmup_steps)
    learning_rate = tf.where(step < float(num_warmup_steps), warmup_rate,
                             learning_rate)
  return learning_rate


@dataclasses.dataclass(frozen=True)
class StepGuards(object):
  """What may stop or skip a training step before it changes a variable.

  max_loss: (optional) the divergence guard. A step whose loss is NaN, Inf
    or above `max_loss`, or whose gradients are not finite, fails with an
    InvalidArgumentError starting "DIVERGED_MARKER" before it changes any
    variable, so no checkpoint ever holds its values. Not built on TPU (XLA
    has no Assert).
  loss_scale: (optional) the initial value of a dynamic loss scale, for
    float16 training: TensorFlow's `DynamicLossScale` multiplies the loss by
    it before the gradients and divides them by it after, so small float16
    gradients do not underflow. A step whose gradients overflow changes no
    variable and halves the scale; 2000 good steps in a row double it. The
    skipped step still counts as a step (its batch is consumed, so resuming
    stays exact). The divergence guard then checks the loss alone:
    non-finite gradients are the loss scale's business.
  """

  max_loss: float = None
  loss_scale: float = None


def create_optimizer(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu,
                     trained_variables, guards=StepGuards(),
                     bias_correction=False):
  """Builds the train op that updates `trained_variables` and nothing else.

  Adam with decoupled weight decay (WEIGHT_DECAY_RATE, not applied to
  LayerNorm and biases), gradients clipped to the global norm CLIP_NORM.

  Args:
    loss: scalar loss Tensor.
    init_lr: peak learning rate.
    num_train_steps: total training steps (the schedule ends at 0 there).
    num_warmup_steps: warmup steps.
    use_tpu: wrap the optimizer in `CrossShardOptimizer` (sums gradients over
      TPU cores).
    trained_variables: the variables to update (see
      `TuningMethod.trained_variables`).
    guards: the divergence guard and the loss scale (`StepGuards`).
    bias_correction: Adam's, as PyTorch's AdamW (see
      `AdamWeightDecayOptimizer`); BERT's optimizer has none.

  Returns:
    The train op; it also increments the global step.
  """
  if not trained_variables:
    raise ValueError("no variable to train: check --tuning_mode and "
                     "--adapter_placement")
  global_step = tf.train.get_or_create_global_step()
  learning_rate = learning_rate_schedule(global_step, init_lr, num_train_steps,
                                         num_warmup_steps)
  optimizer = AdamWeightDecayOptimizer(
      learning_rate=learning_rate, weight_decay_rate=WEIGHT_DECAY_RATE,
      beta_1=0.9, beta_2=0.999, epsilon=1e-6,
      exclude_from_weight_decay=NO_DECAY_PATTERNS,
      bias_correction=bias_correction)
  if use_tpu:
    optimizer = tf.tpu.CrossShardOptimizer(optimizer)
  scaler = None
  scaled_loss = loss
  if guards.loss_scale is not None:
    # TensorFlow's engine: its variables (the scale and a count of good
    # steps) are saved in checkpoints, so a resumed run keeps its scale.
    scaler = tf.mixed_precision.DynamicLossScale(
        initial_loss_scale=guards.loss_scale, increment_period=2000,
        multiplier=2.0)
    tf.summary.scalar("loss_scale", scaler())
    scaled_loss = loss * scaler()
  (grads, variables) = _gradients(optimizer, scaled_loss, trained_variables)
  if scaler is not None:
    grads = [tf.convert_to_tensor(g) / scaler() for g in grads]
  (grads, global_norm) = tf.clip_by_global_norm(grads, clip_norm=CLIP_NORM)

  checks = []
  if guards.max_loss is not None and not use_tpu:
    checks.append(_divergence_guard(loss, guards.max_loss, global_norm,
                                    global_step,
                                    check_gradients=scaler is None))
  # Every update op is created under the guard, so none runs before it.
  with tf.control_dependencies(checks):
    train_op = _apply_gradients(optimizer, learning_rate,
                                list(zip(grads, variables)), scaler,
                                global_step)
  # AdamWeightDecayOptimizer leaves the global step alone (as BERT's does), so
  # the step is incremented here, once, after the update.
  with tf.control_dependencies([train_op]):
    new_global_step = global_step + 1
    train_op = tf.group(train_op, [global_step.assign(new_global_step)])
  return train_op


def _divergence_guard(loss, max_loss, global_norm, global_step,
                      check_gradients):
  """An assertion that fails (DIVERGED_MARKER first) when the loss is NaN,
  Inf or above `max_loss`, or (`check_gradients`) the gradients are not
  finite."""
  healthy = tf.logical_and(tf.math.is_finite(loss), loss <= max_loss)
  if check_gradients:
    healthy = tf.logical_and(healthy, tf.math.is_finite(global_norm))
  return tf.debugging.Assert(
      healthy, [DIVERGED_MARKER, "step", global_step, "loss", loss,
                "gradient norm", global_norm], name="divergence_guard")


def _gradients(optimizer, scaled_loss, trained_variables):
  """The gradients of `scaled_loss` for `trained_variables` alone.

  Returns:
    (gradients, variables), in the same order.
  """
  # compute_gradients with an explicit var_list: no gradient for frozen weights.
  # GATE_NONE matters: the default GATE_OP groups all input gradients of an op,
  # which would compute every frozen kernel's weight gradient anyway. Under
  # CrossShardOptimizer this also averages the loss over the shards.
  if replica_count() > 1:
    # tf.distribute (MirroredStrategy, MultiWorkerMirroredStrategy): each
    # replica has an equal share of the global batch, so the mean of their
    # gradients is the gradient of the global batch's mean loss. It is
    # reduced before clipping, so the clip sees the global gradient exactly
    # as on one device. (tf.gradients, not compute_gradients, which may
    # rescale the loss by the replica count depending on Estimator state.)
    variables = list(trained_variables)
    grads = tf.gradients(scaled_loss, variables)
    grads = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.MEAN, [tf.convert_to_tensor(g) for g in grads])
    return (grads, variables)
  grads_and_vars = optimizer.compute_gradients(
      scaled_loss, var_list=trained_variables,
      gate_gradients=tf.train.Optimizer.GATE_NONE)
  return ([g for (g, _) in grads_and_vars], [v for (_, v) in grads_and_vars])


def _apply_gradients(optimizer, learning_rate, grads_and_vars, scaler,
                     global_step):
  """The update op of `grads_and_vars` (already reduced and clipped)."""
  if replica_count() > 1 or scaler is not None:
    # Every replica holds the same reduced gradients: each mirrored
    # variable is updated on its devices from them, with no second
    # reduction (which the base Optimizer's apply would add). On one
    # device this is the default strategy's merge_call, for the loss
    # scale's verdict.
    return tf.distribute.get_replica_context().merge_call(
        _apply_each_copy,
        args=(optimizer, learning_rate, grads_and_vars, scaler))
  return optimizer.apply_gradients(grads_and_vars, global_step=global_step)


def replica_count():
  """Replicas training in sync: 1 outside a tf.distribute strategy."""
  return modeling.replica_position()[1]


def _apply_each_copy(strategy, optimizers, learning_rates, grads_and_vars,
                     scaler=None):
  """merge_call body: AdamW on each device's copy of each variable (one copy
  under the default strategy).

  Args:
    optimizers, learning_rates: each replica's (the model_fn ran once per
      replica); the optimizers are alike, the rates equal.
    scaler: (optional) each replica's `DynamicLossScale`: the update is
      applied only if every replica's gradients are finite.

  Slots are created here, in cross-replica context, so they are mirrored
  like the variables they belong to.
  """
  optimizer = strategy.experimental_local_results(optimizers)[0]
  if scaler is not None:
    # Each replica's object; they share the same (mirrored) variables.
    scaler = strategy.experimental_local_results(scaler)[0]
  slots = [optimizer.slots(param) for (_, param) in grads_and_vars]

  def apply():
    updates = []
    for ((grad, param), (m, v)) in zip(grads_and_vars, slots):
      updates.append(strategy.extended.update(
          param, optimizer.update, args=(grad, m, v, learning_rates),
          group=True))
    return tf.group(*updates)

  return _when_finite(apply, [g for (g, _) in grads_and_vars], scaler)


def _when_finite(apply, grads, scaler):
  """Runs `apply` only if `grads` are all finite, and updates the loss scale.

  In cross-replica context: `DynamicLossScale.update` sums every replica's
  verdict, so all replicas skip or apply together.
  """
  if scaler is None:
    return apply()
  (scale_update, grads_finite) = scaler.update(grads)
  applied = tf.cond(grads_finite, lambda: tf.group(apply()), tf.no_op)
  return tf.group(applied, scale_update)


class AdamWeightDecayOptimizer(tf.train.Optimizer):
  """Adam with decoupled weight decay (AdamW); without bias correction, as
  BERT, unless `bias_correction` (then as PyTorch's `torch.optim.AdamW`).

  Bias correction divides Adam's moments by (1 - beta^t), undoing their
  start at zero (Kingma & Ba). Without it, as BERT, the updates are
  (1 - beta_1^t) / sqrt(1 - beta_2^t) times larger: about 6.5x at step 10,
  5x at 40 and still 2x at 300, which the warmup only partly hides.

  Slots are named `<variable>/adam_m` and `<variable>/adam_v`, as in BERT's
  checkpoints, and exist only for the variables given gradients.
  """

  def __init__(self,
               learning_rate,
               weight_decay_rate=0.0,
               beta_1=0.9,
               beta_2=0.999,
               epsilon=1e-6,
               exclude_from_weight_decay=None,
               bias_correction=False,
               name="AdamWeightDecayOptimizer"):
    super(AdamWeightDecayOptimizer, self).__init__(False, name)
    self.bias_correction = bias_correction
    self.learning_rate = learning_rate
    self.weight_decay_rate = weight_decay_rate
    self.beta_1 = beta_1
    self.beta_2 = beta_2
    self.epsilon = epsilon
    self.exclude_from_weight_decay = exclude_from_weight_decay

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    """Applies one AdamW update; `global_step` is not incremented here."""
    updates = []
    for (grad, param) in grads_and_vars:
      if grad is None or param is None:
        continue
      (m, v) = self.slots(param)
      updates.append(self.update(param, grad, m, v))
    return tf.group(*updates, name=name)

  def slots(self, param):
    """Adam's two moments of `param`, created at zero on first use."""
    param_name = base.variable_name(param)
    return tuple(
        tf.get_variable(name=param_name + suffix,
                        shape=param.shape.as_list(),
                        dtype=tf.float32,
                        trainable=False,
                        initializer=tf.zeros_initializer())
        for suffix in ("/adam_m", "/adam_v"))

  def update(self, param, grad, m, v, learning_rate=None):
    """The AdamW update of one variable (and its slots), as one op.

    Args:
      learning_rate: (optional) this device's copy of the rate; default
        the optimizer's.
    """
    if learning_rate is None:
      learning_rate = self.learning_rate
    param_name = base.variable_name(param)
    # Embedding gradients arrive as IndexedSlices; AdamW with decay updates
    # every row anyway, so make them dense.
    grad = tf.convert_to_tensor(grad)
    next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
    next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
    (m_hat, v_hat) = (next_m, next_v)
    if self.bias_correction:
      # This update is step t = global_step + 1 (the step counts after it);
      # read from the checkpointed step, so a resumed run corrects alike.
      # A float16 step the loss scale skipped still counts (as resume
      # needs), where PyTorch's GradScaler does not advance AdamW's step.
      t = tf.cast(tf.train.get_global_step(), tf.float32) + 1.0
      m_hat = next_m / (1.0 - tf.pow(self.beta_1, t))
      v_hat = next_v / (1.0 - tf.pow(self.beta_2, t))
    update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
    # Decoupled decay: added to the update, not to the gradient, so Adam's
    # second-moment scaling does not shrink it (Loshchilov & Hutter).
    if self._do_use_weight_decay(param_name):
      update += self.weight_decay_rate * param
    next_param = param - learning_rate * update
    return tf.group(param.assign(next_param), m.assign(next_m),
                    v.assign(next_v))

  def _do_use_weight_decay(self, param_name):
    if not self.weight_decay_rate:
      return False
    for pattern in self.exclude_from_weight_decay or ():
      if re.search(pattern, param_name):
        return False
    return True
