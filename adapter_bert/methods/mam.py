# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The MAM adapter (He et al., ICLR 2022, "Towards a Unified View of
Parameter-Efficient Transfer Learning"): prefix tuning on the attention and
a scaled parallel adapter beside the feed-forward block, composed from the
two methods (`base.ComposedMethod`).

Its variables are theirs (`.../attention/self/prefix/keys`, ...,
`.../output/parallel_adapter/weights1`, ...); its flags are theirs
(`--prefix_length`, `--adapter_size`, `--adapter_scale`, ...). Trained: both
and the head.
"""

from adapter_bert.methods import base
from adapter_bert.methods import parallel_adapters
from adapter_bert.methods import prefix


class MamMethod(base.ComposedMethod):
  """Prefixes in attention + scaled parallel adapters beside the FFN, and
  the head, train."""

  name = "mam"
  description = ("prefix tuning + scaled parallel adapters beside the "
                 "feed-forward block + classifier head train")
  members = (prefix.PrefixMethod, parallel_adapters.ParallelAdaptersMethod)
  options = base.member_options(members)
  marker = "X"


METHOD = MamMethod
