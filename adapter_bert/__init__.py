# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""adapter-BERT's library: everything but the top-level BERT modules and the
command lines (run_classifier.py, scripts/, benchmarks/).

This file imports nothing, on purpose: a command line imports
`adapter_bert.console` before TensorFlow loads, to hide its start-up noise,
and importing the package must not load TensorFlow first.
"""
