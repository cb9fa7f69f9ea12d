package dev.turnout

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import dev.turnout.tools.Json
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.net.InetSocketAddress
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger

/** The poller against a real HTTP server on 127.0.0.1 (the JDK's com.sun.net.httpserver). */
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
