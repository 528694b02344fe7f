# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The classifier library: everything `run_classifier.py` does, room by room.

Nothing here reads command-line flags. A job is described by one immutable
`Settings` object (its fields are run_classifier.py's flag names) and run
with `run(settings)`:

```python
settings = classifier.Settings(
    task_name="MRPC", data_dir="glue/MRPC", output_dir="/tmp/mrpc",
    bert_config_file=..., vocab_file=..., init_checkpoint=...,
    do_train=True, do_eval=True, learning_rate=3e-4)
results = classifier.run(settings)   # {"dev": {"eval_accuracy": ...}}
```

The rooms, each with one job:

  settings     the `Settings` record, a bundle's settings merged in, their
               validation; the tuning method the settings build
  features     examples -> features, and the cache of their TFRecords
  inputs       input_fns over a features file, padding policies, buckets
  model_fn     BERT + head (`create_model`), `describe_model`, `model_fn`
  hooks        session run hooks, the TPU host call, scaffolds
  devices      strategies, session config, worker roles, the estimator
  checkpoints  checkpoint checks, compact checkpoints, fingerprints, the
               bundle export
  evaluation   eval and predict over a split, result files
  session_predictor  the model built once in one session for every split
               and ablation span (CPU, GPU)
  job          `run(settings)`: the job's phases on one `Job` record

Every user error raises `errors.InputError` with a one-line message. Every
file goes through `tf.io.gfile`, so paths may be `gs://` (Cloud TPU) or any
other TensorFlow file system.

This file only re-exports the names the command lines, the scripts, the
benchmarks and the other libraries use; everything else is in its room.
"""

from adapter_bert.classifier.devices import declare_cpu_devices
from adapter_bert.classifier.devices import make_estimator
from adapter_bert.classifier.devices import session_config
from adapter_bert.classifier.devices import STRATEGIES
from adapter_bert.classifier.evaluation import predict_examples
from adapter_bert.classifier.evaluation import read_splits
from adapter_bert.classifier.features import convert_single_example
from adapter_bert.classifier.features import FeatureCache
from adapter_bert.classifier.features import file_based_convert_examples_to_features
from adapter_bert.classifier.hooks import compact_scaffold
from adapter_bert.classifier.inputs import file_based_input_fn_builder
from adapter_bert.classifier.inputs import PAD_TO_MULTIPLE
from adapter_bert.classifier.inputs import padded_width
from adapter_bert.classifier.inputs import PADDING_POLICIES
from adapter_bert.classifier.inputs import resolve_padding
from adapter_bert.classifier.job import load_backbone_inputs
from adapter_bert.classifier.job import run
from adapter_bert.classifier.model_fn import create_model
from adapter_bert.classifier.model_fn import describe_model
from adapter_bert.classifier.model_fn import Model
from adapter_bert.classifier.model_fn import PRECISIONS
from adapter_bert.classifier.session_predictor import SessionPredictor
from adapter_bert.classifier.settings import build_tuning_method
from adapter_bert.classifier.settings import Settings
from adapter_bert.classifier.settings import with_resolved_precision
