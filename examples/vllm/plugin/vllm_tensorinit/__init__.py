"""vLLM plugin: `--load-format tensorinit` loads the weights that tensorinit staged.

Installed as a `vllm.general_plugins` entry point (pyproject.toml); vLLM calls register() in each
of its processes. The loader itself is in loader.py, importable without vLLM for testing.
"""


def register():
    from vllm.model_executor.model_loader import register_model_loader
    from vllm.model_executor.model_loader.base_loader import BaseModelLoader

    from .loader import load_staged_weights

    @register_model_loader("tensorinit")
    class TensorinitModelLoader(BaseModelLoader):
        """Weights from tensorinit's tensor table (handoff.mode: signal), not from files."""

        def download_model(self, model_config):
            pass  # tensorinit already chose and staged the source

        def load_weights(self, model, model_config):
            load_staged_weights(model)

    return TensorinitModelLoader
