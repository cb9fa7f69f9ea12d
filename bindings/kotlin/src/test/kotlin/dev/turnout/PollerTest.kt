package dev.turnout

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import dev.turnout.tools.Json
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test
import java.io.BufferedReader
import java.io.EOFException
import java.io.IOException
import java.io.InputStreamReader
import java.io.OutputStream
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger

/**
 * The poller against a real HTTP server on 127.0.0.1 (the JDK's com.sun.net.httpserver), and
 * against a raw socket server for answers no well-behaved server sends: a slow body, a body cut
 * short, a body over the limit (one deadline per request, the body limit, the ETag rule).
 */
class PollerTest {
    /** A config server and an event collector on one port. */
    private class Server(port: Int = 0) {
        @Volatile var config: ByteArray = bundle(1, 60)

        @Volatile var etag: String = "\"v1\""

        /** Answer POSTs with this status while > 0 of them remain. */
        val failPosts = AtomicInteger(0)
        val gets = AtomicInteger(0)
        val notModified = AtomicInteger(0)
        val ifNoneMatch = CopyOnWriteArrayList<String?>()

        /** Successful deliveries per batch seq. */
        val delivered = ConcurrentHashMap<Long, AtomicInteger>()
        val events = Collections.synchronizedList(ArrayList<com.google.gson.JsonObject>())
        val http: HttpServer = HttpServer.create(InetSocketAddress("127.0.0.1", port), 0)

        init {
            http.createContext("/config") { ex -> handleGet(ex) }
            http.createContext("/events") { ex -> handlePost(ex) }
            http.start()
        }

        val port: Int get() = http.address.port

        fun url(path: String) = "http://127.0.0.1:$port$path"

        private fun handleGet(ex: HttpExchange) {
            gets.incrementAndGet()
            val inm = ex.requestHeaders.getFirst("If-None-Match")
            ifNoneMatch += inm
            if (inm == etag) {
                notModified.incrementAndGet()
                ex.sendResponseHeaders(304, -1)
            } else {
                val body = config
                ex.responseHeaders.add("ETag", etag)
                ex.sendResponseHeaders(200, body.size.toLong())
                ex.responseBody.use { it.write(body) }
            }
            ex.close()
        }

        private fun handlePost(ex: HttpExchange) {
            val body = ex.requestBody.use { it.readBytes() }
            if (failPosts.getAndDecrement() > 0) {
                ex.sendResponseHeaders(503, -1)
                ex.close()
                return
            }
            val batch = Json.parse(Turnout.decodeBatchJson(body)).asJsonObject
            val seq = batch.getAsJsonObject("header")["seq"].asLong
            if (delivered.computeIfAbsent(seq) { AtomicInteger() }.incrementAndGet() == 1) {
                batch.getAsJsonArray("events").forEach { events += it.asJsonObject }
            }
            assertEquals("application/octet-stream", ex.requestHeaders.getFirst("Content-Type"))
            ex.sendResponseHeaders(204, -1)
            ex.close()
        }

        fun stop() = http.stop(0)
    }

    private val servers = ArrayList<Server>()
    private val closeables = ArrayList<AutoCloseable>()

    private fun server(port: Int = 0) = Server(port).also { servers += it }

    private fun <T : AutoCloseable> T.closeLater(): T = also { closeables += it }

    @AfterEach
    fun cleanUp() {
        closeables.reversed().forEach { it.close() }
        servers.forEach { it.stop() }
    }

    private fun options(
        s: Server,
        changes: MutableList<UpdateReport> = CopyOnWriteArrayList(),
        errors: MutableList<Throwable> = CopyOnWriteArrayList(),
    ) = PollerOptions(
        configUrl = s.url("/config"),
        eventsUrl = s.url("/events"),
        intervalMs = 40,
        flushIntervalMs = 40,
        maxBackoffMs = 320,
        jitter = 0.0,
        transport = HttpUrlConnectionTransport(connectTimeoutMs = 1000, readTimeoutMs = 1000),
        onChange = { changes += it },
        onError = { errors += it },
    )

    @Test
    fun `a config change is picked up and 304 is honoured`() {
        val s = server()
        val client = Turnout.emptyClient().closeLater()
        val changes = CopyOnWriteArrayList<UpdateReport>()
        Poller(client, options(s, changes)).start().closeLater()
        val v = client.variable("delay")
        val facets = Facets().city(6)
        eventually("first config") { client.configVersion == 1L }
        assertEquals(60, client.getVariable("delay", facets).int64(0))
        eventually("several 304s") { s.notModified.get() >= 3 }
        assertEquals(1, changes.size, "a 304 installs nothing")
        assertTrue(s.ifNoneMatch.contains("\"v1\""), "If-None-Match sent: ${s.ifNoneMatch}")

        s.config = bundle(2, 61)
        s.etag = "\"v2\""
        eventually("second config") { client.configVersion == 2L }
        client.context(facets).use { assertEquals(61, it.int64(v, 0)) }
        assertEquals(2, changes.size)
        assertEquals(listOf("delay"), changes[1].changed)

        // The same content under a new ETag is installed, but changes nothing: no callback.
        s.etag = "\"v2-again\""
        eventually("re-fetched") { s.ifNoneMatch.contains("\"v2-again\"") }
        assertEquals(2, changes.size)
    }

    @Test
    fun `a bad config never replaces the good one`() {
        val s = server()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        val poller = Poller(client, options(s, errors = errors)).closeLater()
        assertTrue(poller.pollNow())
        s.config = "{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]".toByteArray()
        s.etag = "\"broken\""
        assertFalse(poller.pollNow())
        assertTrue(errors.single() is TurnoutException.Config, "$errors")
        assertEquals(1, poller.configFailures)
        assertEquals("\"v1\"", poller.etag, "the ETag of the rejected config is not kept")
        assertEquals(60, client.getVariable("delay", Facets().city(6)).int64(0), "last good config in force")
    }

    @Test
    fun `server down then up - backoff, then recovery`() {
        val s = server()
        val port = s.port
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        val poller = Poller(client, options(s, errors = errors)).start().closeLater()
        eventually("first config") { client.configVersion == 1L }
        s.stop()
        eventually("failures counted") { poller.configFailures >= 3 }
        assertTrue(errors.all { it is java.io.IOException }, "$errors")
        assertEquals(60, client.getVariable("delay", Facets().city(6)).int64(0), "config kept while the server is down")
        // Exponential backoff, capped: 80, 160, 320, 320 ms after the 1st, 2nd, 3rd, 4th failure.
        assertEquals(listOf(40L, 80L, 160L, 320L, 320L, 320L), (0..5).map { poller.delay(40, it) })

        val up = server(port)
        up.config = bundle(3, 62)
        up.etag = "\"v3\""
        eventually("recovered", timeoutMs = 5000) { client.configVersion == 3L }
        eventually("failures reset") { poller.configFailures == 0 }
    }

    @Test
    fun `events are delivered exactly once per ack, failed uploads are retried`() {
        val s = server()
        val client = Turnout.client(bundle(1, 60), ClientOptions(service = "booking")).closeLater()
        val poller = Poller(client, options(s).copy(configUrl = null, maxBatchEvents = 2)).closeLater()
        for (pax in 1L..5L) client.getVariable("delay", Facets().city(6).passenger(pax)).int64(0)
        client.track("fare", 12.5, Facets().passenger(1))
        s.failPosts.set(1)
        assertEquals(0L, poller.flushNow(), "the first POST fails")
        assertEquals(1, poller.uploadFailures)
        assertEquals(1L, client.trackingStats.retrying, "the failed batch waits for a retry")
        assertEquals(6L, poller.flushNow())
        assertEquals(0, poller.uploadFailures)
        val stats = client.trackingStats
        assertEquals(0L, stats.queued + stats.inFlight + stats.retrying, "$stats")
        assertEquals(setOf(1L, 2L, 3L), s.delivered.keys, "the retried batch kept its seq")
        assertTrue(s.delivered.values.all { it.get() == 1 }, "each batch delivered once: ${s.delivered}")
        assertEquals(6, s.events.size)
        assertEquals(5, s.events.count { it["kind"].asString == "decision" && it["value"].asInt == 60 })
        assertEquals("booking.fare", s.events.single { it["kind"].asString == "track" }["name"].asString)
    }

    @Test
    fun `background upload and a clean stop with a final flush`() {
        val s = server()
        val client = Turnout.client(bundle(1, 60)).closeLater()
        val poller = Poller(client, options(s)).start()
        client.getVariable("delay", Facets().passenger(1)).int64(0)
        eventually("background upload") { s.events.size == 1 }
        client.getVariable("delay", Facets().passenger(2)).int64(0)
        poller.close()
        assertEquals(2, s.events.size, "the final flush delivered the last event")
        val requests = s.gets.get()
        Thread.sleep(200)
        assertEquals(requests, s.gets.get(), "no request after stop")
        assertTrue(poller.isTerminated, "the poller's thread has ended")
        poller.close() // idempotent
    }

    /**
     * A config server on a raw socket: the next GETs are answered from [script] (raw bytes, then
     * the connection is closed), the others with [config] and [etag] (304 on a match).
     */
    private class RawServer : AutoCloseable {
        @Volatile var config: ByteArray = bundle(1, 60)

        @Volatile var etag: String = "\"v1\""

        @Volatile private var closed = false
        val ifNoneMatch: MutableList<String?> = Collections.synchronizedList(ArrayList<String?>())
        private val script = ConcurrentLinkedQueue<(OutputStream) -> Unit>()
        private val socket = ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"))
        val url = "http://127.0.0.1:${socket.localPort}/config"

        init {
            Thread {
                while (!closed) {
                    val s =
                        try {
                            socket.accept()
                        } catch (e: IOException) {
                            break
                        }
                    Thread { handle(s) }.apply { isDaemon = true }.start()
                }
            }.apply { isDaemon = true }.start()
        }

        fun script(vararg answers: (OutputStream) -> Unit) {
            script.addAll(answers)
        }

        private fun handle(s: Socket) =
            s.use {
                val input = BufferedReader(InputStreamReader(s.getInputStream(), Charsets.ISO_8859_1))
                var inm: String? = null
                while (true) {
                    val line = input.readLine() ?: return
                    if (line.isEmpty()) break
                    if (line.startsWith("If-None-Match:", ignoreCase = true)) inm = line.substringAfter(':').trim()
                }
                ifNoneMatch += inm
                val out = s.getOutputStream()
                try {
                    val raw = script.poll()
                    when {
                        raw != null -> raw(out)
                        inm != null && inm == etag -> out.write("HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".toByteArray())
                        else -> answer(config, etag)(out)
                    }
                    out.flush()
                } catch (e: IOException) {
                    // the client went away (as the test wants)
                }
            }

        /**
         * A raw 200: [contentLength] -1 declares the body's size, null declares nothing (the body
         * ends when the connection closes); only the first [send] bytes are sent; [everyMs] > 0
         * sends one byte at a time with that pause.
         */
        fun answer(
            body: ByteArray,
            etag: String,
            contentLength: Int? = -1,
            send: Int = body.size,
            everyMs: Long = 0,
        ): (OutputStream) -> Unit =
            { out ->
                val head = StringBuilder("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
                head.append("ETag: $etag\r\n")
                if (contentLength != null) head.append("Content-Length: ${if (contentLength == -1) body.size else contentLength}\r\n")
                out.write(head.append("\r\n").toString().toByteArray())
                out.flush()
                if (everyMs <= 0) {
                    out.write(body, 0, send)
                } else {
                    for (i in 0 until send) {
                        Thread.sleep(everyMs)
                        if (closed) break
                        out.write(body[i].toInt())
                        out.flush()
                    }
                }
            }

        override fun close() {
            closed = true
            socket.close()
        }
    }

    private fun raw() = RawServer().closeLater()

    private fun rawOptions(
        s: RawServer,
        timeoutMs: Long = 2000,
        errors: MutableList<Throwable> = CopyOnWriteArrayList(),
    ) = PollerOptions(
        configUrl = s.url,
        intervalMs = 40,
        maxBackoffMs = 80,
        jitter = 0.0,
        transport = HttpUrlConnectionTransport(connectTimeoutMs = 1000, readTimeoutMs = 1000),
        onError = { errors += it },
        timeoutMs = timeoutMs,
    )

    @Test
    fun `a slow body fails at the deadline, then the next poll runs as usual`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        // One byte every 0.5 s: each read is within the read timeout, the whole body takes a minute.
        s.script(s.answer(bundle(1, 60), "\"v1\"", everyMs = 500))
        val t0 = System.nanoTime()
        Poller(client, rawOptions(s, timeoutMs = 1000, errors = errors)).start().closeLater()
        eventually("the config after the timeout", timeoutMs = 5000) { client.configVersion == 1L }
        val elapsedMs = (System.nanoTime() - t0) / 1_000_000
        assertTrue(elapsedMs in 900..3000, "took $elapsedMs ms")
        val e = errors.single()
        assertTrue(e is RequestTimeoutException && e.timeoutMs == 1000L, "$errors")
        assertTrue(e.message!!.contains("timed out"))
        assertEquals(listOf<String?>(null, null), s.ifNoneMatch.take(2), "the slow answer's ETag was never sent")
    }

    @Test
    fun `pollNow returns at the deadline during a slow body`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        s.script(s.answer(bundle(1, 60), "\"v1\"", everyMs = 500))
        val poller = Poller(client, rawOptions(s, timeoutMs = 1000, errors = errors)).closeLater()
        val t0 = System.nanoTime()
        assertFalse(poller.pollNow())
        val elapsedMs = (System.nanoTime() - t0) / 1_000_000
        assertTrue(elapsedMs in 900..2000, "took $elapsedMs ms")
        assertTrue(errors.single() is RequestTimeoutException, "$errors")
        assertEquals(1, poller.configFailures)
        assertNull(poller.etag)
        assertEquals(null, client.configVersion)
    }

    @Test
    fun `stop returns promptly during a slow body`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        s.script(s.answer(bundle(1, 60), "\"v1\"", everyMs = 500))
        val poller = Poller(client, rawOptions(s, timeoutMs = 10_000, errors = errors)).start()
        eventually("the request") { s.ifNoneMatch.size == 1 }
        Thread.sleep(300) // the body is trickling in
        val t0 = System.nanoTime()
        poller.stop()
        val elapsedMs = (System.nanoTime() - t0) / 1_000_000
        assertTrue(elapsedMs < 500, "stop() took $elapsedMs ms")
        assertTrue(poller.isTerminated)
        assertEquals(null, client.configVersion)
        assertEquals(emptyList<Throwable>(), errors, "stopping is not a failure")
    }

    @Test
    fun `a body cut short keeps no ETag - the full body with the same ETag is fetched again`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        val poller = Poller(client, rawOptions(s, errors = errors)).closeLater()
        assertTrue(poller.pollNow()) // v1, ETag "v1"
        val full = bundle(2, 61)
        // Content-Length larger than what is sent, ETag "E".
        s.script(s.answer(full, "\"E\"", contentLength = full.size, send = full.size / 2))
        assertFalse(poller.pollNow())
        assertTrue(errors.single() is EOFException, "$errors")
        assertEquals("\"v1\"", poller.etag)
        s.config = full
        s.etag = "\"E\""
        assertTrue(poller.pollNow())
        assertEquals(2L, client.configVersion)
        assertEquals("\"E\"", poller.etag)
        // Close-delimited (no Content-Length) and cut short: the client cannot tell; the engine
        // rejects the half, whose ETag is not kept either.
        val next = bundle(3, 62)
        s.script(s.answer(next, "\"F\"", contentLength = null, send = next.size / 2))
        assertFalse(poller.pollNow())
        assertTrue(errors.last() is TurnoutException.Config, "$errors")
        assertEquals("\"E\"", poller.etag)
        s.config = next
        s.etag = "\"F\""
        assertTrue(poller.pollNow())
        assertEquals(3L, client.configVersion)
        assertEquals(listOf(null, "\"v1\"", "\"v1\"", "\"E\"", "\"E\""), s.ifNoneMatch.toList())
    }

    @Test
    fun `a body over the limit is refused and keeps no ETag`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        val big = bundle(2, 61)
        val limit = big.size - 1L
        val poller = Poller(client, rawOptions(s, errors = errors).copy(maxConfigBytes = limit)).closeLater()
        // Declared too large (refused from Content-Length), then undeclared (refused while reading).
        s.script(s.answer(big, "\"E\""), s.answer(big, "\"E\"", contentLength = null))
        assertFalse(poller.pollNow())
        assertFalse(poller.pollNow())
        val (declared, undeclared) = errors.map { it as BodyTooLargeException }
        assertEquals(big.size.toLong(), declared.contentLength)
        assertNull(undeclared.contentLength)
        assertTrue(errors.all { (it as BodyTooLargeException).limit == limit && it.message!!.contains("$limit") })
        assertNull(poller.etag)
        assertEquals(null, client.configVersion)
        assertEquals(listOf<String?>(null, null), s.ifNoneMatch.toList())
        // At the limit it is fine; the default limit is 16 MiB.
        s.config = big
        s.etag = "\"E\""
        assertTrue(Poller(client, rawOptions(s).copy(maxConfigBytes = big.size.toLong())).closeLater().pollNow())
        assertEquals(16L * 1024 * 1024, rawOptions(s).maxConfigBytes)
    }

    @Test
    fun `a rejected config then a valid one with the same ETag - the valid one is installed`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        s.config = "{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]}".toByteArray()
        s.etag = "\"E\""
        val poller = Poller(client, rawOptions(s, errors = errors)).start().closeLater()
        eventually("the rejection") { errors.isNotEmpty() }
        assertTrue(errors.first() is TurnoutException.Config, "$errors")
        assertNull(poller.etag)
        s.config = bundle(2, 61)
        eventually("the valid config", timeoutMs = 5000) { client.configVersion == 2L }
        assertEquals("\"E\"", poller.etag)
        // Every request up to the one that installed the valid config went without If-None-Match.
        val sent = s.ifNoneMatch.toList()
        val firstE = sent.indexOf("\"E\"")
        assertTrue(firstE == -1 || (firstE >= 2 && sent.take(firstE).all { it == null }), "$sent")
    }

    private fun eventually(
        what: String,
        timeoutMs: Long = 3000,
        cond: () -> Boolean,
    ) {
        val end = System.nanoTime() + timeoutMs * 1_000_000
        while (System.nanoTime() < end) {
            if (cond()) return
            Thread.sleep(10)
        }
        throw AssertionError("timed out waiting for: $what")
    }

    private companion object {
        fun bundle(
            version: Int,
            city6: Int,
        ) = """{"schema": 1, "version": $version, "rollouts": [{"variable": "delay", "rollouts": [
              {"value": $city6, "constraints": [{"target": "city", "op": "=", "value": 6}]}], "default": 30}]}""".toByteArray()
    }
}
