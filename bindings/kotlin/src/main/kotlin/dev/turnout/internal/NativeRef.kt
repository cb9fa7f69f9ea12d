package dev.turnout.internal

import dev.turnout.TurnoutException
import dev.turnout.ffi.Disposable
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong

/**
 * The native objects a facade object ([dev.turnout.Client], [dev.turnout.Context],
 * [dev.turnout.Variable]) owns: the fast paths' handle [raw] (the C ABI's
 * `TurnoutClient *` / `TurnoutContext *` / `TurnoutVariable *` that the JNI
 * functions take, `ffi/src/fast.rs`; 0 without JNI) and the generated object
 * [owner] the cold calls use. A context made through JNI has no generated
 * object until a cold call needs one ([makeOwner], from the handle).
 *
 * Calls in flight are counted, as the generated classes do: the count starts
 * at 1 (the "open" reference), each call adds one for its duration, and
 * [close] drops the open reference once. Both are freed exactly once, when
 * the count reaches zero: never while a call on another thread still uses
 * them. A call after [close] throws [TurnoutException.Closed] instead of
 * touching freed memory.
 *
 * If the facade object is dropped without [close], JNA's cleaner frees [raw]
 * (and the generated owner's own cleaner frees it) when the garbage collector
 * finds it unreachable; a call in flight keeps this object reachable until
 * its [release].
 */
internal class NativeRef<T : Disposable>(
    /** The fast paths' handle, valid while the count is above zero (0: none). */
    @JvmField val raw: Long,
    owner: T?,
    private val what: String,
    /** Frees [raw] (a `Jni.free*` function). */
    freeRaw: (Long) -> Unit,
    /** Makes the generated object of [raw] when a cold call needs it and [owner] was null. */
    private val makeOwner: ((Long) -> T)? = null,
) {
    @Volatile private var owner: T? = owner
    private val calls = AtomicLong(1)
    private val closed = AtomicBoolean(false)
    private val cleanable = if (raw != 0L) CLEANER.register(this, Free(raw, freeRaw)) else null

    /** The cleaner's task: captures the handle, never this object. */
    private class Free(val raw: Long, val free: (Long) -> Unit) : Runnable {
        override fun run() = free(raw)
    }

    /** Counts a call in and returns the raw handle; throws if closed. */
    fun acquire(): Long {
        while (true) {
            val c = calls.get()
            if (c <= 0L) throw TurnoutException.Closed(what)
            if (calls.compareAndSet(c, c + 1)) return raw
        }
    }

    /** Counts a call out; frees both objects if it was the last reference. */
    fun release() {
        if (calls.decrementAndGet() == 0L) {
            owner?.destroy()
            cleanable?.clean()
        }
    }

    /** Whether [close] was called. */
    val isClosed: Boolean get() = closed.get()

    /** Drops the open reference (idempotent); the handle is freed once no call uses it. */
    fun close() {
        if (closed.compareAndSet(false, true)) release()
    }

    /** The generated object (made from [raw] on first use); only between [acquire] and [release]. */
    fun owner(): T =
        owner ?: synchronized(this) {
            owner ?: (makeOwner ?: error("$what has no generated object"))(raw).also { owner = it }
        }

    /** Runs [block] with the generated owner, counted as a call in flight, mapping errors. */
    inline fun <R> call(block: (T) -> R): R {
        acquire()
        try {
            return dev.turnout.mapErrors { block(owner()) }
        } finally {
            release()
        }
    }

    private companion object {
        val CLEANER: com.sun.jna.internal.Cleaner = com.sun.jna.internal.Cleaner.getCleaner()
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
