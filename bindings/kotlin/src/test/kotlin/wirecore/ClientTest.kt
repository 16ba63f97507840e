package wirecore

import java.io.File
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.int
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import kotlinx.serialization.json.long
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows

/** `/bytes/N`'s body: byte i is i % 251. */
fun pattern(n: Int): ByteArray = ByteArray(n) { (it % 251).toByte() }

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClientTest {
    private lateinit var srv: TestServer

    @BeforeAll
    fun start() {
        srv = TestServer.start()
    }

    @AfterAll
    fun stop() = srv.close()

    @BeforeEach
    fun reset() = srv.reset()

    private fun http(path: String) = srv.url("http") + path

    /** Polls the server's counters until `ok` holds or 5 s pass; the last counters. */
    private fun waitCounters(ok: (JsonObject) -> Boolean): JsonObject {
        val until = System.nanoTime() + 5_000_000_000L
        var c = srv.counters()
        while (!ok(c) && System.nanoTime() < until) {
            Thread.sleep(20)
            c = srv.counters()
        }
        return c
    }

    private fun JsonObject.n(k: String) = getValue(k).jsonPrimitive.long

    /** Spans the test server's OTLP receiver holds. */
    private fun exportedSpans(): Int =
        (srv.call("GET", "/_control/otlp") as kotlinx.serialization.json.JsonArray)
            .filter { it.jsonObject.getValue("path").jsonPrimitive.content == "/v1/traces" }
            .sumOf { e ->
                e.jsonObject.getValue("body").jsonObject.getValue("resourceSpans").let { rs ->
                    (rs as kotlinx.serialization.json.JsonArray).sumOf { r ->
                        (r.jsonObject.getValue("scopeSpans") as kotlinx.serialization.json.JsonArray)
                            .sumOf { (it.jsonObject.getValue("spans") as kotlinx.serialization.json.JsonArray).size }
                    }
                }
            }

    private fun otelStats(c: Client): JsonObject =
        Json.parseToJsonElement(c.stats()).jsonObject.getValue("otel").jsonObject

    @Test
    fun flushTelemetryExportsTheSpansAndCloseExportsTheLastOnes() = runBlocking {
        val cfg = """{"otel":{"enabled":true,"endpoint":"${http("")}","export_interval_ms":600000}}"""
        Client(cfg).use { c ->
            repeat(3) { c.request("GET", http("/bytes/10")).bytes() }
            c.flushTelemetry()
            assertEquals(3, exportedSpans())
            assertEquals(3L, otelStats(c).n("exported"), c.stats())
            c.request("GET", http("/bytes/10")).bytes()
            c.flushTelemetryBlocking()
            assertEquals(4, exportedSpans())
            c.request("GET", http("/bytes/10")).bytes()
            c.close(0)
            assertEquals(5, exportedSpans(), "close with no time left still exports")
        }
        // A collector that answers every export 404: the spans count as dropped.
        Client("""{"otel":{"enabled":true,"endpoint":"${http("/nowhere")}","export_interval_ms":600000}}""").use { c ->
            repeat(2) { c.request("GET", http("/status/204")) }
            c.flushTelemetry()
            assertEquals(0L, otelStats(c).n("exported"), c.stats())
            assertEquals(2L, otelStats(c).n("dropped"), c.stats())
        }
    }

    @Test
    fun getReturnsStatusHeadersAndBody() = runBlocking {
        Client("{}").use { c ->
            val r = c.request("GET", http("/bytes/1000"), listOf(Header("x-test", "1")))
            assertEquals(200, r.status())
            assertEquals("HTTP/1.1", r.version())
            assertEquals("1000", r.header("Content-Length"))
            assertArrayEquals(pattern(1000), r.bytes())
            assertArrayEquals(ByteArray(0), r.bytes(), "the body was taken")
            c.close(5000)
        }
    }

    @Test
    fun largeBodyStreamsInChunks() = runBlocking {
        Client("{}").use { c ->
            val r = c.request("GET", http("/stream?chunks=8&size=65536"))
            var total = 0L
            var chunks = 0
            while (true) {
                val chunk = r.chunk() ?: break
                total += chunk.size
                chunks++
            }
            assertEquals(8L * 65536, total)
            assertTrue(chunks >= 2, "$chunks chunks")
            assertNull(r.chunk(), "the end stays the end")
            c.close(5000)
        }
    }

    @Test
    fun postSendsTheBodyAndHeaders() = runBlocking {
        Client("{}").use { c ->
            val body = "{\"a\":1}".toByteArray()
            val r = c.request("POST", http("/echo"), listOf(Header("content-type", "application/json")), body)
            val echo = Json.parseToJsonElement(String(r.bytes())).jsonObject
            assertEquals("POST", echo.getValue("method").jsonPrimitive.content)
            assertEquals(body.size, echo.getValue("body_len").jsonPrimitive.int)
            c.close(5000)
        }
    }

    @Test
    fun thousandConcurrentCoroutinesShareOneClient() = runBlocking(Dispatchers.Default) {
        Client("{}").use { c ->
            val statuses = (1..1000).map { i ->
                async {
                    val r = c.request("GET", http("/bytes/${i % 50 + 1}"))
                    assertEquals(i % 50 + 1, r.bytes().size)
                    r.status()
                }
            }.awaitAll()
            assertEquals(List(1000) { 200 }, statuses)
            val stats = Json.parseToJsonElement(c.stats()).jsonObject
            assertEquals(1000L, stats.getValue("requests_total").jsonPrimitive.long, c.stats())
            assertEquals(1000L, srv.counters().n("requests"))
            c.close(5000)
        }
    }

    @Test
    fun cancellingTheCoroutineCancelsTheRequest() = runBlocking {
        Client("{}").use { c ->
            var thrown: Throwable? = null
            val job = launch(Dispatchers.Default) {
                try {
                    c.request("GET", http("/hang"))
                } catch (e: Throwable) {
                    thrown = e
                    throw e
                }
            }
            val seen = waitCounters { it.n("requests_in_flight") == 1L }
            assertEquals(1L, seen.n("requests_in_flight"), "the request reached the server")
            job.cancel()
            job.join()
            assertTrue(thrown is CancellationException, "$thrown")
            val after = waitCounters { it.n("requests_cancelled") == 1L && it.n("requests_in_flight") == 0L }
            assertEquals(1L, after.n("requests_cancelled"), "server saw the cancellation: $after")
            assertEquals(0L, after.n("requests_in_flight"))
            val stats = Json.parseToJsonElement(c.stats()).jsonObject
            assertEquals(0L, stats.getValue("requests_in_flight").jsonPrimitive.long, c.stats())
            c.close(5000)
        }
    }

    @Test
    fun timeoutOptionThrowsTimeoutWithItsCode() = runBlocking {
        Client("{}").use { c ->
            val e = assertThrows<WirecoreException.Timeout> {
                c.request("GET", http("/hang"), options = RequestOptions(timeoutMs = 100))
            }
            assertEquals("timeout.total", e.code)
            c.close(5000)
        }
    }

    @Test
    fun useAfterCloseIsAClearError() = runBlocking {
        val c = Client("{}")
        assertEquals(200, c.request("GET", http("/bytes/1")).status())
        c.close(5000)
        val e = assertThrows<WirecoreException.Closed> { c.request("GET", http("/bytes/1")) }
        assertEquals("closed", e.code)
        assertTrue(e.detail.contains("closed"), e.detail)
        val b = assertThrows<WirecoreException.Closed> { c.requestBlocking("GET", http("/bytes/1")) }
        assertEquals("closed", b.code)
        c.close(5000) // a second close is harmless
        c.destroy()
        val gone = assertThrows<IllegalStateException> { c.stats() }
        assertTrue(gone.message!!.contains("destroyed"), gone.message)
    }

    /**
     * The engine thread that ends a request stays attached to the JVM (as a daemon thread named
     * `wirecore-rt`) after its first completion, so a request starts no JVM thread: JNA attached
     * and detached it around every completion before (one `java.lang.Thread` per request).
     */
    @Test
    fun requestsStartNoThreadEach() = runBlocking(Dispatchers.Default) {
        Client("{}").use { c ->
            val url = http("/bytes/16")
            // 64 coroutines, 10 requests each: the engine threads complete while the JVM waits.
            suspend fun burst() = (0 until 64).map {
                async { repeat(10) { assertEquals(16, c.request("GET", url).bytes().size) } }
            }.awaitAll()
            burst() // the engine threads attach, Dispatchers.Default starts its workers
            val threads = java.lang.management.ManagementFactory.getThreadMXBean()
            val before = threads.totalStartedThreadCount
            burst()
            val started = threads.totalStartedThreadCount - before
            assertTrue(started < 160, "$started JVM threads started for 640 requests")
            c.close(5000)
        }
    }

    /**
     * A call after a failed one on the same thread succeeds: the generated bindings reuse one
     * call status per thread (bindings/uniffi/src/bin/uniffi-bindgen.rs), reset for each call.
     */
    @Test
    fun aCallAfterAFailedCallOnTheSameThreadSucceeds() {
        Client("{}").use { c ->
            repeat(3) {
                assertThrows<WirecoreException.InvalidRequest> { c.pollDeadLetters(0UL, 1U) }
                assertTrue(c.stats().startsWith("{"))
                assertEquals(200, c.requestBlocking("GET", http("/bytes/1"), listOf(), null, null).status())
                assertEquals(1, c.requestBlocking("GET", http("/bytes/1"), listOf(), null, null).bytesBlocking().size)
            }
            c.closeBlocking(5000)
        }
    }

    @Test
    fun badConfigNamesTheField() {
        val e = assertThrows<WirecoreException.Config> { Client("{\"pool\": {\"no_such_knob\": 1}}") }
        assertEquals("invalid_config", e.code)
        assertTrue(e.detail.contains("no_such_knob"), e.detail)
    }

    @Test
    fun badInputThrowsBeforeAnyIo() = runBlocking {
        Client("{}").use { c ->
            assertEquals("invalid_url", assertThrows<WirecoreException.InvalidUrl> { c.request("GET", "ftp://x/") }.code)
            assertEquals(
                "invalid_header",
                assertThrows<WirecoreException.InvalidHeader> { c.request("GET", http("/"), listOf(Header("bad name", "v"))) }.code,
            )
            val bad = RequestOptions(timeoutMs = 0)
            assertEquals("invalid_request", assertThrows<WirecoreException.InvalidRequest> { c.request("GET", http("/"), options = bad) }.code)
            assertEquals(0L, srv.counters().n("requests"))
            c.close(5000)
        }
    }

    @Test
    fun everyEngineErrorCodeHasAKotlinClass() {
        val codes = errorCodes()
        assertTrue(codes.size >= 20, "$codes")
        for (code in codes) assertTrue(code in CLASS_BY_CODE, "no Kotlin class for $code")
    }

    @Test
    fun statsUseTheCoreFieldNames() = runBlocking {
        val cfg = """{"rate_limit": {"enabled": true, "requests": 1000, "per_ms": 1000},
            "breaker": {"enabled": true, "consecutive_failures": 3},
            "concurrency": {"enabled": true, "initial_limit": 10},
            "services": {"svc": {"endpoints": [{"url": "${srv.url("http")}"}]}}}"""
        Client(cfg).use { c ->
            for (url in listOf(http("/bytes/1"), "http://svc/bytes/1")) assertEquals(200, c.request("GET", url).status())
            val stats = Json.parseToJsonElement(c.stats())
            val shape = Json.parseToJsonElement(REPO.resolve("tests/stats-fields.json").toFile().readText())
            assertEquals(emptyList<String>(), differences(stats, shape, ""))
            assertTrue(c.prometheus().contains("wirecore_requests_total"), c.prometheus().take(300))
            assertTrue(Json.parseToJsonElement(c.diagnostics()) is JsonObject)
            assertTrue(c.diagnosticsText().isNotEmpty())
            c.close(5000)
        }
    }

    /**
     * Where `value` and the core's field tree differ. `{"*": x}` is a data map (origins, error
     * codes): its keys are data, each value has shape `x`, and one of records must not be empty.
     */
    private fun differences(value: JsonElement, shape: JsonElement, path: String): List<String> {
        if (shape !is JsonObject) return emptyList()
        val where = path.trimEnd('.').ifEmpty { "stats" }
        if (value !is JsonObject) return listOf("$where is not an object, the core has an object")
        if (shape.keys == setOf("*")) {
            val each = shape.getValue("*")
            if (each is JsonObject && value.isEmpty()) return listOf("$where is empty: the test must fill it to check its records")
            return value.flatMap { (k, v) -> differences(v, each, "$path$k.") }
        }
        val out = mutableListOf<String>()
        (shape.keys - value.keys).sorted().forEach { out += "$path$it is missing" }
        (value.keys - shape.keys).sorted().forEach { out += "$path$it is not a core field" }
        (shape.keys intersect value.keys).sorted().forEach { out += differences(value.getValue(it), shape.getValue(it), "$path$it.") }
        return out
    }

    @Test
    fun cookiesAreStoredListedAndCleared() = runBlocking {
        Client("{}").use { off ->
            off.request("GET", http("/set-cookie?c=a%3D1")).bytes()
            assertEquals("[]", off.cookies(), "the jar is off by default")
            off.close(5000)
        }
        Client("""{"cookies": {"enabled": true}}""").use { c ->
            c.request("GET", http("/set-cookie?c=a%3D1&c=b%3D2%3B%20Path%3D%2Fx")).bytes()
            val jar = Json.parseToJsonElement(c.cookies()) as kotlinx.serialization.json.JsonArray
            val byName = jar.associate { it.jsonObject.getValue("name").jsonPrimitive.content to it.jsonObject }
            assertEquals(setOf("a", "b"), byName.keys, c.cookies())
            assertEquals("1", byName.getValue("a").getValue("value").jsonPrimitive.content)
            val echo = Json.parseToJsonElement(String(c.request("GET", http("/headers")).bytes())).jsonObject
            assertEquals("a=1", echo.getValue("headers").jsonObject.getValue("cookie").jsonPrimitive.content, "b's path is /x")
            c.clearCookies()
            assertEquals("[]", c.cookies())
            c.close(5000)
        }
    }

    @Test
    fun jvmExitsCleanlyWithIdleConnections() {
        // An earlier test's connection can still be closing (its FIN lands after the reset and
        // would count as this test's close): wait for none to be open, then count from zero.
        waitCounters { it.n("connections_active") == 0L }
        srv.reset()
        val java = File(System.getProperty("java.home"), "bin/java").path
        val p = ProcessBuilder(
            java, "-cp", System.getProperty("java.class.path"),
            "-Djna.library.path=" + System.getProperty("jna.library.path"),
            "wirecore.IdleExitKt", http("/bytes/10"),
        ).redirectErrorStream(true).start()
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the JVM did not exit")
        val out = p.inputStream.bufferedReader().readText()
        assertEquals(0, p.exitValue(), out)
        assertTrue(out.contains("status 200"), out)
        assertEquals(1L, waitCounters { it.n("connections_closed") == 1L }.n("connections_closed"), "the idle connection went away with the JVM")
    }

    @Test
    fun withTimeoutCancelsTheRequestToo() = runBlocking {
        Client("{}").use { c ->
            assertThrows<kotlinx.coroutines.TimeoutCancellationException> {
                withTimeout(200) { c.request("GET", http("/hang")) }
            }
            assertEquals(1L, waitCounters { it.n("requests_cancelled") == 1L }.n("requests_cancelled"))
            delay(1)
            c.close(5000)
        }
    }

    /** The engine's log records through logEnable / logPoll (the bridge's process-wide queue). */
    @Test
    fun logRecordsReachThePollingThread() = runBlocking {
        val bad = assertThrows<WirecoreException.Config> { logEnable("loud") }
        assertEquals("invalid_config", bad.code())
        logEnable("debug")
        try {
            val cfg = """{"retry":{"max_attempts":3,"backoff_base_ms":1,"backoff_max_ms":5}}"""
            Client(cfg).use { c ->
                srv.call(
                    "POST", "/_control/script",
                    Json.parseToJsonElement("""{"path":"/s/kt-log","replies":[{"status":503},{"status":200}]}"""),
                )
                assertEquals(200, c.request("GET", http("/s/kt-log")).status())
                // Refused: nothing listens on port 9 of loopback here.
                assertThrows<WirecoreException.Connect> { c.requestBlocking("GET", "http://127.0.0.1:9/") }
                val seen = mutableListOf<LogRecord>()
                val until = System.nanoTime() + 10_000_000_000L
                fun has(vararg parts: String) =
                    seen.any { r -> parts.all { (r.level + " " + r.fieldsJson).contains(it) } }
                while (!has("\"origin\":\"http://127.0.0.1:9\"", "\"attempt\":2") && System.nanoTime() < until) {
                    seen += logPoll(100uL, 256u)
                }
                val origin = "\"origin\":\"${srv.url("http")}\""
                assertTrue(has("debug ", "\"event\":\"connection_opened\"", origin), "connection_opened")
                assertTrue(has("\"event\":\"retry\"", origin, "\"attempt\":1", "\"status\":503"), "the retry after a 503")
                for (a in 1..2) {
                    assertTrue(
                        has("\"event\":\"retry\"", "\"origin\":\"http://127.0.0.1:9\"", "\"attempt\":$a", "\"error_code\":\"connect\""),
                        "retry $a of the refused connect",
                    )
                }
                assertTrue(seen.all { it.timeMs > 0uL && it.target.startsWith("wirecore") }, "time and target")
                c.close(5000)
            }
        } finally {
            logEnable("off")
        }
        // Off: nothing more is queued.
        while (logPoll(0uL, 256u).isNotEmpty()) {}
        Client("{}").use { c ->
            c.request("GET", http("/bytes/1")).bytes()
            c.close(5000)
        }
        assertTrue(logPoll(50uL, 256u).isEmpty(), "no records while off")
        waitCounters { it.n("connections_active") == 0L }
        Unit
    }

    /** Dead letters through listenDeadLetters / pollDeadLetters, as C's examples/dead_letter.c. */
    @Test
    fun deadLettersReachThePollingThread() = runBlocking {
        val cfg = """{"retry":{"max_attempts":3,"backoff_base_ms":1,"backoff_max_ms":5}}"""
        val c = Client(cfg)
        val early = assertThrows<WirecoreException.InvalidRequest> { c.pollDeadLetters(0uL, 64u) }
        assertEquals("invalid_request", early.code())
        c.listenDeadLetters()
        c.listenDeadLetters()
        srv.call(
            "POST", "/_control/script",
            Json.parseToJsonElement("""{"path":"/s/kt-flaky","replies":[{"status":503},{"status":200}]}"""),
        )
        assertEquals(200, c.request("GET", http("/s/kt-flaky")).status(), "fixed by a retry: no letter")
        assertEquals(503, c.request("GET", http("/status/503")).status())
        assertEquals(404, c.request("GET", http("/status/404")).status(), "an answer, not a failure")
        assertThrows<WirecoreException.Connect> {
            c.request("POST", "http://127.0.0.1:9/x", listOf(Header("authorization", "Bearer s")), "payload".toByteArray())
        }
        val seen = mutableListOf<DeadLetter>()
        val until = System.nanoTime() + 10_000_000_000L
        while (seen.size < 2 && System.nanoTime() < until) seen += c.pollDeadLetters(100uL, 64u)
        assertEquals(2, seen.size, "two letters: $seen")
        assertEquals(http("/status/503"), seen[0].url)
        assertEquals(Triple("status", 503, 3u), Triple(seen[0].errorCode, seen[0].status, seen[0].attempts))
        assertEquals("http://127.0.0.1:9/x", seen[1].url)
        assertEquals("connect", seen[1].errorCode)
        assertNull(seen[1].status)
        assertEquals("POST", seen[1].method)
        assertArrayEquals("payload".toByteArray(), seen[1].body)
        assertTrue(seen[1].headers.none { it.name.equals("authorization", true) }, "credentials are left out")
        assertTrue(c.pollDeadLetters(50uL, 64u).isEmpty(), "no third letter")
        c.close(1000)
        val closed = assertThrows<WirecoreException.Closed> { c.pollDeadLetters(1000uL, 64u) }
        assertEquals("closed", closed.code())
        c.close()
        // The server sees the pool's close after the client: let it, so no later test counts it.
        waitCounters { it.n("connections_active") == 0L }
        Unit
    }

    /**
     * Finished spans through listenSpans / pollSpans, as C's examples/span.c: the caller's
     * traceparent is the parent, the attributes follow the conventions, a failure has
     * error.type; spans nobody polls beyond otel.callback_queue are dropped and counted, and a
     * closed client still hands over what it queued.
     */
    @Test
    fun spansReachThePollingThread() = runBlocking {
        val trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        val parent = "00f067aa0ba902b7"
        Client("{}").use { off ->
            val e = assertThrows<WirecoreException.Config> { off.listenSpans() }
            assertTrue(e.detail.contains("otel.enabled"), e.detail)
        }
        val c = Client("""{"otel":{"enabled":true,"callback_queue":2}}""")
        assertThrows<WirecoreException.InvalidRequest> { c.pollSpans(0uL, 64u) }
        c.listenSpans()
        c.listenSpans()
        val tp = "00-$trace-$parent-01"
        assertEquals(200, c.request("GET", http("/status/200"), options = RequestOptions(traceparent = tp)).status())
        assertThrows<WirecoreException.Connect> { c.request("GET", "http://127.0.0.1:9/x") }
        val seen = mutableListOf<Span>()
        val until = System.nanoTime() + 10_000_000_000L
        while (seen.size < 2 && System.nanoTime() < until) seen += c.pollSpans(100uL, 64u)
        assertEquals(2, seen.size, "two spans: $seen")
        val (ok, failed) = seen
        assertEquals(listOf(trace, parent, "GET", "client", "unset"), listOf(ok.traceId, ok.parentSpanId, ok.name, ok.kind, ok.status))
        assertTrue(ok.endUnixNanos >= ok.startUnixNanos && ok.startUnixNanos > 1_700_000_000_000_000_000uL)
        val port = http("").substringAfterLast(':').trimEnd('/').toLong()
        assertEquals(AttributeValue.TextValue("GET"), ok.attributes["http.request.method"])
        assertEquals(AttributeValue.TextValue("127.0.0.1"), ok.attributes["server.address"])
        assertEquals(AttributeValue.IntValue(port), ok.attributes["server.port"])
        assertEquals(AttributeValue.IntValue(200L), ok.attributes["http.response.status_code"])
        assertNull(ok.attributes["error.type"])
        assertNull(failed.parentSpanId)
        assertEquals("error", failed.status)
        assertEquals(AttributeValue.TextValue("connect"), failed.attributes["error.type"])
        // Nobody polls: two wait in the queue of 2, three are dropped; every request completes.
        repeat(5) { assertEquals(204, c.request("GET", http("/status/204")).status()) }
        c.flushTelemetry()
        assertEquals(4L, otelStats(c).n("exported"), c.stats())
        assertEquals(3L, otelStats(c).n("dropped"), c.stats())
        c.close(1000)
        assertEquals(2, c.pollSpans(1000uL, 64u).size, "the queued spans after close")
        val closed = assertThrows<WirecoreException.Closed> { c.pollSpans(1000uL, 64u) }
        assertEquals("closed", closed.code())
        c.close()
        waitCounters { it.n("connections_active") == 0L }
        Unit
    }

    /** Server-Sent Events through Response.events(), as the other bindings' SSE tests. */
    @Test
    fun eventsReadAGetStreamAcrossReconnections() = runBlocking {
        Client("{}").use { c ->
            val r = c.request("GET", http("/sse?events=2&total=5&retry=10&cut=1"))
            assertEquals("text/event-stream", r.header("content-type"))
            val ev = r.events()
            val got = mutableListOf<SseEvent>()
            while (true) got += ev.next() ?: break
            assertEquals(
                listOf(
                    Triple("message", "0", """{"n":0}"""),
                    Triple("message", "1", """{"n":1}"""),
                    Triple("message", "2", """{"n":2,"last_event_id":"1"}"""),
                    Triple("message", "3", """{"n":3,"last_event_id":"1"}"""),
                    Triple("message", "4", """{"n":4,"last_event_id":"3"}"""),
                ),
                got.map { Triple(it.event, it.id, Json.parseToJsonElement(it.data).toString()) },
            )
            assertNull(ev.next(), "null again after the end")
            assertEquals(4L, srv.counters().n("requests"))
            assertThrows<WirecoreException.InvalidRequest> { r.bytes() }
            // Blocking reads, and cancel stops the stream.
            val s = c.request("GET", http("/sse?events=3&delay_ms=50"))
            val blocking = s.events()
            assertEquals("0", blocking.nextBlocking()!!.id)
            blocking.cancel()
            assertThrows<WirecoreException.Cancelled> { blocking.nextBlocking() }
            c.close(5000)
        }
        waitCounters { it.n("connections_active") == 0L }
        Unit
    }
}
