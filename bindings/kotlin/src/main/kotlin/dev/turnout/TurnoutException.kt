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
sealed class TurnoutException(message: String, cause: Throwable? = null) : RuntimeException(message, cause) {
    /** A config was rejected; the previous config stays in force. [message] lists every problem, one per line. */
    class Config(message: String) : TurnoutException(message)

    /** Facets could not be used (a name or value of the wrong type, a non-finite number). */
    class Facets(message: String) : TurnoutException(message)

    /** Client options were invalid. */
    class Options(message: String) : TurnoutException(message)

    /** An event batch could not be encoded or decoded (corrupted bytes are rejected whole). */
    class Batch(message: String) : TurnoutException(message)

    /** The call is not possible in this state (e.g. moving the clock of a client without `fixedTimeMs`). */
    class State(message: String) : TurnoutException(message)

    /**
     * A limit on hostile input was exceeded (docs/spec.md, section 17): a config over
     * [ClientOptions.maxConfigBytes], nested deeper than 64 or expanding to too many
     * constraints (the previous config stays in force), or a batch that would decode to
     * more than its expansion limit. [message] names the limit
     * (``limit `config_bytes` exceeded: found 3870, the maximum is 1000``); [limit] is
     * that name (`config_bytes`, `json_depth`, `expanded_constraints`, `decode_expansion`, ...),
     * or null if the message has none.
     */
    class Limit(message: String) : TurnoutException(message) {
        /** The name of the limit exceeded (`config_bytes`, `json_depth`, ...), or null. */
        val limit: String? = LIMIT_NAME.find(message)?.groupValues?.get(1)

        private companion object {
            val LIMIT_NAME = Regex("limit `(\\w+)` exceeded")
        }
    }

    /** The handle ([Client], [Context] or [Variable]) was closed; [what] names it. */
    class Closed(val what: String) : TurnoutException("$what is closed")

    /** The native library failed unexpectedly (a bug: please report it with [message]). */
    class Internal(message: String, cause: Throwable? = null) : TurnoutException(message, cause)
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
        is FfiException.Config -> TurnoutException.Config(detail)
        is FfiException.Facets -> TurnoutException.Facets(detail)
        is FfiException.Options -> TurnoutException.Options(detail)
        is FfiException.Batch -> TurnoutException.Batch(detail)
        is FfiException.State -> TurnoutException.State(detail)
        is FfiException.Limit -> TurnoutException.Limit(detail)
    }
