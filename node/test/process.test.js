'use strict'
// Runtime behaviour: the process exits by itself, worker_threads are safe, the loop stays responsive.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { startServer, counters, reset, waitFor } = require('./helpers.js')
const wirecore = require('wirecore')

let srv
before(async () => {
  srv = await startServer()
})
after(() => srv?.stop())

/** Runs `code` in a child node (resolving `wirecore` from here); resolves with exit code and time. */
function runChild(code, args = [], limitMs = 20_000, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, [...nodeArgs, '-e', code, ...args], {
      cwd: __dirname,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const kill = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      clearTimeout(kill)
      resolve({ code, signal, ms: Date.now() - t0, out })
    })
  })
}

test('a script exits by itself after requests, with idle pooled connections', async () => {
  await reset(srv)
  const code = `
    const { Client } = require('wirecore')
    const c = new Client({ tls: { caFiles: [process.argv[3]] } })
    ;(async () => {
      const rs = await Promise.all([c.get(process.argv[1] + '/json'), c.get(process.argv[2] + '/json')])
      for (const r of rs) await r.text()
      console.log('done', rs.map((r) => r.httpVersion).join(','))
    })()`
  const r = await runChild(code, [srv.http, srv.https, srv.ca])
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /done 1\.1,2\.0/)
  assert.ok(r.ms < 5000, `exited after ${r.ms} ms`)
  // The connections were pooled (idle, not closed) when the process left.
  const c = await counters(srv)
  assert.equal(c.connections_accepted, 2)
})

test('a script exits by itself with a streaming body left unread', async () => {
  const code = `
    const { Client } = require('wirecore')
    const c = new Client()
    ;(async () => {
      const r = await c.get(process.argv[1] + '/bytes/4000000')
      console.log('head', r.status)
    })()`
  const r = await runChild(code, [srv.http])
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /head 200/)
  assert.ok(r.ms < 5000, `exited after ${r.ms} ms`)
})

test('200 clients used once and dropped without close() release their sockets; the process exits by itself', async () => {
  await reset(srv)
  // --expose-gc: the clients are collected on demand, so the check does not wait for V8's mood.
  const code = `
    const fs = require('node:fs')
    const { Client } = require('wirecore')
    const url = process.argv[1] + '/json'
    const fds = () => fs.readdirSync('/proc/self/fd').length
    ;(async () => {
      // Warm up: the addon, the engine runtime and its threads exist before counting.
      const w = new Client()
      await (await w.get(url)).arrayBuffer()
      await w.close()
      global.gc()
      const start = fds()
      for (let i = 0; i < 200; i++) {
        const c = new Client()
        await (await c.get(url)).arrayBuffer()
      }
      const peak = fds()
      const t0 = Date.now()
      let now = peak
      while (Math.abs(now - start) > 5 && Date.now() - t0 < 2000) {
        global.gc()
        await new Promise((r) => setTimeout(r, 20))
        now = fds()
      }
      console.log(JSON.stringify({ start, peak, now, ms: Date.now() - t0 }))
    })()`
  const r = await runChild(code, [srv.http], 60_000, ['--expose-gc'])
  assert.equal(r.signal, null, `the process did not exit by itself: ${r.out}`)
  assert.equal(r.code, 0, r.out)
  const m = JSON.parse(r.out.trim().split('\n').pop())
  console.log(`fds: ${m.start} at start, ${m.peak} after 200 dropped clients, ${m.now} ${m.ms} ms later`)
  assert.ok(Math.abs(m.now - m.start) <= 5, `open fds ${m.start} → ${m.now} within 2 s of dropping 200 clients`)
  // The server saw every connection closed.
  assert.ok(await waitFor(async () => (await counters(srv)).connections_active === 0), 'server connections closed')
})

test('clients used through failures, closed or just dropped, are collected: the live native counts return to their baseline', async () => {
  // The addon counts clients whose engine side is alive (__nativeCounts); a client V8 has
  // collected, with nothing in flight, must not be among them, nor its connections' tasks.
  const code = `
    const path = require('node:path')
    const { Client } = require('wirecore')
    const native = require(path.join(path.dirname(require.resolve('wirecore')), 'binding.js'))
    const [http, https, ca, silent] = process.argv.slice(1)
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        global.gc()
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    // In a function of its own: a finished frame holds no client (the caller's interpreter
    // registers would keep the last one alive).
    async function work() {
      let peak = 0
      for (let i = 0; i < 60; i++) {
        const tls = i % 2 === 1
        const c = new Client(tls ? { tls: { caFiles: [ca] } } : { http2: { priorKnowledge: i % 4 === 0 } })
        const base = tls ? https : http
        await Promise.all([
          c.get(base + '/bytes/1024').then((r) => r.arrayBuffer()),
          // A streaming body never read: its Response is collected with the body open.
          c.get(base + '/bytes/300000').then((r) => r.status),
          c.request('http://' + silent + '/', { timeoutMs: 50 }).catch((e) => e.code),
          c.request(base + '/echo', { method: 'POST', body: Buffer.alloc(4096) }).then((r) => r.text()),
        ])
        peak = Math.max(peak, native.__nativeCounts().clients)
        if (i % 3 !== 0) await c.close()
      }
      return peak
    }
    async function warm() {
      const w = new Client({ tls: { caFiles: [ca] } })
      await (await w.get(https + '/json')).arrayBuffer()
      await w.close()
    }
    ;(async () => {
      await warm()
      await settle()
      const start = native.__nativeCounts()
      const peak = await work()
      const t0 = Date.now()
      let now = native.__nativeCounts()
      while ((now.clients > start.clients || now.engineTasks > start.engineTasks) && Date.now() - t0 < 5000) {
        await settle()
        now = native.__nativeCounts()
      }
      console.log(JSON.stringify({ start, peak, now }))
    })()`
  const r = await runChild(code, [srv.http, srv.https, srv.ca, srv.silent], 60_000, ['--expose-gc'])
  assert.equal(r.code, 0, r.out)
  const m = JSON.parse(r.out.trim().split('\n').pop())
  console.log(`native counts: ${JSON.stringify(m)}`)
  assert.ok(m.peak > m.start.clients, `the count saw the clients: ${JSON.stringify(m)}`)
  assert.ok(m.now.clients <= m.start.clients, `live clients ${m.start.clients} → ${m.now.clients} after 60 used and dropped`)
  assert.ok(m.now.engineTasks <= m.start.engineTasks, `engine tasks ${m.start.engineTasks} → ${m.now.engineTasks}`)
})

test('closed clients still referenced end their engine tasks at close, with no collection', async () => {
  // A handle the app keeps (or V8 has not collected yet) must not keep connection tasks alive
  // once closed: close() ends them, not the garbage collector (core/tests/client_close.rs).
  const code = `
    const path = require('node:path')
    const { Client } = require('wirecore')
    const native = require(path.join(path.dirname(require.resolve('wirecore')), 'binding.js'))
    const [http, https, ca] = process.argv.slice(1)
    const pause = () => new Promise((r) => setTimeout(r, 20))
    ;(async () => {
      const w = new Client({ tls: { caFiles: [ca] } })
      await (await w.get(https + '/json')).arrayBuffer()
      await w.close()
      let start = native.__nativeCounts()
      for (let i = 0; i < 10 && start.engineTasks > 0; i++) { await pause(); start = native.__nativeCounts() }
      const held = []
      let peak = 0
      for (let i = 0; i < 20; i++) {
        const c = new Client({ tls: { caFiles: [ca] } })
        await (await c.get(http + '/bytes/64')).arrayBuffer()
        await (await c.get(https + '/bytes/64')).arrayBuffer()
        peak = Math.max(peak, native.__nativeCounts().engineTasks)
        await c.close()
        held.push(c)
      }
      const t0 = Date.now()
      let now = native.__nativeCounts()
      while (now.engineTasks > start.engineTasks && Date.now() - t0 < 5000) { await pause(); now = native.__nativeCounts() }
      const closed = await held[0].get(http + '/bytes/64').then(() => 'sent', (e) => e.code)
      console.log(JSON.stringify({ start: start.engineTasks, peak, now: now.engineTasks, held: held.length, closed }))
    })()`
  const r = await runChild(code, [srv.http, srv.https, srv.ca])
  assert.equal(r.code, 0, r.out)
  const m = JSON.parse(r.out.trim().split('\n').pop())
  console.log(`engine tasks: ${JSON.stringify(m)}`)
  assert.ok(m.peak > m.start, `the count saw the connections' tasks: ${JSON.stringify(m)}`)
  assert.ok(m.now <= m.start, `engine tasks ${m.start} → ${m.now} with ${m.held} closed clients held`)
  assert.equal(m.closed, 'closed')
})

test('a pending request keeps the process alive until it completes', async () => {
  const code = `
    const { Client } = require('wirecore')
    new Client().get(process.argv[1] + '/delay/700').then(async (r) => console.log('got', r.status, (await r.json()).delay_ms))`
  const r = await runChild(code, [srv.http])
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /got 200 700/)
  assert.ok(r.ms >= 700)
})

test('worker_threads: several workers, clients created and destroyed repeatedly', async () => {
  const code = `
    const { Worker } = require('node:worker_threads')
    const url = process.argv[1]
    const src = \`
      const { parentPort, workerData } = require('node:worker_threads')
      const { Client } = require('wirecore')
      ;(async () => {
        let n = 0
        for (let i = 0; i < 5; i++) {
          const c = new Client()
          const rs = await Promise.all(Array.from({ length: 10 }, () => c.get(workerData + '/bytes/100')))
          for (const r of rs) n += (await r.arrayBuffer()).byteLength
          if (i % 2) await c.close()
        }
        // Leave a request in flight and a client open: the worker is terminated under it.
        new Client().get(workerData + '/delay/2000').catch(() => {})
        parentPort.postMessage(n)
      })()\`
    ;(async () => {
      let total = 0
      for (let round = 0; round < 4; round++) {
        const ws = Array.from({ length: 4 }, () => new Worker(src, { eval: true, workerData: url }))
        const got = await Promise.all(ws.map((w) => new Promise((res, rej) => { w.once('message', res); w.once('error', rej) })))
        total += got.reduce((a, b) => a + b, 0)
        await Promise.all(ws.map((w) => (round % 2 ? w.terminate() : new Promise((res) => w.once('exit', res)))))
      }
      console.log('bytes', total)
    })()`
  const r = await runChild(code, [srv.http], 60_000)
  assert.equal(r.signal, null, r.out)
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /bytes 80000/)
})

test('10,000 concurrent requests keep the event loop responsive', async () => {
  const c = new wirecore.Client({ http2: { priorKnowledge: true } })
  await (await c.get(`${srv.http}/bytes/1`)).arrayBuffer()
  const h = monitorEventLoopDelay({ resolution: 10 })
  const t0 = Date.now()
  const pending = Array.from({ length: 10_000 }, (_, i) => c.get(`${srv.http}/bytes/${i % 64}`))
  const submitMs = Date.now() - t0
  // From here on the engine does the work: the JS thread must stay free for timers.
  h.enable()
  const rs = await Promise.all(pending)
  let n = 0
  for (const r of rs) n += (await r.arrayBuffer()).byteLength
  h.disable()
  const ms = Date.now() - t0
  let want = 0
  for (let i = 0; i < 10_000; i++) want += i % 64
  assert.equal(n, want)
  const p99 = h.percentile(99) / 1e6
  const max = h.max / 1e6
  // Printed for the record. The bound only catches a loop blocked for the whole run (that
  // takes seconds); a shared 2-core machine puts p99 near 200 ms at times.
  console.log(`10k requests in ${ms} ms (submitted in ${submitMs} ms); event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`)
  assert.ok(p99 < 1000, `event loop delay p99 ${p99} ms`)
  assert.equal(c.stats().requestsInFlight, 0)
  await c.close()
})

test('an onSpan or onDeadLetter callback that throws is an uncaught exception; later deliveries go on', async () => {
  // In a child: the test runner treats an uncaught exception in its own process as a failure.
  const code = `
    const { Client } = require('wirecore')
    const caught = []
    process.on('uncaughtException', (e) => caught.push(e.message))
    const c = new Client({ otel: { enabled: true }, retry: { maxAttempts: 2, backoffBaseMs: 1, backoffMaxMs: 2 } })
    let spans = 0
    let letters = 0
    c.onSpan(() => {
      spans++
      throw new Error('span callback ' + spans)
    })
    c.onDeadLetter(() => {
      letters++
      throw new Error('letter callback ' + letters)
    })
    ;(async () => {
      for (let i = 0; i < 3; i++) {
        const r = await c.get(process.argv[1] + '/status/503')
        await r.text()
      }
      // Letters come on their own queue: wait for them (bounded), then close hands over the spans.
      for (let t = 0; letters < 3 && t < 200; t++) await new Promise((d) => setTimeout(d, 50))
      await c.close()
      console.log(JSON.stringify({ spans, letters, caught: caught.sort(), stats: c.stats().otel, dl: c.stats().deadLetter }))
    })()`
  const r = await runChild(code, [srv.http])
  assert.equal(r.code, 0, r.out)
  const got = JSON.parse(r.out.trim().split('\n').pop())
  // Every span and letter reached its callback although each call threw.
  assert.equal(got.spans, 3, r.out)
  assert.equal(got.letters, 3, r.out)
  assert.deepEqual(got.caught, [
    'letter callback 1', 'letter callback 2', 'letter callback 3',
    'span callback 1', 'span callback 2', 'span callback 3',
  ])
  assert.deepEqual(got.stats, { exported: 3, dropped: 0 })
})
