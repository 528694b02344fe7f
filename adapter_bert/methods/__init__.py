# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The registry of tuning methods: one module per method, one line each.

Each module defines `METHOD`, a `base.TuningMethod` subclass (see base.py
for what a method declares). Everything else (run_classifier.py's flags, the
settings' records, bundles, the sweep, the pictures, the serving tools) reads
this registry and names no method itself. Adding a method is one file here
(or at the top level, as adapters.py) plus its line below; see
docs/contributing.md.

| method | trains | pooler by default |
|---|---|---|
| `adapters` | adapters + every LayerNorm (`--train_layernorm`) + head | frozen |
| `full` | everything | trains |
| `head` | the classifier head (feature extraction) | frozen |
| `layernorm` | every LayerNorm + head | frozen |
| `top_layers` | the top `--tune_top_layers` encoder layers + pooler + head | trains |
| `bitfit` | every bias (LayerNorm betas too) + head (Ben Zaken et al. 2021) | bias only |
| `lora` | low-rank updates of the query and value projections + head (Hu et al. 2022) | frozen |
| `ia3` | vectors rescaling keys, values and FFN activations + head (Liu et al. 2022) | frozen |
| `prefix` | key and value prefixes in every layer + head (Li and Liang 2021) | frozen |
| `parallel_adapters` | scaled parallel adapters beside the FFN + head (He et al. 2022) | frozen |
| `pfeiffer` | one adapter after each FFN + head (Pfeiffer et al. 2021) | frozen |
| `mam` | prefixes + scaled parallel adapters + head (He et al. 2022) | frozen |
"""

import collections
import importlib

# In the order `--help`, the docs and the sweep list them.
METHOD_MODULES = (
    "adapters",
    "adapter_bert.methods.full",
    "adapter_bert.methods.head",
    "adapter_bert.methods.layernorm",
    "adapter_bert.methods.top_layers",
    "adapter_bert.methods.bitfit",
    "adapter_bert.methods.lora",
    "adapter_bert.methods.ia3",
    "adapter_bert.methods.prefix",
    "adapter_bert.methods.parallel_adapters",
    "adapter_bert.methods.pfeiffer",
    "adapter_bert.methods.mam",
)

_registry = None


def registry():
  """{name: method class}, in METHOD_MODULES' order (imported on first use,
  so that a method module may import this package's base)."""
  global _registry
  if _registry is None:
    classes = [importlib.import_module(m).METHOD for m in METHOD_MODULES]
    _registry = collections.OrderedDict((c.name, c) for c in classes)
    if len(_registry) != len(classes):
      raise ValueError("two tuning methods share a name: %s" %
                       [c.name for c in classes])
  return _registry


def names():
  return list(registry())


def get(name):
  """The class registered as `name`.

  Raises:
    ValueError: unknown name; the message lists the known ones.
  """
  if name not in registry():
    raise ValueError("--tuning_mode=%s: unknown (known: %s)" %
                     (name, ", ".join(registry())))
  return registry()[name]


def build(name, options=None, num_layers=None):
  """The method `name` with `options` ({flag: value}, None = its default).

  Raises:
    ValueError: unknown name, an option it does not take or a bad value,
      naming the flag (one line).
  """
  return get(name).create(options, num_layers)


def from_dict(record, num_layers=None):
  """The method a `TuningMethod.to_dict` record describes."""
  cls = get(record["tuning_mode"])
  return cls.create(cls.options_from_record(record), num_layers)


def all_options():
  """{flag name: base.Option} over every method, each flag once.

  Methods may share an option (the adapters' flags are full's too); its
  default may differ between them, the type and choices may not. The
  returned Option carries the first method's default.

  Raises:
    ValueError: two methods declare one flag with different types.
  """
  options = collections.OrderedDict()
  for cls in registry().values():
    for option in cls.options:
      known = options.setdefault(option.name, option)
      if (known.type, known.choices) != (option.type, option.choices):
        raise ValueError("--%s is declared twice, as %s and %s" %
                         (option.name, known, option))
  return options


def option_defaults(name):
  """{method name: default} of one flag, for the methods that take it."""
  return collections.OrderedDict(
      (cls.name, cls.option(name).default) for cls in registry().values()
      if cls.option(name) is not None)


def settings_record(method):
  """Every flag of every method, None where `method` has no such option or
  builds nothing it shapes (`effective_settings`): the flat record of
  run.json and of a bundle's settings."""
  record = collections.OrderedDict([("tuning_mode", method.name)])
  settings = method.effective_settings()
  for name in all_options():
    record[name] = settings.get(name)
  return record


def reference():
  """The method every other is compared with (plain fine-tuning)."""
  found = [cls for cls in registry().values() if cls.reference]
  if len(found) != 1:
    raise ValueError("exactly one tuning method must be the reference, "
                     "found %s" % [c.name for c in found])
  return found[0]


def parse_spec(spec):
  """A sweep's method spelling -> (method name, options).

  "name" is the method with its defaults. Suffixes after colons each set
  options: one of its `variants` ("adapters:noln"), a number for its
  `spec_option` ("top_layers:2", which a spec must give when the option has
  no default), or any option of the method as "option=value"
  ("head:train_pooler=true", "top_layers:2:train_pooler=false").

  Raises:
    ValueError: unknown method, suffix or option, a value the option does
      not take, an option set twice, or a number the method needs left out,
      naming the spec.
  """
  (name, *suffixes) = spec.split(":")
  cls = get(name)
  options = {}
  for suffix in suffixes:
    if suffix in cls.variants:
      given = dict(cls.variants[suffix])
    elif cls.spec_option is not None and suffix.isdigit():
      given = {cls.spec_option: int(suffix)}
    elif "=" in suffix:
      (key, _, text) = suffix.partition("=")
      option = cls.option(key)
      if option is None:
        raise ValueError("method %r: %s has no option %r (its options: %s)" %
                         (spec, name, key,
                          ", ".join(o.name for o in cls.options)))
      try:
        given = {key: option.parse(text)}
      except ValueError as e:
        raise ValueError("method %r: %s" % (spec, e))
    else:
      known = (sorted(cls.variants) + (["N"] if cls.spec_option else []) +
               ["option=value"])
      raise ValueError("method %r: unknown option %r for %s (known: %s)" %
                       (spec, suffix, name, ", ".join(known)))
    twice = sorted(set(given) & set(options))
    if twice:
      raise ValueError("method %r sets --%s twice" % (spec, twice[0]))
    options.update(given)
  needed = cls.option(cls.spec_option) if cls.spec_option else None
  if needed is not None and needed.default is None and (
      needed.name not in options):
    raise ValueError("method %r needs a number, e.g. %s:2 (--%s)" %
                     (spec, name, needed.name))
  return (name, options)


def for_library(attribute, value, settings):
  """The first registered method whose class attribute `attribute`
  ("peft_type", "adapterhub_architecture") is `value` and which handles the
  library's configuration `settings`.

  Raises:
    ValueError: no method holds it; the message lists those that do.
  """
  for cls in registry().values():
    if getattr(cls, attribute) == value and cls.handles_library(settings):
      return cls
  known = sorted({getattr(c, attribute) for c in registry().values()
                  if getattr(c, attribute)})
  raise ValueError("%s %r has no tuning method here (known: %s)" %
                   (attribute, value, ", ".join(known)))
