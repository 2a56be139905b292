"""Compares two offline.py results: greedy token ids and every top logprob, exactly.

    python compare.py A.json B.json [--expect-differ]     exit 0 when as expected
"""

import json
import sys


def main():
    a, b = (json.load(open(p)) for p in sys.argv[1:3])
    expect_differ = "--expect-differ" in sys.argv
    same_ids = [x["token_ids"] == y["token_ids"] for x, y in zip(a, b)]
    same_lp = [x["logprobs"] == y["logprobs"] for x, y in zip(a, b)]
    identical = len(a) == len(b) and all(same_ids) and all(same_lp)
    tokens = sum(len(x["token_ids"]) for x in a)
    print("%s vs %s: %d prompts, %d tokens; token ids identical in %d, top-5 logprobs identical in %d"
          % (sys.argv[1], sys.argv[2], len(a), tokens, sum(same_ids), sum(same_lp)))
    return 0 if identical != expect_differ else 1


if __name__ == "__main__":
    sys.exit(main())
