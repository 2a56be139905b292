"""vLLM plugin: `--load-format tensorinit` loads the weights that tensorinit staged.

Installed as a `vllm.general_plugins` entry point (pyproject.toml); vLLM calls register() in each
of its processes (the engine core too, when it runs in its own process). The loader class is in
vllm_loader.py; loader.py holds the parts that need no vLLM.
"""


def register() -> None:
    from vllm.model_executor.model_loader import _LOAD_FORMAT_TO_MODEL_LOADER, register_model_loader

    from .vllm_loader import TensorinitModelLoader

    if _LOAD_FORMAT_TO_MODEL_LOADER.get("tensorinit") is not TensorinitModelLoader:
        register_model_loader("tensorinit")(TensorinitModelLoader)
