"""Greedy generation with vLLM's offline API; writes token ids, text and top logprobs as JSON.

    python offline.py --model DIR --load-format safetensors|tensorinit --out RESULT.json

VLLM_ENABLE_V1_MULTIPROCESSING=0 keeps the engine in this process (about 27 s faster per run
here); with it on, the engine core is a spawned process that imports this file again: hence the
main guard, and the plugin's register() runs in that process too (entry point).
"""

import argparse
import json
import signal

PROMPTS = ["the quick brown fox", "weights are staged by", "one two three", "hello world , how"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--load-format", default="safetensors")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-tokens", type=int, default=12)
    args = parser.parse_args()
    # Signal mode: tensorinit sends SIGUSR1 once the weights are ready (readiness is taken from the
    # socket by the plugin); the handler makes the signal harmless whenever it comes.
    signal.signal(signal.SIGUSR1, lambda *_: None)

    from vllm import LLM, SamplingParams

    llm = LLM(model=args.model, load_format=args.load_format, dtype="float32", max_model_len=128,
              enforce_eager=True, seed=0, max_num_seqs=4)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, logprobs=5, ignore_eos=True)
    results = []
    for out in llm.generate(PROMPTS, params):
        c = out.outputs[0]
        results.append({
            "prompt": out.prompt, "token_ids": list(c.token_ids), "text": c.text,
            "logprobs": [{str(k): v.logprob for k, v in sorted(step.items())} for step in c.logprobs],
        })
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("offline: %d prompts, load format %s -> %s" % (len(results), args.load_format, args.out))


if __name__ == "__main__":
    main()
