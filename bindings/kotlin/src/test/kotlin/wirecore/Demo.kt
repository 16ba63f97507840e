package wirecore

import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking

/** `make demo-kotlin`: a few requests against a fresh test server, then the client's stats. */
fun main() = runBlocking {
    TestServer.start().use { srv ->
        val base = srv.url("http")
        val client = Client("""{"retry": {"max_attempts": 3}, "tls": {"ca_files": ["${srv.url("ca")}"]}}""")
        val r = client.request("GET", "$base/json", listOf(Header("accept", "application/json")))
        println("GET /json -> ${r.status()} ${r.version()} reused=${r.reused()} ${String(r.bytes()).take(60)}")
        val h2 = client.request("GET", srv.url("https") + "/bytes/1024")
        println("GET https /bytes/1024 -> ${h2.status()} ${h2.version()} ${h2.bytes().size} bytes")
        val sizes = (1..64).map { async { client.request("GET", "$base/bytes/$it").bytes().size } }.awaitAll()
        println("64 concurrent coroutines: ${sizes.sum()} bytes")
        try {
            client.request("GET", "$base/hang", options = RequestOptions(timeoutMs = 200))
        } catch (e: WirecoreException.Timeout) {
            println("GET /hang with a 200 ms timeout -> ${e.javaClass.simpleName} (${e.code})")
        }
        client.close(5000)
        println(client.stats())
        client.destroy()
    }
}
