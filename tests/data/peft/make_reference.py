"""Makes the PEFT reference outputs that tests/test_peft_reference.py checks
this project against. Run with the PyTorch peer (../shared/peer/setup.sh),
never by the project:

    /tmp/peer/bin/python tests/data/peft/make_reference.py /tmp/minilm ../shared/glue/MRPC

For each of LoRA, IA3 and prefix tuning it builds HF PEFT 0.21's model on the
real all-MiniLM-L6-v2 with a 2-label classifier, sets the method's weights and
the head to seeded random values (a freshly initialised LoRA would be the
identity), and saves in `<method>.npz`: PEFT's own names and values of the
method's weights and the head, the input ids of 8 real MRPC dev pairs (PEFT's
tokenizer), and PEFT's logits in eval mode.
"""

import csv
import os
import sys

import numpy as np
import peft
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))


def mrpc_pairs(data_dir, count=8):
  with open(os.path.join(data_dir, "dev.tsv"), encoding="utf-8-sig") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
  return [(r[3], r[4]) for r in rows[:count]]


def configs():
  return {
      "lora": peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=8,
                              lora_alpha=16, lora_dropout=0.0,
                              target_modules=["query", "value"]),
      # The paper's IA3: keys, values and the FFN's intermediate activations
      # (the input of each layer's output.dense, not attention.output.dense).
      "ia3": peft.IA3Config(
          task_type=peft.TaskType.SEQ_CLS,
          target_modules=r".*\.(key|value)$|.*layer\.\d+\.output\.dense$",
          feedforward_modules=r".*layer\.\d+\.output\.dense$"),
      "prefix": peft.PrefixTuningConfig(task_type=peft.TaskType.SEQ_CLS,
                                        num_virtual_tokens=5),
  }


def main(model_dir, data_dir):
  torch.manual_seed(0)
  tokenizer = transformers.BertTokenizer.from_pretrained(model_dir)
  pairs = mrpc_pairs(data_dir)
  batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs],
                    padding=True, truncation=True, max_length=128,
                    return_tensors="pt")
  for (name, config) in configs().items():
    model = transformers.BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=2)
    model = peft.get_peft_model(model, config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
      for (param_name, param) in model.named_parameters():
        if param.requires_grad:
          noise = torch.randn(param.shape, generator=generator) * 0.3
          param.copy_((1.0 if "ia3_l" in param_name else 0.0) + noise)
    model.eval()
    with torch.no_grad():
      logits = model(**batch).logits.numpy()
    trained = {n: p.detach().numpy().copy()
               for (n, p) in model.named_parameters() if p.requires_grad}
    np.savez_compressed(
        os.path.join(HERE, name + ".npz"), logits=logits,
        input_ids=batch["input_ids"].numpy(),
        attention_mask=batch["attention_mask"].numpy(),
        token_type_ids=batch["token_type_ids"].numpy(),
        names=np.array(sorted(trained)),
        **{"weight:" + n: v for (n, v) in trained.items()})
    print(name, logits.shape, len(trained), "trained tensors:",
          ", ".join(sorted(trained))[:300])


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
