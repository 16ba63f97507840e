package wirecore

import java.io.FileInputStream
import java.lang.management.ManagementFactory
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.time.Duration
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong
import javax.net.ssl.SSLContext
import javax.net.ssl.TrustManagerFactory
import javax.net.ssl.X509TrustManager
import kotlin.concurrent.thread
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import okhttp3.ConnectionPool
import okhttp3.OkHttpClient
import okhttp3.Protocol
import okhttp3.Request

/**
 * `make bench-kotlin`: wirecore (suspend API, coroutines) vs OkHttp and the JDK HttpClient
 * (blocking calls, one thread per in-flight request, as they are commonly used), GET /bytes/1024
 * from the release test server, h1 (plain) and h2 (TLS, ALPN), closed loop at each concurrency.
 * Prints a Markdown report. Args: seconds per cell, concurrency list, clients.
 */
fun main(args: Array<String>) {
    val seconds = args.getOrNull(0)?.toLong() ?: 3
    val concurrencies = args.getOrNull(1)?.split(",")?.map { it.toInt() } ?: listOf(1, 64, 256)
    val clients = args.getOrNull(2)?.split(",") ?: listOf("okhttp", "jdk", "wirecore")
    val serverCpu = System.getProperty("wirecore.server.cpu", "0")
    val srv = TestServer.start("--no-request-log", "--threads", "1", pin = listOf("taskset", "-c", serverCpu))
    srv.use {
        val ca = srv.url("ca")
        val ssl = sslContext(ca)
        // The header first and each row as its cell ends, on stdout only: `make bench-kotlin`
        // sends stdout and stderr to the same file, so a progress copy on stderr doubled the rows.
        println("# Kotlin/JVM: wirecore vs OkHttp and the JDK HttpClient (${java.time.LocalDate.now()})\n")
        println("GET /bytes/1024 from the wirecore test server (release, 1 thread, CPU $serverCpu) on loopback; ${seconds}s per cell after 1 s of warm-up;")
        println("Java ${System.getProperty("java.version")}, ${Runtime.getRuntime().availableProcessors()} CPUs for the client JVM.")
        println("OkHttp 5.5.1 and the JDK client: blocking calls, one platform thread per in-flight request; wirecore: `request` + `bytes()` in C coroutines on Dispatchers.Default.")
        println("h1 = HTTP/1.1 over plain TCP; h2 = HTTP/2 over TLS (ALPN). CPU µs/req is the client JVM's CPU (JIT and GC included; wirecore's engine threads are in the same process).")
        println("Load average at the start: ${loadavg()} (a shared machine: compare within this run only).\n")
        println("| proto | C | " + clients.joinToString(" | ") { "$it req/s" } + " | " + clients.joinToString(" | ") { "$it CPU µs/req" } +
            " | " + clients.joinToString(" | ") { "$it p50 / p99" } + " | errors |")
        println("| --- | ---: | " + List(clients.size * 3 + 1) { "---:" }.joinToString(" | ") + " |")
        for (proto in listOf("h1", "h2")) {
            val url = (if (proto == "h1") srv.url("http") else srv.url("https")) + "/bytes/1024"
            for (c in concurrencies) {
                val cells = clients.associateWith { name -> run(name, proto, url, c, seconds, ssl.first, ssl.second, ca) }
                println(row(proto, c, cells))
                System.out.flush()
            }
        }
        println("\nLoad average at the end: ${loadavg()}.")
    }
}

private fun loadavg() = java.io.File("/proc/loadavg").readText().split(" ").take(3).joinToString(" ")

private class Cell(val rps: Double, val cpuUs: Double, val p50: Long, val p99: Long, val errors: Long)

private fun row(proto: String, c: Int, cells: Map<String, Cell>): String {
    fun us(n: Long) = if (n >= 1000_000) "%.2fms".format(n / 1e6) else "%dµs".format(n / 1000)
    val v = cells.values
    return "| $proto | $c | " + v.joinToString(" | ") { "%.0f".format(it.rps) } + " | " +
        v.joinToString(" | ") { "%.1f".format(it.cpuUs) } + " | " + v.joinToString(" | ") { "${us(it.p50)} / ${us(it.p99)}" } +
        " | " + v.joinToString("/") { it.errors.toString() } + " |"
}

private fun sslContext(caPath: String): Pair<SSLContext, X509TrustManager> {
    val cert = FileInputStream(caPath).use { CertificateFactory.getInstance("X.509").generateCertificate(it) }
    val ks = KeyStore.getInstance(KeyStore.getDefaultType()).apply { load(null, null); setCertificateEntry("ca", cert) }
    val tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(ks) }
    val tm = tmf.trustManagers.first() as X509TrustManager
    return SSLContext.getInstance("TLS").apply { init(null, arrayOf(tm), null) } to tm
}

private val osBean = ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean

/** Runs `one` in a closed loop at concurrency `c`: warm-up, then `seconds` measured. */
private class Loop(val c: Int) {
    val stop = AtomicBoolean(false)
    val measuring = AtomicBoolean(false)
    val count = AtomicLong()
    val errors = AtomicLong()
    val lat = Array(c) { LongArray(1 shl 16) }
    val n = IntArray(c)

    fun record(worker: Int, t0: Long, ok: Boolean) {
        if (!measuring.get()) return
        if (!ok) errors.incrementAndGet()
        count.incrementAndGet()
        val a = lat[worker]
        if (n[worker] < a.size) a[n[worker]++] = System.nanoTime() - t0 else a[(count.get() % a.size).toInt()] = System.nanoTime() - t0
    }

    fun measure(seconds: Long): Cell {
        Thread.sleep(1000)
        val cpu0 = osBean.processCpuTime
        val t0 = System.nanoTime()
        measuring.set(true)
        Thread.sleep(seconds * 1000)
        measuring.set(false)
        val dt = (System.nanoTime() - t0) / 1e9
        val cpu = osBean.processCpuTime - cpu0
        stop.set(true)
        val all = (0 until c).flatMap { w -> lat[w].take(n[w]) }.sorted()
        val k = count.get().coerceAtLeast(1)
        return Cell(count.get() / dt, cpu / 1000.0 / k, all.getOrElse(all.size / 2) { 0 }, all.getOrElse(all.size * 99 / 100) { 0 }, errors.get())
    }
}

private fun run(name: String, proto: String, url: String, c: Int, seconds: Long, ssl: SSLContext, tm: X509TrustManager, ca: String): Cell {
    System.gc()
    val loop = Loop(c)
    return when (name) {
        "wirecore" -> {
            val client = Client("""{"tls": {"ca_files": ["$ca"]}, "pool": {"max_idle_per_host": ${c + 8}}}""")
            var cell: Cell? = null
            runBlocking(Dispatchers.Default) {
                val jobs = (0 until c).map { w ->
                    launch {
                        while (!loop.stop.get()) {
                            val t0 = System.nanoTime()
                            val ok = try {
                                val r = client.request("GET", url)
                                r.bytes().size == 1024 && r.status() == 200
                            } catch (e: WirecoreException) {
                                false
                            }
                            loop.record(w, t0, ok)
                        }
                    }
                }
                cell = kotlinx.coroutines.withContext(Dispatchers.IO) { loop.measure(seconds) }
                jobs.joinAll()
            }
            client.closeBlocking(5000)
            client.destroy()
            cell!!
        }
        "okhttp" -> {
            val client = OkHttpClient.Builder()
                .sslSocketFactory(ssl.socketFactory, tm)
                .protocols(if (proto == "h2") listOf(Protocol.HTTP_2, Protocol.HTTP_1_1) else listOf(Protocol.HTTP_1_1))
                .connectionPool(ConnectionPool(c + 8, 5, TimeUnit.MINUTES))
                .build()
            val req = Request.Builder().url(url).build()
            threads(loop, c, seconds) { w ->
                val t0 = System.nanoTime()
                val ok = try {
                    client.newCall(req).execute().use { it.code == 200 && it.body.bytes().size == 1024 }
                } catch (e: java.io.IOException) {
                    false
                }
                loop.record(w, t0, ok)
            }.also {
                client.dispatcher.executorService.shutdown()
                client.connectionPool.evictAll()
            }
        }
        "jdk" -> {
            val client = HttpClient.newBuilder().sslContext(ssl)
                .version(if (proto == "h2") HttpClient.Version.HTTP_2 else HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build()
            val req = HttpRequest.newBuilder(URI.create(url)).GET().build()
            threads(loop, c, seconds) { w ->
                val t0 = System.nanoTime()
                val ok = try {
                    val r = client.send(req, HttpResponse.BodyHandlers.ofByteArray())
                    r.statusCode() == 200 && r.body().size == 1024
                } catch (e: java.io.IOException) {
                    false
                }
                loop.record(w, t0, ok)
            }
        }
        else -> error("unknown client $name")
    }
}

private fun threads(loop: Loop, c: Int, seconds: Long, one: (Int) -> Unit): Cell {
    val ts = (0 until c).map { w -> thread(name = "bench-$w") { while (!loop.stop.get()) one(w) } }
    val cell = loop.measure(seconds)
    ts.forEach { it.join() }
    return cell
}
