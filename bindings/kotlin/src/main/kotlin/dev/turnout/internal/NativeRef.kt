package dev.turnout.internal

import dev.turnout.TurnoutException
import dev.turnout.ffi.Disposable
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong

/**
 * One native handle owned by a facade object ([dev.turnout.Client],
 * [dev.turnout.Context], [dev.turnout.Variable]): the raw UniFFI handle the JNI
 * fast path takes, and the generated object that owns it (and frees it).
 *
 * Calls in flight are counted, as the generated classes do: the count starts
 * at 1 (the "open" reference), each call adds one for its duration, and
 * [close] drops the open reference once. The handle is freed (the generated
 * [owner] destroyed) exactly once, when the count reaches zero: never while a
 * call on another thread still uses it. A call after [close] throws
 * [TurnoutException.Closed] instead of touching freed memory.
 *
 * If the facade object is dropped without [close], the generated owner's
 * cleaner frees the handle when the garbage collector finds it unreachable;
 * a call in flight keeps this object (and so the owner) reachable until its
 * [release].
 */
internal class NativeRef<T : Disposable>(
    /** The raw UniFFI handle (`Arc::into_raw`), valid while the count is above zero. */
    @JvmField val raw: Long,
    /** The generated object that owns [raw]; use it only between [acquire] and [release]. */
    @JvmField val owner: T,
    private val what: String,
) {
    private val calls = AtomicLong(1)
    private val closed = AtomicBoolean(false)

    /** Counts a call in and returns the raw handle; throws if closed. */
    fun acquire(): Long {
        while (true) {
            val c = calls.get()
            if (c <= 0L) throw TurnoutException.Closed(what)
            if (calls.compareAndSet(c, c + 1)) return raw
        }
    }

    /** Counts a call out; frees the handle if it was the last reference. */
    fun release() {
        if (calls.decrementAndGet() == 0L) owner.destroy()
    }

    /** Whether [close] was called. */
    val isClosed: Boolean get() = closed.get()

    /** Drops the open reference (idempotent); the handle is freed once no call uses it. */
    fun close() {
        if (closed.compareAndSet(false, true)) release()
    }

    /** Runs [block] with the generated owner, counted as a call in flight, mapping errors. */
    inline fun <R> call(block: (T) -> R): R {
        acquire()
        try {
            return dev.turnout.mapErrors { block(owner) }
        } finally {
            release()
        }
    }
}

/** Runs [block] with the raw handle of [a], counted as a call in flight (no error mapping: for the JNI calls). */
internal inline fun <R> withRaw(
    a: NativeRef<*>,
    block: (Long) -> R,
): R {
    val x = a.acquire()
    try {
        return block(x)
    } finally {
        a.release()
    }
}

/** Runs [block] with the raw handles of [a] and [b], both counted as calls in flight. */
internal inline fun <R> withRaw(
    a: NativeRef<*>,
    b: NativeRef<*>,
    block: (Long, Long) -> R,
): R = withRaw(a) { x -> withRaw(b) { y -> block(x, y) } }
