package dev.turnout

import dev.turnout.ffi.SyncAction
import dev.turnout.ffi.SyncActionKind
import dev.turnout.ffi.SyncMachine
import dev.turnout.internal.JsonBytes
import dev.turnout.internal.JsonReader
import dev.turnout.internal.Log
import java.io.EOFException
import java.io.IOException
import java.io.InterruptedIOException
import java.net.SocketTimeoutException
import java.util.concurrent.Callable
import java.util.concurrent.CancellationException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.Executors
import java.util.concurrent.Future
import java.util.concurrent.Semaphore
import java.util.concurrent.ThreadLocalRandom
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicLong
import java.util.logging.Level

/**
 * What a [Poller] syncs and how often: mapped onto the options of the core's
 * state machine (docs/sync.md section 2), which checks them when the poller
 * is built ([TurnoutException.Options]).
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
        /** Time between config fetches (`pollIntervalMs`). */
        val intervalMs: Long = 30_000,
        /** Time between upload rounds. */
        val flushIntervalMs: Long = 10_000,
        /** The cap of the exponential backoff after failures (the delay doubles from the interval). */
        val maxBackoffMs: Long = 300_000,
        /** Random spread of every delay, a fraction in [0, 1) (0.1: +-10%), so a fleet does not poll in step. */
        val jitter: Double = 0.1,
        /** Events per uploaded batch. */
        val maxBatchEvents: Int = 1000,
        /** The HTTP client. */
        val transport: HttpTransport = HttpUrlConnectionTransport(),
        /** Called (on the poller's thread) after an installed config added, removed or changed variables. */
        val onChange: ((UpdateReport) -> Unit)? = null,
        /**
         * Called (on the poller's thread) for every `error` notice, repeats included: the
         * transport's exception ([RequestTimeoutException], [BodyTooLargeException],
         * [EOFException], [IOException]), [HttpStatusException], or [TurnoutException.Config] /
         * [TurnoutException.Limit] for a rejected config (the last good config stays in force).
         */
        val onError: ((Throwable) -> Unit)? = null,
        /** The one deadline of each request (config GET, event POST): connect, headers and the whole body together. */
        val timeoutMs: Long = 10_000,
        /** The largest config body read: the smaller of this and the client's `ClientOptions.maxConfigBytes`. */
        val maxConfigBytes: Long = DEFAULT_MAX_CONFIG_BYTES,
        /** Polls without a confirmed config before the client is stale (a `stale` notice). */
        val staleAfterPolls: Int = 5,
        /** The seed of the jitter's generator; null: a random one. */
        val seed: Long? = null,
        /** Called (on the poller's thread) with every notice (docs/sync.md section 7), after it is logged. */
        val onNotice: ((SyncNotice) -> Unit)? = null,
    ) {
        init {
            require(configUrl != null || eventsUrl != null) { "a poller needs a configUrl or an eventsUrl" }
        }

        /** The JSON of `turnout_core::sync::SyncOptions`. */
        internal fun toJson(): String {
            val w = JsonBytes(256).byte('{')
            configUrl?.let { w.string("configUrl").byte(':').string(it).byte(',') }
            eventsUrl?.let { w.string("eventsUrl").byte(':').string(it).byte(',') }
            val s = seed ?: (ThreadLocalRandom.current().nextLong() ushr 1)
            return w
                .ascii("\"pollIntervalMs\":$intervalMs,\"flushIntervalMs\":$flushIntervalMs,\"maxBackoffMs\":$maxBackoffMs,")
                .ascii("\"timeoutMs\":$timeoutMs,\"jitter\":${jitter.takeIf { it.isFinite() } ?: -1.0},\"seed\":${s.toULong()},")
                .ascii("\"maxBatchEvents\":$maxBatchEvents,\"staleAfterPolls\":$staleAfterPolls}")
                .toString()
        }
    }

/** One notice of a [Poller]'s sync (docs/sync.md section 7), as logged and passed to [PollerOptions.onNotice]. */
class SyncNotice internal constructor(
    /** Every field, as the core gives it: `notice`, `channel`, `kind`, `status`, `message`, `repeat`, `problems`, `limit`, `report`, `etag`, `failures`, `sinceMs`, `seq`, `events`. */
    val fields: Map<String, Any?>,
) {
    /** `ready`, `applied`, `error`, `recovered`, `stale`, `fresh` or `dropped`. */
    val type: String get() = fields["notice"] as String

    /** `config` or `events` (`error`, `recovered`). */
    val channel: String? get() = fields["channel"] as String?

    /** The error kind (`NETWORK`, `HTTP`, `TIMEOUT`, `TOO_LARGE`, `INCOMPLETE`, `ABORTED`, `INVALID_CONFIG`, `LIMIT_EXCEEDED`). */
    val kind: String? get() = fields["kind"] as String?

    /** The HTTP status (`error`, `dropped`). */
    val status: Int? get() = (fields["status"] as Long?)?.toInt()

    /** The error's description. */
    val message: String? get() = fields["message"] as String?

    /** A rejected config's problems (`error` of kind `INVALID_CONFIG`; empty otherwise). */
    val problems: List<Problem> get() = (fields["problems"] as List<*>?)?.map(Problem::of).orEmpty()

    /** The same fault as the channel's previous error: passed to the callbacks, not logged again. */
    val repeat: Boolean get() = fields["repeat"] == true

    /** The report of an `applied` config. */
    val report: UpdateReport? get() = (fields["report"] as Map<*, *>?)?.let(UpdateReport::of)

    /** The level it is logged at (docs/sync.md section 7). */
    val level: Level
        get() =
            when (type) {
                "error", "stale" -> Level.WARNING
                "dropped" -> Level.SEVERE
                "applied" -> if (report?.hasChanges == true) Level.INFO else Level.FINE
                else -> Level.INFO
            }

    /** The log line. */
    override fun toString(): String =
        "turnout: " +
            when (type) {
                "error" -> "$channel: $message ($kind)"
                "applied" -> report.let { "config ${it?.version} applied (ETag ${fields["etag"]}): +${it?.added} -${it?.removed} ~${it?.changed}" }
                "recovered" -> "$channel recovered after ${fields["failures"]} failures"
                "stale" -> "config stale: not confirmed since ${fields["sinceMs"]} ms"
                "dropped" -> "batch ${fields["seq"]} (${fields["events"]} events) refused for good: HTTP $status"
                else -> "config $type"
            }
}

/**
 * Keeps a [Client]'s config fresh and uploads its events: a thin driver of
 * the core's sync state machine (docs/sync.md), which owns every rule
 * (intervals, backoff with jitter, `Retry-After`, ETags and rejected configs,
 * ack/nack, staleness, readiness). The poller performs what the machine asks,
 * on one daemon thread that sleeps between actions ([pollNow], [flushNow] and
 * [stop] wake it): each request runs on a worker thread and is abandoned at
 * its deadline ([PollerOptions.timeoutMs]: connect, headers and body) or when
 * [stop] is called. Every notice is logged (logger `dev.turnout`: SLF4J when
 * present, else `java.util.logging`; a repeated fault once) and passed to the
 * callbacks. [start] it once; [close] stops it with a final upload.
 */
class Poller(
    private val client: Client,
    private val options: PollerOptions,
) : AutoCloseable {
    private val machine: SyncMachine = client.ref.call { SyncMachine(it, options.toJson()) }
    private val epoch = System.nanoTime()
    private val wakeup = Semaphore(0)
    private val ready = CountDownLatch(1)
    private val applied = AtomicLong()
    private val delivered = AtomicLong()

    @Volatile private var thread: Thread? = null

    @Volatile private var begun = false

    @Volatile private var stopping = false

    /** The config request in flight ([stop] abandons it). */
    @Volatile private var fetching: Future<*>? = null

    /** The transport's exception behind the next `error` notice. */
    @Volatile private var failure: Exception? = null

    init {
        drain() // a bootstrapped client is ready at once
    }

    /** Starts the background thread (the first fetch runs at once). Returns this poller. */
    fun start(): Poller =
        synchronized(this) {
            check(thread == null && !stopping) { "the poller is already started or stopped" }
            thread = Thread({ run(background = true) }, "turnout-poller").apply { isDaemon = true }.also { it.start() }
            this
        }

    /**
     * Fetches the config now. Started: wakes the thread and returns false (the outcome comes
     * through the callbacks). Not started: fetches on the calling thread (not Android's main
     * thread) and returns whether a config was installed.
     */
    fun pollNow(): Boolean = now(applied, warmUp = false) { machine.pollNow() } > 0

    /**
     * Uploads what is queued, batch after batch until one fails. Started: wakes the thread and
     * returns 0. Not started: uploads on the calling thread and returns the events delivered.
     */
    fun flushNow(): Long = now(delivered, warmUp = true) { machine.flushNow() }

    /**
     * Waits until a config is in force (the client's bootstrap, or the first config installed);
     * false when [timeout] passes first.
     */
    @JvmOverloads
    fun awaitReady(
        timeout: Long,
        unit: TimeUnit = TimeUnit.MILLISECONDS,
    ): Boolean = ready.await(timeout, unit)

    /**
     * Stops; with [flush], uploads what is queued first (one attempt per batch). A config
     * request in flight is abandoned at once (reported `ABORTED`: after a stop, no fault); an
     * upload ends by its deadline. Waits up to [timeoutMs] for the thread. Idempotent.
     */
    @JvmOverloads
    fun stop(
        flush: Boolean = true,
        timeoutMs: Long = 10_000,
    ) {
        stopping = true
        machine.stop(flush)
        fetching?.cancel(true)
        wakeup.release()
        val t = thread ?: return run(background = false)
        if (t !== Thread.currentThread()) t.join(timeoutMs)
    }

    /** [stop] with a final upload. */
    override fun close() = stop()

    /** Whether [stop] finished: the background thread has ended. */
    val isTerminated: Boolean get() = stopping && thread?.isAlive != true

    /** The sync's state (docs/sync.md section 9): `ready`, `stale`, `etag`, `rejectedEtag`, `configFailures`, `batchesAcked`, ... */
    val state: Map<String, Any?> get() = JsonReader.obj(machine.stateJson())

    /** The `ETag` of the config in force (a complete body the engine accepted), if the server sent one. */
    val etag: String? get() = state["etag"] as String?

    /** Config fetches failed in a row. */
    val configFailures: Int get() = (state["configFailures"] as Long).toInt()

    /** Uploads failed in a row. */
    val uploadFailures: Int get() = (state["uploadFailures"] as Long).toInt()

    private fun nowMs(): ULong = ((System.nanoTime() - epoch) / 1_000_000).toULong()

    /** [ask], then wake the thread, or run on this thread until the machine waits: what [counter] grew by. */
    private fun now(
        counter: AtomicLong,
        warmUp: Boolean,
        ask: () -> Unit,
    ): Long {
        if (thread != null) {
            ask()
            wakeup.release()
            return 0
        }
        val before = counter.get()
        // The machine's first step schedules the first upload round an interval later (docs/sync.md section 3).
        if (warmUp && !begun) run(background = false)
        ask()
        run(background = false)
        return counter.get() - before
    }

    /** The loop: next action, perform it, drain the notices; on this thread until the machine waits. */
    private fun run(background: Boolean) {
        try {
            while (true) {
                if (client.ref.isClosed) machine.stop(false)
                begun = true
                val a = machine.next(nowMs())
                when (a.kind) {
                    SyncActionKind.FETCH, SyncActionKind.UPLOAD -> perform(a)
                    SyncActionKind.WAIT -> if (background) sleep(a.waitMs.toLong()) else break
                    SyncActionKind.STOP -> break
                }
                drain()
            }
        } catch (e: InterruptedException) {
            machine.stop(false)
        }
        drain()
    }

    private fun sleep(ms: Long) {
        wakeup.tryAcquire(ms, TimeUnit.MILLISECONDS)
        wakeup.drainPermits()
    }

    /** One request, reported to the machine: a response, or a failure with its kind. */
    private fun perform(a: SyncAction) {
        val url = a.url ?: return
        val fetch = a.kind == SyncActionKind.FETCH
        val timeout = a.timeoutMs.toLong()
        val cap = minOf(a.maxBytes.toLong(), options.maxConfigBytes)
        var r: HttpResponse? = null
        var kind: String? = null
        try {
            r =
                bounded(url, timeout, fetch) {
                    if (fetch) options.transport.get(url, a.etag, timeout, cap) else options.transport.send(url, a.bytes, BATCH, timeout)
                }
            if (fetch && r.status in 200..299 && r.body.size > cap) throw BodyTooLargeException(url, cap, null)
        } catch (e: Exception) {
            r = null
            failure = e
            kind = kindOf(e)
        }
        val status = (r?.status ?: 0).toUShort()
        val message = if (kind == null) "" else failure?.message ?: "$failure"
        if (fetch) {
            machine.onFetch(nowMs(), status, r?.etag, r?.retryAfter, r?.body ?: ByteArray(0), kind, message)
        } else {
            if (r != null && r.status in 200..299) delivered.addAndGet(a.events.toLong())
            machine.onUpload(nowMs(), a.seq, status, r?.retryAfter, kind, message)
        }
    }

    /** [call] on a worker thread, waited for until [timeoutMs] or, for a fetch, [stop]. */
    private fun <T> bounded(
        url: String,
        timeoutMs: Long,
        fetch: Boolean,
        call: () -> T,
    ): T {
        val task = IO.submit(Callable { call() })
        if (fetch) fetching = task
        if (fetch && stopping) task.cancel(true)
        try {
            return task.get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            throw RequestTimeoutException(url, timeoutMs)
        } catch (e: CancellationException) {
            throw InterruptedIOException("$url: aborted: the poller is stopping")
        } catch (e: ExecutionException) {
            throw e.cause ?: e
        } finally {
            task.cancel(true)
            if (fetch) fetching = null
        }
    }

    /** Logs each notice (not a repeat) and passes it to the callbacks. */
    private fun drain() {
        @Suppress("UNCHECKED_CAST")
        for (fields in JsonReader.parse(machine.takeNoticesJson()) as List<Map<String, Any?>>) {
            val n = SyncNotice(fields)
            if (!n.repeat) Log.log(n.level, n.toString())
            when (n.type) {
                "ready" -> ready.countDown()
                "applied" -> {
                    applied.incrementAndGet()
                    n.report?.takeIf { it.hasChanges }?.let { r -> safely { options.onChange?.invoke(r) } }
                }
                "error" -> safely { options.onError?.invoke(throwable(n)) }
            }
            safely { options.onNotice?.invoke(n) }
        }
        failure = null
    }

    /** The exception of an `error` notice: the transport's own when it caused it. */
    private fun throwable(n: SyncNotice): Throwable {
        val url = (if (n.channel == "events") options.eventsUrl else options.configUrl).orEmpty()
        failure?.takeIf { n.status == null && kindOf(it) == n.kind }?.let { return it }
        return when (n.kind) {
            "HTTP" -> HttpStatusException(url, n.status ?: 0)
            "INVALID_CONFIG" -> TurnoutException.Config(n.message.orEmpty(), n.problems)
            "LIMIT_EXCEEDED" ->
                (n.fields["limit"] as Map<*, *>?).let { l ->
                    TurnoutException.Limit(n.message.orEmpty(), l?.get("limit") as String?, l?.get("found") as Long?, l?.get("max") as Long?)
                }
            "TIMEOUT" -> RequestTimeoutException(url, options.timeoutMs)
            else -> IOException("$url: ${n.message}")
        }
    }

    private inline fun safely(callback: () -> Unit) =
        try {
            callback()
        } catch (e: Exception) {
            Log.log(Level.WARNING, "turnout: a poller callback threw $e")
        }

    private companion object {
        const val BATCH = "application/octet-stream"

        /** Runs the requests; idle threads end after a minute. */
        val IO = Executors.newCachedThreadPool { r -> Thread(r, "turnout-poller-io").apply { isDaemon = true } }

        /** The failure kind of a transport's exception (docs/sync.md section 1). */
        fun kindOf(e: Exception): String =
            when (e) {
                is SocketTimeoutException -> "TIMEOUT"
                is InterruptedIOException -> "ABORTED"
                is BodyTooLargeException -> "TOO_LARGE"
                is EOFException -> "INCOMPLETE"
                else -> "NETWORK"
            }
    }
}
