"""A small server that torch.compiles a model on the CPU before it answers, the way an inference
server warms up: the first start compiles (Inductor generates and builds C++ kernels), a start
with TORCHINDUCTOR_CACHE_DIR restored loads them. Writes `ready <unix time>` to argv[1] once the
compiled model has answered, then answers GET /health on argv[2] (port) until argv[3] exists, and
exits 0 (a clean exit: tensorinit saves its on-exit caches)."""
import os
import sys
import time

import torch

ready_file, port, stop_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)


class Block(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.attn = torch.nn.MultiheadAttention(d, 4, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))

    def forward(self, x):
        h = self.norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm(x))


model = torch.nn.Sequential(*[Block(128) for _ in range(4)]).eval()
compiled = torch.compile(model)
with torch.no_grad():
    for batch in (1, 2):  # two shapes: a second graph, as a server's warm-up does
        compiled(torch.randn(batch, 16, 128))
with open(ready_file + ".tmp", "w") as f:
    f.write(f"ready {time.time()}\n")
os.rename(ready_file + ".tmp", ready_file)

import http.server  # noqa: E402


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Health)
server.timeout = 0.1
while not os.path.exists(stop_file):
    server.handle_request()
