// Host-thread CPU per request of wirecore's Node `Client`: the CPU time of the JS main thread
// (which receives every result), per request, for a closed loop of C concurrent GET /bytes/1024
// from the wirecore test server over HTTP/1.1 (plain) and HTTP/2 (TLS).
//
// That thread's time sets a per-process ceiling no number of cores lifts: ceiling ≈ 1 / (host
// CPU per request). Node 20 has no `process.threadCpuUsage()`: the main thread's time is read
// from /proc/self/task/<pid>/schedstat (nanoseconds on CPU), around N requests after a warm-up;
// the whole process's CPU (`process.cpuUsage()`) and the wall clock are reported beside it.
//
// Each variant is a package directory (index.js, errors.js, binding.js, the .node addon) given as
// NAME=DIR; every (variant, cell, round) runs in a fresh worker process, rounds rotate the
// variant order, so an old and a new build are compared side by side in one run.
//
//   node host-thread.mjs --server …/release/wirecore-testserver --variant base=/tmp/old \
//     --variant new=target/…/node-bench --out x.md
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    worker: { type: 'boolean', default: false },
    wirecore: { type: 'string' },
    proto: { type: 'string', default: 'h1' },
    c: { type: 'string', default: '64' },
    'server-info': { type: 'string' },
    server: { type: 'string' },
    variant: { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
    concurrencies: { type: 'string', default: '64' },
    protocols: { type: 'string', default: 'h1,h2' },
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '20000' },
    'warmup-requests': { type: 'string', default: '3000' },
  },
})
const PATH = '/bytes/1024'

/** Nanoseconds the main thread has been on a CPU. */
function mainThreadNs() {
  const s = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8')
  return Number(s.split(' ')[0])
}

async function worker() {
  const require = createRequire(import.meta.url)
  const wirecore = require(args.wirecore)
  const info = JSON.parse(args['server-info'])
  const url = (args.proto === 'h1' ? info.http : info.https) + PATH
  const c = Number(args.c)
  const warm = Number(args['warmup-requests'])
  const n = Number(args.requests)
  const client = new wirecore.Client({ tls: { caFiles: [info.ca] }, pool: { maxIdlePerHost: Math.max(c, 10) } })
  let count = 0
  let errors = 0
  let running = true
  const marks = {}
  const mark = (k) => {
    marks[k] = { t: performance.now(), h: mainThreadNs(), p: process.cpuUsage() }
  }
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (running) {
        try {
          const r = await client.get(url)
          const b = await r.arrayBuffer()
          if (r.status !== 200 || b.byteLength !== 1024) throw new Error(String(r.status))
        } catch (e) {
          if (++errors > 1000) throw e
          continue
        }
        count++
        if (count === warm) mark('a')
        else if (count === warm + n) {
          mark('b')
          running = false
        }
      }
    }),
  )
  await client.close()
  const wallMs = marks.b.t - marks.a.t
  const cpuUntilB = marks.b.p.user + marks.b.p.system - (marks.a.p.user + marks.a.p.system)
  return {
    version: wirecore.version,
    requests: n,
    errors,
    rps: (n / wallMs) * 1000,
    host_us: (marks.b.h - marks.a.h) / 1000 / n,
    proc_us: cpuUntilB / n,
  }
}

if (args.worker) {
  process.stdout.write(JSON.stringify(await worker()) + '\n')
  // A turn of the loop before exiting, so the addon is idle (nothing held) when it unloads.
  await new Promise((resolve) => setImmediate(resolve))
  process.exit(0)
}

if (!args.server || !args.out || args.variant.length === 0) {
  console.error('usage: node host-thread.mjs --server <testserver> --variant NAME=DIR [...] --out file.md')
  process.exit(2)
}
const variants = args.variant.map((v) => {
  const i = v.indexOf('=')
  return { name: v.slice(0, i), dir: v.slice(i + 1) }
})
const pin = os.availableParallelism() >= 2
const serverArgs = ['--exit-on-stdin-eof', '--no-request-log', '--threads', '1']
const server = pin
  ? spawn('taskset', ['-c', '0', args.server, ...serverArgs], { stdio: ['pipe', 'pipe', 'inherit'] })
  : spawn(args.server, serverArgs, { stdio: ['pipe', 'pipe', 'inherit'] })
const infoLine = await new Promise((resolve) => createInterface({ input: server.stdout }).once('line', resolve))
const loadBefore = os.loadavg()
const started = Date.now()
const protos = args.protocols.split(',')
const concs = args.concurrencies.split(',').map(Number)
const rounds = Number(args.rounds)
const results = new Map()
const self = fileURLToPath(import.meta.url)
for (const proto of protos) {
  for (const c of concs) {
    for (let rnd = 0; rnd < rounds; rnd++) {
      const k = rnd % variants.length
      for (const v of [...variants.slice(k), ...variants.slice(0, k)]) {
        const cmd = [
          process.execPath,
          self,
          '--worker',
          '--wirecore',
          v.dir,
          '--proto',
          proto,
          '--c',
          String(c),
          '--server-info',
          infoLine,
          '--requests',
          args.requests,
          '--warmup-requests',
          args['warmup-requests'],
        ]
        let r
        try {
          const out = pin
            ? execFileSync('taskset', ['-c', '1', ...cmd], { encoding: 'utf8', timeout: 300_000 })
            : execFileSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 300_000 })
          r = JSON.parse(out.trim().split('\n').pop())
        } catch (e) {
          console.error(`${proto} C=${c} ${v.name}: failed: ${String(e.stderr ?? e).slice(-500)}`)
          continue
        }
        const key = `${proto} ${c} ${v.name}`
        if (!results.has(key)) results.set(key, [])
        results.get(key).push(r)
        console.error(
          `${proto} C=${String(c).padEnd(3)} round ${rnd + 1} ${v.name.padEnd(8)} host ${r.host_us.toFixed(2).padStart(6)} µs/req  ` +
            `process ${r.proc_us.toFixed(2).padStart(6)} µs/req  ${r.rps.toFixed(0).padStart(8)} req/s`,
        )
      }
    }
  }
}
server.stdin.end()

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const fmt = (x) => Math.round(x).toLocaleString('en-US')
let md = '## Node Client: host-thread CPU per request\n\n'
md +=
  `\`bench/node/host-thread.mjs\`: GET \`${PATH}\`, closed loop of C concurrent requests (\`get\` + \`arrayBuffer\`) on one Client, ` +
  `test server (release, 1 thread${pin ? ', CPU 0' : ''}), each (variant, cell, round) a fresh worker${pin ? ' on CPU 1' : ''}; ` +
  `${args['warmup-requests']} requests warm-up, then ${args.requests} measured. host = the main thread's schedstat run time ÷ requests; ` +
  `ceiling = 1e6 ÷ host µs. Medians of ${rounds} rounds in rotating variant order.\n\n`
md += `- machine: ${os.availableParallelism()} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}; load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; run took ${Math.round((Date.now() - started) / 1000)}s\n\n`
md += '| proto | C | variant | host µs/req | ceiling req/s | process CPU µs/req | req/s | host ÷ first |\n|---|---:|---|---:|---:|---:|---:|---:|\n'
for (const proto of protos) {
  for (const c of concs) {
    const base = results.get(`${proto} ${c} ${variants[0].name}`)
    for (const v of variants) {
      const rs = results.get(`${proto} ${c} ${v.name}`)
      if (!rs) continue
      const h = median(rs.map((r) => r.host_us))
      const ratio = base ? h / median(base.map((r) => r.host_us)) : NaN
      md += `| ${proto} | ${c} | ${v.name} | ${h.toFixed(2)} | ${fmt(1e6 / h)} | ${median(rs.map((r) => r.proc_us)).toFixed(2)} | ${fmt(median(rs.map((r) => r.rps)))} | ${ratio.toFixed(2)} |\n`
    }
  }
}
writeFileSync(args.out, md)
console.error(`wrote ${args.out}`)
