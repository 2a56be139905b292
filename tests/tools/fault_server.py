#!/usr/bin/env python3
"""An HTTP/1.1 file server that misbehaves on request, for testing remote reads (stdlib only).

Serves ROOT with keep-alive, Range (one range per request), ETag (from inode, mtime and size, so
a file replaced on disk gets a new one), Last-Modified, and If-Match or If-Unmodified-Since (412).
Listens on two ports of 127.0.0.1 (bound to port 0): the main one and an "alt" one, a different
origin for redirect tests.
When ready it prints the main port on the first line of stdout and the alt port on the second.

With --tls CERT KEY the main port speaks HTTPS (the alt port stays plain HTTP).

Faults are rules: `PATH MODE [key=value ...]`, PATH exact or `*`; `on=main` or `on=alt` limits a
rule to one port. A rule lets `skip` matching requests through (default 0), then applies to the
next `times` (default 1; 0 = all of them):
  reset        send `after` body bytes (default 0), then reset the connection (RST)
  short        send `after` body bytes of the promised Content-Length, then close (FIN)
  stall        send `after` body bytes, go quiet for `seconds` (default 5), then go on
  trickle      send `after` body bytes, then the rest one byte every `interval` seconds (default
               0.3): never quiet for long, far too slow
  drop         close the connection without answering
  status       answer `status` (default 503) with an S3-style XML error (`code`, default SlowDown)
               and a Retry-After header when `retry_after` is given
  ignore_range answer 200 with the whole file
  replace      before answering, replace the file on disk with one of the same size whose bytes
               are inverted and whose mtime is 2 s later (so it gets a new ETag and a new
               Last-Modified, whose resolution is 1 s), then answer normally
  redirect     answer `status` (default 307) with Location: `to` = `alt` (the other port; default)
               or `main`, path `target` (default: the same), `relative=1` for a path-only Location

Rules come from --fault (repeatable), from stdin with --stdin-control (one command per line,
one answer line each; the server exits at EOF, so it dies with the test that started it), or
from GET /_control/<command, URL-encoded>. Commands:
  fault PATH MODE [key=value ...]   add a rule                    -> ok
  clear                             drop rules and the request log -> ok
  log                               the requests seen, as one JSON list of
                                    {"port": "main"|"alt", "conn": N, "path", "range", "headers"}
  ports                             "MAIN ALT"
  set if_match ignore|honour        ignore If-Match and If-Unmodified-Since              -> ok
  set etag strong|weak|none         ETags as W/"..." or none at all (default strong)     -> ok
  set last_modified send|none       Last-Modified sent or not (default send)             -> ok
"""

import argparse
import email.utils
import http.server
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse

CHUNK = 256 * 1024
INVERT = bytes(255 - b for b in range(256))


class State:
    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.rules = []
        self.log = []
        self.next_conn = 0
        self.ports = {}
        self.honour_if_match = True
        self.etag_kind = "strong"
        self.last_modified = True

    def command(self, line):
        words = line.split()
        if not words:
            return "error empty command"
        with self.lock:
            if words[0] == "fault" and len(words) >= 3:
                rule = {"path": words[1], "mode": words[2], "seen": 0}
                for word in words[3:]:
                    key, _, value = word.partition("=")
                    if key in ("path", "mode", "seen"):
                        return "error reserved key: " + key
                    rule[key] = value
                self.rules.append(rule)
                return "ok"
            if words[0] == "clear":
                self.rules.clear()
                self.log.clear()
                return "ok"
            if words[0] == "log":
                return json.dumps(self.log)
            if words[0] == "set" and words[1:2] == ["if_match"] and len(words) == 3:
                self.honour_if_match = words[2] != "ignore"
                return "ok"
            if words[0] == "set" and words[1:2] == ["etag"] and len(words) == 3:
                self.etag_kind = words[2]
                return "ok"
            if words[0] == "set" and words[1:2] == ["last_modified"] and len(words) == 3:
                self.last_modified = words[2] != "none"
                return "ok"
            if words[0] == "ports":
                return f"{self.ports['main']} {self.ports['alt']}"
        return "error unknown command: " + line

    def fault_for(self, path, kind):
        """The rule that applies to this request, if any (counts the request for every rule)."""
        with self.lock:
            chosen = None
            for rule in self.rules:
                if rule["path"] not in ("*", path) or rule.get("on", kind) != kind:
                    continue
                seen = rule["seen"]
                rule["seen"] += 1
                skip, times = int(rule.get("skip", 0)), int(rule.get("times", 1))
                if chosen is None and seen >= skip and (times == 0 or seen < skip + times):
                    chosen = rule
            return chosen

    def record(self, entry):
        with self.lock:
            self.log.append(entry)

    def new_conn(self):
        with self.lock:
            self.next_conn += 1
            return self.next_conn


def etag_of(st):
    return '"%x-%x-%x"' % (st.st_ino, st.st_mtime_ns, st.st_size)


def parse_range(header, size):
    """(first, last) of a single `bytes=` range, None for no/unusable Range, 'bad' if unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(size - n, 0), size - 1) if n > 0 and size > 0 else "bad"
        first = int(first)
        last = int(last) if last else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        return "bad"
    return first, min(last, size - 1)


def precondition_holds(headers, etag, mtime):
    """If-Match (strong comparison: a weak ETag never matches) or else If-Unmodified-Since."""
    if_match = headers.get("If-Match")
    if if_match:
        tags = [t.strip() for t in if_match.split(",")]
        return "*" in tags or etag in tags
    since = headers.get("If-Unmodified-Since")
    if since:
        try:
            return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return True
    return True


def replace_file(path):
    """Same size, every byte inverted, renamed into place: a new version with a new ETag."""
    with open(path, "rb") as f:
        data = f.read()
        mtime = os.fstat(f.fileno()).st_mtime
    tmp = path + ".replacing"
    with open(tmp, "wb") as f:
        f.write(data.translate(INVERT))
    os.utime(tmp, (mtime + 2, mtime + 2))
    os.replace(tmp, path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault_server/1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.conn_id = self.server.state.new_conn()

    def handle(self):
        try:
            super().handle()
        except (OSError, ValueError):
            pass

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if path.startswith("/_control/"):
            return self.send_text(200, state.command(path[len("/_control/"):]) + "\n")
        state.record({"port": self.server.kind, "conn": self.conn_id, "path": path,
                      "range": self.headers.get("Range"), "headers": dict(self.headers.items())})
        rule = state.fault_for(path, self.server.kind)
        mode = rule["mode"] if rule else None
        if mode == "drop":
            return self.abort(reset=True)
        if mode == "status":
            extra = {"Retry-After": rule["retry_after"]} if "retry_after" in rule else {}
            code = rule.get("code", "SlowDown")
            body = f'<?xml version="1.0"?><Error><Code>{code}</Code><Message>injected</Message></Error>'
            return self.send_text(int(rule.get("status", 503)), body, extra, "application/xml")
        if mode == "redirect":
            port = state.ports[rule.get("to", "alt")]
            target = rule.get("target", url.path) + (("?" + url.query) if url.query else "")
            scheme = "https" if self.server.tls and rule.get("to", "alt") == "main" else "http"
            location = target if rule.get("relative") == "1" else f"{scheme}://127.0.0.1:{port}{target}"
            return self.send_text(int(rule.get("status", 307)), "", {"Location": location})

        full = os.path.realpath(os.path.join(state.root, path.lstrip("/")))
        if not full.startswith(state.root + os.sep) or not os.path.isfile(full):
            return self.send_text(404, '<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>', {},
                                  "application/xml")
        if mode == "replace":
            replace_file(full)
        with open(full, "rb") as f:
            st = os.fstat(f.fileno())
            etag, size = etag_of(st), st.st_size
            if_match = self.headers.get("If-Match")
            if state.honour_if_match and not precondition_holds(self.headers, etag, st.st_mtime):
                return self.send_text(412, "precondition failed\n")
            etag = {"strong": etag, "weak": "W/" + etag, "none": None}[state.etag_kind]
            wanted = None if mode == "ignore_range" else parse_range(self.headers.get("Range"), size)
            if wanted == "bad":
                return self.send_text(416, "", {"Content-Range": f"bytes */{size}"})
            first, last = wanted if wanted else (0, size - 1)
            length = last - first + 1 if size else 0
            self.send_response(206 if wanted else 200)
            self.send_header("Content-Length", str(length))
            if etag:
                self.send_header("ETag", etag)
            if state.last_modified:
                self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.send_header("Accept-Ranges", "bytes")
            if wanted:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if head:
                return
            f.seek(first)
            self.send_body(f, length, rule)

    def send_body(self, f, length, rule):
        mode = rule["mode"] if rule else None
        after = int(rule.get("after", 0)) if rule else length
        if mode not in ("reset", "short", "stall", "trickle"):
            after = length
        sent = 0
        while sent < length:
            if sent >= after and mode == "trickle":
                time.sleep(float(rule.get("interval", 0.3)))
                self.wfile.write(f.read(1))
                self.wfile.flush()
                sent += 1
                continue
            if sent == after:
                if mode == "stall":
                    time.sleep(float(rule.get("seconds", 5)))
                    after = length
                else:
                    return self.abort(reset=(mode == "reset"))
            n = min(CHUNK, length - sent, after - sent)
            data = f.read(n)
            if not data:
                return self.abort(reset=True)
            self.wfile.write(data)
            sent += len(data)

    def abort(self, reset):
        self.close_connection = True
        try:
            if reset:  # SO_LINGER 0: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass

    def send_text(self, status, body, extra=None, content_type="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="directory to serve")
    parser.add_argument("--fault", action="append", default=[], metavar="'PATH MODE [k=v ...]'")
    parser.add_argument("--stdin-control", action="store_true", help="read commands on stdin; exit at EOF")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS on the main port")
    args = parser.parse_args()

    state = State(args.root)
    for kind in ("main", "alt"):
        server = Server(("127.0.0.1", 0), Handler)
        server.state, server.kind, server.tls = state, kind, bool(args.tls and kind == "main")
        if server.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*args.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        state.ports[kind] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    for fault in args.fault:
        answer = state.command("fault " + fault)
        if answer != "ok":
            sys.exit(f"fault_server: --fault {fault!r}: {answer}")
    print(state.ports["main"], flush=True)
    print(state.ports["alt"], flush=True)

    if args.stdin_control:
        for line in sys.stdin:
            if line.strip():
                print(state.command(line.strip()), flush=True)
    else:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    # Not server.shutdown(): it waits out serve_forever's 0.5 s poll, per server, and stalled
    # handler threads have nothing left worth finishing.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
