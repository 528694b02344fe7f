"""The PyTorch side of the real round trip (roundtrip_real.sh): loads an
adapter folder exported by this project into the real AdapterHub or PEFT on
the real all-MiniLM-L6-v2, computes its logits on the token ids this project
used, and saves the adapter again with the library's own save. Run with the
PyTorch peer (../shared/peer/setup.sh), never by the project:

    /tmp/peer/bin/python tests/data/interop/roundtrip_peer.py \\
        --library=adapterhub --folder=W/export --model=/tmp/minilm \\
        --rows=W/rows.npz --out=W/peer.npz --resave=W/resaved
"""

import argparse
import os
import shutil

import numpy as np
import torch
import transformers

PATCH = "backbone_patch.safetensors"


def load_adapterhub(folder, model_dir):
  import adapters  # pylint: disable=g-import-not-at-top
  import safetensors.torch  # pylint: disable=g-import-not-at-top
  model = adapters.BertAdapterModel.from_pretrained(model_dir)
  name = model.load_adapter(folder)
  model.set_active_adapters(name)
  patch = os.path.join(folder, PATCH)
  if os.path.exists(patch):
    # The task's own LayerNorms: this model instance now serves this task.
    (missing, unexpected) = model.load_state_dict(
        safetensors.torch.load_file(patch), strict=False)
    assert not unexpected, unexpected

  def resave(target):
    model.save_adapter(target, name, with_head=True)
    if os.path.exists(patch):
      shutil.copy(patch, target)

  def without_method(run):
    # The head stays (it is not the method), the adapter is switched off.
    model.set_active_adapters(None)
    model.active_head = name
    try:
      return run(model)
    finally:
      model.set_active_adapters(name)

  return model, resave, without_method


def load_peft(folder, model_dir):
  import peft  # pylint: disable=g-import-not-at-top
  base = transformers.BertForSequenceClassification.from_pretrained(
      model_dir, num_labels=2)
  model = peft.PeftModel.from_pretrained(base, folder)

  def without_method(run):
    if model.peft_config["default"].is_prompt_learning:
      # PEFT's disable_adapter fails for a prompt method on this model
      # class; its base model runs without the prefix, with the classifier.
      return run(model.base_model)
    with model.disable_adapter():  # the classifier stays the trained one
      return run(model)

  return model, model.save_pretrained, without_method


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--library", choices=["adapterhub", "peft"],
                      required=True)
  parser.add_argument("--folder", required=True)
  parser.add_argument("--model", required=True)
  parser.add_argument("--rows", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--resave", required=True)
  args = parser.parse_args()
  torch.manual_seed(0)
  load = load_adapterhub if args.library == "adapterhub" else load_peft
  (model, resave, without_method) = load(args.folder, args.model)
  model.eval()
  rows = np.load(args.rows)

  def logits(forward=model):
    out = []
    with torch.no_grad():
      for start in range(0, len(rows["input_ids"]), 32):
        batch = {k: torch.tensor(rows[k][start:start + 32].astype(np.int64))
                 for k in ("input_ids", "attention_mask", "token_type_ids")}
        output = forward(**batch)
        out.append((output.logits if hasattr(output, "logits")
                    else output[0]).numpy())
    return np.concatenate(out)

  np.savez(args.out, logits=logits(), without_method=without_method(logits))
  shutil.rmtree(args.resave, ignore_errors=True)
  resave(args.resave)
  print("peer", args.library, args.folder, "->", args.out, args.resave)


if __name__ == "__main__":
  main()
