"""Client side of tensorinit's handoff: wait until the weights are staged, then map every tensor
without copying: from its /dev/shm arena (stage.target: host), from the page-cached source file
(stage.target: pagecache), or from tensorinit's GPU memory through CUDA IPC (stage.target: cuda).

Standard library only; numpy and torch are used when installed.

    import tensorinit_client as tc
    weights = tc.wait_and_open()            # blocks on $TENSORINIT_SOCKET (or reads $TENSORINIT_TABLE)
    w = weights.tensor("embed.weight")      # torch.Tensor, else numpy.ndarray, else memoryview
    result = weights.load_into_module(model)  # model built on the meta device
    print(result.missing, result.unexpected)
    tc.notify_ready()                       # serving now (handoff.ready: {socket: true})

Install: `pip install examples/clients/python` (from the repository root); see its README.md.
"""

from __future__ import annotations

import os
from typing import Optional

from ._optional import numpy, torch
from .cuda import CudaIpc
from .handoff import ReadySignal, Table, TensorinitError, notify_ready, parse_answer, read_table, wait_ready
from .weights import DTYPES, LoadResult, StagedWeights

__version__ = "0.1.0"
_DTYPES = DTYPES  # the name of the single-file client (0.0)

__all__ = ["TensorinitError", "wait_ready", "read_table", "ReadySignal", "StagedWeights",
           "wait_and_open", "notify_ready", "LoadResult", "CudaIpc", "DTYPES", "Table", "parse_answer", "numpy", "torch"]


def wait_and_open(timeout: Optional[float] = None) -> StagedWeights:
    """Signal mode ($TENSORINIT_SOCKET set): blocks until ready. Exec mode: the table is ready."""
    if os.environ.get("TENSORINIT_SOCKET"):
        return StagedWeights(wait_ready(timeout=timeout))
    return StagedWeights(read_table())
