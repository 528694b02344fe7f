# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Writes torch_adamw.npz: PyTorch's own AdamW (the optimizer of AdapterHub's
and PEFT's trainers) on fixed parameters and gradients for three steps, the
reference of `optimization.AdamWeightDecayOptimizer(bias_correction=True)`.

Run with the PyTorch peer's Python (../shared/peer/README.md), never the
project's: `/tmp/peer/bin/python tests/data/optimizer/make_torch_adamw.py`.
Parameters named "decay_*" get weight decay, "plain_*" none (BERT's rule
keeps it off biases and LayerNorms; in PyTorch that is a parameter group).
"""

import os

import numpy as np
import torch

LEARNING_RATES = (0.05, 0.1, 0.02)  # steps 1-3: a schedule, as warmup makes
WEIGHT_DECAY = 0.3
EPSILON = 1e-6


def main():
  rng = np.random.RandomState(7)
  names = ("decay_kernel", "plain_bias")
  initial = {n: rng.normal(size=[2, 3]).astype(np.float32) for n in names}
  grads = [{n: (rng.normal(size=[2, 3]) * 10.0 ** rng.randint(-3, 2)).astype(
      np.float32) for n in names} for _ in LEARNING_RATES]
  params = {n: torch.nn.Parameter(torch.tensor(initial[n])) for n in names}
  optimizer = torch.optim.AdamW(
      [{"params": [params["decay_kernel"]], "weight_decay": WEIGHT_DECAY},
       {"params": [params["plain_bias"]], "weight_decay": 0.0}],
      lr=LEARNING_RATES[0], betas=(0.9, 0.999), eps=EPSILON)
  out = {"learning_rates": np.array(LEARNING_RATES, np.float32),
         "weight_decay": np.float32(WEIGHT_DECAY),
         "epsilon": np.float32(EPSILON)}
  for n in names:
    out["initial/" + n] = initial[n]
  for (step, rate) in enumerate(LEARNING_RATES):
    for group in optimizer.param_groups:
      group["lr"] = rate
    for n in names:
      params[n].grad = torch.tensor(grads[step][n])
      out["grad%d/%s" % (step, n)] = grads[step][n]
    optimizer.step()
    for n in names:
      out["param%d/%s" % (step, n)] = params[n].detach().numpy().copy()
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "torch_adamw.npz")
  np.savez(path, **out)
  print("wrote %s (torch %s)" % (path, torch.__version__))


if __name__ == "__main__":
  main()
