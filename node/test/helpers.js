'use strict'
// Shared by the test files: the project's test server (spawned per file, dies with its stdin),
// its control API, and nginx on private ports.
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const TESTSERVER = process.env.WIRECORE_TESTSERVER
const REPO = process.env.WIRECORE_REPO ?? path.resolve(__dirname, '..', '..')

/** Starts wirecore-testserver; resolves with its address line plus `stop()`. */
function startServer(args = []) {
  if (!TESTSERVER) throw new Error('set WIRECORE_TESTSERVER to the wirecore-testserver binary (make test-node does)')
  const child = spawn(TESTSERVER, ['--exit-on-stdin-eof', ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`test server exited with ${code}`)))
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      const info = JSON.parse(line)
      info.stop = () => {
        child.stdin.end()
        child.stdout.destroy()
        child.unref()
      }
      resolve(info)
    })
  })
}

/** One control-API call on a fresh connection (never counted by the server). */
function control(info, method, p, body) {
  const url = new URL(p, info.control)
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        if (res.statusCode >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`))
        else resolve(text ? JSON.parse(text) : null)
      })
    })
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

const counters = (info) => control(info, 'GET', '/_control/counters')
const reset = (info) => control(info, 'POST', '/_control/reset')

/** Polls `fn` until it returns truthy or `ms` passes; returns the last value. */
async function waitFor(fn, ms = 5000) {
  const until = Date.now() + ms
  let v
  while (!(v = await fn()) && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
  return v
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function nginxBin() {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (fs.existsSync(p)) return p
  throw new Error('nginx is not installed: run `make setup`')
}

function waitPort(port, ms = 5000) {
  const until = Date.now() + ms
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve()
      })
      s.once('error', () => {
        if (Date.now() > until) reject(new Error(`nothing listens on ${port}`))
        else setTimeout(tryOnce, 50)
      })
    }
    tryOnce()
  })
}

/**
 * nginx on private ports: `http` (HTTP/1.1, gzip) and `https` (TLS, h2 + http/1.1) serving
 * `/1k` (1024 bytes) and `/data.json`; `ca` is the path of the CA that signed its certificate.
 */
async function startNginx() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wirecore-node-nginx-'))
  fs.mkdirSync(path.join(dir, 'www'))
  const ossl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' })
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=wirecore test CA', '-keyout', 'ca.key', '-out', 'ca.pem')
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-keyout', 'key.pem', '-out', 'leaf.csr')
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
    'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  ossl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'ext.cnf', '-out', 'cert.pem')
  fs.writeFileSync(path.join(dir, 'www', '1k'), Buffer.alloc(1024, 'x'))
  const items = Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}` }))
  fs.writeFileSync(path.join(dir, 'www', 'data.json'), JSON.stringify({ items }))
  const [httpPort, httpsPort] = [await freePort(), await freePort()]
  const d = dir
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `user root;
master_process off;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${d}/cb; proxy_temp_path ${d}/px; fastcgi_temp_path ${d}/fc; uwsgi_temp_path ${d}/uw; scgi_temp_path ${d}/sc;
  types { application/json json; }
  default_type application/octet-stream;
  gzip on; gzip_types application/json; gzip_min_length 100;
  keepalive_requests 100000;
  http2_max_concurrent_streams 256;
  server {
    listen 127.0.0.1:${httpPort};
    listen 127.0.0.1:${httpsPort} ssl http2;
    ssl_certificate ${d}/cert.pem; ssl_certificate_key ${d}/key.pem;
    root ${d}/www;
  }
}
`)
  const child = spawn(nginxBin(), ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' })
  await waitPort(httpsPort)
  return {
    http: `http://127.0.0.1:${httpPort}`,
    https: `https://localhost:${httpsPort}`,
    ca: path.join(dir, 'ca.pem'),
    pid: child.pid,
    stop() {
      child.kill()
      child.unref()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

module.exports = { REPO, startServer, control, counters, reset, waitFor, startNginx, freePort }
