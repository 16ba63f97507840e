'use strict'
// Against real nginx, where users meet it: HTTP/1.1 keep-alive with gzip, h2 over TLS.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startNginx } = require('./helpers.js')
const { Client } = require('wirecore')

let nginx
let client
before(async () => {
  nginx = await startNginx()
  client = new Client({ tls: { caFiles: [nginx.ca] } })
})
after(async () => {
  await client?.close()
  nginx?.stop()
})

test('nginx HTTP/1.1: keep-alive reuse and transparent gzip', async () => {
  for (let i = 0; i < 20; i++) {
    const r = await client.get(`${nginx.http}/data.json`)
    assert.equal(r.status, 200)
    assert.equal(r.httpVersion, '1.1')
    assert.equal(r.headers.has('content-encoding'), false, 'decoded transparently')
    assert.equal((await r.json()).items.length, 400)
  }
  const o = client.stats().origins[nginx.http]
  assert.equal(o.connects, 1)
  assert.ok(client.stats().compressionRatio > 2)
})

test('nginx h2 over TLS: concurrent requests share one connection', async () => {
  // A cold burst waits for the one connection being made. No session counts as busy here: with
  // the default (32 streams), a request started after the session was up with 32 streams on it
  // rightly opens another (http2.max_sessions_per_host), which is not what this checks.
  const h2 = new Client({ tls: { caFiles: [nginx.ca] }, http2: { busyStreamsPerSession: 1000 } })
  try {
    const rs = await Promise.all(Array.from({ length: 50 }, () => h2.get(`${nginx.https}/1k`)))
    for (const r of rs) {
      assert.equal(r.httpVersion, '2.0')
      assert.equal((await r.arrayBuffer()).byteLength, 1024)
    }
    const o = h2.stats().origins[nginx.https]
    assert.equal(o.protocol, 'h2')
    assert.equal(o.connects, 1)
  } finally {
    await h2.close()
  }
})
