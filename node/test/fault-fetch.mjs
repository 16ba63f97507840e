// Fetcher for the fault matrix (tests/faults): for each stdin line `METHOD URL CONFIG_JSON`,
// one request on a fresh client; prints `status CODE BODY_LEN` or `error CODE`.
import process from 'node:process'
import { createInterface } from 'node:readline'

const { Client } = await import(process.argv[2] ?? 'wirecore')

for await (const line of createInterface({ input: process.stdin })) {
  const [method, url, ...rest] = line.split(' ')
  const client = new Client(JSON.parse(rest.join(' ')))
  try {
    const r = await client.request(url, { method, body: method === 'POST' ? 'fault' : undefined })
    const body = await r.bytes()
    process.stdout.write(`status ${r.status} ${body.length}\n`)
  } catch (e) {
    process.stdout.write(`error ${e.code}\n`)
  } finally {
    await client.close()
  }
}
