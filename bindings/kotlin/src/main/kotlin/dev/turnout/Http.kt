package dev.turnout

import java.io.ByteArrayOutputStream
import java.io.EOFException
import java.io.IOException
import java.io.InputStream
import java.io.InterruptedIOException
import java.net.HttpURLConnection
import java.net.SocketTimeoutException
import java.net.URL
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/** An HTTP response as the [Poller] needs it. */
class HttpResponse
    @JvmOverloads
    constructor(
        /** The status code (200, 304, ...). */
        val status: Int,
        /** The body (empty for 304). */
        val body: ByteArray,
        /** The `ETag` header, if any. */
        val etag: String?,
        /** The `Retry-After` header, if any (read on failed statuses: delta-seconds or an HTTP date). */
        val retryAfter: String? = null,
    )

/**
 * The HTTP the [Poller] uses; the default is [HttpUrlConnectionTransport].
 * Inject your own to reuse an app's client (OkHttp, Ktor, ...), add
 * authentication or test without a network. Calls come from the poller's
 * worker threads, one request at a time.
 *
 * The poller calls the overloads with a deadline and a body limit (and
 * [send] for uploads). Their default implementations call the plain ones: the
 * poller then still stops waiting at the deadline (the call is abandoned and
 * its thread interrupted) and refuses a body over the limit, but only a
 * transport that implements them stops its own I/O.
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
     * [get] within [timeoutMs] for the whole request (connect, headers and
     * body together; throw a [SocketTimeoutException] such as
     * [RequestTimeoutException] when it passes), reading at most
     * [maxBodyBytes] of a 2xx body (throw [BodyTooLargeException]); a body
     * shorter than its `Content-Length` or cut short throws an [EOFException];
     * an interrupted call (the poller stopping) throws an [InterruptedIOException].
     */
    fun get(
        url: String,
        etag: String?,
        timeoutMs: Long,
        maxBodyBytes: Long,
    ): HttpResponse = get(url, etag)

    /** [post] within [timeoutMs] for the whole request. Default: `post(url, body, contentType)`. */
    fun post(
        url: String,
        body: ByteArray,
        contentType: String,
        timeoutMs: Long,
    ): Int = post(url, body, contentType)

    /** [post] within [timeoutMs], with the response's `Retry-After`. Default: the status of `post(url, body, contentType, timeoutMs)`. */
    fun send(
        url: String,
        body: ByteArray,
        contentType: String,
        timeoutMs: Long,
    ): HttpResponse = HttpResponse(post(url, body, contentType, timeoutMs), ByteArray(0), null)
}

/**
 * [HttpTransport] over `java.net.HttpURLConnection` (in the JDK and on
 * Android: no dependency). [headers] are sent with every request (e.g.
 * `Authorization`). One deadline covers each request: a watchdog disconnects
 * the connection when it passes (or when the calling thread is interrupted),
 * and the connect and per-read timeouts are capped by it. A 2xx body is read
 * up to the limit (a larger `Content-Length` is refused before reading); one
 * shorter than its `Content-Length`, or cut, throws an [EOFException]. The
 * plain [get] and [post] use `connectTimeoutMs + readTimeoutMs` as the
 * deadline and [DEFAULT_MAX_CONFIG_BYTES] as the limit.
 */
class HttpUrlConnectionTransport
    @JvmOverloads
    constructor(
        private val connectTimeoutMs: Int = 10_000,
        private val readTimeoutMs: Int = 10_000,
        private val headers: Map<String, String> = emptyMap(),
    ) : HttpTransport {
        private val plainTimeoutMs get() = connectTimeoutMs.toLong() + readTimeoutMs

        override fun get(
            url: String,
            etag: String?,
        ): HttpResponse = get(url, etag, plainTimeoutMs, DEFAULT_MAX_CONFIG_BYTES)

        override fun post(
            url: String,
            body: ByteArray,
            contentType: String,
        ): Int = post(url, body, contentType, plainTimeoutMs)

        override fun post(
            url: String,
            body: ByteArray,
            contentType: String,
            timeoutMs: Long,
        ): Int = send(url, body, contentType, timeoutMs).status

        override fun get(
            url: String,
            etag: String?,
            timeoutMs: Long,
            maxBodyBytes: Long,
        ): HttpResponse =
            exchange(url, timeoutMs) { c ->
                if (etag != null) c.setRequestProperty("If-None-Match", etag)
                response(c, url, maxBodyBytes)
            }

        override fun send(
            url: String,
            body: ByteArray,
            contentType: String,
            timeoutMs: Long,
        ): HttpResponse =
            exchange(url, timeoutMs) { c ->
                c.requestMethod = "POST"
                c.doOutput = true
                c.setRequestProperty("Content-Type", contentType)
                c.setFixedLengthStreamingMode(body.size)
                c.outputStream.use { it.write(body) }
                response(c, url, null)
            }

        /** Runs [block] on a fresh connection under one deadline of [timeoutMs] (the watchdog's). */
        private fun exchange(
            url: String,
            timeoutMs: Long,
            block: (HttpURLConnection) -> HttpResponse,
        ): HttpResponse {
            val end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
            val caller = Thread.currentThread()
            val c = URL(url).openConnection() as HttpURLConnection
            val cap = timeoutMs.coerceIn(1, Int.MAX_VALUE.toLong()).toInt()
            c.connectTimeout = if (connectTimeoutMs > 0) minOf(connectTimeoutMs, cap) else cap
            c.readTimeout = if (readTimeoutMs > 0) minOf(readTimeoutMs, cap) else cap
            c.useCaches = false
            for ((k, v) in headers) c.setRequestProperty(k, v)
            val watchdog =
                WATCHDOG.scheduleWithFixedDelay(
                    { if (System.nanoTime() - end >= 0 || caller.isInterrupted) c.disconnect() },
                    WATCH_MS,
                    WATCH_MS,
                    TimeUnit.MILLISECONDS,
                )
            try {
                return block(c)
            } catch (e: IOException) {
                if (System.nanoTime() - end >= 0) throw RequestTimeoutException(url, timeoutMs).apply { initCause(e) }
                if (caller.isInterrupted) throw InterruptedIOException("$url: aborted").apply { initCause(e) }
                throw e
            } finally {
                watchdog.cancel(false)
                c.disconnect()
            }
        }

        /** The response; with a [limit] (a config), a 2xx body over it or incomplete throws. */
        private fun response(
            c: HttpURLConnection,
            url: String,
            limit: Long?,
        ): HttpResponse {
            val status = c.responseCode
            if (status < 0) throw IOException("$url: not an HTTP response")
            val checked = limit != null && status in 200..299
            // Content-Length is the size on the wire: only compared without a Content-Encoding.
            val declared = if (c.getHeaderField("Content-Encoding") == null) c.contentLengthLong else -1L
            if (checked && declared > limit!!) throw BodyTooLargeException(url, limit, declared)
            val stream: InputStream? = if (status >= 400) c.errorStream else c.inputStream
            val body = stream?.use { read(it, url, if (checked) limit!! + 1 else ERROR_BODY_BYTES) } ?: ByteArray(0)
            if (checked && body.size > limit!!) throw BodyTooLargeException(url, limit, null)
            if (checked && declared >= 0 && body.size.toLong() != declared) {
                throw EOFException("$url: incomplete body: ${body.size} of $declared bytes (Content-Length)")
            }
            return HttpResponse(status, if (checked) body else ByteArray(0), c.getHeaderField("ETag"), c.getHeaderField("Retry-After"))
        }

        /** At most [max] bytes of [s]; a connection that fails inside the body is an incomplete body. */
        private fun read(
            s: InputStream,
            url: String,
            max: Long,
        ): ByteArray {
            val out = ByteArrayOutputStream()
            val buf = ByteArray(16 * 1024)
            try {
                while (out.size() < max) {
                    val n = s.read(buf, 0, minOf(buf.size.toLong(), max - out.size()).toInt())
                    if (n < 0) break
                    out.write(buf, 0, n)
                }
            } catch (e: IOException) {
                if (e is InterruptedIOException) throw e
                throw EOFException("$url: incomplete body after ${out.size()} bytes: $e").apply { initCause(e) }
            }
            return out.toByteArray()
        }

        private companion object {
            /** What is read of the body of an error status or of an upload's answer. */
            const val ERROR_BODY_BYTES = 64L * 1024

            /** How often the watchdog looks at the deadline and the caller. */
            const val WATCH_MS = 10L

            val WATCHDOG =
                Executors.newSingleThreadScheduledExecutor { r -> Thread(r, "turnout-http-watchdog").apply { isDaemon = true } }
        }
    }

/**
 * A request of the [Poller] that did not finish - connect, headers and the
 * whole body together - within [PollerOptions.timeoutMs]: a `TIMEOUT` failure.
 */
class RequestTimeoutException(
    /** The request's URL. */
    val url: String,
    /** The deadline that passed. */
    val timeoutMs: Long,
) : SocketTimeoutException("$url: timed out: no complete response within $timeoutMs ms (connect, headers and body together)")

/** A config body over the limit: a `TOO_LARGE` failure; nothing is installed and no `ETag` changes. */
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

/** The default [PollerOptions.maxConfigBytes]: 16 MiB, the largest config the engine accepts by default. */
const val DEFAULT_MAX_CONFIG_BYTES: Long = 16L * 1024 * 1024

/** Passed to [PollerOptions.onError] for an HTTP status the poller cannot use (an `HTTP` error notice). */
class HttpStatusException(
    /** The request's URL. */
    val url: String,
    /** The status code. */
    val status: Int,
) : IOException("$url: HTTP $status")
