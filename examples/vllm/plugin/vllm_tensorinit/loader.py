"""The part of the vLLM loader that does the work, free of vLLM imports (tested with a stand-in
model in examples/vllm/check_loader.py).

vLLM builds the model (on the GPU, parameters uninitialised), then calls the loader's
load_weights(model, model_config). Here: block until tensorinit has staged the weights (the socket
of signal mode, or the table in exec mode), map every tensor as a torch tensor over the /dev/shm
arena without copying (or over tensorinit's GPU memory for target: cuda), and feed them to the
model's own load_weights(iterable of (checkpoint name, tensor)), which renames, fuses (qkv, gate/up)
and shards them for tensor parallelism exactly as it does for safetensors files. Each rank maps
the same arena: the weights were read from storage once.
"""

import logging
import os
import time

try:
    from . import tensorinit_client as tc  # copied beside this file in the image
except ImportError:  # in the repository: examples/clients/python on sys.path
    import tensorinit_client as tc

log = logging.getLogger("vllm_tensorinit")


def staged_tensors(weights):
    """(name, torch tensor) for every tensor of the table, in table order."""
    for name in weights.names():
        yield name, weights.torch(name)


def load_staged_weights(model, timeout=None):
    """Loads every staged tensor into `model` (a vLLM model: has load_weights(iterable)).
    Returns the set of parameter names loaded. Raises RuntimeError naming the parameters left
    unloaded, and tc.TensorinitError when staging failed."""
    if timeout is None and os.environ.get("TENSORINIT_LOAD_TIMEOUT"):
        timeout = float(os.environ["TENSORINIT_LOAD_TIMEOUT"])
    start = time.monotonic()
    weights = tc.wait_and_open(timeout=timeout)
    waited = time.monotonic() - start
    expected = {name for name, _ in model.named_parameters()}
    loaded = model.load_weights(staged_tensors(weights))
    if loaded is not None:  # vLLM models return the parameter names they filled
        missing = expected - set(loaded)
        if missing:
            raise RuntimeError("tensorinit: %d parameters not in the staged weights, e.g. %s"
                               % (len(missing), sorted(missing)[:5]))
    log.info("tensorinit: %d tensors from %s (waited %.2f s for staging, loaded in %.2f s)",
             len(weights.names()), weights.table.get("source", {}).get("path", "?"), waited,
             time.monotonic() - start - waited)
    return loaded
