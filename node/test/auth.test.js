'use strict'
// HTTP Basic credentials: the `auth` request option (as httpx's `auth=`) and `basicAuth()` for
// fetch, both encoded by the engine (wirecore::basic_auth).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer } = require('./helpers.js')
const wirecore = require('wirecore')

let srv
let client
before(async () => {
  srv = await startServer()
  client = new wirecore.Client({ tls: { caFiles: [srv.ca] } })
})
after(async () => {
  await client?.close()
  srv?.stop()
})

const sent = async (p) => (await (await p).json()).headers.authorization
const basic = (s) => `Basic ${Buffer.from(s).toString('base64')}`

test('auth: [username, password] sends Authorization: Basic, replacing one in headers', async () => {
  assert.equal(await sent(client.get(`${srv.http}/headers`, { auth: ['user', 'p@ss:wörd'] })), basic('user:p@ss:wörd'))
  const r = client.request(`${srv.http}/headers`, {
    headers: [
      ['Authorization', 'Bearer old'],
      ['x-a', '1'],
    ],
    auth: ['u', ''],
  })
  assert.equal(await sent(r), 'Basic dTo=')
})

test('basicAuth() gives the header value, for fetch', async () => {
  assert.equal(wirecore.basicAuth('user'), 'Basic dXNlcjo=')
  assert.equal(wirecore.basicAuth('Aladdin', 'open sesame'), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==')
  const r = await client.fetch(`${srv.http}/headers`, { headers: { authorization: wirecore.basicAuth('a', 'b') } })
  assert.equal((await r.json()).headers.authorization, basic('a:b'))
})

test('a bad auth value throws a TypeError before any I/O', async () => {
  for (const auth of ['user:pw', ['user'], ['user', 1], { user: 'u' }]) {
    await assert.rejects(client.get(`${srv.http}/headers`, { auth }), TypeError, JSON.stringify(auth))
  }
  assert.throws(() => wirecore.basicAuth(1), TypeError)
})
