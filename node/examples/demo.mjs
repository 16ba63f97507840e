// @ts-check
// `make demo-node`: starts the test server, sends a mixed burst through one typed client (h1, h2,
// gzip, a streamed body, a slow request, a timeout, an aborted request), then prints the stats.
// Type-checked by `make lint-node` (JSDoc + tsc), run as plain JavaScript.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Client, WirecoreError } from 'wirecore'

/** @typedef {import('wirecore').Config} Config */
/** @typedef {import('wirecore').Stats} Stats */

const serverBin = process.argv[2]
if (!serverBin) {
  console.error('usage: node examples/demo.mjs <path to wirecore-testserver>')
  process.exit(2)
}
const server = spawn(serverBin, ['--exit-on-stdin-eof'], { stdio: ['pipe', 'pipe', 'inherit'] })
/** @type {{http: string, https: string, ca: string}} */
const srv = JSON.parse(await new Promise((resolve) => createInterface({ input: server.stdout }).once('line', resolve)))

/** @type {Config} */
const config = { tls: { caFiles: [srv.ca] }, timeouts: { totalMs: 2_000 }, pool: { maxIdlePerHost: 16 } }
const client = new Client(config)

const urls = Array.from({ length: 40 }, (_, i) =>
  [`${srv.http}/bytes/1024`, `${srv.https}/json`, `${srv.http}/gzip?size=20000`, `${srv.https}/bytes/4096`][i % 4],
)
const t0 = performance.now()
const responses = await Promise.all(urls.map((u) => client.get(u)))
/** @type {Record<string, number>} */
const byVersion = {}
let bytes = 0
for (const r of responses) {
  byVersion[`HTTP/${r.httpVersion}`] = (byVersion[`HTTP/${r.httpVersion}`] ?? 0) + 1
  bytes += (await r.arrayBuffer()).byteLength
}
console.log(`40 requests in ${(performance.now() - t0).toFixed(1)} ms: ${JSON.stringify(byVersion)}, ${bytes} body bytes`)

let streamed = 0
for await (const chunk of await client.get(`${srv.http}/stream?chunks=8&size=16384&delay_ms=5`)) streamed += chunk.length
console.log(`streamed ${streamed} bytes in chunks`)

const slow = await client.get(`${srv.http}/delay/300`)
console.log(`slow: ${slow.status} after ${slow.timings.totalMs.toFixed(0)} ms`)

/** @param {Promise<unknown>} p */
async function failure(p) {
  try {
    await p
    return 'no error'
  } catch (e) {
    return e instanceof WirecoreError ? `${e.name} (${e.code})` : String(e)
  }
}
console.log(`timeout: ${await failure(client.get(`${srv.http}/delay/5000`, { timeoutMs: 200 }))}`)
console.log(`aborted: ${await failure(client.get(`${srv.http}/hang`, { signal: AbortSignal.timeout(100) }))}`)

/** @type {Stats} */
const s = client.stats()
console.log(
  `stats: ${s.requestsTotal} requests, ${s.pool.connects} connects, ${s.pool.reuses} reuses, ` +
    `p50 ${s.latency.p50Ms.toFixed(2)} ms, p99 ${s.latency.p99Ms.toFixed(2)} ms, compression ${s.compressionRatio.toFixed(1)}x, ` +
    `errors ${JSON.stringify(s.errorsByCode)}`,
)
for (const [origin, o] of Object.entries(s.origins)) console.log(`  ${origin}: ${o.protocol}, ${o.connections} open, ${o.idle} idle`)
console.log(client.diagnostics('text').trimEnd())
await client.close()
server.stdin.end()
