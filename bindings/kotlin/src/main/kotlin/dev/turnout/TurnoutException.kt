package dev.turnout

import dev.turnout.ffi.InternalException
import dev.turnout.ffi.TurnoutException as FfiException

/**
 * Every error the turnout facade throws. A sealed hierarchy, so a `when`
 * over it is exhaustive:
 *
 * ```kotlin
 * try { client.updateConfig(bytes) } catch (e: TurnoutException.Config) { log(e.message) }
 * ```
 *
 * Unchecked ([RuntimeException]) so Java callers are not forced to catch.
 * Mapped from the generated UniFFI error in one place ([mapErrors]).
 */
sealed class TurnoutException(
    message: String,
    /**
     * The engine's stable error kind (`INVALID_CONFIG`, `BATCH_CHECKSUM`, `LIMIT_EXCEEDED`, ...:
     * the same code on every platform, docs/sync.md section 8). Branch on the class or on
     * [code], never on the message.
     */
    val code: String,
    cause: Throwable? = null,
) : RuntimeException(message, cause) {
    /** A config was rejected; the previous config stays in force. [problems] lists every problem. */
    class Config(message: String, val problems: List<Problem> = emptyList()) : TurnoutException(message, "INVALID_CONFIG")

    /** Facets could not be used (a name or value of the wrong type, a non-finite number). */
    class Facets(message: String) : TurnoutException(message, "INVALID_FACETS")

    /** Client options were invalid. */
    class Options(message: String, code: String = "INVALID_OPTIONS") : TurnoutException(message, code)

    /**
     * An event batch could not be encoded or decoded (corrupted bytes are rejected whole);
     * [code] says how: `BATCH_CHECKSUM`, `NOT_A_BATCH`, `BATCH_VERSION`, `BATCH_MALFORMED`
     * (decoding) or `INVALID_BATCH` (encoding from JSON).
     */
    class Batch(message: String, code: String = "INVALID_BATCH") : TurnoutException(message, code)

    /** The call is not possible in this state ([code] `NO_FIXED_CLOCK`: moving the clock of a client without `fixedTimeMs`). */
    class State(message: String, code: String = "INVALID_ARGUMENT") : TurnoutException(message, code)

    /**
     * A limit on hostile input was exceeded (docs/spec.md, section 17): a config over
     * [ClientOptions.maxConfigBytes], nested deeper than 64 or expanding to too many
     * constraints (the previous config stays in force), or a batch that would decode to
     * more than its expansion limit. [limit] names it (`config_bytes`, `json_depth`,
     * `expanded_constraints`, `decode_expansion`, ...), [found] and [maximum] are the
     * numbers (null only if the engine gave none).
     */
    class Limit(message: String, val limit: String? = null, val found: Long? = null, val maximum: Long? = null) :
        TurnoutException(message, "LIMIT_EXCEEDED")

    /** The handle ([Client], [Context] or [Variable]) was closed; [what] names it. */
    class Closed(val what: String) : TurnoutException("$what is closed", "CLOSED")

    /** The native library failed unexpectedly (a bug: please report it with [message]). */
    class Internal(message: String, cause: Throwable? = null) : TurnoutException(message, "INTERNAL", cause)
}

/**
 * Runs a call into the generated bindings and maps what it throws to
 * [TurnoutException]: the one place where the generated error is translated.
 */
internal inline fun <T> mapErrors(block: () -> T): T =
    try {
        block()
    } catch (e: FfiException) {
        throw e.toFacade()
    } catch (e: InternalException) {
        throw TurnoutException.Internal(e.message ?: "internal error", e)
    }

internal fun FfiException.toFacade(): TurnoutException =
    when (this) {
        is FfiException.Config -> TurnoutException.Config(detail, problems.map(Problem::of))
        is FfiException.Facets -> TurnoutException.Facets(detail)
        is FfiException.Options -> TurnoutException.Options(detail, kind)
        is FfiException.Batch -> TurnoutException.Batch(detail, kind)
        is FfiException.State -> TurnoutException.State(detail, kind)
        is FfiException.Limit -> TurnoutException.Limit(detail, limit, found.toLong(), maximum.toLong())
    }
