package wirecore

import kotlin.system.exitProcess

/** A JVM that makes one request and returns from main with the connection idle in the pool. */
fun main(args: Array<String>) {
    val c = Client("{}")
    val r = c.requestBlocking("GET", args[0])
    println("status ${r.status()} ${r.bytesBlocking().size} bytes")
    if (r.status() != 200) exitProcess(1)
}
