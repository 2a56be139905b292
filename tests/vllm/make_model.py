"""A tiny random-weight Llama for vLLM, built offline (no hub): transformers' LlamaConfig with
random init from a seed, save_pretrained (safetensors), and a word-level tokenizer trained here
with `tokenizers`.

    python make_model.py OUTDIR --seed N

head_dim is 32: vLLM's CPU attention fails at the first generate with 16 on these machines.
"""

import argparse
import os

CORPUS = """the quick brown fox jumps over the lazy dog . a model is loaded from shared memory .
weights are staged by tensorinit before the server starts . the server answers every request .
one two three four five six seven eight nine ten . hello world , how are you today ?
""".split()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=128, help="hidden size (head_dim stays 32)")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    os.makedirs(args.outdir, exist_ok=True)
    special = ["<unk>", "<s>", "</s>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(CORPUS)] * 4, trainers.WordLevelTrainer(special_tokens=special, min_frequency=1))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(args.outdir)

    torch.manual_seed(args.seed)
    config = LlamaConfig(vocab_size=max(64, tok.get_vocab_size()), hidden_size=args.hidden,
                         intermediate_size=2 * args.hidden, num_hidden_layers=args.layers,
                         num_attention_heads=args.hidden // 32, num_key_value_heads=max(1, args.hidden // 64), head_dim=32,
                         max_position_embeddings=256, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                         torch_dtype="float32")
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # random init is small; widen it so greedy decoding is not a flat tie
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    model.save_pretrained(args.outdir, safe_serialization=True)
    print("model with seed %d in %s" % (args.seed, args.outdir))


if __name__ == "__main__":
    main()
