"""load_into_module on real transformers model classes built on the meta device: every parameter
becomes a view of the arena, the outputs equal the original model's, and missing and unexpected
keys are reported."""

from __future__ import annotations

import pytest

import tensorinit_client as tc

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def as_raw(state: dict) -> dict:
    """state dict -> {name: (safetensors dtype, shape, bytes)} as tensorinit stages it."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.int32: "I32", torch.bool: "BOOL", torch.uint8: "U8"}
    out = {}
    for name, t in state.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        out[name] = (names[t.dtype], list(t.shape), raw)
    return out


def checkpoint(model) -> dict:
    """What save_pretrained writes: the state dict without the tied copies."""
    state = model.state_dict()
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) and "lm_head.weight" in state else set()
    return {k: v for k, v in state.items() if k not in tied}


def llama_config():
    return transformers.LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                    num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                                    max_position_embeddings=64, tie_word_embeddings=True)


def build_on_meta(cls, config):
    with torch.device("meta"):
        return cls(config)


def restore_non_persistent_buffers(model, reference) -> None:
    """Buffers outside the state dict (Llama's rotary inv_freq) are not in a checkpoint: take them
    from a module built on the CPU, as transformers' own loading recomputes them."""
    ref = dict(reference.named_buffers())
    for name, buf in list(model.named_buffers()):
        if buf.is_meta:
            owner_path, _, attr = name.rpartition(".")
            model.get_submodule(owner_path)._buffers[attr] = ref[name].clone()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_llama_on_meta_gets_every_weight_and_tied_head(arenas, dtype):
    torch.manual_seed(0)
    config = llama_config()
    original = transformers.LlamaForCausalLM(config).to(dtype).eval()
    weights = tc.StagedWeights(arenas.make(as_raw(checkpoint(original))))
    model = build_on_meta(transformers.LlamaForCausalLM, config).to(dtype)
    result = model_result = weights.load_into_module(model)
    assert result == tc.LoadResult(missing=[], unexpected=[]), model_result
    assert model.lm_head.weight is model.model.embed_tokens.weight  # the tie survives
    assert not [n for n, p in model.named_parameters() if p.is_meta]
    ptr = model.model.layers[0].mlp.up_proj.weight.data_ptr()
    assert ptr == weights.torch("model.layers.0.mlp.up_proj.weight").data_ptr()  # a view, no copy
    restore_non_persistent_buffers(model, original)
    ids = torch.tensor([[1, 5, 9, 42, 3]])
    with torch.no_grad():
        assert torch.equal(model.eval()(ids).logits, original(ids).logits)


def test_missing_and_unexpected_keys_are_reported(arenas):
    torch.manual_seed(0)
    config = llama_config()
    config.tie_word_embeddings = False
    original = transformers.LlamaForCausalLM(config)
    raw = as_raw(checkpoint(original))
    del raw["model.layers.1.post_attention_layernorm.weight"]
    raw["model.layers.9.extra.weight"] = ("F32", [2], b"\0" * 8)
    weights = tc.StagedWeights(arenas.make(raw))
    model = build_on_meta(transformers.LlamaForCausalLM, config)
    result = weights.load_into_module(model)
    assert result.missing == ["model.layers.1.post_attention_layernorm.weight"]
    assert result.unexpected == ["model.layers.9.extra.weight"]
    assert model.model.layers[1].post_attention_layernorm.weight.is_meta  # left as it was


def test_bert_buffers_and_parameters(arenas):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=16)
    original = transformers.BertModel(config).eval()
    state = original.state_dict()
    weights = tc.StagedWeights(arenas.make(as_raw(state)))
    model = build_on_meta(transformers.BertModel, config)
    result = weights.load_into_module(model)
    assert result == tc.LoadResult([], [])
    restore_non_persistent_buffers(model, original)
    ids = torch.tensor([[2, 7, 1, 4]])
    with torch.no_grad():
        assert torch.equal(model.eval()(ids).last_hidden_state, original(ids).last_hidden_state)


def test_shape_mismatch_is_an_error(arenas):
    weights = tc.StagedWeights(arenas.make({"head.weight": ("F32", [2, 2], b"\0" * 16)}))
    wrong = torch.nn.Module()
    wrong.add_module("head", torch.nn.Linear(16, 4, bias=False, device="meta"))
    with pytest.raises(ValueError, match="head.weight"):
        weights.load_into_module(wrong)
