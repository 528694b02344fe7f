# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fine-tunes BERT with adapters on a GLUE-style classification task.

Flags and outputs are those of Google BERT's run_classifier.py (the adapter-bert
README command runs as is), plus the adapter flags. With the default
`--tuning_mode=adapters` only the adapters, every LayerNorm and the classifier
head train; the pre-trained weights stay bit-identical.

This file is the command line only: it reads the flags in `main()` and hands
one `classifier.Settings` to `classifier.run` (adapter_bert/classifier/). It
exports no library names: Google BERT's importers call functions of its
run_classifier.py (`create_model(..., use_one_hot_embeddings)`,
`model_fn_builder(...)`, the `DataProcessor`s) whose signatures and meanings
differ here, so nothing pretends to be them.
"""

if __name__ == "__main__":
  # Before TensorFlow loads: its start-up noise is hidden unless --verbose.
  from adapter_bert import console  # pylint: disable=g-import-not-at-top
  console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from adapter_bert import classifier
from adapter_bert import console
from adapter_bert import errors
from adapter_bert import methods

PROGRAM = "run_classifier.py"

FLAGS = flags.FLAGS

## Required parameters
flags.DEFINE_string(
    "data_dir", None,
    "The input data dir. Should contain the .tsv files (or other data files) "
    "for the task.")
flags.DEFINE_string(
    "bert_config_file", None,
    "The config json file corresponding to the pre-trained BERT model.")
flags.DEFINE_string("task_name", None, "The name of the task to train.")
flags.DEFINE_string("vocab_file", None,
                    "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_string(
    "output_dir", None,
    "The output directory where the model checkpoints will be written.")

## Other parameters
flags.DEFINE_string(
    "init_checkpoint", None,
    "Initial checkpoint (usually from a pre-trained BERT model).")
flags.DEFINE_bool(
    "do_lower_case", True,
    "Whether to lower case the input text. Should be True for uncased "
    "models and False for cased models.")
flags.DEFINE_integer(
    "max_seq_length", 128,
    "The maximum total input sequence length after WordPiece tokenization. "
    "Longer sequences are truncated, shorter ones padded.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_bool("do_predict", False,
                  "Whether to run the model in inference mode on the test set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predict.")
flags.DEFINE_float("learning_rate", 5e-5,
                   "The initial learning rate for Adam. Adapters usually "
                   "want 1e-4 to 1e-3.")
flags.DEFINE_float("num_train_epochs", 3.0,
                   "Total number of training epochs to perform.")
flags.DEFINE_float(
    "warmup_proportion", 0.1,
    "Proportion of training to perform linear learning rate warmup for.")
flags.DEFINE_bool(
    "adam_bias_correction", False,
    "Correct Adam's moments for their zero start, as PyTorch's AdamW (and "
    "so AdapterHub and PEFT) do. BERT's optimizer, the default, does not: "
    "its early updates are several times larger at the same rate.")
flags.DEFINE_float("max_loss", 1e4,
                   "Divergence guard: a training step whose loss is NaN, Inf "
                   "or above this, or whose gradients are not finite, stops "
                   "the run before it changes anything (not on TPU).")
flags.DEFINE_integer("save_checkpoints_steps", 1000,
                     "How often to save the model checkpoint.")
flags.DEFINE_integer("iterations_per_loop", 1000,
                     "How many steps to make in each estimator call.")
flags.DEFINE_bool("use_tpu", False, "Whether to use TPU or GPU/CPU.")
flags.DEFINE_string(
    "tpu_name", None,
    "The Cloud TPU to use for training. This should be either the name "
    "used when creating the Cloud TPU, or a grpc://ip.address.of.tpu:8470 url.")
flags.DEFINE_string(
    "tpu_zone", None,
    "[Optional] GCE zone where the Cloud TPU is located in. If not "
    "specified, we will attempt to automatically detect it from metadata.")
flags.DEFINE_string(
    "gcp_project", None,
    "[Optional] Project name for the Cloud TPU-enabled project. If not "
    "specified, we will attempt to automatically detect it from metadata.")
flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
flags.DEFINE_integer(
    "num_tpu_cores", 8,
    "Only used if `use_tpu` is True. Total number of TPU cores to use.")

## Tuning methods: --tuning_mode and every flag a method declares.


def define_method_flags():
  """One flag per option of the registry's methods (adapter_bert/methods/).

  A flag's default is the methods' shared default; where they differ it is
  None, and each method's own default applies. Returns the option names.
  """
  registry = methods.registry()
  flags.DEFINE_enum("tuning_mode", methods.names()[0], methods.names(),
                    "What trains. " + "; ".join(
                        "%s: %s" % (name, cls.description)
                        for (name, cls) in registry.items()) + ".")
  definers = {int: flags.DEFINE_integer, float: flags.DEFINE_float,
              bool: flags.DEFINE_bool, str: flags.DEFINE_string}
  for (name, option) in methods.all_options().items():
    defaults = methods.option_defaults(name)
    shared = set(map(repr, defaults.values()))
    default = option.default if len(shared) == 1 else None
    help_text = option.help
    if default is None and any(v is not None for v in defaults.values()):
      help_text += " Default: %s." % "; ".join(
          "%s %s" % (method, value) for (method, value) in defaults.items())
    help_text += " [methods: %s]" % ", ".join(defaults)
    if option.choices:
      flags.DEFINE_enum(name, default, list(option.choices), help_text)
    else:
      definers[option.type](name, default, help_text)
  return list(methods.all_options())


METHOD_FLAGS = define_method_flags()
flags.DEFINE_string(
    "ablate_adapters", None,
    "Evaluate with the adapters of these encoder layers switched off, e.g. "
    "2-5 or 0,3 (0-based, as layer_N), or each_span: every span first-last "
    "in turn, in one session; --do_eval only. Results go to "
    "eval_results_ablated_<layers>.txt.")
flags.DEFINE_integer("seed", 12345,
                     "Random seed for initialisation, dropout and shuffling.")
flags.DEFINE_string(
    "adapter_bundle", None,
    "Evaluate or predict with this adapter bundle on the --init_checkpoint "
    "backbone, with no training checkpoint. Its settings (adapters, "
    "max_seq_length, do_lower_case) replace the flags'.")
flags.DEFINE_string(
    "export_adapter_bundle", None,
    "Where training writes its adapter bundle (default: "
    "<output_dir>/adapter_bundle).")
flags.DEFINE_string(
    "export_from_checkpoint", None,
    "Write the adapter bundle of this existing checkpoint (a folder or a "
    "prefix) to --export_adapter_bundle and stop; the task and adapter flags "
    "must describe how it was trained.")
flags.DEFINE_bool(
    "overwrite_output_dir", False,
    "Start again in an --output_dir that holds a run made with other "
    "settings: everything in it is deleted first. Without it such a folder "
    "is refused, naming the settings that differ (the same settings resume).")
flags.DEFINE_bool(
    "allow_partial_init_checkpoint", False,
    "Accept an --init_checkpoint holding BERT variables the model does not "
    "use (e.g. a 12-layer checkpoint under a 6-layer --bert_config_file); "
    "without it that is refused as a config mistake.")
flags.DEFINE_string("xnli_language", "zh",
                    "XNLI only: the language of the training, dev and test "
                    "rows.")
flags.DEFINE_integer("log_every_n_steps", 100,
                     "How often training logs loss, steps/s and examples/s.")
flags.DEFINE_enum(
    "padding", "auto", list(classifier.PADDING_POLICIES),
    "How batches are padded. static: every row to --max_seq_length (TPUs "
    "need it); batch: each batch to its longest row; bucket: as batch, with "
    "training batches drawn from rows of similar length; auto: static on "
    "TPU, bucket elsewhere. Eval and predict results do not depend on it.")
flags.DEFINE_enum(
    "strategy", "one_device", list(classifier.STRATEGIES),
    "How training uses devices (tf.distribute): one_device; mirrored "
    "(synchronous replicas over every local GPU, or --num_cpu_devices "
    "logical CPU devices); multi_worker (MultiWorkerMirroredStrategy over the "
    "machines TF_CONFIG lists). --train_batch_size stays the global batch. "
    "On Cloud TPU use --use_tpu instead.")
flags.DEFINE_integer(
    "num_cpu_devices", 0,
    "--strategy=mirrored on a machine without GPUs: mirror over this many "
    "logical CPU devices (shows the mechanism and tests it; no speed-up).")
flags.DEFINE_enum(
    "precision", "auto", ["auto"] + list(classifier.PRECISIONS),
    "The encoder's arithmetic. mixed_bfloat16: matmuls and activations in "
    "bfloat16 (TPUs; CPUs with AVX512-BF16 or AMX); mixed_float16: float16 "
    "with dynamic loss scaling (GPUs). Variables, LayerNorm, softmax and the "
    "loss stay float32 and checkpoints and bundles are float32 in every case, "
    "so a bundle serves under any precision. auto: mixed_bfloat16 on "
    "hardware that computes bfloat16 natively (TPU, GPU of compute "
    "capability 8.0+, CPU with AVX512_BF16 or AMX), else float32, logged at "
    "start with the reason; a resumed run keeps the precision it started "
    "with. float32 is exact on every machine.")
flags.DEFINE_bool(console.VERBOSE_FLAG, False, console.VERBOSE_HELP)
flags.DEFINE_integer(
    "intra_op_parallelism_threads", 0,
    "Threads one op may use; 0: TensorFlow's choice (all cores).")
flags.DEFINE_integer(
    "inter_op_parallelism_threads", 0,
    "Ops run at once; 0: 1 on a CPU-only machine (measured fastest there, see "
    "benchmarks/README.md), TensorFlow's choice elsewhere.")


def main(argv):
  del argv  # Unused: everything comes from the flags.
  console.configure_logging(FLAGS.verbose)
  names = classifier.Settings.field_names()
  # A method's option counts only when given: otherwise the method's own
  # default applies (and an option another method takes is no error).
  settings = classifier.Settings(**{
      name: (FLAGS[name].value if FLAGS[name].present or
             name not in METHOD_FLAGS else None) for name in names})
  explicit = frozenset(name for name in names if FLAGS[name].present)
  errors.run_program(PROGRAM, lambda: classifier.run(settings, explicit))


if __name__ == "__main__":
  app.run(main)
