// Soak worker for Node (bench/soak/soak.py starts it).
// argv: INDEX_JS SECONDS (BASE_URL CONFIG_JSON)...: until SECONDS pass, build a Client from the
// next pair, send 40 mixed requests 4 at a time through it, close it. Prints
// `err START_MS END_MS CODE` per failed request and `tick NOW_MS OK ERR GAUGE` about once a
// second (GAUGE: active libuv handles and requests, process.getActiveResourcesInfo()), followed
// by `NAME=VALUE` fields: process.memoryUsage() in MiB (V8 heap used and total, external,
// array buffers) and the addon's live counts (`__nativeCounts`: clients whose engine side is
// alive, engine tasks), which tell V8 heap growth from native growth. Run with --expose-gc and
// every tick collects garbage first, so heap_used_mib is what is retained.
import process from 'node:process'
import path from 'node:path'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

const { Client } = await import(process.argv[2])
// The same binding.js index.js loads (one module instance per process).
const native = createRequire(import.meta.url)(path.join(path.dirname(process.argv[2]), 'binding.js'))
const seconds = Number(process.argv[3])
const kinds = []
for (let i = 4; i < process.argv.length; i += 2) kinds.push([process.argv[i], JSON.parse(process.argv[i + 1])])
const PATHS = ['/bytes/1024', '/bytes/65536', '/echo', '/json']
const BODY = Buffer.alloc(4096, 'x')
const deadline = performance.now() + seconds * 1000
const counts = { ok: 0, err: 0 }

async function one (client, base, i) {
  const path = PATHS[i % PATHS.length]
  const start = Date.now()
  try {
    const r = path === '/echo'
      ? await client.request(base + path, { method: 'POST', body: BODY })
      : await client.request(base + path)
    await r.bytes()
    if (r.status !== 200) throw Object.assign(new Error('status'), { code: `status_${r.status}` })
    counts.ok++
  } catch (e) {
    counts.err++
    process.stdout.write(`err ${start} ${Date.now()} ${e.code ?? e.message}\n`)
  }
}

async function task (client, base, first) {
  for (let i = first; i < first + 10; i++) {
    await one(client, base, i)
    await sleep(50)
  }
}

const MIB = 1024 * 1024
function memory () {
  if (typeof globalThis.gc === 'function') globalThis.gc()
  const m = process.memoryUsage()
  const fields = [
    `heap_used_mib=${(m.heapUsed / MIB).toFixed(2)}`,
    `heap_total_mib=${(m.heapTotal / MIB).toFixed(2)}`,
    `external_mib=${(m.external / MIB).toFixed(2)}`,
    `array_buffers_mib=${(m.arrayBuffers / MIB).toFixed(2)}`,
  ]
  if (typeof native.__nativeCounts === 'function') {
    const n = native.__nativeCounts()
    fields.push(`native_clients=${n.clients}`, `engine_tasks=${n.engineTasks}`)
  }
  return fields.join(' ')
}

const ticker = setInterval(() => {
  process.stdout.write(`tick ${Date.now()} ${counts.ok} ${counts.err} ${process.getActiveResourcesInfo().length} ${memory()}\n`)
}, 1000)
for (let n = 0; performance.now() < deadline; n++) {
  const [base, config] = kinds[n % kinds.length]
  const client = new Client(config)
  try {
    await Promise.all([0, 1, 2, 3].map((t) => task(client, base, n + 10 * t)))
  } finally {
    await client.close()
  }
}
clearInterval(ticker)
