package wirecore

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Path
import java.time.Duration
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive

/** The repository root (surefire passes it; the tests read tests/scenarios from it). */
val REPO: Path = Path.of(System.getProperty("wirecore.repo") ?: "../..").toAbsolutePath().normalize()

/**
 * The project's test server (wirecore-testserver), spawned with stdin piped: it prints one JSON
 * line of addresses and exits when stdin closes. Control calls go on their own connections
 * (the JDK client, never counted by the server).
 */
class TestServer private constructor(private val process: Process, val info: JsonObject) : AutoCloseable {
    private val http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()

    fun url(name: String): String = info.getValue(name).jsonPrimitive.content

    val control: String get() = url("control")

    /** One control-API call; the JSON answer (null when empty); throws on a status >= 300. */
    fun call(method: String, path: String, body: JsonElement? = null): JsonElement? {
        val pub = if (body == null) HttpRequest.BodyPublishers.noBody() else HttpRequest.BodyPublishers.ofString(body.toString())
        val req = HttpRequest.newBuilder(URI.create(control + path)).method(method, pub).timeout(Duration.ofSeconds(10)).build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
        check(resp.statusCode() < 300) { "$method $path: ${resp.statusCode()} ${resp.body()}" }
        return if (resp.body().isEmpty()) null else Json.parseToJsonElement(resp.body())
    }

    fun reset() {
        call("POST", "/_control/reset")
    }

    fun counters(): JsonObject = call("GET", "/_control/counters")!!.jsonObject

    override fun close() {
        process.outputStream.close()
        if (!process.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly()
    }

    companion object {
        /** Starts the server with `args`; `pin` prefixes the command (`taskset -c 0`). */
        @JvmOverloads
        fun start(vararg args: String, pin: List<String> = emptyList()): TestServer {
            val bin = System.getProperty("wirecore.testserver")
                ?: error("set -Dwirecore.testserver to the wirecore-testserver binary (make test-kotlin does)")
            val p = ProcessBuilder(pin + listOf(bin, "--exit-on-stdin-eof") + args)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            val line = p.inputStream.bufferedReader().readLine() ?: error("the test server printed nothing")
            return TestServer(p, Json.parseToJsonElement(line).jsonObject)
        }
    }
}
