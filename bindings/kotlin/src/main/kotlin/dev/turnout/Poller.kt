package dev.turnout

import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.HttpURLConnection
import java.net.URL
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** An HTTP response as the [Poller] needs it. */
class HttpResponse(
    /** The status code (200, 304, ...). */
    val status: Int,
    /** The body (empty for 304). */
    val body: ByteArray,
    /** The `ETag` header, if any. */
    val etag: String?,
)

/**
 * The HTTP the [Poller] uses; the default is [HttpUrlConnectionTransport].
 * Inject your own to reuse an app's client (OkHttp, Ktor, ...), add
 * authentication or test without a network. Calls come from the poller's
 * background thread, one at a time.
 */
interface HttpTransport {
    /** GET [url], with `If-None-Match: etag` when [etag] is not null. Throws [IOException] on network errors. */
    fun get(url: String, etag: String?): HttpResponse

    /** POST [body] to [url] with [contentType]; returns the status code. Throws [IOException] on network errors. */
    fun post(url: String, body: ByteArray, contentType: String): Int
}

/**
 * [HttpTransport] over `java.net.HttpURLConnection` (in the JDK and on
 * Android: no dependency). [headers] are sent with every request (e.g.
 * `Authorization`).
 */
class HttpUrlConnectionTransport
    @JvmOverloads
    constructor(
        private val connectTimeoutMs: Int = 10_000,
        private val readTimeoutMs: Int = 10_000,
        private val headers: Map<String, String> = emptyMap(),
    ) : HttpTransport {
        override fun get(url: String, etag: String?): HttpResponse {
            val c = open(url)
            try {
                if (etag != null) c.setRequestProperty("If-None-Match", etag)
                val status = c.responseCode
                val body = if (status == HttpURLConnection.HTTP_NOT_MODIFIED) ByteArray(0) else readBody(c, status)
                return HttpResponse(status, body, c.getHeaderField("ETag"))
            } finally {
                c.disconnect()
            }
        }

        override fun post(url: String, body: ByteArray, contentType: String): Int {
            val c = open(url)
            try {
                c.requestMethod = "POST"
                c.doOutput = true
                c.setRequestProperty("Content-Type", contentType)
                c.setFixedLengthStreamingMode(body.size)
                c.outputStream.use { it.write(body) }
                val status = c.responseCode
                readBody(c, status) // drain so the connection can be reused
                return status
            } finally {
                c.disconnect()
            }
        }

        private fun open(url: String): HttpURLConnection {
            val c = URL(url).openConnection() as HttpURLConnection
            c.connectTimeout = connectTimeoutMs
            c.readTimeout = readTimeoutMs
            c.useCaches = false
            for ((k, v) in headers) c.setRequestProperty(k, v)
            return c
        }

        private fun readBody(c: HttpURLConnection, status: Int): ByteArray {
            val stream: InputStream = (if (status >= 400) c.errorStream else c.inputStream) ?: return ByteArray(0)
            return stream.use { s ->
                val out = ByteArrayOutputStream()
                val buf = ByteArray(16 * 1024)
                while (true) {
                    val n = s.read(buf)
                    if (n < 0) break
                    out.write(buf, 0, n)
                }
                out.toByteArray()
            }
        }
    }

/** Thrown to [PollerOptions.onError] for an HTTP answer the poller cannot use. */
class HttpStatusException(
    /** The request's URL. */
    val url: String,
    /** The status code. */
    val status: Int,
) : IOException("$url: HTTP $status")

/**
 * What a [Poller] does and how often.
 *
 * ```kotlin
 * PollerOptions(configUrl = "https://cdn.example.com/turnout/booking.json",
 *               eventsUrl = "https://collector.example.com/v1/batches",
 *               onChange = { report -> log("config ${report.version}: ${report.changed}") })
 * ```
 */
data class PollerOptions
    @JvmOverloads
    constructor(
        /** Where the config is fetched from (GET, with `If-None-Match`). Null: events only. */
        val configUrl: String?,
        /** Where event batches are posted (`application/octet-stream`). Null: no upload. */
        val eventsUrl: String? = null,
        /** Time between config fetches after a success or a 304. */
        val intervalMs: Long = 30_000,
        /** Time between event uploads after a success. */
        val flushIntervalMs: Long = 10_000,
        /** The cap of the exponential backoff after failures (the delay doubles from the interval). */
        val maxBackoffMs: Long = 300_000,
        /** Random spread of every delay, as a fraction (0.1: +-10%), so a fleet does not poll in step. */
        val jitter: Double = 0.1,
        /** Events per uploaded batch. */
        val maxBatchEvents: Int = 1000,
        /** The HTTP client. */
        val transport: HttpTransport = HttpUrlConnectionTransport(),
        /** Called (on the poller's thread) after an installed config added, removed or changed variables. */
        val onChange: ((UpdateReport) -> Unit)? = null,
        /**
         * Called (on the poller's thread) for every failure: network errors and
         * HTTP statuses ([IOException], [HttpStatusException]), rejected configs
         * ([TurnoutException.Config]: the last good config stays in force).
         */
        val onError: ((Throwable) -> Unit)? = null,
    ) {
        init {
            require(configUrl != null || eventsUrl != null) { "a poller needs a configUrl or an eventsUrl" }
            require(intervalMs > 0 && flushIntervalMs > 0 && maxBackoffMs > 0) { "intervals must be positive" }
            require(jitter in 0.0..1.0) { "jitter must be within 0..1" }
            require(maxBatchEvents > 0) { "maxBatchEvents must be positive" }
        }
    }

/**
 * Keeps a [Client]'s config fresh and uploads its events, on one background
 * (daemon) thread:
 *
 * - **Config**: GET [PollerOptions.configUrl] with `If-None-Match`; a 304
 *   changes nothing; a 200 is installed with [Client.updateConfig] (its
 *   `ETag` remembered only once accepted). A rejected config never replaces
 *   the good one: it is reported to `onError` and retried with backoff.
 * - **Events**: [Client.takeBatch] -> POST `application/octet-stream` ->
 *   [Client.ack] on 2xx, [Client.nack] otherwise (the same bytes and `seq`
 *   are posted again later, so a collector de-duplicating on client id + seq
 *   sees each batch once).
 * - **Failures** back off exponentially (interval x 2^n, capped at
 *   `maxBackoffMs`, with jitter); the first success resets the delay.
 *
 * [start] it once; [close] stops it cleanly (a final upload, then the thread
 * ends). [pollNow] and [flushNow] run one round synchronously (tests, or an
 * Android app going to the background) - not on Android's main thread.
 */
class Poller(
    private val client: Client,
    private val options: PollerOptions,
) : AutoCloseable {
    private val executor: ScheduledExecutorService =
        Executors.newSingleThreadScheduledExecutor { r ->
            Thread(r, "turnout-poller-${SEQ.incrementAndGet()}").apply { isDaemon = true }
        }
    private val lock = Any()

    @Volatile private var started = false

    @Volatile private var stopped = false
    private var configTask: ScheduledFuture<*>? = null
    private var flushTask: ScheduledFuture<*>? = null

    /** The `ETag` of the config in force, if the server sent one. */
    @Volatile var etag: String? = null
        private set

    /** Config fetches failed in a row (0 after a success or a 304). */
    @Volatile var configFailures: Int = 0
        private set

    /** Uploads failed in a row (0 after a success). */
    @Volatile var uploadFailures: Int = 0
        private set

    /** Starts the background loops (the first fetch and upload run at once). Returns this poller. */
    fun start(): Poller {
        synchronized(lock) {
            check(!stopped) { "the poller is stopped" }
            check(!started) { "the poller is already started" }
            started = true
            if (options.configUrl != null) configTask = executor.schedule({ configLoop() }, 0, TimeUnit.MILLISECONDS)
            if (options.eventsUrl != null) flushTask = executor.schedule({ flushLoop() }, 0, TimeUnit.MILLISECONDS)
        }
        return this
    }

    /**
     * Fetches the config once. Returns true if a new config was installed.
     * Failures are reported to `onError` and counted, not thrown.
     */
    fun pollNow(): Boolean {
        val url = options.configUrl ?: return false
        return try {
            val r = options.transport.get(url, etag)
            when (r.status) {
                HttpURLConnection.HTTP_NOT_MODIFIED -> {
                    configFailures = 0
                    false
                }
                in 200..299 -> {
                    val report = client.updateConfig(r.body)
                    etag = r.etag
                    configFailures = 0
                    if (report.hasChanges) report(report)
                    true
                }
                else -> throw HttpStatusException(url, r.status)
            }
        } catch (e: Exception) {
            configFailures++
            error(e)
            false
        }
    }

    /**
     * Uploads every waiting batch; stops at the first failure (that batch is
     * nacked, to be posted again). Returns the number of events delivered.
     */
    fun flushNow(): Long {
        val url = options.eventsUrl ?: return 0
        var delivered = 0L
        while (true) {
            val batch = client.takeBatch(options.maxBatchEvents) ?: break
            val ok =
                try {
                    val status = options.transport.post(url, batch.bytes, "application/octet-stream")
                    if (status !in 200..299) throw HttpStatusException(url, status)
                    true
                } catch (e: Exception) {
                    client.nack(batch.seq)
                    uploadFailures++
                    error(e)
                    false
                }
            if (!ok) return delivered
            client.ack(batch.seq)
            delivered += batch.events
        }
        uploadFailures = 0
        return delivered
    }

    /**
     * Stops the loops; with [flush], uploads what is waiting first (on the
     * poller's thread, bounded by [timeoutMs]). Idempotent.
     */
    @JvmOverloads
    fun stop(
        flush: Boolean = true,
        timeoutMs: Long = 10_000,
    ) {
        synchronized(lock) {
            if (stopped) return
            stopped = true
            configTask?.cancel(false)
            flushTask?.cancel(false)
        }
        if (flush && options.eventsUrl != null && !client.ref.isClosed) {
            executor.execute { runCatching { flushNow() } }
        }
        executor.shutdown()
        executor.awaitTermination(timeoutMs, TimeUnit.MILLISECONDS)
    }

    /** Whether [stop] finished: the background thread has ended. */
    val isTerminated: Boolean get() = executor.isTerminated

    /** [stop] with a final upload. */
    override fun close() = stop()

    private fun configLoop() {
        if (stopped || client.ref.isClosed) return
        pollNow()
        schedule(isConfig = true, delay(options.intervalMs, configFailures))
    }

    private fun flushLoop() {
        if (stopped || client.ref.isClosed) return
        flushNow()
        schedule(isConfig = false, delay(options.flushIntervalMs, uploadFailures))
    }

    private fun schedule(
        isConfig: Boolean,
        delayMs: Long,
    ) {
        synchronized(lock) {
            if (stopped) return
            val task = executor.schedule({ if (isConfig) configLoop() else flushLoop() }, delayMs, TimeUnit.MILLISECONDS)
            if (isConfig) configTask = task else flushTask = task
        }
    }

    /** The next delay: the interval after a success, doubling per failure up to the cap; with jitter. */
    internal fun delay(
        intervalMs: Long,
        failures: Int,
    ): Long {
        val base =
            if (failures == 0) {
                intervalMs
            } else {
                val shift = minOf(failures, 30)
                minOf(options.maxBackoffMs, intervalMs.toDouble().times(1L shl shift).toLong().coerceAtLeast(intervalMs))
            }
        if (options.jitter == 0.0) return base
        val spread = base * options.jitter
        return (base + ThreadLocalRandom.current().nextDouble(-spread, spread)).toLong().coerceAtLeast(1)
    }

    private fun report(r: UpdateReport) {
        val cb = options.onChange ?: return
        try {
            cb(r)
        } catch (e: Exception) {
            error(e)
        }
    }

    private fun error(e: Throwable) {
        val cb = options.onError ?: return
        try {
            cb(e)
        } catch (_: Exception) {
            // A failing error callback must not stop the poller.
        }
    }

    private companion object {
        val SEQ = AtomicInteger()
    }
}
