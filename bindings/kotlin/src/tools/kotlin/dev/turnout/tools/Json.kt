package dev.turnout.tools

import com.google.gson.JsonElement
import com.google.gson.JsonNull
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import com.google.gson.JsonPrimitive
import dev.turnout.Decision
import dev.turnout.Facets
import java.io.File
import java.math.BigDecimal

/** JSON helpers shared by the tests, the demo runner and the benchmarks (Gson; never in the library). */
object Json {
    /** The repository root (system property `turnout.repo.root`, set by Maven and xtask; else the working directory). */
    @JvmStatic
    fun repoRoot(): File = File(System.getProperty("turnout.repo.root") ?: ".").canonicalFile

    @JvmStatic
    fun parse(text: String): JsonElement = JsonParser.parseString(text)

    @JvmStatic
    fun read(file: File): JsonElement = parse(file.readText())

    /**
     * Facets from the vectors' JSON object: strings, numbers (integers exactly
     * as `Long`, anything with a fraction or exponent as `Double`), booleans,
     * `{"$int64": "..."}`; `null` means absent.
     */
    @JvmStatic
    fun facets(obj: JsonObject): Facets {
        val f = Facets()
        for ((k, v) in obj.entrySet()) {
            when {
                v.isJsonNull -> {}
                v.isJsonObject -> f.set(k, v.asJsonObject.get("\$int64").asString.toLong())
                v.asJsonPrimitive.isBoolean -> f.set(k, v.asBoolean)
                v.asJsonPrimitive.isString -> f.set(k, v.asString)
                else -> {
                    val text = v.asString
                    if (text.any { it == '.' || it == 'e' || it == 'E' }) f.set(k, text.toDouble()) else f.set(k, text.toLong())
                }
            }
        }
        return f
    }

    /** A decision as the contract's JSON object (`turnout eval`'s keys). */
    @JvmStatic
    fun decision(d: Decision): JsonObject {
        val o = JsonObject()
        o.addProperty("variable", d.variable)
        o.add("value", d.valueJson?.let(::parse) ?: JsonNull.INSTANCE)
        o.add("source", JsonPrimitive(d.source.wire))
        o.add("experiment", d.experiment?.let(::JsonPrimitive) ?: JsonNull.INSTANCE)
        o.add("rule", d.rule?.let(::JsonPrimitive) ?: JsonNull.INSTANCE)
        o.add("choice", d.choice?.let(::JsonPrimitive) ?: JsonNull.INSTANCE)
        o.add("reason", JsonPrimitive(d.reason.name))
        o.add("errorCode", d.errorCode?.let { JsonPrimitive(it.name) } ?: JsonNull.INSTANCE)
        return o
    }

    /** JSON equality with numbers compared by value (`1.0` equals `1`). */
    @JvmStatic
    fun same(a: JsonElement?, b: JsonElement?): Boolean {
        val x = a ?: JsonNull.INSTANCE
        val y = b ?: JsonNull.INSTANCE
        return when {
            x.isJsonNull || y.isJsonNull -> x.isJsonNull && y.isJsonNull
            x.isJsonObject && y.isJsonObject -> {
                val p = x.asJsonObject
                val q = y.asJsonObject
                p.keySet() == q.keySet() && p.keySet().all { same(p[it], q[it]) }
            }
            x.isJsonArray && y.isJsonArray -> {
                val p = x.asJsonArray
                val q = y.asJsonArray
                p.size() == q.size() && (0 until p.size()).all { same(p[it], q[it]) }
            }
            x.isJsonPrimitive && y.isJsonPrimitive -> {
                val p = x.asJsonPrimitive
                val q = y.asJsonPrimitive
                if (p.isNumber && q.isNumber) BigDecimal(p.asString).compareTo(BigDecimal(q.asString)) == 0 else p == q
            }
            else -> false
        }
    }
}
