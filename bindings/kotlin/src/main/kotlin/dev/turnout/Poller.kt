package dev.turnout

import java.io.ByteArrayOutputStream
import java.io.EOFException
import java.io.IOException
import java.io.InputStream
import java.io.InterruptedIOException
import java.net.HttpURLConnection
import java.net.SocketTimeoutException
import java.net.URL
import java.util.concurrent.CancellationException
import java.util.concurrent.ExecutionException
import java.util.concurrent.Executors
import java.util.concurrent.FutureTask
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.SynchronousQueue
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.ThreadPoolExecutor
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
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
 * worker threads, one config request and one upload at a time (a call the
 * poller stopped waiting for at its deadline may still be running).
 *
 * The poller calls the overloads with a deadline and a body limit. Their
 * default implementations call the plain ones: the poller then still stops
 * waiting at the deadline (the call is abandoned on its worker thread and
 * interrupted) and refuses a body over the limit, but only a transport that
 * implements them stops its own I/O and never buffers more than the limit.
 */
interface HttpTransport {
    /** GET [url], with `If-None-Match: etag` when [etag] is not null. Throws [IOException] on network errors. */
    fun get(
        url: String,
        etag: String?,
    ): HttpResponse

    /** POST [body] to [url] with [contentType]; returns the status code. Throws [IOException] on network errors. */
    fun post(
        url: String,
        body: ByteArray,
        contentType: String,
    ): Int

    /**
     * [get] bounded by the poller: [timeoutMs] for the whole request (connect,
     * headers and the whole body together; throw [RequestTimeoutException]
     * when it passes) and at most [maxBodyBytes] of a 2xx body (throw
     * [BodyTooLargeException], from `Content-Length` before reading when it
     * is declared). A body shorter than its `Content-Length` must throw an
     * [IOException], not come back truncated. Default: `get(url, etag)`.
     */
    fun get(
        url: String,
        etag: String?,
        timeoutMs: Long,
        maxBodyBytes: Long,
    ): HttpResponse = get(url, etag)

    /** [post] bounded by [timeoutMs] for the whole request. Default: `post(url, body, contentType)`. */
    fun post(
        url: String,
        body: ByteArray,
        contentType: String,
        timeoutMs: Long,
    ): Int = post(url, body, contentType)
}

/**
 * [HttpTransport] over `java.net.HttpURLConnection` (in the JDK and on
 * Android: no dependency). [headers] are sent with every request (e.g.
 * `Authorization`).
 *
 * With the poller's deadline ([PollerOptions.timeoutMs]) the connect and
 * per-read timeouts are capped by what is left of it, and the body is read
 * in chunks that check the deadline, the limit and `Content-Length` (a body
 * that ends short of it throws an [EOFException]). The plain [get] and
 * [post] use `connectTimeoutMs + readTimeoutMs` as the deadline and
 * [DEFAULT_MAX_CONFIG_BYTES] as the limit.
 */
class HttpUrlConnectionTransport
    @JvmOverloads
    constructor(
        private val connectTimeoutMs: Int = 10_000,
        private val readTimeoutMs: Int = 10_000,
        private val headers: Map<String, String> = emptyMap(),
    ) : HttpTransport {
        override fun get(
            url: String,
            etag: String?,
        ): HttpResponse = get(url, etag, connectTimeoutMs.toLong() + readTimeoutMs, DEFAULT_MAX_CONFIG_BYTES)

        override fun post(
            url: String,
            body: ByteArray,
            contentType: String,
        ): Int = post(url, body, contentType, connectTimeoutMs.toLong() + readTimeoutMs)

        override fun get(
            url: String,
            etag: String?,
            timeoutMs: Long,
            maxBodyBytes: Long,
        ): HttpResponse {
            val deadline = Deadline(url, timeoutMs)
            val c = open(url, deadline)
            try {
                return deadline.bound {
                    if (etag != null) c.setRequestProperty("If-None-Match", etag)
                    val status = c.responseCode
                    deadline.check()
                    val tag = c.getHeaderField("ETag")
                    if (status == HttpURLConnection.HTTP_NOT_MODIFIED) return@bound HttpResponse(status, ByteArray(0), tag)
                    if (status !in 200..299) return@bound HttpResponse(status, readBody(c, status, ERROR_BODY_BYTES, deadline), tag)
                    // Content-Length is the size on the wire: only compared without a Content-Encoding.
                    val declared = if (c.getHeaderField("Content-Encoding") == null) c.contentLengthLong else -1L
                    if (declared > maxBodyBytes) throw BodyTooLargeException(url, maxBodyBytes, declared)
                    val body = readBody(c, status, maxBodyBytes, deadline)
                    if (body.size > maxBodyBytes) throw BodyTooLargeException(url, maxBodyBytes, null)
                    if (declared >= 0 && body.size.toLong() != declared) {
                        throw EOFException("$url: incomplete body: ${body.size} of $declared bytes (Content-Length)")
                    }
                    HttpResponse(status, body, tag)
                }
            } finally {
                c.disconnect()
            }
        }

        override fun post(
            url: String,
            body: ByteArray,
            contentType: String,
            timeoutMs: Long,
        ): Int {
            val deadline = Deadline(url, timeoutMs)
            val c = open(url, deadline)
            try {
                return deadline.bound {
                    c.requestMethod = "POST"
                    c.doOutput = true
                    c.setRequestProperty("Content-Type", contentType)
                    c.setFixedLengthStreamingMode(body.size)
                    c.outputStream.use { it.write(body) }
                    val status = c.responseCode
                    readBody(c, status, ERROR_BODY_BYTES, deadline) // drain (a little) so the connection can be reused
                    status
                }
            } finally {
                c.disconnect()
            }
        }

        private fun open(
            url: String,
            deadline: Deadline,
        ): HttpURLConnection {
            val c = URL(url).openConnection() as HttpURLConnection
            c.connectTimeout = deadline.cap(connectTimeoutMs)
            c.readTimeout = deadline.cap(readTimeoutMs)
            c.useCaches = false
            for ((k, v) in headers) c.setRequestProperty(k, v)
            return c
        }

        /**
         * The body, at most [limit] + 1 bytes (the caller tells "over the
         * limit" from the size; for error statuses the rest is dropped),
         * checking the deadline and interruption between reads.
         */
        private fun readBody(
            c: HttpURLConnection,
            status: Int,
            limit: Long,
            deadline: Deadline,
        ): ByteArray {
            val stream: InputStream = (if (status >= 400) c.errorStream else c.inputStream) ?: return ByteArray(0)
            return stream.use { s ->
                val out = ByteArrayOutputStream()
                val buf = ByteArray(16 * 1024)
                var size = 0L
                while (size <= limit) {
                    deadline.check()
                    if (Thread.currentThread().isInterrupted) throw InterruptedIOException("${deadline.url}: interrupted")
                    val n = s.read(buf, 0, minOf(buf.size.toLong(), limit + 1 - size).toInt())
                    if (n < 0) break
                    out.write(buf, 0, n)
                    size += n
                }
                deadline.check()
                out.toByteArray()
            }
        }

        private companion object {
            /** What is kept of the body of an error status or of an upload's answer. */
            const val ERROR_BODY_BYTES = 64L * 1024
        }
    }

/** One request's deadline, for [HttpUrlConnectionTransport]. */
private class Deadline(
    val url: String,
    private val timeoutMs: Long,
) {
    private val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs.coerceIn(1, Long.MAX_VALUE / 4_000_000))

    private fun leftMs(): Long = TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime())

    /** [ms] capped by what is left (at least 1 ms: 0 would mean no timeout). */
    fun cap(ms: Int): Int = minOf(ms.toLong().takeIf { it > 0 } ?: Long.MAX_VALUE, leftMs()).coerceIn(1, Int.MAX_VALUE.toLong()).toInt()

    fun check() {
        if (System.nanoTime() - end >= 0) throw RequestTimeoutException(url, timeoutMs)
    }

    /** Runs [block]; a socket timeout once the deadline passed is the request's timeout. */
    fun <T> bound(block: () -> T): T =
        try {
            block()
        } catch (e: SocketTimeoutException) {
            if (e is RequestTimeoutException || System.nanoTime() - end < 0) throw e
            throw RequestTimeoutException(url, timeoutMs).apply { initCause(e) }
        }
}

/**
 * A request of the [Poller] that did not finish - connect, headers and the
 * whole body together - within [PollerOptions.timeoutMs] (a
 * [SocketTimeoutException], so an [IOException]). Reported to `onError`,
 * counted as a failure (backoff); the next attempt is scheduled as usual.
 */
class RequestTimeoutException(
    /** The request's URL. */
    val url: String,
    /** The deadline that passed. */
    val timeoutMs: Long,
) : SocketTimeoutException("$url: timed out: no complete response within $timeoutMs ms (connect, headers and body together)")

/** A config body larger than [PollerOptions.maxConfigBytes]: nothing is installed and the `ETag` is not kept. */
class BodyTooLargeException(
    /** The request's URL. */
    val url: String,
    /** The limit. */
    val limit: Long,
    /** The declared `Content-Length`, or null when the body was found too large while reading. */
    val contentLength: Long?,
) : IOException(
        "$url: the body is larger than $limit bytes" + (contentLength?.let { " (Content-Length $it)" } ?: ""),
    )

/** The default [PollerOptions.maxConfigBytes]: 16 MiB, the largest config the engine accepts. */
const val DEFAULT_MAX_CONFIG_BYTES: Long = 16L * 1024 * 1024

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
         * HTTP statuses ([IOException], [HttpStatusException]), timeouts
         * ([RequestTimeoutException]), bodies over the limit
         * ([BodyTooLargeException]) or cut short ([EOFException] from the
         * default transport), rejected configs ([TurnoutException.Config]: the
         * last good config stays in force).
         */
        val onError: ((Throwable) -> Unit)? = null,
        /**
         * The one deadline of each request (config GET, event POST): connect,
         * headers and the whole body together. When it passes the request is
         * abandoned, the attempt fails with [RequestTimeoutException] and the
         * next one is scheduled with the usual backoff.
         */
        val timeoutMs: Long = 10_000,
        /**
         * The largest config body read (default [DEFAULT_MAX_CONFIG_BYTES], 16 MiB,
         * the engine's limit); a larger one fails with [BodyTooLargeException].
         */
        val maxConfigBytes: Long = DEFAULT_MAX_CONFIG_BYTES,
    ) {
        init {
            require(configUrl != null || eventsUrl != null) { "a poller needs a configUrl or an eventsUrl" }
            require(intervalMs > 0 && flushIntervalMs > 0 && maxBackoffMs > 0) { "intervals must be positive" }
            require(timeoutMs > 0) { "timeoutMs must be positive" }
            require(maxConfigBytes > 0) { "maxConfigBytes must be positive" }
            require(jitter in 0.0..1.0) { "jitter must be within 0..1" }
            require(maxBatchEvents > 0) { "maxBatchEvents must be positive" }
        }
    }

/**
 * Keeps a [Client]'s config fresh and uploads its events, on one background
 * (daemon) thread:
 *
 * - **Config**: GET [PollerOptions.configUrl] with `If-None-Match` (the
 *   `ETag` of the config in force); a 304 changes nothing; a 200 is installed
 *   with [Client.updateConfig]. A rejected config never replaces the good
 *   one: it is reported to `onError` and retried with backoff.
 * - **One deadline per request**: [PollerOptions.timeoutMs] covers connect,
 *   headers and the whole body. Each request runs on a worker thread that the
 *   poller stops waiting for at the deadline ([RequestTimeoutException], a
 *   failure like any other) or when [stop] is called (a config request in
 *   progress is abandoned, so [stop] returns at once).
 * - **Body limit**: a config body over [PollerOptions.maxConfigBytes]
 *   (16 MiB by default) fails with [BodyTooLargeException]; the default
 *   transport refuses a larger `Content-Length` before reading and never
 *   buffers more than the limit.
 * - **ETag rule**: the `ETag` is remembered only when the body was read
 *   completely and the engine accepted it. A timed-out, truncated, over-limit
 *   or rejected body leaves it as it was, so the next poll fetches the config
 *   again instead of getting 304 for bytes that were never installed.
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
    private val id = SEQ.incrementAndGet()

    @Volatile private var loopThread: Thread? = null
    private val executor: ScheduledExecutorService =
        Executors.newSingleThreadScheduledExecutor { r ->
            Thread(r, "turnout-poller-$id").apply { isDaemon = true }.also { loopThread = it }
        }

    /** Runs the requests, so that the poller can stop waiting for one (deadline, [stop]). Idle threads end after 10 s. */
    private val io =
        ThreadPoolExecutor(0, Int.MAX_VALUE, 10, TimeUnit.SECONDS, SynchronousQueue()) { r ->
            Thread(r, "turnout-poller-$id-io").apply { isDaemon = true }
        }
    private val lock = Any()

    /** The config request in progress ([stop] cancels it). */
    private var inflight: FutureTask<*>? = null

    @Volatile private var started = false

    @Volatile private var stopped = false
    private var configTask: ScheduledFuture<*>? = null
    private var flushTask: ScheduledFuture<*>? = null

    /** The `ETag` of the config in force (a complete body the engine accepted), if the server sent one. */
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
     * Fetches the config once, within [PollerOptions.timeoutMs]. Returns true
     * if a new config was installed. Failures are reported to `onError` and
     * counted, not thrown. The `ETag` is kept only for a complete body that
     * the engine accepted.
     */
    fun pollNow(): Boolean {
        val url = options.configUrl ?: return false
        return try {
            val tag = etag
            val r = bounded(url, isConfig = true) { options.transport.get(url, tag, options.timeoutMs, options.maxConfigBytes) }
            when (r.status) {
                HttpURLConnection.HTTP_NOT_MODIFIED -> {
                    configFailures = 0
                    false
                }
                in 200..299 -> {
                    if (r.body.size > options.maxConfigBytes) throw BodyTooLargeException(url, options.maxConfigBytes, null)
                    // A rejected config throws here: the ETag stays that of the config in force.
                    val report = client.updateConfig(r.body)
                    etag = r.etag
                    configFailures = 0
                    if (report.hasChanges) report(report)
                    true
                }
                else -> throw HttpStatusException(url, r.status)
            }
        } catch (e: Stopped) {
            false // stop() abandoned the request: not a failure
        } catch (e: Exception) {
            configFailures++
            error(e)
            false
        }
    }

    /**
     * Uploads every waiting batch; stops at the first failure (that batch is
     * nacked, to be posted again). Returns the number of events delivered.
     * Each upload is bounded by [PollerOptions.timeoutMs].
     */
    fun flushNow(): Long {
        val url = options.eventsUrl ?: return 0
        var delivered = 0L
        while (true) {
            val batch = client.takeBatch(options.maxBatchEvents) ?: break
            val ok =
                try {
                    val status =
                        bounded(url, isConfig = false) {
                            options.transport.post(url, batch.bytes, "application/octet-stream", options.timeoutMs)
                        }
                    if (status !in 200..299) throw HttpStatusException(url, status)
                    true
                } catch (e: Exception) {
                    client.nack(batch.seq)
                    uploadFailures++
                    if (e !is Stopped) error(e)
                    false
                }
            if (!ok) return delivered
            client.ack(batch.seq)
            delivered += batch.events
        }
        uploadFailures = 0
        return delivered
    }

    /** Thrown by [bounded] when [stop] abandoned the config request. */
    private class Stopped : Exception()

    /**
     * Runs [call] on a worker thread and waits for it until the deadline
     * ([RequestTimeoutException]; the call is interrupted and abandoned) or,
     * for the config request, until [stop] ([Stopped]).
     */
    private fun <T> bounded(
        url: String,
        isConfig: Boolean,
        call: () -> T,
    ): T {
        val task = FutureTask(call)
        if (isConfig) {
            synchronized(lock) {
                // stop() came between the loop's wake-up and this request.
                if (stopped && Thread.currentThread() === loopThread) throw Stopped()
                inflight = task
            }
        }
        try {
            try {
                io.execute(task)
            } catch (e: RejectedExecutionException) {
                task.run() // cannot happen (the pool is never shut down); run it here rather than fail
            }
            return task.get(options.timeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            task.cancel(true)
            throw RequestTimeoutException(url, options.timeoutMs)
        } catch (e: CancellationException) {
            throw Stopped()
        } catch (e: InterruptedException) {
            task.cancel(true)
            Thread.currentThread().interrupt()
            throw InterruptedIOException("$url: interrupted")
        } catch (e: ExecutionException) {
            when (val cause = e.cause) {
                is Exception -> throw cause
                is Error -> throw cause
                else -> throw e
            }
        } finally {
            if (isConfig) synchronized(lock) { if (inflight === task) inflight = null }
        }
    }

    /**
     * Stops the loops; with [flush], uploads what is waiting first (on the
     * poller's thread, bounded by [timeoutMs]). A config request in progress
     * is abandoned at once (not reported as a failure); an upload in progress
     * ends by its own deadline. Idempotent.
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
            inflight?.cancel(true)
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
