"""Training backend: datasets, the one bilinear resize, the task registry, model builders and
the training loop. Run ``python -m training --help``.

Importing this package sets TensorFlow's oneDNN default, so it must come before TensorFlow's own
import (TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads). TensorFlow turns oneDNN
on by itself only on x86 CPUs with AVX512-VNNI, AVX512-BF16 or AMX; on an AVX2-only CPU (the AMD
EPYC of docs/training.md, "oneDNN on CPUs without AVX-512") turning it on trained task1's network
1.59x and task3's 1.55x as fast in float32 (benchmarks/onednn_default.py). A value the user set
is kept.
"""

import os as _os
import platform as _platform

if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
