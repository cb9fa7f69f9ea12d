package dev.turnout

import dev.turnout.internal.Jni
import dev.turnout.internal.NativeRef
import dev.turnout.internal.withRaw
import java.util.concurrent.ConcurrentHashMap
import dev.turnout.ffi.Client as FfiClient
import dev.turnout.ffi.Context as FfiContext
import dev.turnout.ffi.Variable as FfiVariable

/**
 * A turnout client: the compiled config (swapped atomically on update) and
 * the event queue. Thread-safe: share one per process and service. Create
 * one with [Turnout.client]; [close] it when done (or let the garbage
 * collector free it).
 *
 * ```kotlin
 * val delay = client.getVariable("automatedMessageDelay", Facets().passenger(7).city(10)).int64(30)
 * ```
 */
class Client internal constructor(
    internal val ref: NativeRef<FfiClient>,
) : AutoCloseable {
    private val variables = ConcurrentHashMap<String, Variable>()

    /**
     * The handle of a variable, cached per name (so [getVariable] costs one
     * map lookup more than the prepared path). Owned by this client: it
     * stays valid across config updates and is released when the client
     * closes (its own [Variable.close] does nothing).
     */
    fun variable(name: String): Variable {
        variables[name]?.let { return it }
        val v = Variable(name, adopt(ref.call { it.variable(name) }, name), ownedByClient = true)
        val prev = variables.putIfAbsent(name, v)
        if (prev != null) {
            v.ref.close()
            return prev
        }
        return v
    }

    /**
     * A prepared context for one unit or request: the facets are converted
     * once, and every getter on it is the hot path. Close it when done.
     * Facets over a limit (more than 1,024, a name over 1 KiB, a value over
     * 8 KiB) give a context whose every decision is the caller's default with
     * [Reason.ERROR] and [ErrorCode.INVALID_CONTEXT].
     * @throws TurnoutException.Facets if the facets are rejected.
     */
    fun context(facets: Facets): Context {
        val json = facets.toJson()
        if (Jni.available) {
            val ctx = withRaw(ref) { h -> Jni.context(h, json) }
            if (ctx != 0L) return Context(NativeRef(ctx, null, "context", Jni::freeContext) { h -> FfiContext.fromFastHandle(h) })
        }
        // The generated call raises the typed error if the facets are rejected; facets over
        // a limit take the map-based call, which marks the context (as on every platform).
        val gen =
            try {
                ref.call { it.contextJson(String(json, Charsets.UTF_8)) }
            } catch (e: TurnoutException.Limit) {
                ref.call { it.context(facets.toFfi()) }
            }
        return Context(adopt(gen))
    }

    /**
     * One decision for [name] and [facets], read with a typed getter:
     * `client.getVariable("delay", facets).int64(30)`. Each getter call takes
     * (and records) one decision, reading [facets] as they are then.
     */
    fun getVariable(name: String, facets: Facets): Value = Value(this, variable(name), facets)

    /** Every variable assigned by the experiment, or the experiments of the domain, called [name]. */
    fun getVariables(name: String, facets: Facets): List<Decision> =
        ref.call { c -> c.getVariables(name, facets.toFfi()).map(Decision::of) }

    /** The decision with the steps that led to it (records nothing). */
    fun explain(name: String, facets: Facets): Explanation = ref.call { c -> Explanation.of(c.explain(name, facets.toFfi())) }

    /** Records a metric `service.name` with [value] and [facets]. */
    fun track(name: String, value: Double, facets: Facets) {
        if (Jni.available && withRaw(ref) { h -> Jni.track(h, name, value, facets.toJson()) }) return
        ref.call { c -> c.track(name, value, facets.toFfi()) }
    }

    /**
     * Validates, compiles and atomically installs [config] (JSON bytes).
     * @throws TurnoutException.Config if rejected, [TurnoutException.Limit] if over a limit
     *   (size, depth, expanded constraints); the previous config stays in force.
     */
    fun updateConfig(config: ByteArray): UpdateReport = ref.call { c -> UpdateReport.of(c.updateConfig(config)) }

    /** Checks [config] without installing it. @throws TurnoutException.Config (or [TurnoutException.Limit]) if it would be rejected. */
    fun validate(config: ByteArray): UpdateReport = ref.call { c -> UpdateReport.of(c.validate(config)) }

    /** The `version` of the bundle in force, if it has one. */
    val configVersion: Long? get() = ref.call { it.configVersion() }

    /** Names of every variable the config defines, sorted. */
    val variableNames: List<String> get() = ref.call { it.variableNames() }

    /** The next batch of at most [maxEvents] events to upload, or null when nothing waits. */
    @JvmOverloads
    fun takeBatch(maxEvents: Int = 1000): Batch? {
        require(maxEvents > 0) { "maxEvents must be positive" }
        return ref.call { c -> c.takeBatch(maxEvents.toUInt())?.let(Batch::of) }
    }

    /** Batch [seq] was delivered: forget it. False if unknown. */
    fun ack(seq: Long): Boolean = ref.call { it.ack(seq.toULong()) }

    /** Batch [seq] failed: it is handed out again first, with the same bytes. False if unknown. */
    fun nack(seq: Long): Boolean = ref.call { it.nack(seq.toULong()) }

    /** Queue counters. */
    val trackingStats: TrackingStats get() = ref.call { TrackingStats.of(it.trackingStats()) }

    /**
     * Moves the fixed clock (clients created with [ClientOptions.fixedTimeMs]).
     * @throws TurnoutException.State otherwise.
     */
    fun setTimeMs(ms: Long): Unit = ref.call { it.setTimeMs(ms) }

    /** Releases the client and its cached variables (contexts stay usable until closed). */
    override fun close() {
        ref.close()
        variables.values.forEach { it.ref.close() }
        variables.clear()
    }

    internal companion object {
        fun create(gen: FfiClient): Client =
            Client(NativeRef(if (Jni.available) gen.fastHandle() else 0L, gen, "client", Jni::freeClient))

        /** A generated context with its fast handle (none without JNI). */
        fun adopt(gen: FfiContext): NativeRef<FfiContext> =
            NativeRef(if (Jni.available) gen.fastHandle() else 0L, gen, "context", Jni::freeContext)

        /** A generated variable with its fast handle (none without JNI). */
        fun adopt(gen: FfiVariable, name: String): NativeRef<FfiVariable> =
            NativeRef(if (Jni.available) gen.fastHandle() else 0L, gen, "variable `$name`", Jni::freeVariable)
    }
}

/**
 * A variable handle: the name resolved once per config version, usable with
 * any [Context] of its client. Thread-safe.
 */
class Variable internal constructor(
    /** The variable's name. */
    val name: String,
    internal val ref: NativeRef<FfiVariable>,
    private val ownedByClient: Boolean,
) : AutoCloseable {
    /** Releases the handle, unless it came from [Client.variable] (then the client owns it). */
    override fun close() {
        if (!ownedByClient) ref.close()
    }

    override fun toString(): String = "Variable($name)"
}

/**
 * The facets of one unit or request, prepared once: the typed getters
 * ([int64], [float64], [bool], [string]) are the hot path, a single JNI call
 * each. Thread-safe; [close] it when done.
 */
class Context internal constructor(
    internal val ref: NativeRef<FfiContext>,
) : AutoCloseable {
    /** The value of [variable] as a 64-bit integer, or [default] (fallback or another type). */
    fun int64(variable: Variable, default: Long): Long {
        if (!Jni.available) return both(variable) { c, v -> c.int64(v, default) }
        return withRaw(ref, variable.ref) { c, v -> Jni.int64(c, v, default) }
    }

    /** The value as a double, or [default]. */
    fun float64(variable: Variable, default: Double): Double {
        if (!Jni.available) return both(variable) { c, v -> c.float64(v, default) }
        return withRaw(ref, variable.ref) { c, v -> Jni.float64(c, v, default) }
    }

    /** The value as a boolean, or [default]. */
    fun bool(variable: Variable, default: Boolean): Boolean {
        if (!Jni.available) return both(variable) { c, v -> c.bool(v, default) }
        return withRaw(ref, variable.ref) { c, v -> Jni.bool(c, v, default) }
    }

    /** The value as a string, or [default]. */
    fun string(variable: Variable, default: String): String {
        if (!Jni.available) return both(variable) { c, v -> c.string(v, default) }
        return withRaw(ref, variable.ref) { c, v -> Jni.string(c, v, default) ?: default }
    }

    /** The value as compact JSON text, or null (fallback). */
    fun json(variable: Variable): String? = both(variable) { c, v -> c.json(v) }

    /** The full decision. */
    fun decision(variable: Variable): Decision = both(variable) { c, v -> Decision.of(c.decision(v)) }

    /** Records a metric `service.name` with this context's facets. */
    fun track(name: String, value: Double) {
        if (Jni.available && withRaw(ref) { c -> Jni.contextTrack(c, name, value) }) return
        ref.call { it.track(name, value) }
    }

    /** The facets as JSON text (integers as exact JSON numbers). */
    val facetsJson: String get() = ref.call { it.facetsJson() }

    override fun close() = ref.close()

    private inline fun <R> both(variable: Variable, block: (FfiContext, FfiVariable) -> R): R =
        ref.call { c -> variable.ref.call { v -> block(c, v) } }
}

/**
 * The answer of [Client.getVariable]: read it with a typed getter and the
 * caller's default. Each getter call takes and records one decision (the
 * one-shot path: the facets are converted on every call; prepare a
 * [Context] to convert them once).
 */
class Value internal constructor(
    private val client: Client,
    private val variable: Variable,
    private val facets: Facets,
) {
    /** The value as a 64-bit integer, or [default]. */
    fun int64(default: Long): Long {
        if (!Jni.available) return viaContext { it.int64(variable, default) }
        val json = facets.toJson()
        return withRaw(client.ref, variable.ref) { c, v -> Jni.oneShotInt64(c, v, json, default) }
    }

    /** The value as a double, or [default]. */
    fun float64(default: Double): Double {
        if (!Jni.available) return viaContext { it.float64(variable, default) }
        val json = facets.toJson()
        return withRaw(client.ref, variable.ref) { c, v -> Jni.oneShotFloat64(c, v, json, default) }
    }

    /** The value as a boolean, or [default]. */
    fun bool(default: Boolean): Boolean {
        if (!Jni.available) return viaContext { it.bool(variable, default) }
        val json = facets.toJson()
        return withRaw(client.ref, variable.ref) { c, v -> Jni.oneShotBool(c, v, json, default) }
    }

    /** The value as a string, or [default]. */
    fun string(default: String): String {
        if (!Jni.available) return viaContext { it.string(variable, default) }
        val json = facets.toJson()
        return withRaw(client.ref, variable.ref) { c, v -> Jni.oneShotString(c, v, json, default) ?: default }
    }

    /** The value as compact JSON text, or null (fallback). */
    fun json(): String? = decision().valueJson

    /** The full decision (through the generated API: not the hot path). */
    fun decision(): Decision = client.ref.call { c -> Decision.of(c.getVariable(variable.name, facets.toFfi())) }

    private inline fun <R> viaContext(block: (Context) -> R): R = client.context(facets).use(block)
}
