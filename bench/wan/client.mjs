// The Node side of the WAN benchmark (bench/wan/wan.py): undici.request on undici's default
// Agent (HTTP/1.1, as it ships) vs wirecore's Client. argv: WIRECORE_INDEX UNDICI_DIR URL N CA.
// Prints `latency CLIENT MODE MS,MS,...` for N sequential, then N concurrent GETs, each mode on
// a fresh client.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import process from 'node:process'

const [wirecorePath, undiciDir, url, nText, caPath] = process.argv.slice(2)
const { Client } = await import(wirecorePath)
const { Agent, request } = createRequire(`${undiciDir}/`)('undici')
const n = Number(nText)
const ca = readFileSync(caPath)

async function run (name, make, get, close) {
  let client = make()
  let ms = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await get(client)
    ms.push(performance.now() - t)
  }
  await close(client)
  console.log(`latency ${name} sequential ${ms.map((m) => m.toFixed(2)).join(',')}`)
  client = make()
  const start = performance.now()
  ms = await Promise.all(Array.from({ length: n }, async () => {
    await get(client)
    return performance.now() - start
  }))
  await close(client)
  console.log(`latency ${name} concurrent ${ms.map((m) => m.toFixed(2)).join(',')}`)
}

await run('undici', () => new Agent({ connect: { ca } }), async (agent) => {
  const r = await request(url, { dispatcher: agent })
  await r.body.arrayBuffer()
  if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`)
}, (agent) => agent.close())
await run('wirecore', () => new Client({ tls: { ca_files: [caPath] } }), async (c) => {
  const r = await c.request(url)
  await r.bytes()
  if (r.status !== 200) throw new Error(`status ${r.status}`)
}, (c) => c.close())
