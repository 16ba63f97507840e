# Sourced by bench/run-cli.sh, run-engine-cost.sh and run-engine-instructions.sh: CPU pinning
# (server on CPU 0, client on CPU 1 when there are two), a scratch dir removed at exit with every
# pid in $pids, a 1 KiB file, a CA and a leaf it signs (rustls refuses a self-signed CA
# certificate as the server's own), and nginx (one worker, $nginx) serving $dir/www on $ng_http
# (HTTP/1.1) and $ng_https (HTTP/2 over TLS). It looks nginx up first and stops the calling
# script when it is missing.
nginx=""
for p in /usr/sbin/nginx /usr/local/sbin/nginx /usr/bin/nginx; do [ -x "$p" ] && nginx="$p" && break; done
[ -n "$nginx" ] || { echo "${0##*/}: nginx is not installed (make setup)" >&2; exit 1; }
srv=(); cli=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  srv=(taskset -c 0); cli=(taskset -c 1)
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

dir="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir/www"
head -c 1024 /dev/zero | tr '\0' 'x' >"$dir/www/1k"
{
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$dir/ca.key" -out "$dir/ca.pem"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/leaf.csr"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/leaf.ext"
  openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/leaf.ext" -out "$dir/cert.pem"
} >/dev/null 2>&1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

ng_http=$(free_port); ng_https=$(free_port)
cat >"$dir/nginx.conf" <<EOF
user root; master_process off; worker_processes 1; daemon off;
pid $dir/nginx.pid; error_log $dir/error.log;
events { worker_connections 20000; }
http {
  access_log off; default_type application/octet-stream; keepalive_requests 1000000;
  client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc; uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
  server {
    listen 127.0.0.1:$ng_http; listen 127.0.0.1:$ng_https ssl http2;
    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem; root $dir/www;
  }
}
EOF
"${srv[@]}" "$nginx" -p "$dir" -c "$dir/nginx.conf" & pids+=($!)
wait_port "$ng_https"
