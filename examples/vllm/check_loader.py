"""Checks the vLLM loader's logic (plugin/vllm_tensorinit/loader.py) without vLLM or a GPU: a
stand-in model built the way vLLM builds BERT-style layers (query/key/value fused into one
qkv_proj parameter, filled through a load_weights(iterable) that maps checkpoint names) receives
the weights tensorinit staged, and every parameter is compared with the original safetensors file.

    tensorinit run -f examples/minilm/deployment.yaml -- python3 examples/vllm/check_loader.py

Needs torch (CPU is enough). Exit 0 when every parameter matches.
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "plugin"))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
import signal  # noqa: E402

signal.signal(signal.SIGUSR1, lambda *_: None)  # see examples/minilm/server.py
import torch  # noqa: E402

from vllm_tensorinit.loader import load_staged_weights  # noqa: E402


class StandInModel(torch.nn.Module):
    """Parameters named and fused as vLLM names them; load_weights in vLLM's style."""

    FUSED = (("query", 0), ("key", 1), ("value", 2))

    def __init__(self, header):
        super().__init__()
        self.header = header
        self.params = torch.nn.ParameterDict()
        for name, info in header.items():
            if name == "__metadata__" or info["dtype"] != "F32":
                continue
            shape = info["shape"]
            target = self.target_name(name)
            if any(".attention.self.%s." % part in name for part, _ in self.FUSED):
                if target not in self.params:
                    self.params[target] = torch.nn.Parameter(torch.empty([3 * shape[0]] + shape[1:]), requires_grad=False)
            else:
                self.params[target] = torch.nn.Parameter(torch.empty(shape), requires_grad=False)

    @classmethod
    def target_name(cls, name):
        for part, _ in cls.FUSED:
            name = name.replace(".attention.self.%s." % part, ".attention.qkv_proj.")
        return name.replace(".", "__")  # ParameterDict keys cannot hold dots

    def load_weights(self, weights):
        loaded = set()
        for name, tensor in weights:
            target = self.target_name(name)
            if target not in self.params:
                continue  # e.g. the I64 position_ids buffer
            param = self.params[target]
            for part, index in self.FUSED:
                if ".attention.self.%s." % part in name:
                    rows = tensor.shape[0]
                    param.data[index * rows:(index + 1) * rows].copy_(tensor)
                    break
            else:
                param.data.copy_(tensor)
            loaded.add("params." + target)
        return loaded


def main():
    path = os.path.join(os.environ["TENSORINIT_MODEL_DIR"], "model.safetensors")
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    model = StandInModel(header)
    loaded = load_staged_weights(model, timeout=120)
    mismatches = 0
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        want = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).view(info["shape"])
        param = model.params[model.target_name(name)].data
        for part, index in StandInModel.FUSED:
            if ".attention.self.%s." % part in name:
                rows = info["shape"][0]
                param = param[index * rows:(index + 1) * rows]
                break
        if not torch.equal(param, want):
            mismatches += 1
            print("mismatch: %s" % name)
    print("vLLM-style loader: %d parameters loaded (%d fused qkv), %d checkpoint tensors compared, %d mismatches"
          % (len(loaded), sum("qkv_proj" in n for n in loaded), sum(1 for k, v in header.items()
             if k != "__metadata__" and v["dtype"] == "F32"), mismatches))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
