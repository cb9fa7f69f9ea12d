package dev.turnout.internal

import com.sun.jna.NativeLibrary

/**
 * The JNI fast path (`ffi/src/jni.rs`): the hot calls with only handles and
 * primitives (plus facets as UTF-8 JSON bytes for the one-shot calls), tens
 * of nanoseconds per crossing instead of the microseconds of a generated
 * UniFFI call through JNA.
 *
 * Handles are the fast paths' own (the C ABI's `TurnoutClient *`,
 * `TurnoutContext *`, `TurnoutVariable *`: a generated object's
 * `fastHandle()`, or [context]), owned and kept alive by the caller
 * ([NativeRef]) and freed with [freeClient], [freeContext], [freeVariable].
 * Use only when [available] is true.
 */
internal object Jni {
    /**
     * Whether the JNI functions are linked. The library is loaded into the JVM
     * from the very file JNA loaded (so both share one instance and the same
     * handles): the one [NativeLoader] extracted from the jar; on Android,
     * where JNA itself loads from the APK's jniLibs, `System.loadLibrary`
     * finds the same `.so`. Set the system property
     * `turnout.jni=false` to use the generated UniFFI calls only.
     */
    @JvmField val available: Boolean = load()

    private fun load(): Boolean {
        if (System.getProperty("turnout.jni") == "false") return false
        NativeLoader.ensure()
        // Initialise the generated bindings first: JNA loads the library and checks its checksums.
        dev.turnout.ffi.specVersion()
        val name = System.getProperty("uniffi.component.${NativeLoader.NAME}.libraryOverride") ?: NativeLoader.NAME
        val loaded = runCatching {
            val file = NativeLibrary.getInstance(name).file
            if (file != null && file.isFile) System.load(file.absolutePath) else System.loadLibrary(name)
        }.recoverCatching { System.loadLibrary(name) }
        // A null handle answers the default: proves the symbols resolve.
        return loaded.isSuccess && runCatching { int64(0, 0, 7) == 7L }.getOrDefault(false)
    }

    @JvmStatic external fun int64(ctx: Long, variable: Long, default: Long): Long

    @JvmStatic external fun float64(ctx: Long, variable: Long, default: Double): Double

    @JvmStatic external fun bool(ctx: Long, variable: Long, default: Boolean): Boolean

    /** `null` if the call could not be made (the caller answers its default). */
    @JvmStatic external fun string(ctx: Long, variable: Long, default: String): String?

    /** A new context handle owned by the caller (freed with [freeContext]), or 0 if the facets were rejected. */
    @JvmStatic external fun context(client: Long, facetsJson: ByteArray): Long

    @JvmStatic external fun oneShotInt64(client: Long, variable: Long, facetsJson: ByteArray, default: Long): Long

    @JvmStatic external fun oneShotFloat64(client: Long, variable: Long, facetsJson: ByteArray, default: Double): Double

    @JvmStatic external fun oneShotBool(client: Long, variable: Long, facetsJson: ByteArray, default: Boolean): Boolean

    /** `null` if the call could not be made (the caller answers its default). */
    @JvmStatic external fun oneShotString(client: Long, variable: Long, facetsJson: ByteArray, default: String): String?

    /** Records a metric with facets (JSON bytes); false if the call could not be made. */
    @JvmStatic external fun track(client: Long, name: String, value: Double, facetsJson: ByteArray): Boolean

    /** Records a metric with a context's facets; false if the call could not be made. */
    @JvmStatic external fun contextTrack(ctx: Long, name: String, value: Double): Boolean

    /** Frees a client handle (0 does nothing). */
    @JvmStatic external fun freeClient(handle: Long)

    /** Frees a context handle (0 does nothing). */
    @JvmStatic external fun freeContext(handle: Long)

    /** Frees a variable handle (0 does nothing). */
    @JvmStatic external fun freeVariable(handle: Long)
}
