"""`--load-format tensorinit`: vLLM's default loader with the files replaced by tensorinit's
staged weights.

The class derives from vLLM's DefaultModelLoader and replaces only where the tensors come from
(_get_weights_iterator for the model's own weights), so everything else is vLLM's own and stays
in step with it: load_weights, the "weights not initialized from checkpoint" check (unquantized
models only; online-quantization and KV-cache scales exempt), the expert-parallel weight filter,
the --mm-encoder-only filter, the model's is_unused_checkpoint_weight, secondary_weights (read
from their files by vLLM: tensorinit stages the main model directory only), and the "Loading
weights took" log line. The staged tensors are filtered one by one where vLLM filters whole
shards (a shard is skipped only when every tensor in it is filtered; here each such tensor is).
"""

from __future__ import annotations

import time
from typing import Any, Generator, Tuple

import torch
from vllm.logger import init_logger
from vllm.model_executor.model_loader.default_loader import DefaultModelLoader
from vllm.model_executor.model_loader.ep_weight_filter import should_skip_weight

from .loader import open_staged, staged_tensors

logger = init_logger("vllm.tensorinit")  # under "vllm": vLLM's handler prints it


def _mapped_name(mapper: Any, name: str) -> Any:
    return name if mapper is None else mapper.map_name(name)


class TensorinitModelLoader(DefaultModelLoader):
    """Weights from tensorinit's tensor table ($TENSORINIT_SOCKET in signal mode, $TENSORINIT_TABLE
    in exec mode), not from files."""

    def download_model(self, model_config: Any) -> None:
        pass  # tensorinit already chose and staged the source

    def _is_primary(self, source: Any) -> bool:
        return source.prefix == "" and not source.subfolder and getattr(self, "_model_path", None) == source.model_or_path

    def get_all_weights(self, model_config: Any, model: Any) -> Generator[Tuple[str, torch.Tensor], None, None]:
        self._model_path = model_config.model
        yield from super().get_all_weights(model_config, model)

    def _get_weights_iterator(self, source: Any) -> Generator[Tuple[str, torch.Tensor], None, None]:
        if not self._is_primary(source):  # secondary_weights: vLLM reads their files
            yield from super()._get_weights_iterator(source)
            return
        weights, waited = open_staged()
        lm_prefixes = self._encoder_only_lm_prefixes
        mapper = self._encoder_only_weights_mapper
        unused = source.is_unused_weight

        def skip(name: str) -> bool:
            if should_skip_weight(name, self.local_expert_ids):
                return True
            if unused is not None and unused(name):
                return True
            if lm_prefixes:
                mapped = _mapped_name(mapper, name)
                return mapped is not None and mapped.startswith(tuple(lm_prefixes))
            return False

        table = weights.table
        where = table.get("source", {}).get("path") or table.get("source", {}).get("url", "?")
        target = "pagecache" if "arenas" not in table else ",".join(sorted({a.get("device", "?") for a in table["arenas"]}))
        logger.info("tensorinit: %d staged tensors from %s (%s, target %s); waited %.2f s for staging",
                    len(weights.names()), where, table.get("source", {}).get("type", "?"), target, waited)
        if self.counter_before_loading_weights == 0.0:
            self.counter_before_loading_weights = time.perf_counter()
        yield from staged_tensors(weights, skip)
