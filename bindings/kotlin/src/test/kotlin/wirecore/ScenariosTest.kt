package wirecore

import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.name
import kotlin.io.path.readText
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonNull
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.booleanOrNull
import kotlinx.serialization.json.doubleOrNull
import kotlinx.serialization.json.int
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import kotlinx.serialization.json.long
import kotlinx.serialization.json.longOrNull
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import org.junit.jupiter.api.TestInstance

// Every key a scenario file may use, per object; any other key fails the file (the same sets
// as the other runners: tests/scenarios/README.md).
private val TOP_KEYS = setOf("name", "description", "config", "script", "dns", "steps", "stats", "server", "skip")
private val STEP_KEYS = setOf("request", "outcome", "concurrency", "dns", "wait_ms")
private val SCRIPT_KEYS = setOf("path", "replies")
private val DNS_KEYS = setOf("name", "ips", "ttl", "fail", "remove", "negative_ttl")
private val RANGE_KEYS = setOf("min", "max")
private val LANGUAGES = setOf("rust", "python", "node", "go", "c")
private val REQUEST_KEYS = setOf(
    "method", "url", "headers", "body", "timeout_ms", "priority", "redirect", "max_redirects", "cache", "balance_key",
    "traceparent", "tracestate",
)
private val OUTCOME_KEYS = setOf(
    "status", "error", "body", "body_contains", "body_len", "json", "json_absent", "headers", "absent_headers",
    "version", "reused", "cache_status", "any_of",
)

/** The Kotlin class each error code is thrown as (every code of the engine has one). */
val CLASS_BY_CODE: Map<String, Class<out WirecoreException>> = mapOf(
    "invalid_config" to WirecoreException.Config::class.java,
    "invalid_url" to WirecoreException.InvalidUrl::class.java,
    "invalid_header" to WirecoreException.InvalidHeader::class.java,
    "invalid_request" to WirecoreException.InvalidRequest::class.java,
    "dns" to WirecoreException.Dns::class.java,
    "connect" to WirecoreException.Connect::class.java,
    "tls" to WirecoreException.Tls::class.java,
    "io" to WirecoreException.Io::class.java,
    "protocol" to WirecoreException.Protocol::class.java,
    "timeout.total" to WirecoreException.Timeout::class.java,
    "timeout.connect" to WirecoreException.Timeout::class.java,
    "timeout.tls" to WirecoreException.Timeout::class.java,
    "timeout.read" to WirecoreException.Timeout::class.java,
    "timeout.pool" to WirecoreException.Timeout::class.java,
    "decode" to WirecoreException.Decode::class.java,
    "body_too_large" to WirecoreException.BodyTooLarge::class.java,
    "too_many_redirects" to WirecoreException.TooManyRedirects::class.java,
    "redirect_downgrade" to WirecoreException.RedirectDowngrade::class.java,
    "closed" to WirecoreException.Closed::class.java,
    "cancelled" to WirecoreException.Cancelled::class.java,
    "circuit_open" to WirecoreException.CircuitOpen::class.java,
    "rate_limited" to WirecoreException.RateLimited::class.java,
    "overloaded" to WirecoreException.Overloaded::class.java,
    "internal" to WirecoreException.Internal::class.java,
)

/** What one request ended with: a response and its whole body, or an exception. */
private class Result(val response: Response?, val body: ByteArray?, val error: WirecoreException?)

private fun fail(msg: String): Nothing = throw AssertionError(msg)

private fun keys(obj: JsonElement?, allowed: Set<String>, what: String) {
    if (obj == null) return
    if (obj !is JsonObject) fail("$what must be an object")
    for (k in obj.keys) if (k !in allowed) fail("unknown key $what.$k")
}

/** Checks every key of the file before anything runs. */
private fun validate(sc: JsonObject) {
    keys(sc, TOP_KEYS, "scenario")
    keys(sc["skip"], LANGUAGES, "skip")
    sc["script"]?.jsonArray?.forEach { keys(it, SCRIPT_KEYS, "script[]") }
    sc["dns"]?.jsonArray?.forEach { keys(it, DNS_KEYS, "dns[]") }
    sc["server"]?.jsonObject?.forEach { (k, v) -> if (v is JsonObject) keys(v, RANGE_KEYS, "server.$k") }
    val steps = sc["steps"]?.jsonArray
    if (steps.isNullOrEmpty()) fail("no steps")
    for ((i, st) in steps.withIndex()) {
        keys(st, STEP_KEYS, "steps[$i]")
        val o = st.jsonObject
        o["dns"]?.jsonArray?.forEach { keys(it, DNS_KEYS, "steps[$i].dns[]") }
        if (("request" in o) != ("outcome" in o)) fail("steps[$i]: request and outcome go together")
        keys(o["request"], REQUEST_KEYS, "steps[$i].request")
        keys(o["outcome"], OUTCOME_KEYS, "steps[$i].outcome")
        o["outcome"]?.jsonObject?.get("any_of")?.jsonArray?.forEach {
            keys(it, OUTCOME_KEYS - "any_of", "steps[$i].outcome.any_of[]")
        }
    }
}

private fun str(e: JsonElement?): String? = (e as? JsonPrimitive)?.takeIf { it.isString }?.content

/** JSON equality, with numbers compared by value (1 == 1.0). */
private fun same(a: JsonElement?, b: JsonElement?): Boolean {
    if (a is JsonPrimitive && b is JsonPrimitive && !a.isString && !b.isString) {
        val x = a.doubleOrNull
        val y = b.doubleOrNull
        if (x != null && y != null) return x == y
    }
    return a == b
}

private fun subset(actual: JsonElement?, expected: JsonElement, where: String) {
    if (expected is JsonObject) {
        if (actual !is JsonObject) fail("$where: expected an object, got $actual")
        for ((k, v) in expected) {
            if (k !in actual) fail("$where.$k missing in $actual")
            subset(actual[k], v, "$where.$k")
        }
    } else if (!same(actual, expected)) {
        fail("$where: expected $expected, got $actual")
    }
}

private fun isRange(v: JsonElement): Boolean = v is JsonObject && v.isNotEmpty() && v.keys.all { it in RANGE_KEYS }

private fun inRange(have: JsonElement?, want: JsonObject): Boolean {
    val n = (have as? JsonPrimitive)?.takeIf { !it.isString }?.doubleOrNull ?: return false
    val min = want["min"]?.jsonPrimitive?.doubleOrNull
    val max = want["max"]?.jsonPrimitive?.doubleOrNull
    return (min == null || n >= min) && (max == null || n <= max)
}

/** The `stats` outcome: every key given must exist; leaves compare exactly or by range. */
private fun checkStats(want: JsonElement, have: JsonElement?, where: String) {
    when {
        isRange(want) -> if (!inRange(have, want.jsonObject)) fail("stats $where: $have not in $want")
        want is JsonObject -> {
            if (have !is JsonObject) fail("stats $where: expected an object, got $have")
            for ((k, v) in want) {
                val p = if (where.isEmpty()) k else "$where.$k"
                if (k !in have) fail("stats $p: no such field")
                checkStats(v, have[k], p)
            }
        }
        else -> if (!same(have, want)) fail("stats $where: want $want, got $have")
    }
}

private fun hasPath(doc: JsonElement, dotted: String): Boolean {
    var d: JsonElement = doc
    for (key in dotted.split('.')) {
        if (d !is JsonObject || key !in d) return false
        d = d.getValue(key)
    }
    return true
}

private fun checkOutcome(outcome: JsonObject, r: Result, where: String) {
    for (k in outcome.keys) if (k !in OUTCOME_KEYS) fail("$where: the Kotlin runner cannot check outcome.$k")
    outcome["any_of"]?.let { alts ->
        val why = mutableListOf<String>()
        for (alt in alts.jsonArray) {
            try {
                checkOutcome(alt.jsonObject, r, where)
                return
            } catch (e: AssertionError) {
                why += e.message ?: "?"
            }
        }
        fail("$where: no outcome of any_of matched: ${why.joinToString("; ")}")
    }
    str(outcome["error"])?.let { code ->
        val e = r.error ?: fail("$where: expected error $code, got status ${r.response?.status()}")
        assertEquals(code, e.code(), "$where: ${e.message}")
        val cls = CLASS_BY_CODE[code] ?: fail("$where: no Kotlin class for $code")
        assertTrue(cls.isInstance(e), "$where: ${e.javaClass.name} is not ${cls.name}")
        return
    }
    r.error?.let { throw AssertionError("$where: unexpected ${it.code()}: ${it.message}", it) }
    val resp = r.response!!
    val body = r.body!!
    outcome["status"]?.let { assertEquals(it.jsonPrimitive.int, resp.status(), "$where: status") }
    outcome["version"]?.let { assertEquals(str(it), resp.version(), "$where: version") }
    outcome["reused"]?.let { assertEquals(it.jsonPrimitive.booleanOrNull, resp.reused(), "$where: reused") }
    outcome["cache_status"]?.let { assertEquals(str(it), resp.cacheStatus() ?: "none", "$where: cache_status") }
    val text = String(body, Charsets.UTF_8)
    outcome["body"]?.let { assertEquals(str(it), text, "$where: body") }
    outcome["body_contains"]?.let { assertTrue(text.contains(str(it)!!), "$where: body contains $it: ${text.take(300)}") }
    outcome["body_len"]?.let { assertEquals(it.jsonPrimitive.long, body.size.toLong(), "$where: body_len") }
    outcome["json"]?.let { subset(Json.parseToJsonElement(text), it, "$where: json") }
    outcome["json_absent"]?.jsonArray?.forEach {
        if (hasPath(Json.parseToJsonElement(text), str(it)!!)) fail("$where: $it should be absent: ${text.take(300)}")
    }
    outcome["headers"]?.jsonObject?.forEach { (k, v) -> assertEquals(str(v), resp.header(k), "$where: header $k") }
    outcome["absent_headers"]?.jsonArray?.forEach {
        assertEquals(null, resp.header(str(it)!!), "$where: header $it absent")
    }
}

private fun options(rq: JsonObject): RequestOptions = RequestOptions(
    timeoutMs = rq["timeout_ms"]?.jsonPrimitive?.long,
    priority = rq["priority"]?.let { (it as JsonPrimitive).content },
    redirect = str(rq["redirect"]),
    maxRedirects = rq["max_redirects"]?.jsonPrimitive?.long,
    cache = str(rq["cache"]),
    balanceKey = str(rq["balance_key"]),
    traceparent = str(rq["traceparent"]),
    tracestate = str(rq["tracestate"]),
)

private suspend fun send(client: Client, rq: JsonObject, where: String): Result {
    for (k in rq.keys) if (k !in REQUEST_KEYS) fail("$where: the Kotlin runner cannot send request.$k")
    val headers = rq["headers"]?.jsonObject?.map { (k, v) -> Header(k, str(v) ?: fail("$where: header $k must be a string")) }
    return try {
        val resp = client.request(
            str(rq["method"]) ?: fail("$where: no method"),
            str(rq["url"]) ?: fail("$where: no url"),
            headers ?: emptyList(),
            str(rq["body"])?.toByteArray(Charsets.UTF_8),
            options(rq),
        )
        try {
            Result(resp, resp.bytes(), null)
        } catch (e: WirecoreException) {
            Result(null, null, e)
        }
    } catch (e: WirecoreException) {
        Result(null, null, e)
    }
}

private fun counterMatches(have: JsonElement?, want: JsonElement): Boolean =
    if (want is JsonObject) inRange(have, want) else same(have, want)

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ScenariosTest {
    private lateinit var srv: TestServer
    private val dir: Path = REPO.resolve("tests/scenarios")
    private val files: List<Path> = Files.list(dir).use { s -> s.filter { it.name.endsWith(".json") }.sorted().toList() }
    private val passed = mutableListOf<String>()
    private val skipped = mutableListOf<String>()

    @BeforeAll
    fun start() {
        srv = TestServer.start()
    }

    @AfterAll
    fun stop() {
        srv.close()
        println("scenarios (kotlin): ${passed.size} passed, ${skipped.size} skipped (${skipped.joinToString("; ")})")
    }

    @Test
    fun scenarioDirectoryIsNotEmpty() {
        assertTrue(files.size >= 80, "${files.size} scenarios in $dir")
    }

    @Test
    fun unknownKeysFailTheFile() {
        val ok = """{"name": "x", "steps": [{"request": {"method": "GET", "url": "u"}, "outcome": {"status": 200}}]}"""
        validate(Json.parseToJsonElement(ok).jsonObject)
        for (bad in listOf(
            ok.replace("\"name\"", "\"nmae\""),
            ok.replace("\"url\"", "\"uri\""),
            ok.replace("\"status\"", "\"statuz\""),
            ok.replace("}]}", "}], \"skip\": {\"cobol\": \"why\"}}"),
            ok.replace("{\"status\": 200}", "{\"any_of\": [{\"any_of\": []}]}"),
        )) {
            val e = runCatching { validate(Json.parseToJsonElement(bad).jsonObject) }.exceptionOrNull()
            assertTrue(e is AssertionError && e.message!!.contains("unknown key"), "$bad: $e")
        }
    }

    private fun substitute(text: String): String {
        fun hostPort(u: String) = u.replace(Regex("^[a-z]+://"), "")
        val map = mutableMapOf<String, String>()
        for (k in listOf("http", "http2", "http3", "https", "bad_tls", "mtls", "ca", "client_cert", "client_key", "torture")) {
            map[k] = srv.url(k)
        }
        for (k in listOf("blackhole", "silent", "dns")) map[k] = hostPort(srv.url(k))
        map["http_port"] = srv.url("http").substringAfterLast(':')
        return Regex("\\{([a-z0-9_]+)\\}").replace(text) { m -> map[m.groupValues[1]] ?: m.value }
    }

    @TestFactory
    fun scenarios(): List<DynamicTest> = files.map { file -> DynamicTest.dynamicTest(file.name) { run(file) } }

    private fun run(file: Path) {
        val raw = file.readText()
        val sc = Json.parseToJsonElement(substitute(raw)).jsonObject
        assertEquals("${str(sc["name"])}.json", file.name)
        validate(sc)
        srv.reset()
        sc["script"]?.jsonArray?.forEach { srv.call("POST", "/_control/script", it) }
        sc["dns"]?.jsonArray?.forEach { srv.call("POST", "/_control/dns", it) }
        val config = (sc["config"] as? JsonObject ?: JsonObject(emptyMap())).toMutableMap()
        if ("tls" !in config) config["tls"] = JsonObject(mapOf("ca_files" to JsonArray(listOf(JsonPrimitive(srv.url("ca"))))))
        val client = Client(JsonObject(config).toString())
        try {
            runBlocking {
                for ((i, stepEl) in sc.getValue("steps").jsonArray.withIndex()) {
                    val step = stepEl.jsonObject
                    val where = "${str(sc["name"])} step $i"
                    step["dns"]?.jsonArray?.forEach { srv.call("POST", "/_control/dns", it) }
                    // Time passing is the behaviour under test here (a breaker's open time).
                    step["wait_ms"]?.let { delay(it.jsonPrimitive.long) }
                    val rq = step["request"]?.jsonObject ?: continue
                    val n = step["concurrency"]?.jsonPrimitive?.int ?: 1
                    val results = coroutineScope { (1..n).map { async { send(client, rq, where) } }.awaitAll() }
                    for (r in results) checkOutcome(step.getValue("outcome").jsonObject, r, where)
                }
            }
            sc["stats"]?.let { checkStats(it, Json.parseToJsonElement(client.stats()), "") }
        } finally {
            client.closeBlocking(2000)
            client.destroy()
        }
        sc["server"]?.jsonObject?.let { want ->
            val known = srv.counters()
            for (k in want.keys) if (k !in known) fail("${file.name}: unknown server counter $k")
            // Closes and cancellations reach the server after the client sees them: poll briefly.
            val until = System.nanoTime() + 3_000_000_000L
            var c = known
            while (!want.all { (k, v) -> counterMatches(c[k], v) } && System.nanoTime() < until) {
                Thread.sleep(20)
                c = srv.counters()
            }
            for ((k, v) in want) if (!counterMatches(c[k], v)) fail("${file.name}: server $k = ${c[k]}, want $v")
        }
        passed += file.name
    }
}
