"""Makes the interop golden files: what the real AdapterHub and PEFT write.

Run with the PyTorch peer (../shared/peer/setup.sh), never by the project:

    /tmp/peer/bin/python tests/data/interop/make_golden.py

It writes, beside itself:

  tiny_bert/          a random Hugging Face BERT (2 layers, hidden 32, 4
                      heads, vocabulary of 64), config.json, model.safetensors
                      and vocab.txt, saved by transformers 4.57.6;
  <case>/             one adapter and its 2-label classifier head, as the
                      real library saved it: AdapterHub 1.3.0's save_adapter
                      (houlsby, houlsby_noln_gelu, pfeiffer, parallel) or
                      PEFT 0.21.2's save_pretrained (lora, lora_all, ia3,
                      prefix);
  <case>.npz          the token ids of 4 fixed rows (two of them padded) and
                      the logits the library gives on them in eval mode.

Every weight the method adds, and the head, is set to seeded random values
(a fresh LoRA or adapter would be the identity, and so prove nothing).
tests/test_interop_golden.py imports these folders and exports the same
weights, without PyTorch.
"""

import json
import os
import shutil

import numpy as np
import torch
import transformers

import adapters
import peft

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "tiny_bert")
TASK = "mrpc"

# [CLS] a b [SEP] c [SEP] rows, two padded with 0 ([PAD]).
INPUT_IDS = np.array([[2, 10, 11, 12, 3, 20, 21, 3],
                      [2, 30, 31, 3, 40, 3, 0, 0],
                      [2, 50, 51, 52, 53, 54, 55, 3],
                      [2, 60, 3, 61, 3, 0, 0, 0]], dtype=np.int64)
ATTENTION_MASK = (INPUT_IDS != 0).astype(np.int64)
TOKEN_TYPE_IDS = np.array([[0, 0, 0, 0, 0, 1, 1, 1],
                           [0, 0, 0, 0, 1, 1, 0, 0],
                           [0, 0, 0, 0, 0, 0, 0, 0],
                           [0, 0, 0, 1, 1, 0, 0, 0]], dtype=np.int64)


def make_tiny_bert():
  torch.manual_seed(0)
  config = transformers.BertConfig(
      vocab_size=64, hidden_size=32, num_hidden_layers=2,
      num_attention_heads=4, intermediate_size=37,
      max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
      # Larger than BERT's 0.02, so that the rows' logits differ clearly.
      initializer_range=0.3)
  model = transformers.BertModel(config, add_pooling_layer=True)
  shutil.rmtree(TINY, ignore_errors=True)
  model.save_pretrained(TINY, safe_serialization=True)
  words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
      "w%02d" % i for i in range(59)]
  with open(os.path.join(TINY, "vocab.txt"), "w") as f:
    f.write("\n".join(words) + "\n")


def randomize(model, selected, seed):
  """Seeded N(0, 0.3) on the selected parameters (IA3 vectors around 1)."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for (name, param) in sorted(model.named_parameters()):
      if selected(name):
        noise = torch.randn(param.shape, generator=generator) * 0.3
        param.copy_((1.0 if "ia3_l" in name else 0.0) + noise)


def logits_of(model):
  model.eval()
  with torch.no_grad():
    output = model(input_ids=torch.tensor(INPUT_IDS),
                   attention_mask=torch.tensor(ATTENTION_MASK),
                   token_type_ids=torch.tensor(TOKEN_TYPE_IDS))
  logits = output.logits if hasattr(output, "logits") else output[0]
  return logits.numpy()


def save_case(name, logits):
  np.savez(os.path.join(HERE, name + ".npz"), input_ids=INPUT_IDS,
           attention_mask=ATTENTION_MASK, token_type_ids=TOKEN_TYPE_IDS,
           logits=logits)
  print(name, "logits", logits.round(4).tolist())


def adapterhub_case(name, config, seed):
  model = adapters.BertAdapterModel.from_pretrained(TINY)
  model.add_adapter(TASK, config=config)
  model.add_classification_head(TASK, num_labels=2, layers=1,
                                use_pooler=True)
  model.set_active_adapters(TASK)
  randomize(model, lambda n: (".adapters.%s." % TASK) in n or
            n.startswith("heads.%s." % TASK), seed)
  logits = logits_of(model)
  model.set_active_adapters(None)
  without = logits_of(model)
  assert np.abs(logits - without).max() > 0.05, (name, "adapter inactive?")
  folder = os.path.join(HERE, name)
  shutil.rmtree(folder, ignore_errors=True)
  model.save_adapter(folder, TASK, with_head=True)
  save_case(name, logits)


def peft_case(name, config, seed):
  model = transformers.BertForSequenceClassification.from_pretrained(
      TINY, num_labels=2)
  model = peft.get_peft_model(model, config)
  randomize(model, lambda n: dict(model.named_parameters())[n].requires_grad,
            seed)
  logits = logits_of(model)
  folder = os.path.join(HERE, name)
  shutil.rmtree(folder, ignore_errors=True)
  model.save_pretrained(folder)
  save_case(name, logits)


def main():
  make_tiny_bert()
  adapterhub_case("houlsby", adapters.DoubleSeqBnConfig(
      reduction_factor=4, non_linearity="gelu_new"), seed=1)
  adapterhub_case("houlsby_noln_gelu", adapters.DoubleSeqBnConfig(
      reduction_factor=8, non_linearity="gelu"), seed=2)
  adapterhub_case("pfeiffer", adapters.SeqBnConfig(reduction_factor=4),
                  seed=3)
  adapterhub_case("parallel", adapters.ParBnConfig(reduction_factor=4),
                  seed=4)
  seq_cls = peft.TaskType.SEQ_CLS
  peft_case("lora", peft.LoraConfig(
      task_type=seq_cls, r=4, lora_alpha=8, lora_dropout=0.0,
      target_modules=["query", "value"]), seed=5)
  peft_case("lora_all", peft.LoraConfig(
      task_type=seq_cls, r=2, lora_alpha=6, lora_dropout=0.1,
      # Every projection of the encoder (plain "dense" would take the
      # pooler's too, which this project's LoRA does not adapt).
      target_modules=r".*encoder.*\.(query|key|value|dense)$"), seed=6)
  peft_case("ia3", peft.IA3Config(
      task_type=seq_cls,
      target_modules=r".*\.(key|value)$|.*layer\.\d+\.output\.dense$",
      feedforward_modules=r".*layer\.\d+\.output\.dense$"), seed=7)
  peft_case("prefix", peft.PrefixTuningConfig(
      task_type=seq_cls, num_virtual_tokens=3), seed=8)
  with open(os.path.join(HERE, "versions.json"), "w") as f:
    json.dump({"torch": torch.__version__,
               "transformers": transformers.__version__,
               "adapters": adapters.__version__,
               "peft": peft.__version__}, f, indent=2, sort_keys=True)


if __name__ == "__main__":
  main()
