// `make bench-node`: wirecore's Node addon vs undici.request (Pool), global fetch, node:http
// (keep-alive Agent) and node:http2, closed loop GET /bytes/1024 from the wirecore test server
// at C = 1, 16, 64, 256, HTTP/1.1 (plain) and HTTP/2 (TLS, ALPN). Writes a Markdown table of
// figures and ratios measured in this one run (see bench/README.md).
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import { createRequire } from 'node:module'
import os from 'node:os'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    wirecore: { type: 'string' },
    out: { type: 'string' },
    'server-cpu': { type: 'string' },
    concurrency: { type: 'string', default: '1,16,64,256' },
    protocols: { type: 'string', default: 'h1,h2' },
    'round-ms': { type: 'string', default: '1000' },
    'warmup-ms': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    'max-requests': { type: 'string', default: '20000' },
  },
})
if (!args.server || !args.wirecore) {
  console.error('usage: node bench.mjs --server <wirecore-testserver> --wirecore <package dir> [--out file.md]')
  process.exit(2)
}
// undici comes from node/'s devDependencies (package-lock.json pins it).
const require = createRequire(new URL('../../node/package.json', import.meta.url))
const wirecore = require(args.wirecore)
const undici = require('undici')
const ROUND_MS = Number(args['round-ms'])
const WARMUP_MS = Number(args['warmup-ms'])
const ROUNDS = Number(args.rounds)
const MAX_REQUESTS = Number(args['max-requests'])
const PATH = '/bytes/1024'

// --- the server, on its own CPU when asked ---------------------------------------------------
const serverArgs = ['--exit-on-stdin-eof', '--no-request-log', '--threads', '1']
const server =
  args['server-cpu'] !== undefined
    ? spawn('taskset', ['-c', args['server-cpu'], args.server, ...serverArgs], { stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn(args.server, serverArgs, { stdio: ['pipe', 'pipe', 'inherit'] })
const srv = JSON.parse(await new Promise((resolve) => createInterface({ input: server.stdout }).once('line', resolve)))
const { readFileSync } = await import('node:fs')
const ca = readFileSync(srv.ca)

function control(method, path) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, srv.control), { method, agent: false }, (res) => {
      let t = ''
      res.on('data', (d) => (t += d))
      res.on('end', () => resolve(t ? JSON.parse(t) : null))
    })
    req.on('error', reject)
    req.end()
  })
}

// --- clients: each `open(proto, c)` gives { one(): Promise<bytes>, close() } ------------------
function drainNode(res) {
  return new Promise((resolve, reject) => {
    let n = 0
    res.on('data', (d) => (n += d.length))
    res.on('end', () => resolve(n))
    res.on('error', reject)
  })
}

const clients = [
  {
    name: 'wirecore',
    protos: ['h1', 'h2'],
    open(proto) {
      const c = new wirecore.Client({ tls: { caFiles: [srv.ca] } })
      const url = (proto === 'h1' ? srv.http : srv.https) + PATH
      return {
        async one() {
          const r = await c.get(url)
          return (await r.arrayBuffer()).byteLength
        },
        close: () => c.close(),
      }
    },
  },
  {
    // The core's default keeps 10 idle connections per host; above that, C > 10 churns them.
    name: 'wirecore (maxIdlePerHost 256)',
    protos: ['h1'],
    open(proto) {
      const c = new wirecore.Client({ tls: { caFiles: [srv.ca] }, pool: { maxIdlePerHost: 256 } })
      const url = (proto === 'h1' ? srv.http : srv.https) + PATH
      return {
        async one() {
          const r = await c.get(url)
          return (await r.arrayBuffer()).byteLength
        },
        close: () => c.close(),
      }
    },
  },
  {
    name: 'undici.request (Pool)',
    protos: ['h1', 'h2'],
    open(proto) {
      const pool =
        proto === 'h1'
          ? new undici.Pool(srv.http)
          : new undici.Pool(srv.https, { allowH2: true, connect: { ca, servername: 'localhost' } })
      return {
        async one() {
          const { body } = await pool.request({ path: PATH, method: 'GET' })
          return (await body.arrayBuffer()).byteLength
        },
        close: () => pool.close(),
      }
    },
  },
  {
    name: 'fetch (global)',
    protos: ['h1'],
    open() {
      const url = srv.http + PATH
      return {
        async one() {
          const r = await fetch(url)
          return (await r.arrayBuffer()).byteLength
        },
        async close() {},
      }
    },
  },
  {
    name: 'node:http (keep-alive Agent)',
    protos: ['h1'],
    open() {
      const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
      const url = new URL(srv.http + PATH)
      return {
        one: () =>
          new Promise((resolve, reject) => {
            http.get(url, { agent }, (res) => drainNode(res).then(resolve, reject)).on('error', reject)
          }),
        async close() {
          agent.destroy()
        },
      }
    },
  },
  {
    name: 'node:http2 (one session)',
    protos: ['h2'],
    open() {
      const session = http2.connect(srv.https, { ca, servername: 'localhost' })
      session.on('error', () => {})
      return {
        one: () =>
          new Promise((resolve, reject) => {
            const s = session.request({ ':path': PATH })
            let n = 0
            s.on('data', (d) => (n += d.length))
            s.on('end', () => resolve(n))
            s.on('error', reject)
            s.end()
          }),
        async close() {
          session.close()
        },
      }
    },
  },
]

// --- the closed loop --------------------------------------------------------------------------
async function loop(client, c, ms, max) {
  const lat = []
  let errors = 0
  let done = 0
  const until = performance.now() + ms
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (done < max && performance.now() < until) {
        const s = performance.now()
        try {
          const n = await client.one()
          if (n !== 1024) errors++
        } catch {
          errors++
        }
        lat.push(performance.now() - s)
        done++
      }
    }),
  )
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { lat, errors, requests: done, wallMs: wall, cpuUs: cpu.user + cpu.system }
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const results = []
const protos = args.protocols.split(',')
const concurrencies = args.concurrency.split(',').map(Number)
for (const proto of protos) {
  for (const c of concurrencies) {
    const peers = clients.filter((x) => x.protos.includes(proto))
    const open = []
    for (const p of peers) {
      await control('POST', '/_control/reset')
      const inst = p.open(proto, c)
      await loop(inst, c, WARMUP_MS, MAX_REQUESTS)
      const conns = (await control('GET', '/_control/counters')).connections_accepted
      open.push({ p, inst, acc: { lat: [], errors: 0, requests: 0, wallMs: 0, cpuUs: 0 }, conns })
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < open.length; k++) {
        const o = open[(k + round) % open.length]
        await control('POST', '/_control/reset')
        const r = await loop(o.inst, c, ROUND_MS, Math.ceil(MAX_REQUESTS / ROUNDS))
        o.conns += (await control('GET', '/_control/counters')).connections_accepted
        o.acc.lat.push(...r.lat)
        o.acc.errors += r.errors
        o.acc.requests += r.requests
        o.acc.wallMs += r.wallMs
        o.acc.cpuUs += r.cpuUs
      }
    }
    for (const o of open) {
      await o.inst.close()
      const lat = o.acc.lat.sort((a, b) => a - b)
      const row = {
        proto,
        c,
        client: o.p.name,
        rps: (o.acc.requests / o.acc.wallMs) * 1000,
        p50: pct(lat, 50) * 1000,
        p99: pct(lat, 99) * 1000,
        cpu: o.acc.cpuUs / o.acc.requests,
        conns: o.conns,
        requests: o.acc.requests,
        errors: o.acc.errors,
      }
      results.push(row)
      console.error(
        `${proto} C=${String(c).padEnd(3)} ${row.client.padEnd(30)} ${row.rps.toFixed(0).padStart(6)} req/s  ` +
          `p50 ${row.p50.toFixed(0).padStart(6)} µs  p99 ${row.p99.toFixed(0).padStart(7)} µs  ${row.cpu.toFixed(1).padStart(6)} CPU-µs/req  ` +
          `${row.conns} conns  ${row.errors} errors`,
      )
    }
  }
}
server.stdin.end()

// --- report -----------------------------------------------------------------------------------
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—')
const date = new Date().toISOString().slice(0, 10)
let md = `# Node benchmark — ${date}\n\n`
md +=
  `GET \`${PATH}\` from the wirecore test server (release, 1 worker thread, request log off${args['server-cpu'] !== undefined ? `, pinned to CPU ${args['server-cpu']}` : ''}), ` +
  'closed loop with C requests in flight from one Node process on one shared client per library. HTTP/1.1 over plain TCP; HTTP/2 over TLS (ALPN, the server CA trusted). ' +
  `Per cell: a ${WARMUP_MS} ms warm-up per client, then ${ROUNDS} rounds of at most ${ROUND_MS} ms or ${Math.ceil(MAX_REQUESTS / ROUNDS)} requests, clients interleaved in rotating order. ` +
  'CPU is `process.cpuUsage()` (user+sys of every thread of the client process, so wirecore\'s engine threads count) over the rounds, divided by the requests. Compare ratios within this run only.\n\n'
md += `- command: \`make bench-node\` (\`node bench/node/bench.mjs ${process.argv.slice(2).join(' ')}\`)\n`
md += `- machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} CPU(s) usable by the client process, load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`
md += `- node ${process.version}; wirecore ${wirecore.version} (release addon, default config + CA); undici ${require('undici/package.json').version} (\`Pool\` defaults, \`allowH2\` for h2); global fetch (Node's bundled undici); node:http \`Agent({ keepAlive: true })\`; node:http2 one \`ClientHttp2Session\`\n\n`
md += '## wirecore ÷ peer (rps: higher is better; CPU per request and p99: lower is better)\n\n'
md += '| proto | C | wirecore | ÷ peer | rps ratio | CPU ratio | p99 ratio |\n|---|---:|---|---|---:|---:|---:|\n'
for (const proto of protos) {
  for (const c of concurrencies) {
    const cell = results.filter((r) => r.proto === proto && r.c === c)
    for (const w of cell.filter((r) => r.client.startsWith('wirecore'))) {
      for (const r of cell) {
        if (r.client.startsWith('wirecore')) continue
        md += `| ${proto} | ${c} | ${w.client} | ${r.client} | ${f(w.rps / r.rps, 2)} | ${f(w.cpu / r.cpu, 2)} | ${f(w.p99 / r.p99, 2)} |\n`
      }
    }
  }
}
md += '\n## Figures\n\n| proto | C | client | req/s | p50 µs | p99 µs | CPU-µs/req | conns opened | requests | errors |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n'
for (const r of results) {
  md += `| ${r.proto} | ${r.c} | ${r.client} | ${f(r.rps)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.cpu, 1)} | ${r.conns} | ${r.requests} | ${r.errors} |\n`
}
if (args.out) writeFileSync(args.out, md)
else process.stdout.write(md)
