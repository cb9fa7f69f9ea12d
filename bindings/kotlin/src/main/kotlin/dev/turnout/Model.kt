package dev.turnout

import dev.turnout.ffi.Batch as FfiBatch
import dev.turnout.ffi.Decision as FfiDecision
import dev.turnout.ffi.Explanation as FfiExplanation
import dev.turnout.ffi.Problem as FfiProblem
import dev.turnout.ffi.Rejected as FfiRejected
import dev.turnout.ffi.TrackingStats as FfiTrackingStats
import dev.turnout.ffi.UpdateReport as FfiUpdateReport

/** Where a decision's value came from. */
enum class Source(
    /** The contract's name (`experiment`, `rollout`, `default`, `fallback`). */
    val wire: String,
) {
    /** An experiment assigned it. */
    EXPERIMENT("experiment"),

    /** A rollout rule matched. */
    ROLLOUT("rollout"),

    /** The variable's default. */
    DEFAULT("default"),

    /** No value: the caller's default applies (unknown variable, disabled, type mismatch). */
    FALLBACK("fallback"),
    ;

    internal companion object {
        fun of(wire: String): Source = entries.firstOrNull { it.wire == wire } ?: throw unknown("source", wire)
    }
}

/** Why a decision was taken (OpenFeature's reasons). */
enum class Reason {
    /** A rollout rule or an experiment's constraints matched. */
    TARGETING_MATCH,

    /** A weighted split or time slice assigned the value. */
    SPLIT,

    /** Nothing matched: the default. */
    DEFAULT,

    /** The kill switch is on. */
    DISABLED,

    /** See [Decision.errorCode]. */
    ERROR,
    ;

    internal companion object {
        fun of(wire: String): Reason = entries.firstOrNull { it.name == wire } ?: throw unknown("reason", wire)
    }
}

/** Set when [Decision.reason] is [Reason.ERROR]. */
enum class ErrorCode {
    /** The config does not define the variable. */
    FLAG_NOT_FOUND,

    /** The value is not of the asked type. */
    TYPE_MISMATCH,

    /** The variable's document was rejected and no last good version exists. */
    PARSE_ERROR,

    /**
     * The facets were over a limit (more than 1,024, a name over 1 KiB, a value over 8 KiB):
     * the value is the caller's default.
     */
    INVALID_CONTEXT,
    ;

    internal companion object {
        fun of(wire: String): ErrorCode = entries.firstOrNull { it.name == wire } ?: throw unknown("error code", wire)
    }
}

private fun unknown(what: String, wire: String) =
    TurnoutException.Internal("unknown $what `$wire` from the native library (newer than this facade?)")

/**
 * One decision: the value of a variable for some facets, and why.
 * The JSON line of `turnout eval` carries the same fields.
 */
data class Decision(
    /** The variable's name. */
    val variable: String,
    /** The value as compact JSON text (`60`, `"orange"`, `{"a":1}`); null for [Source.FALLBACK]. */
    val valueJson: String?,
    /** The matched rule's `string` label, if any. */
    val label: String?,
    /** Where the value came from. */
    val source: Source,
    /** The experiment that assigned the value ([Source.EXPERIMENT]). */
    val experiment: String?,
    /** The matched rule's index ([Source.ROLLOUT]). */
    val rule: Int?,
    /** The assigned choice's index ([Source.EXPERIMENT]). */
    val choice: Int?,
    /** Why. */
    val reason: Reason,
    /** Set when [reason] is [Reason.ERROR]. */
    val errorCode: ErrorCode?,
) {
    internal companion object {
        fun of(d: FfiDecision) =
            Decision(
                variable = d.variable,
                valueJson = d.valueJson,
                label = d.label,
                source = Source.of(d.source),
                experiment = d.experiment,
                rule = d.rule?.toInt(),
                choice = d.choice?.toInt(),
                reason = Reason.of(d.reason),
                errorCode = d.errorCode?.let(ErrorCode::of),
            )
    }
}

/** One problem found in a config: which document, which field, why. */
data class Problem(
    /** The document, e.g. `rollout "automatedMessageDelay"`, or `bundle`. */
    val document: String,
    /** A JSON path inside the document (empty for the document as a whole). */
    val field: String,
    /** What is wrong. */
    val message: String,
) {
    /** `document: field: message` (empty parts left out). */
    override fun toString(): String = listOf(document, field, message).filter { it.isNotEmpty() }.joinToString(": ")

    internal companion object {
        fun of(p: FfiProblem) = Problem(p.document, p.field, p.message)

        fun of(p: Any?) = (p as Map<*, *>).let { Problem(it["document"] as String, it["field"] as String, it["message"] as String) }
    }
}

/** A document rejected inside an accepted bundle, and what happened to it. */
data class Rejected(
    /** The problems found in it. */
    val problems: List<Problem>,
    /** Its last good version stays in force. */
    val keptLastGood: Boolean,
    /** It said `"enabled": false`: the kill switch took effect anyway. */
    val killSwitch: Boolean,
) {
    /** The problems on one line, `; `-separated, with what was kept. */
    override fun toString(): String =
        problems.joinToString("; ") + if (killSwitch) " (kill switch honoured)" else if (keptLastGood) " (last good version kept)" else ""

    internal companion object {
        fun of(r: FfiRejected) = Rejected(r.problems.map(Problem::of), r.keptLastGood, r.killSwitch)
    }
}

/** What a config update changed (or, from [Client.validate], would change). */
data class UpdateReport(
    /** The bundle's `version`, if it has one. */
    val version: Long?,
    /** Variables that did not exist before (sorted). */
    val added: List<String>,
    /** Variables that no longer exist (sorted). */
    val removed: List<String>,
    /** Variables whose documents changed (sorted). */
    val changed: List<String>,
    /** Documents rejected inside the accepted bundle (their last good version stays in force where there is one). */
    val rejected: List<Rejected>,
    /** Things that load but are almost certainly mistakes. */
    val warnings: List<Problem>,
) {
    /** Whether anything was added, removed or changed. */
    val hasChanges: Boolean get() = added.isNotEmpty() || removed.isNotEmpty() || changed.isNotEmpty()

    internal companion object {
        fun of(r: FfiUpdateReport) =
            UpdateReport(r.version, r.added, r.removed, r.changed, r.rejected.map(Rejected::of), r.warnings.map(Problem::of))

        /** The report of a sync's `applied` notice (the core's JSON form, read by [dev.turnout.internal.JsonReader]). */
        fun of(m: Map<*, *>): UpdateReport {
            fun names(key: String) = (m[key] as List<*>).map { it as String }
            val rejected =
                (m["rejected"] as List<*>).map { r ->
                    r as Map<*, *>
                    Rejected((r["problems"] as List<*>).map(Problem::of), r["kept_last_good"] == true, r["kill_switch"] == true)
                }
            val warnings = (m["warnings"] as List<*>).map(Problem::of)
            return UpdateReport(m["version"] as Long?, names("added"), names("removed"), names("changed"), rejected, warnings)
        }
    }
}

/**
 * A batch of events to upload (`application/octet-stream`, docs/wire-format.md);
 * then [Client.ack] or [Client.nack] its [seq].
 */
class Batch(
    /** Sequence number (with the client id, the collector's de-duplication key). */
    val seq: Long,
    /** The encoded batch. */
    val bytes: ByteArray,
    /** How many events (folded records) it holds. */
    val events: Long,
) {
    override fun toString(): String = "Batch(seq=$seq, events=$events, bytes=${bytes.size})"

    internal companion object {
        fun of(b: FfiBatch) = Batch(b.seq.toLong(), b.bytes, b.events.toLong())
    }
}

/** Event queue counters; every loss is counted. */
data class TrackingStats(
    /** Occurrences recorded (decisions and tracks, folded repeats included). */
    val recorded: Long,
    /** Occurrences folded into an earlier identical event. */
    val folded: Long,
    /** Occurrences dropped (queue full, unacked batches evicted). */
    val dropped: Long,
    /** Occurrences queued unfolded because the fold table was full. */
    val foldOverflow: Long,
    /** Events waiting for a batch. */
    val queued: Long,
    /** Batches taken and not yet acked or nacked. */
    val inFlight: Long,
    /** Nacked batches waiting to be taken again. */
    val retrying: Long,
) {
    internal companion object {
        fun of(s: FfiTrackingStats) =
            TrackingStats(
                s.recorded.toLong(),
                s.folded.toLong(),
                s.dropped.toLong(),
                s.foldOverflow.toLong(),
                s.queued.toLong(),
                s.inFlight.toLong(),
                s.retrying.toLong(),
            )
    }
}

/** A decision with the steps that led to it (`turnout eval --explain`). */
data class Explanation(
    /** The decision. */
    val decision: Decision,
    /** Human-readable steps, in evaluation order. */
    val steps: List<String>,
) {
    internal companion object {
        fun of(e: FfiExplanation) = Explanation(Decision.of(e.decision), e.steps)
    }
}
