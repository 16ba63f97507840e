'use strict'
// The engine's cookie jar from Node: enabled by config, listed and cleared; fetch shares it.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startServer } = require('./helpers.js')
const wirecore = require('wirecore')

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

const sentCookie = async (client, url) => (await (await client.get(url)).json()).headers.cookie

test('the cookie jar is off by default', async () => {
  const client = new wirecore.Client({ tls: { caFiles: [srv.ca] } })
  try {
    await (await client.get(`${srv.http}/set-cookie?c=a%3D1`)).arrayBuffer()
    assert.equal(await sentCookie(client, `${srv.http}/headers`), undefined)
    assert.deepEqual(client.cookies(), [])
  } finally {
    await client.close()
  }
})

test('an enabled jar stores, sends, lists and clears cookies', async () => {
  const client = new wirecore.Client({ cookies: { enabled: true }, tls: { caFiles: [srv.ca] } })
  try {
    const set = `${srv.http}/set-cookie?c=${encodeURIComponent('a=1; SameSite=Lax')}&c=${encodeURIComponent('b=2; Max-Age=60')}`
    await (await client.get(set)).arrayBuffer()
    assert.equal(await sentCookie(client, `${srv.http}/headers`), 'a=1; b=2')
    const got = client.cookies().sort((x, y) => x.name.localeCompare(y.name))
    assert.deepEqual(
      got.map((c) => [c.name, c.value, c.domain, c.hostOnly, c.path, c.sameSite]),
      [
        ['a', '1', '127.0.0.1', true, '/', 'Lax'],
        ['b', '2', '127.0.0.1', true, '/', null],
      ],
    )
    assert.equal(got[0].expiresMs, null)
    assert.ok(got[1].expiresMs > Date.now())
    // fetch through the same client uses the same jar.
    const r = await client.fetch(`${srv.http}/headers`)
    assert.equal((await r.json()).headers.cookie, 'a=1; b=2')
    client.clearCookies()
    assert.deepEqual(client.cookies(), [])
    assert.equal(await sentCookie(client, `${srv.http}/headers`), undefined)
  } finally {
    await client.close()
  }
})
