package dev.turnout.tools

import com.google.gson.JsonObject
import dev.turnout.ClientOptions
import dev.turnout.Context
import dev.turnout.Turnout
import dev.turnout.Variable
import java.io.File
import kotlin.system.exitProcess

/**
 * The demo runner of tests/bench/README.md:
 *
 * ```text
 * Runner --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS --out DECISIONS.jsonl --timing TIMING.json
 * ```
 *
 * Every context through the prepared path (a `Context` per line, one
 * `Variable` per name), one `turnout eval` JSON line per decision; then the
 * prepared typed getter (`int64` for integer values, else `string`) timed
 * over repeated passes for about a second, median ns per decision.
 * The invocation with the classpath is in xtask/src/kotlin.rs.
 */
object Runner {
    @JvmStatic
    fun main(args: Array<String>) {
        exitProcess(
            try {
                run(args)
            } catch (e: IllegalArgumentException) {
                System.err.println("runner: ${e.message}")
                2
            },
        )
    }

    /** Runs the runner; returns the exit code. */
    @JvmStatic
    fun run(args: Array<String>): Int {
        val opts = parse(args)
        val config = File(opts.getValue("config")).readBytes()
        val lines = File(opts.getValue("contexts")).readLines().filter { it.isNotBlank() }
        Turnout.client(config, ClientOptions(fixedTimeMs = opts.getValue("now-ms").toLong())).use { client ->
            val variables = HashMap<String, Variable>()
            val prepared = ArrayList<Triple<Context, Variable, Boolean>>()
            try {
                File(opts.getValue("out")).bufferedWriter().use { out ->
                    for (line in lines) {
                        val input = Json.parse(line).asJsonObject
                        val name = input["variable"].asString
                        val v = variables.getOrPut(name) { client.variable(name) }
                        val ctx = client.context(Json.facets(input.getAsJsonObject("facets") ?: JsonObject()))
                        val d = ctx.decision(v)
                        out.write(Json.decision(d).toString())
                        out.newLine()
                        val isInt = d.valueJson?.let { t -> t.toLongOrNull() != null } ?: false
                        prepared += Triple(ctx, v, isInt)
                    }
                }
                val ns = time(prepared) { while (true) client.ack((client.takeBatch(10_000) ?: break).seq) }
                val timing = JsonObject().apply {
                    addProperty("platform", "kotlin")
                    addProperty("decisions", prepared.size)
                    addProperty("nsPerDecisionMedian", ns)
                }
                File(opts.getValue("timing")).writeText(timing.toString() + "\n")
            } finally {
                prepared.forEach { it.first.close() }
            }
        }
        return 0
    }

    /**
     * Median ns per decision over passes of the typed getters: ~0.3 s of warm-up, then ~1 s
     * measured; the event queue is drained ([drain]) between passes, outside the timing.
     */
    private fun time(
        prepared: List<Triple<Context, Variable, Boolean>>,
        drain: () -> Unit,
    ): Double {
        if (prepared.isEmpty()) return 0.0
        var sink = 0L

        fun pass(): Long {
            drain()
            val t0 = System.nanoTime()
            for ((ctx, v, isInt) in prepared) sink += if (isInt) ctx.int64(v, 0) else ctx.string(v, "").length.toLong()
            return System.nanoTime() - t0
        }
        val warm = System.nanoTime() + 300_000_000
        while (System.nanoTime() < warm) pass()
        val samples = ArrayList<Double>()
        val end = System.nanoTime() + 1_000_000_000
        while (System.nanoTime() < end || samples.size < 5) samples += pass().toDouble() / prepared.size
        samples.sort()
        if (sink == 42L) println() // keeps the passes from being optimised away
        return samples[samples.size / 2]
    }

    private fun parse(args: Array<String>): Map<String, String> {
        val names = setOf("config", "contexts", "now-ms", "out", "timing")
        val m = HashMap<String, String>()
        var i = 0
        while (i < args.size) {
            val a = args[i]
            require(a.startsWith("--") && a.removePrefix("--") in names && i + 1 < args.size) {
                "usage: Runner --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS --out DECISIONS.jsonl --timing TIMING.json (bad argument $a)"
            }
            m[a.removePrefix("--")] = args[i + 1]
            i += 2
        }
        val missing = names - m.keys
        require(missing.isEmpty()) { "missing ${missing.joinToString { "--$it" }}" }
        return m
    }
}
