package dev.turnout

import dev.turnout.internal.Jni
import dev.turnout.internal.NativeLoader
import dev.turnout.ffi.Client as FfiClient

/**
 * Entry point of the turnout Kotlin/JVM/Android SDK.
 *
 * ```kotlin
 * Turnout.client(File("config.json").readBytes(), ClientOptions(service = "booking")).use { client ->
 *     val delay = client.getVariable("automatedMessageDelay", Facets().passenger(7).city(10)).int64(30)
 * }
 * ```
 */
object Turnout {
    // Every facade path to the native library starts here: the library carried by the jar is
    // extracted (once) before the generated bindings load it (internal/NativeLoader.kt).
    init {
        NativeLoader.ensure()
    }

    /**
     * A client bootstrapped with [config] (a bundle or a single document, JSON
     * bytes), so the first decision never waits for the network.
     * @throws TurnoutException.Config if the config is rejected.
     * @throws TurnoutException.Options if the options are invalid.
     */
    @JvmStatic
    @JvmOverloads
    fun client(config: ByteArray, options: ClientOptions = ClientOptions()): Client =
        Client.create(mapErrors { FfiClient(config, options.toJson()) })

    /** [client] from JSON text. */
    @JvmStatic
    @JvmOverloads
    fun client(config: String, options: ClientOptions = ClientOptions()): Client = client(config.toByteArray(Charsets.UTF_8), options)

    /**
     * A client with no config yet: every variable answers the caller's default
     * until [Client.updateConfig] (or a [Poller]) installs one.
     */
    @JvmStatic
    @JvmOverloads
    fun emptyClient(options: ClientOptions = ClientOptions()): Client = Client.create(mapErrors { FfiClient.empty(options.toJson()) })

    /** The evaluation contract version (docs/spec.md) the native library implements. */
    @JvmStatic
    val specVersion: Int get() = dev.turnout.ffi.specVersion().toInt()

    /** The native library's version. */
    @JvmStatic
    val libraryVersion: String get() = dev.turnout.ffi.libraryVersion()

    /** `jni` when the JNI fast path is linked, else `uniffi` (every call through the generated bindings). */
    @JvmStatic
    val fastPath: String get() = if (Jni.available) "jni" else "uniffi"

    /**
     * Encodes `{"header": {...}, "events": [...]}` (the JSON of `turnout decode`) into batch bytes.
     * @throws TurnoutException.Batch if it does not describe a valid batch.
     */
    @JvmStatic
    fun encodeBatchJson(json: String): ByteArray = mapErrors { dev.turnout.ffi.encodeBatchJson(json) }

    /**
     * Decodes batch bytes into `{"header": {...}, "events": [...]}` JSON text.
     * @throws TurnoutException.Batch for corrupted or foreign bytes (rejected whole),
     *   [TurnoutException.Limit] for a batch that would decode to more than its expansion limit.
     */
    @JvmStatic
    fun decodeBatchJson(bytes: ByteArray): String = mapErrors { dev.turnout.ffi.decodeBatchJson(bytes) }
}
