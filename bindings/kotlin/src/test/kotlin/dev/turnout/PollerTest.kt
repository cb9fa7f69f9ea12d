package dev.turnout

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import dev.turnout.tools.Json
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
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
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.logging.Handler
import java.util.logging.Level
import java.util.logging.LogRecord
import java.util.logging.Logger

/**
 * The poller (a driver of the core's sync state machine, docs/sync.md) against a real HTTP
 * server on 127.0.0.1 (the JDK's com.sun.net.httpserver) that misbehaves on purpose, and against
 * a raw socket server for answers no well-behaved server sends: a body trickled past the
 * deadline, a body cut short, a body over the limit. Log records of `dev.turnout` are captured
 * (java.util.logging: no SLF4J on the test classpath) to check that each fault is logged once.
 */
class PollerTest {
    /** A config server and an event collector on one port; it can go away and come back. */
    private class Server(port: Int = 0) {
        @Volatile var config: ByteArray = bundle(1, 60)

        @Volatile var etag: String = "\"v1\""

        /**
         * How GET /config misbehaves: null (it does not), `500`, `stale304`, or `truncated`,
         * `large`, `slow` (whatever the If-None-Match: the body of [config] cut at half its
         * Content-Length, padded past 4 KiB, or after a second).
         */
        @Volatile var fault: String? = null

        /** Answer POSTs with this status while > 0 of them remain. */
        val failPosts = AtomicInteger(0)

        /** Answer every POST with 500 while set. */
        @Volatile var failAllPosts = false

        /** The `Retry-After` of failed answers, if any. */
        @Volatile var retryAfter: String? = null

        val gets = AtomicInteger(0)
        val notModified = AtomicInteger(0)
        val ifNoneMatch = CopyOnWriteArrayList<String?>()
        val getTimes = CopyOnWriteArrayList<Long>()

        /** Successful deliveries per batch seq. */
        val delivered = ConcurrentHashMap<Long, AtomicInteger>()
        val events = Collections.synchronizedList(ArrayList<com.google.gson.JsonObject>())
        private var http: HttpServer = bind(port)
        val port: Int = http.address.port

        private fun bind(port: Int) =
            HttpServer.create(InetSocketAddress("127.0.0.1", port), 0).apply {
                createContext("/config") { ex -> handleGet(ex) }
                createContext("/events") { ex -> handlePost(ex) }
                executor = Executors.newCachedThreadPool { r -> Thread(r).apply { isDaemon = true } }
                start()
            }

        fun url(path: String) = "http://127.0.0.1:$port$path"

        private fun handleGet(ex: HttpExchange) {
            gets.incrementAndGet()
            getTimes += System.nanoTime() / 1_000_000
            val inm = ex.requestHeaders.getFirst("If-None-Match")
            ifNoneMatch += inm
            val body = config
            try {
                when {
                    fault == "500" -> {
                        retryAfter?.let { ex.responseHeaders.add("Retry-After", it) }
                        ex.sendResponseHeaders(500, -1)
                    }
                    fault == "stale304" && inm != null -> {
                        // A cache that answers 304 whatever it is asked, with an ETag of its own.
                        ex.responseHeaders.add("ETag", "\"stale\"")
                        ex.sendResponseHeaders(304, -1)
                    }
                    fault == null && inm == etag -> {
                        notModified.incrementAndGet()
                        ex.sendResponseHeaders(304, -1)
                    }
                    else -> {
                        val sent = if (fault == "large") body + ByteArray(8192) { ' '.code.toByte() } else body
                        ex.responseHeaders.add("ETag", etag)
                        ex.sendResponseHeaders(200, sent.size.toLong())
                        when (fault) {
                            "truncated" -> ex.responseBody.write(sent, 0, sent.size / 2) // then the connection closes
                            "slow" -> {
                                ex.responseBody.flush()
                                Thread.sleep(1000)
                                ex.responseBody.write(sent)
                            }
                            else -> ex.responseBody.write(sent)
                        }
                    }
                }
                ex.close()
            } catch (e: IOException) {
                ex.close() // the client went away, or the body was cut on purpose
            }
        }

        private fun handlePost(ex: HttpExchange) {
            val body = ex.requestBody.use { it.readBytes() }
            if (failAllPosts || failPosts.getAndDecrement() > 0) {
                retryAfter?.let { ex.responseHeaders.add("Retry-After", it) }
                ex.sendResponseHeaders(if (failAllPosts) 500 else 503, -1)
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

        /** Goes away: the port refuses connections (exchanges in progress get up to [graceSeconds] to finish). */
        fun stop(graceSeconds: Int = 0) = http.stop(graceSeconds)

        /** Comes back on the same port. */
        fun restart() {
            http = bind(port)
        }
    }

    /** The records of the `dev.turnout` logger. */
    private class Records : Handler() {
        val all = CopyOnWriteArrayList<LogRecord>()

        override fun publish(r: LogRecord) {
            all += r
        }

        override fun flush() {}

        override fun close() {}

        /** The warnings since record [from] whose message contains every one of [parts]. */
        fun warnings(
            from: Int,
            vararg parts: String,
        ) = all.drop(from).filter { r -> r.level == Level.WARNING && parts.all { r.message.contains(it) } }
    }

    private val servers = ArrayList<Server>()
    private val closeables = ArrayList<AutoCloseable>()
    private val logger: Logger = Logger.getLogger("dev.turnout")
    private val records = Records().also { logger.addHandler(it) }

    private fun server(port: Int = 0) = Server(port).also { servers += it }

    private fun <T : AutoCloseable> T.closeLater(): T = also { closeables += it }

    @AfterEach
    fun cleanUp() {
        closeables.reversed().forEach { it.close() }
        servers.forEach { it.stop() }
        logger.removeHandler(records)
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
        val poller = Poller(client, options(s, changes)).start().closeLater()
        assertTrue(poller.awaitReady(3000), "ready once the first config is installed")
        val v = client.variable("delay")
        val facets = Facets().city(6)
        assertEquals(1L, client.configVersion)
        assertEquals(60, client.getVariable("delay", facets).int64(0))
        eventually("several 304s") { s.notModified.get() >= 3 }
        assertEquals(1, changes.size, "a 304 installs nothing")
        assertTrue(s.ifNoneMatch.contains("\"v1\""), "If-None-Match sent: ${s.ifNoneMatch}")

        s.config = bundle(2, 61)
        s.etag = "\"v2\""
        eventually("second config") { client.configVersion == 2L }
        client.context(facets).use { assertEquals(61, it.int64(v, 0)) }
        eventually("the second onChange") { changes.size == 2 }
        assertEquals(listOf("delay"), changes[1].changed)

        // The same content under a new ETag is not compiled again: no callback; its ETag is kept.
        s.etag = "\"v2-again\""
        eventually("re-fetched") { s.ifNoneMatch.contains("\"v2-again\"") }
        assertEquals(2, changes.size)
        assertEquals("\"v2-again\"", poller.etag)
    }

    @Test
    fun `readiness - at once with a bootstrap, after the first config otherwise, false on timeout`() {
        val s = server()
        Turnout.client(bundle(1, 60)).closeLater().let { boot ->
            assertTrue(Poller(boot, options(s)).closeLater().awaitReady(0), "a bootstrapped client is ready")
        }
        val empty = Turnout.emptyClient().closeLater()
        val idle = Poller(empty, options(s)).closeLater()
        val t0 = System.nanoTime()
        assertFalse(idle.awaitReady(100), "not started, no config")
        assertTrue((System.nanoTime() - t0) / 1_000_000 >= 90)
        assertTrue(idle.pollNow())
        assertTrue(idle.awaitReady(0))
        assertEquals(true, idle.state["ready"])
    }

    @Test
    fun `a bad config never replaces the good one, and its ETag is sent until the server changes`() {
        val s = server()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        // Sync pollNow() calls: one request each (the interval is longer than a call); stale after 2 polls.
        val poller = Poller(client, options(s, errors = errors).copy(intervalMs = 150, maxBackoffMs = 150, staleAfterPolls = 2)).closeLater()
        assertTrue(poller.pollNow())
        val from = records.all.size
        // JSON, but not a valid config (a body that is not JSON keeps no ETag: it may be cut short).
        s.config = "{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]}".toByteArray()
        s.etag = "\"broken\""
        assertFalse(poller.pollNow())
        assertTrue(errors.single() is TurnoutException.Config, "$errors")
        assertEquals(listOf("variable"), (errors.single() as TurnoutException.Config).problems.map { it.field }, "the notice's structured problems")
        assertEquals(0, poller.configFailures, "a rejected config is not a transport failure: no backoff")
        assertEquals("\"v1\"", poller.etag, "the ETag in force stays that of the good config")
        assertEquals("\"broken\"", poller.state["rejectedEtag"])
        assertEquals(60, client.getVariable("delay", Facets().city(6)).int64(0), "last good config in force")
        // The same bad bytes are not downloaded again: the rejected ETag gets a 304.
        repeat(3) { assertFalse(poller.pollNow()) }
        assertEquals(listOf("\"broken\"", "\"broken\"", "\"broken\""), s.ifNoneMatch.takeLast(3))
        assertTrue(s.notModified.get() >= 3)
        assertEquals(1, errors.size, "the 304s are not errors")
        // Not a confirmation of the good config: the client turns stale (logged once), then fresh again.
        Thread.sleep(350)
        assertFalse(poller.pollNow())
        assertEquals(true, poller.state["stale"])
        assertEquals(1, records.warnings(from, "stale").size, "${records.all.map { it.message }}")
        s.config = bundle(2, 61)
        s.etag = "\"v2\""
        assertTrue(poller.pollNow())
        assertEquals(false, poller.state["stale"])
        assertNull(poller.state["rejectedEtag"])
        assertEquals(61, client.getVariable("delay", Facets().city(6)).int64(0))
    }

    /**
     * The fault injection: one poller in the background while events are tracked all
     * along, against a server that returns 500s, a truncated body, a body over the limit, a
     * config that fails validation, a body slower than the deadline, 304s with a stale ETag, and
     * that goes away and comes back. After each fault the client answers from its last good
     * config, recovers when the server does, and the fault is logged once; no event is lost.
     */
    @Test
    fun `faults - last good config, recovery, each fault logged once, no event lost`() {
        val s = server()
        val client = Turnout.emptyClient(ClientOptions(service = "svc", decisionEvents = DecisionEvents.OFF)).closeLater()
        val notices = CopyOnWriteArrayList<SyncNotice>()
        val options =
            options(s).copy(intervalMs = 20, flushIntervalMs = 30, maxBackoffMs = 60, timeoutMs = 300, maxConfigBytes = 4096, staleAfterPolls = 1000)
                .copy(onChange = null, onError = null, onNotice = { notices += it })
        val poller = Poller(client, options).start().closeLater()
        assertTrue(poller.awaitReady(3000))
        val tracked = AtomicLong()
        val tracking = Thread {
            while (!Thread.currentThread().isInterrupted) {
                client.track("tick", 1.0, Facets().passenger(tracked.incrementAndGet() % 7))
                try {
                    Thread.sleep(3)
                } catch (e: InterruptedException) {
                    break
                }
            }
        }.apply { start() }
        var version = 1
        val city6 = Facets().city(6)
        for ((fault, kind) in listOf(
            "500" to "HTTP",
            "truncated" to "INCOMPLETE",
            "large" to "TOO_LARGE",
            "invalid" to "INVALID_CONFIG",
            "slow" to "TIMEOUT",
            "stale304" to null,
            "down" to "NETWORK",
        )) {
            val from = records.all.size
            val gets = s.gets.get()
            val recovered = notices.count { it.type == "recovered" && it.channel == "config" }
            when (fault) {
                "invalid" -> {
                    s.config = "{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]}".toByteArray()
                    s.etag = "\"bad\""
                }
                "down" -> s.stop(graceSeconds = 1)
                else -> s.fault = fault
            }
            if (fault == "500") s.failAllPosts = true
            if (fault == "down") {
                eventually("failures while down") { poller.configFailures >= 4 && poller.uploadFailures >= 2 }
            } else {
                eventually("$fault served 4 times") { s.gets.get() - gets >= 4 }
            }
            assertEquals(version, client.configVersion?.toInt(), fault)
            assertEquals(59 + version.toLong(), client.getVariable("delay", city6).int64(0), "$fault: the last good config answers")
            if (kind != null) {
                assertEquals(1, records.warnings(from, "config: ", "($kind)").size, "$fault: logged once: ${messages(from)}")
            } else {
                assertEquals(emptyList<String>(), records.warnings(from).map { it.message }, "$fault: nothing to log")
                assertEquals("\"v$version\"", poller.etag, "a 304 changes no ETag")
            }
            if (fault == "500" || fault == "down") {
                val events = if (fault == "500") "(HTTP)" else "(NETWORK)"
                assertEquals(1, records.warnings(from, "events: ", events).size, "$fault: upload fault logged once: ${messages(from)}")
            }
            // The server recovers with a new config.
            version++
            s.failAllPosts = false
            s.fault = null
            s.config = bundle(version, 59 + version)
            s.etag = "\"v$version\""
            if (fault == "down") s.restart()
            eventually("recovered from $fault", timeoutMs = 5000) { client.configVersion == version.toLong() }
            assertEquals(59L + version, client.getVariable("delay", city6).int64(0))
            if (kind != null && kind != "INVALID_CONFIG") {
                eventually("$fault: recovered notice") { notices.count { it.type == "recovered" && it.channel == "config" } > recovered }
            }
        }
        tracking.interrupt()
        tracking.join()
        poller.close() // the final flush
        val stats = client.trackingStats
        assertEquals(0L, stats.queued + stats.inFlight + stats.retrying + stats.dropped, "$stats")
        assertTrue(s.delivered.values.all { it.get() == 1 }, "each batch delivered once (no response was lost): ${s.delivered}")
        val counted = s.events.sumOf { e -> e["count"]?.asLong ?: 1L }
        assertEquals(tracked.get(), counted, "every event tracked was delivered")
        assertEquals(s.delivered.size.toLong(), poller.state["batchesAcked"])
        assertTrue(notices.any { it.type == "recovered" && it.channel == "events" })
    }

    @Test
    fun `Retry-After delays the next attempt`() {
        val s = server()
        val client = Turnout.emptyClient().closeLater()
        s.fault = "500"
        s.retryAfter = "1"
        val poller = Poller(client, options(s).copy(eventsUrl = null, maxBackoffMs = 5000)).start().closeLater()
        eventually("two attempts", timeoutMs = 5000) { s.gets.get() >= 2 }
        val gap = s.getTimes[1] - s.getTimes[0]
        assertTrue(gap in 900..3000, "the second attempt came $gap ms after the first")
        assertEquals(true, poller.configFailures >= 1)
    }

    @Test
    fun `server down then up - backoff, then recovery`() {
        val s = server()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        val poller = Poller(client, options(s, errors = errors)).start().closeLater()
        eventually("first config") { client.configVersion == 1L }
        s.stop()
        eventually("failures counted") { poller.configFailures >= 3 }
        assertTrue(errors.all { it is IOException }, "$errors")
        assertEquals(60, client.getVariable("delay", Facets().city(6)).int64(0), "config kept while the server is down")

        s.config = bundle(3, 62)
        s.etag = "\"v3\""
        s.restart()
        eventually("recovered", timeoutMs = 5000) { client.configVersion == 3L }
        eventually("failures reset") { poller.configFailures == 0 }
    }

    @Test
    fun `events are delivered exactly once per ack, failed uploads are retried`() {
        val s = server()
        val client = Turnout.client(bundle(1, 60), ClientOptions(service = "booking")).closeLater()
        val poller = Poller(client, options(s).copy(configUrl = null, maxBatchEvents = 2, flushIntervalMs = 60_000, maxBackoffMs = 60_000)).closeLater()
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

    @Test
    fun `invalid options are the core's to refuse`() {
        val client = Turnout.emptyClient().closeLater()
        for (bad in listOf(PollerOptions("http://127.0.0.1:1/c", jitter = 1.0), PollerOptions("http://127.0.0.1:1/c", intervalMs = 0))) {
            assertThrows(TurnoutException.Options::class.java) { Poller(client, bad) }
        }
        assertThrows(IllegalArgumentException::class.java) { PollerOptions(configUrl = null) }
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
        assertEquals(emptyList<Throwable>(), errors, "stopping is not a failure (an ABORTED fetch after stop() is no fault)")
    }

    @Test
    fun `a body cut short keeps no ETag - the full body with the same ETag is fetched again`() {
        val s = raw()
        val client = Turnout.emptyClient().closeLater()
        val errors = CopyOnWriteArrayList<Throwable>()
        // Long intervals: each pollNow() is one request (the machine asks for nothing else).
        val poller = Poller(client, rawOptions(s, errors = errors).copy(intervalMs = 60_000, maxBackoffMs = 60_000)).closeLater()
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
        // rejects the half, and since it is not JSON (a cut body looks like that) its ETag is not
        // remembered either: the next poll fetches the config again.
        val next = bundle(3, 62)
        s.script(s.answer(next, "\"F\"", contentLength = null, send = next.size / 2))
        assertFalse(poller.pollNow())
        assertTrue(errors.last() is TurnoutException.Config, "$errors")
        assertEquals("\"E\"", poller.etag)
        assertNull(poller.state["rejectedEtag"])
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
        val poller = Poller(client, rawOptions(s, errors = errors).copy(maxConfigBytes = limit, intervalMs = 60_000, maxBackoffMs = 60_000)).closeLater()
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

    private fun messages(from: Int) = records.all.drop(from).map { "${it.level}: ${it.message}" }

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
