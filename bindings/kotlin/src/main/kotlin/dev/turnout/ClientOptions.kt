package dev.turnout

import dev.turnout.internal.JsonBytes

/** How a config update treats a broken document inside a bundle. */
enum class Isolation(internal val wire: String) {
    /** A broken document keeps its last good version; the rest of the bundle applies (default). */
    PER_DOCUMENT("perDocument"),

    /** Any problem rejects the whole update. */
    STRICT("strict"),
}

/** Which decisions are recorded as events. */
enum class DecisionEvents(internal val wire: String) {
    /** Every decision taken through an experiment or a rollout (default). */
    ALL("all"),

    /** Only decisions taken through an experiment. */
    EXPERIMENTS("experiments"),

    /** None ([Client.track] still records). */
    OFF("off"),
}

/**
 * Client options. Every field has the engine's default when null.
 *
 * ```kotlin
 * ClientOptions(service = "booking", excludeFacets = listOf("device"))
 * ```
 */
data class ClientOptions(
    /** The service this client runs in (prefixes tracked event names as `service.name`). */
    val service: String? = null,
    /** How an update treats a broken document. */
    val isolation: Isolation? = null,
    /** Which decisions are recorded. */
    val decisionEvents: DecisionEvents? = null,
    /** Facet names never recorded in events (PII). */
    val excludeFacets: List<String>? = null,
    /** Queue limit in events (default 10,000). */
    val maxQueue: Long? = null,
    /** Fold table limit in keys (default 10,000). */
    val maxFoldKeys: Long? = null,
    /** Batches taken and not yet acked that are kept for retry (default 64). */
    val maxUnackedBatches: Long? = null,
    /** Client instance id written in batch headers (a random id by default). */
    val clientId: String? = null,
    /** SDK name in batch headers. */
    val sdk: String? = SDK_NAME,
    /** SDK version in batch headers. */
    val sdkVersion: String? = SDK_VERSION,
    /** Platform in batch headers: `android` or `jvm` by default. */
    val platform: String? = defaultPlatform(),
    /** Pins the clock at this unix time in ms (tests, replays); move it with [Client.setTimeMs]. */
    val fixedTimeMs: Long? = null,
    /** The largest config accepted, in bytes (default 16 MiB); a larger one throws [TurnoutException.Limit]. */
    val maxConfigBytes: Long? = null,
) {
    /** The options as the JSON the native library reads (`turnout_core::host::HostOptions`). */
    fun toJson(): String {
        val w = JsonBytes(128).byte('{')
        var first = true

        fun key(k: String): JsonBytes {
            if (!first) w.byte(',')
            first = false
            return w.string(k).byte(':')
        }
        service?.let { key("service").string(it) }
        isolation?.let { key("isolation").string(it.wire) }
        decisionEvents?.let { key("decisionEvents").string(it.wire) }
        excludeFacets?.let { names ->
            key("excludeFacets").byte('[')
            names.forEachIndexed { i, n -> (if (i > 0) w.byte(',') else w).string(n) }
            w.byte(']')
        }
        maxQueue?.let { key("maxQueue").long(it) }
        maxFoldKeys?.let { key("maxFoldKeys").long(it) }
        maxUnackedBatches?.let { key("maxUnackedBatches").long(it) }
        clientId?.let { key("clientId").string(it) }
        sdk?.let { key("sdk").string(it) }
        sdkVersion?.let { key("sdkVersion").string(it) }
        platform?.let { key("platform").string(it) }
        fixedTimeMs?.let { key("fixedTimeMs").long(it) }
        maxConfigBytes?.let { key("maxConfigBytes").long(it) }
        return w.byte('}').toString()
    }

    companion object {
        /** The SDK name this facade writes in batch headers. */
        const val SDK_NAME = "turnout-kotlin"

        /** This facade's version. */
        const val SDK_VERSION = "0.2.0"

        /** `android` on Android (ART/Dalvik), else `jvm`. */
        @JvmStatic
        fun defaultPlatform(): String = if (System.getProperty("java.vm.name")?.contains("Dalvik") == true) "android" else "jvm"
    }
}
