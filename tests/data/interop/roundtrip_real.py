"""The real round trip: trained MRPC bundles on the real all-MiniLM-L6-v2,
through the real AdapterHub 1.3.0 and PEFT 0.21.2, and back.

For each bundle it exports the library's folder (scripts/convert_bundle.py's
library, LayerNorms as the backbone patch), has the PyTorch peer load it on
the Hugging Face all-MiniLM-L6-v2 and compute logits on the same token ids
of real MRPC dev rows (roundtrip_peer.py), and compares them with this
project's; the peer then saves the adapter with the library's own save, and
that folder, imported here, must give this project's outputs again. Prints
one line per bundle and exits 1 if a difference exceeds --atol.

    .venv/bin/python tests/data/interop/roundtrip_real.py \\
        --bundles=/tmp/io/adapters/adapter_bundle,... \\
        --peer_python=/tmp/peer/bin/python --hf_model=/tmp/minilm

Needs the peer (../shared/peer/setup.sh); the project never imports torch.
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, REPO_ROOT)

from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from adapter_bert import bundles  # pylint: disable=g-import-not-at-top,wrong-import-position
from adapter_bert import classifier
from adapter_bert import conversion
from adapter_bert import glue
from adapter_bert import multitask
import modeling
import tokenization


def dev_rows(glue_dir, bundle, count):
  """Token ids of the first `count` MRPC dev pairs, as this project makes
  them (the bundle's length and casing)."""
  with open(os.path.join(glue_dir, "MRPC", "dev.tsv"), encoding="utf-8") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
  return rows[:count], bundle.settings()


def features(rows, backbone, settings):
  tokenizer = tokenization.FullTokenizer(backbone.vocab_file,
                                         settings["do_lower_case"])
  labels = glue.get_task("MRPC").get_labels()
  made = [classifier.convert_single_example(
      i, glue.InputExample(str(i), r[3], r[4], r[0]), labels,
      settings["max_seq_length"], tokenizer) for (i, r) in enumerate(rows)]
  return {"input_ids": np.array([f.input_ids for f in made], np.int32),
          "attention_mask": np.array([f.input_mask for f in made], np.int32),
          "token_type_ids": np.array([f.segment_ids for f in made], np.int32)}


def log_probabilities(backbone, bundle_dir, rows):
  config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
  predictor = multitask.MultiTaskPredictor(config, backbone.init_checkpoint,
                                           backbone.vocab_file)
  entry = predictor.tasks[predictor.add_task(bundle_dir)]
  outputs = []
  for start in range(0, len(rows["input_ids"]), 32):
    feed = dict(zip(entry["inputs"], [
        rows[k][start:start + 32]
        for k in ("input_ids", "attention_mask", "token_type_ids")]))
    outputs.append(predictor.session.run(entry["outputs"]["probabilities"],
                                         feed))
  return np.log(np.concatenate(outputs))


def log_softmax(logits):
  shifted = logits - logits.max(axis=1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def round_trip(args, backbone, bundle_dir, work):
  bundle = bundles.read_bundle(bundle_dir)
  method = bundle.tuning_method()
  library = "adapterhub" if method.adapterhub_architecture else "peft"
  (texts, settings) = dev_rows(args.glue_dir, bundle, args.rows)
  rows = features(texts, backbone, settings)
  np.savez(os.path.join(work, "rows.npz"), **rows)
  ours = log_probabilities(backbone, bundle_dir, rows)
  exported = os.path.join(work, "exported")
  conversion.export(library, bundle_dir, exported, args.hf_model,
                    backbone_patch=(library == "adapterhub"))
  resaved = os.path.join(work, "resaved")
  subprocess.run([args.peer_python, os.path.join(HERE, "roundtrip_peer.py"),
                  "--library=" + library, "--folder=" + exported,
                  "--model=" + args.hf_model,
                  "--rows=" + os.path.join(work, "rows.npz"),
                  "--out=" + os.path.join(work, "peer.npz"),
                  "--resave=" + resaved], check=True, cwd="/tmp")
  peer = np.load(os.path.join(work, "peer.npz"))
  theirs = log_softmax(peer["logits"])
  # What the method itself changes there: the comparison must see more.
  effect = np.abs(theirs - log_softmax(peer["without_method"])).max()
  imported = os.path.join(work, "imported_bundle")
  conversion.import_folder(library, resaved, backbone, "MRPC",
                           settings["max_seq_length"],
                           settings["do_lower_case"], imported)
  again = log_probabilities(backbone, imported, rows)
  (out, back) = (np.abs(ours - theirs).max(), np.abs(ours - again).max())
  same = (ours.argmax(1) == theirs.argmax(1)).mean()
  print("%-32s %-10s %d rows: exported, %s's log-probabilities within %.1e "
        "(same label on %.1f%%; the method moves them by up to %.1e); saved "
        "by %s and imported, within %.1e of ours" % (
            method.label()[:32], library, len(ours), library, out, 100 * same,
            effect, library, back))
  return max(out, back)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--bundles", required=True,
                      help="comma-separated MRPC bundles on all-MiniLM-L6-v2")
  parser.add_argument("--bert_dir",
                      default=os.path.join(REPO_ROOT, ".cache", "assets",
                                           "all-MiniLM-L6-v2"))
  parser.add_argument("--hf_model", default="/tmp/minilm")
  parser.add_argument("--glue_dir",
                      default=os.path.join(os.path.dirname(REPO_ROOT),
                                           "shared", "glue"))
  parser.add_argument("--peer_python", default="/tmp/peer/bin/python")
  parser.add_argument("--work_dir", default="/tmp/adapter_bert_roundtrip")
  parser.add_argument("--rows", type=int, default=200)
  parser.add_argument("--atol", type=float, default=1e-4)
  args = parser.parse_args()
  backbone = multitask.Backbone(
      *[os.path.join(args.bert_dir, n) for n in
        ("bert_config.json", "vocab.txt", "bert_model.ckpt")])
  worst = 0.0
  for (i, bundle_dir) in enumerate(args.bundles.split(",")):
    work = os.path.join(args.work_dir, str(i))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    worst = max(worst, round_trip(args, backbone, bundle_dir, work))
  print("largest difference %.1e (tolerance %.0e)" % (worst, args.atol))
  sys.exit(0 if worst <= args.atol else 1)


if __name__ == "__main__":
  main()
