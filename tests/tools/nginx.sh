#!/usr/bin/env bash
# Debian's nginx (nginx-light) serving a directory on loopback, for tests and benchmarks.
#   nginx.sh start ROOT DIR [--foreground | --until-eof]
#       config, logs, pid and temp files go in DIR; prints the port. --foreground: nginx itself
#       stays in the foreground (exec). --until-eof: stops nginx when stdin reaches EOF, so a test
#       that holds a pipe to it cannot leave a server behind, even if it crashes.
#   nginx.sh stop DIR                        stops the server started with DIR
# Keep-alive (100000 requests per connection), Range (nginx's default), ETag on, sendfile.
# DIR/access.log has one line per request: "$connection $connection_requests $status $request_uri
# $http_range $body_bytes_sent", so tests can count connections. Runs as root (CI) or as a user.
set -euo pipefail

usage() { echo "usage: nginx.sh start ROOT DIR [--foreground | --until-eof] | nginx.sh stop DIR" >&2; exit 64; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_config() {  # write_config ROOT DIR PORT DAEMON
  local root=$1 dir=$2 port=$3 daemon=$4
  {
    # As root, workers would switch to nobody, who may not read a private temp dir.
    if [ "$(id -u)" = 0 ]; then echo "user root;"; fi
    cat <<CONF
daemon $daemon;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  log_format conns '\$connection \$connection_requests \$status \$request_uri "\$http_range" \$body_bytes_sent';
  access_log $dir/access.log conns;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  etag on;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location / { }
  }
}
CONF
  } >"$dir/nginx.conf"
}

start() {
  [ $# -ge 2 ] || usage
  local root dir daemon=on mode=${3:-}
  root=$(realpath "$1"); dir=$(realpath -m "$2")
  case "$mode" in "" | --until-eof) ;; --foreground) daemon=off ;; *) usage ;; esac
  mkdir -p "$dir/tmp"
  # A free port can be taken between the probe and nginx's bind: try a few.
  for _ in 1 2 3 4 5; do
    local port; port=$(free_port)
    write_config "$root" "$dir" "$port" "$daemon"
    if [ "$daemon" = off ]; then
      echo "$port"
      exec "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
    fi
    if "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/error.log"; then
      echo "$port"
      if [ "$mode" = --until-eof ]; then
        trap 'stop "$dir"; exit 143' TERM INT
        cat >/dev/null || true
        stop "$dir"
      fi
      return 0
    fi
    grep -q "Address already in use" "$dir/error.log" || break
  done
  echo "nginx.sh: nginx failed to start; see $dir/error.log:" >&2
  tail -5 "$dir/error.log" >&2
  return 1
}

stop() {
  [ $# -ge 1 ] || usage
  local pidfile; pidfile=$(realpath -m "$1")/nginx.pid
  [ -s "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) usage ;;
esac
