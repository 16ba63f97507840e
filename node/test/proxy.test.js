'use strict'
// Proxies from Node against the test server's own (tests/server/README.md): an HTTP proxy in
// absolute form and through CONNECT (h1 and h2 over TLS), proxy auth, noProxy, and SOCKS5
// (socks5:// and socks5h://, with and without a user name and password).
const { test, before, after, beforeEach } = require('node:test')
const assert = require('node:assert/strict')
const { startServer, control, counters, reset } = require('./helpers.js')
const wirecore = require('wirecore')

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())
beforeEach(() => reset(srv))

const proxies = () => control(srv, 'GET', '/_control/proxies')

async function withClient(proxy, fn, extra = {}) {
  const client = new wirecore.Client({ proxy: { fromEnv: false, ...proxy }, tls: { caFiles: [srv.ca] }, ...extra })
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}

test('http:// goes to the proxy in absolute form; its credentials stay with it', async () => {
  await withClient({ http: `http://${srv.proxy_credentials}@${srv.proxy_auth}` }, async (client) => {
    const r = await client.get(`${srv.http}/headers`)
    assert.equal(r.status, 200)
    assert.equal(r.httpVersion, '1.1')
    const { headers } = await r.json()
    assert.equal(headers.via, '1.1 wirecore-test-proxy')
    assert.equal(headers['proxy-authorization'], undefined, 'not sent to the origin')
  })
  const p = await proxies()
  assert.deepEqual(p.proxy_auth, { tunnels: 0, forwarded: 1, rejected: 0 })
})

test('https:// tunnels through CONNECT with h2 or h1 inside', async () => {
  for (const [http2, want] of [
    [true, '2.0'],
    [false, '1.1'],
  ]) {
    await reset(srv)
    await withClient(
      { https: `http://${srv.proxy}` },
      async (client) => {
        for (let i = 0; i < 3; i++) {
          const r = await client.get(`${srv.https}/bytes/4`)
          assert.equal(r.httpVersion, want)
          assert.equal((await r.arrayBuffer()).byteLength, 4)
        }
      },
      { http2: { enabled: http2 } },
    )
    const p = await proxies()
    assert.equal(p.proxy.tunnels, 1, 'one tunnel, pooled')
    assert.equal(p.proxy.forwarded, 0)
  }
})

test('a proxy that wants credentials: 407 to CONNECT is a ConnectError; over http:// it is the response', async () => {
  for (const userinfo of ['', 'wirecore:wrong@']) {
    await withClient({ https: `http://${userinfo}${srv.proxy_auth}` }, async (client) => {
      await assert.rejects(client.get(`${srv.https}/bytes/1`), (e) => {
        assert.ok(e instanceof wirecore.ConnectError, e)
        assert.equal(e.code, 'connect')
        assert.match(e.message, /407/)
        assert.ok(e.message.includes(srv.proxy_auth), e.message)
        return true
      })
    })
  }
  await withClient({ http: `http://${srv.proxy_auth}` }, async (client) => {
    assert.equal((await client.get(`${srv.http}/bytes/1`)).status, 407)
  })
  assert.equal((await proxies()).proxy_auth.rejected, 3, 'each tried once')
  assert.equal((await counters(srv)).requests, 0, 'nothing reached the origin')
})

test('noProxy entries go direct', async () => {
  const port = new URL(srv.http).port
  for (const entry of ['127.0.0.1', '*', `127.0.0.1:${port}`]) {
    await withClient({ http: `http://${srv.proxy}`, noProxy: [entry] }, async (client) => {
      const { headers } = await (await client.get(`${srv.http}/headers`)).json()
      assert.equal(headers.via, undefined, entry)
    })
  }
  assert.equal((await proxies()).proxy.forwarded, 0)
})

test('socks5:// resolves here, socks5h:// at the proxy; TLS and h2 inside', async () => {
  const tlsPort = new URL(srv.https).port
  for (const scheme of ['socks5', 'socks5h']) {
    await reset(srv)
    const url = `${scheme}://${srv.socks5}`
    await withClient({ http: url, https: url }, async (client) => {
      const r = await client.get(`${srv.http}/headers`)
      assert.equal((await r.json()).headers.via, undefined, 'a tunnel, not forwarding')
      const s = await client.get(`${srv.https}/bytes/2`)
      assert.equal(s.httpVersion, '2.0')
      assert.equal((await s.arrayBuffer()).byteLength, 2)
    })
    const { socks5 } = await proxies()
    assert.equal(socks5.tunnels, 2)
    assert.equal(socks5.targets[0], `ip:${new URL(srv.http).host}`)
    if (scheme === 'socks5') assert.match(socks5.targets[1], new RegExp(`^ip:(127\\.0\\.0\\.1|\\[::1\\]):${tlsPort}$`))
    else assert.equal(socks5.targets[1], `name:localhost:${tlsPort}`)
  }
})

test('SOCKS5 user name and password, and clear refusals', async () => {
  await withClient({ https: `socks5h://${srv.proxy_credentials}@${srv.socks5_auth}` }, async (client) => {
    assert.equal((await client.get(`${srv.https}/bytes/1`)).status, 200)
  })
  for (const [userinfo, says] of [
    ['wirecore:wrong@', /refused the user name and password/],
    ['', /accepts none of the offered authentication methods/],
  ]) {
    await withClient({ https: `socks5://${userinfo}${srv.socks5_auth}` }, async (client) => {
      await assert.rejects(client.get(`${srv.https}/bytes/1`), (e) => {
        assert.ok(e instanceof wirecore.ConnectError, e)
        assert.match(e.message, says)
        assert.ok(e.message.includes(`socks5://${srv.socks5_auth}`), e.message)
        return true
      })
    })
  }
  const { socks5_auth } = await proxies()
  assert.equal(socks5_auth.tunnels, 1)
  assert.equal(socks5_auth.rejected, 2, 'not retried')
})
