"""TensorFlow imported without its start-up noise, and one plain line when there is no GPU.

On a machine without CUDA, `import tensorflow` and the first device query print a dozen
lines through absl before TF_CPP_MIN_LOG_LEVEL is read ("All log messages before
absl::InitializeLog()", "Could not find cuda drivers", "failed call to cuInit: ... (303)",
oneDNN and CPU-instruction notices): alarming, and none of it is a problem for training on
the CPU. They are filtered from file descriptor 2 during the import and the query only
(edge.classify.runtime_notices.stderr_filtered: anything else written meanwhile still
reaches stderr), and the trainer says once what matters: no GPU found, running on the CPU.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from edge.classify.runtime_notices import stderr_filtered

NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|cuda_dnn|cuda_fft"
    r"|cuda_blas|gpu_device|gpu_timer|cuda_diagnostics)\.cc:\d+\].*"
    r"|To enable the following instructions: .*"
    r"|.*Unable to register cu(DNN|FFT|BLAS) factory.*"
    r"|.*computation placer already registered.*"
    r"|.*TF-TRT Warning: Could not find TensorRT.*)\s*$")


def import_tensorflow_quietly(task: str = "running", stream: TextIO | None = None) -> int:
    """Import TensorFlow and count the GPUs it sees, its start-up noise filtered; say once on
    `stream` (stderr) when there is none ("no GPU found, <task> on the CPU"). Returns the count."""
    with stderr_filtered(NOISE):
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print(f"trainer: no GPU found, {task} on the CPU", file=stream or sys.stderr, flush=True)
    return len(gpus)
