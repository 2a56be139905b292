"""The part of the loader that does the work, free of vLLM imports (tested without vLLM by
examples/vllm/check_loader.py; the vLLM loader class is in vllm_loader.py).

Block until tensorinit has staged the weights (the socket of signal mode, or the table in exec
mode), then hand each staged tensor, as a torch view of the /dev/shm arena (or of the page-cached
file, or of tensorinit's GPU memory for target: cuda) without a copy, to the model's own
load_weights(iterable of (checkpoint name, tensor)), which renames, fuses (qkv, gate/up) and shards
them for tensor parallelism exactly as it does for safetensors files. Each rank maps the same
arena: the weights were read from storage once.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator, Optional, Tuple

import tensorinit_client as tc


def load_timeout() -> Optional[float]:
    """$TENSORINIT_LOAD_TIMEOUT seconds, else wait as long as tensorinit takes."""
    value = os.environ.get("TENSORINIT_LOAD_TIMEOUT")
    return float(value) if value else None


def open_staged(timeout: Optional[float] = None) -> Tuple[tc.StagedWeights, float]:
    """(the staged weights, seconds waited for them). Raises tc.TensorinitError when staging failed."""
    start = time.monotonic()
    weights = tc.wait_and_open(timeout=load_timeout() if timeout is None else timeout)
    return weights, time.monotonic() - start


def staged_tensors(weights: tc.StagedWeights,
                   skip: Optional[Callable[[str], bool]] = None) -> Iterator[Tuple[str, Any]]:
    """(name, torch tensor) for every tensor of the table, in table order, but those skip() names."""
    for name in weights.names():
        if skip is None or not skip(name):
            yield name, weights.torch(name)


def load_staged_weights(model: Any, timeout: Optional[float] = None) -> Any:
    """Without vLLM's loader machinery: loads every staged tensor into `model` (anything with
    load_weights(iterable), as vLLM models have). Returns what load_weights returns (vLLM models:
    the parameter names filled). Raises RuntimeError naming the parameters left unloaded, and
    tc.TensorinitError when staging failed."""
    weights, _ = open_staged(timeout)
    expected = {name for name, _ in model.named_parameters()}
    loaded = model.load_weights(staged_tensors(weights))
    if loaded is not None:
        missing = expected - set(loaded)
        if missing:
            raise RuntimeError("tensorinit: %d parameters not in the staged weights, e.g. %s"
                               % (len(missing), sorted(missing)[:5]))
    return loaded
