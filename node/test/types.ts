// Compiled by `make lint-node` (tsc --noEmit): the declarations accept what users write and
// reject what they must not.
import { Client, fetch, WirecoreError, TimeoutError, errorClasses, setLogger, type Config, type Stats, type Response, type LogRecord } from 'wirecore'

const config: Config = {
  pool: { maxIdlePerHost: 8, idleTimeoutMs: 30_000 },
  timeouts: { totalMs: 5_000 },
  http2: { priorKnowledge: false },
  tls: { caFiles: ['/tmp/ca.pem'] },
  compression: { accept: ['gzip', 'br'] },
  defaultHeaders: { 'x-team': 'node' },
}
// @ts-expect-error unknown key
const bad: Config = { pool: { maxIdle: 3 } }
// @ts-expect-error wrong type
const bad2: Config = { timeouts: { totalMs: 'soon' } }
void bad
void bad2

async function use(): Promise<void> {
  const client = new Client(config)
  const ac = new AbortController()
  const r: Response = await client.get('http://127.0.0.1/', { headers: { a: '1' }, signal: ac.signal, timeoutMs: 100 })
  const status: number = r.status
  const version: string = r.httpVersion
  const ct: string | null = r.headers.get('content-type')
  const total: number = r.timings.totalMs
  const reused: boolean = r.reused
  const data = await r.json<{ n: number }>()
  const n: number = data.n
  for await (const chunk of await client.get('http://127.0.0.1/')) {
    const u8: Uint8Array = chunk
    void u8
  }
  const stream: ReadableStream<Uint8Array> | null = (await client.post('http://127.0.0.1/', { body: 'x' })).body
  await client.request({ url: new URL('http://127.0.0.1/'), method: 'PUT', json: { a: 1 } })
  await client.post('http://127.0.0.1/', { body: new Uint8Array(2) })
  // @ts-expect-error method is fixed by the helper
  await client.get('http://127.0.0.1/', { method: 'POST' })
  // @ts-expect-error unknown option
  await client.get('http://127.0.0.1/', { bogus: 1 })
  await client.get('http://127.0.0.1/', { redirect: 'manual', maxRedirects: 3 })
  // @ts-expect-error not a redirect mode
  await client.get('http://127.0.0.1/', { redirect: 'never' })
  await fetch('http://127.0.0.1/', { redirect: 'error' })
  const f: globalThis.Response = await fetch('http://127.0.0.1/', { method: 'POST', body: 'x', signal: ac.signal })
  const g: globalThis.Response = await client.fetch(new URL('http://127.0.0.1/'))
  void f
  void g
  const s: Stats = client.stats()
  const p99: number = s.latency.p99Ms
  const reuses: number = s.pool.reuses
  const text: string = client.diagnostics('text')
  const prom: string = client.prometheus()
  await client.close({ timeoutMs: 1000 })
  try {
    await client.get('http://127.0.0.1/')
  } catch (e) {
    if (e instanceof TimeoutError) {
      const code: string = e.code
      const t: boolean = e.isTimeout
      void code
      void t
    } else if (e instanceof WirecoreError && e.code === 'circuit_open') {
      void e
    }
  }
  void [status, version, ct, total, reused, n, stream, p99, reuses, text, prom, errorClasses['timeout.total']]
}
void use

setLogger((r: LogRecord) => {
  const when: number = r.timeMs
  const event: unknown = r.fields.event
  void [when, event, r.level.toUpperCase(), r.target, r.message]
}, 'info')
setLogger(null)
// @ts-expect-error the level is one of the five names
setLogger(() => {}, 'loud')
const latency: Config = { metrics: { latencyBucketsMs: [1, 10, 100] } }
void latency
