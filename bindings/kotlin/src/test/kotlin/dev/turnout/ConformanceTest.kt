package dev.turnout

import com.google.gson.GsonBuilder
import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonNull
import com.google.gson.JsonObject
import com.google.gson.JsonPrimitive
import dev.turnout.ffi.SyncAction
import dev.turnout.ffi.SyncActionKind
import dev.turnout.ffi.SyncMachine
import dev.turnout.tools.Json
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory
import org.junit.jupiter.api.TestInstance
import java.io.File
import java.math.BigDecimal
import java.math.BigInteger
import dev.turnout.ffi.Client as FfiClient

/**
 * Every conformance vector (tests/conformance/index.json, never a hard-coded
 * list): each decision case through the one-shot path
 * (`client.getVariable(name, facets)`) and the prepared path (`Context` x
 * `Variable`), full decision and the typed getter of the value's type; the
 * batch vectors encoded and decoded; the sync scripts through the UniFFI
 * `SyncMachine` (docs/sync.md section 10). A file of a kind this runner does
 * not know is reported as not run, not failed. Writes target/conformance/kotlin.json.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConformanceTest {
    private val root = Json.repoRoot()
    private val dir = File(root, "tests/conformance")
    private val results = LinkedHashMap<String, IntArray>()

    @TestFactory
    fun vectors(): List<DynamicTest> {
        val index = Json.read(File(dir, "index.json")).asJsonObject
        val files = index.getAsJsonArray("files").map { it.asJsonObject }
        assertTrue(files.size >= 7, "index.json lists ${files.size} files")
        return files.map { entry ->
            val path = entry["path"].asString
            DynamicTest.dynamicTest(path) {
                val file = Json.read(File(dir, path)).asJsonObject
                val failures =
                    when (val kind = entry["kind"].asString) {
                        "decisions" -> decisions(path, file)
                        "batches" -> batches(path, file)
                        "sync" -> sync(path, file)
                        else -> {
                            println("$path: kind $kind is not known to this runner: not run")
                            return@dynamicTest
                        }
                    }
                val (passed, failed) = results.getValue(path)
                println("$path: $passed passed, $failed failed")
                assertTrue(failures.isEmpty(), "$path: $failed failed, first: ${failures.take(5).joinToString("\n")}")
                if (entry.has("cases")) assertEquals(entry["cases"].asInt, passed, "$path: cases run")
            }
        }
    }

    private fun decisions(path: String, file: JsonObject): List<String> {
        val failures = ArrayList<String>()
        var passed = 0
        val fileNow = file["nowMs"].asLong
        val config = file["config"].toString().toByteArray()
        Turnout.client(config, ClientOptions(fixedTimeMs = fileNow)).use { client ->
            for ((i, c) in file.getAsJsonArray("cases").map { it.asJsonObject }.withIndex()) {
                client.setTimeMs(c["nowMs"]?.asLong ?: fileNow)
                val name = c["variable"].asString
                val facets = Json.facets(c.getAsJsonObject("facets"))
                val expected = c.getAsJsonObject("expected")
                val problems = ArrayList<String>()
                val oneShot = client.getVariable(name, facets)
                check(problems, "one-shot decision", expected, Json.decision(oneShot.decision()))
                typed(problems, "one-shot", expected) { t, d -> oneShot.get(t, d) }
                client.context(facets).use { ctx ->
                    val v = client.variable(name)
                    check(problems, "prepared decision", expected, Json.decision(ctx.decision(v)))
                    typed(problems, "prepared", expected) { t, d -> ctx.get(v, t, d) }
                }
                if (problems.isEmpty()) passed++ else failures += "case $i ($name, facets $facets): ${problems.joinToString("; ")}"
            }
        }
        results[path] = intArrayOf(passed, failures.size)
        return failures
    }

    private fun check(problems: MutableList<String>, what: String, expected: JsonObject, got: JsonObject) {
        for (k in listOf("value", "source", "experiment", "rule", "choice", "reason", "errorCode")) {
            if (!Json.same(expected[k], got[k])) problems += "$what: $k expected ${expected[k]} got ${got[k]}"
        }
    }

    /** The typed getter of the expected value's type answers it (the caller's default on fallback). */
    private fun typed(problems: MutableList<String>, what: String, expected: JsonObject, get: (String, Any) -> Any) {
        val v = expected["value"]
        val (type, default, want) =
            when {
                v == null || v.isJsonNull -> Triple("int64", SENTINEL, SENTINEL)
                v.isJsonPrimitive && v.asJsonPrimitive.isBoolean -> Triple("bool", !v.asBoolean, v.asBoolean)
                v.isJsonPrimitive && v.asJsonPrimitive.isString -> Triple("string", "\u0000default", v.asString)
                v.isJsonPrimitive && v.asJsonPrimitive.isNumber -> {
                    val n = BigDecimal(v.asString)
                    if (n.stripTrailingZeros().scale() <= 0 && n.abs() <= BigDecimal(Long.MAX_VALUE)) {
                        Triple("int64", SENTINEL, n.toLong())
                    } else {
                        Triple("float64", Double.NaN, n.toDouble())
                    }
                }
                else -> return // objects and arrays: compared through the decision
            }
        val got = get(type, default)
        if (got != want) problems += "$what $type: expected $want got $got"
    }

    private fun Value.get(type: String, default: Any): Any =
        when (type) {
            "int64" -> int64(default as Long)
            "float64" -> float64(default as Double)
            "bool" -> bool(default as Boolean)
            else -> string(default as String)
        }

    private fun Context.get(v: Variable, type: String, default: Any): Any =
        when (type) {
            "int64" -> int64(v, default as Long)
            "float64" -> float64(v, default as Double)
            "bool" -> bool(v, default as Boolean)
            else -> string(v, default as String)
        }

    private fun batches(path: String, file: JsonObject): List<String> {
        val failures = ArrayList<String>()
        var passed = 0
        for (c in file.getAsJsonArray("cases").map { it.asJsonObject }) {
            val name = c["name"].asString
            val json = JsonObject().apply {
                add("header", c["header"])
                add("events", c["events"])
            }
            val bytes = Turnout.encodeBatchJson(json.toString())
            val hex = bytes.joinToString("") { "%02x".format(it) }
            val decodedText = Turnout.decodeBatchJson(unhex(c["hex"].asString))
            val decoded = Json.parse(decodedText).asJsonObject
            when {
                hex != c["hex"].asString -> failures += "$name: encoded bytes differ"
                !Json.same(decoded["header"], c["header"]) -> failures += "$name: decoded header ${decoded["header"]}"
                // The decoder writes exact integers as JSON numbers; the vectors use {"$int64": ...} and
                // carry valueText (checked by the re-encoding below).
                !Json.same(decoded["events"], plain(c["events"])) -> failures += "$name: decoded events differ"
                !Turnout.encodeBatchJson(decodedText).contentEquals(bytes) -> failures += "$name: decode + encode differ"
                else -> passed++
            }
        }
        for (c in file.getAsJsonArray("invalid").map { it.asJsonObject }) {
            val name = c["name"].asString
            val want = c["error"].asString
            try {
                Turnout.decodeBatchJson(unhex(c["hex"].asString))
                failures += "$name: accepted, expected $want"
            } catch (e: TurnoutException.Batch) {
                val kind = KINDS[e.code]
                if (kind == want) passed++ else failures += "$name: expected $want, got ${e.code}: `${e.message}`"
            }
        }
        results[path] = intArrayOf(passed, failures.size)
        return failures
    }

    /** The sync scripts through the UniFFI `SyncMachine`: one case per script. */
    private fun sync(path: String, file: JsonObject): List<String> {
        val scripts = file.getAsJsonArray("scripts").map { it.asJsonObject }
        val failures =
            scripts.mapNotNull { s ->
                try {
                    syncScript(s)
                } catch (e: Exception) {
                    "${s["name"].asString}: $e"
                }
            }
        results[path] = intArrayOf(scripts.size - failures.size, failures.size)
        return failures
    }

    /** Runs one script as docs/sync.md section 10 says; the first mismatch, or null. */
    private fun syncScript(s: JsonObject): String? {
        val name = s["name"].asString
        val clientOptions = s.getAsJsonObject("clientOptions")
        val fixed = clientOptions["fixedTimeMs"]?.asLong
        FfiClient.empty(clientOptions.toString()).use { client ->
            if (!s["bootstrap"].isJsonNull) client.updateConfig(s["bootstrap"].toString().toByteArray())
            SyncMachine(client, s["options"].toString()).use { sync ->
                for ((i, step) in s.getAsJsonArray("steps").map { it.asJsonObject }.withIndex()) {
                    val at = step["at"].asLong
                    if (fixed != null) client.setTimeMs(fixed + at)
                    val (op, want) = step.entrySet().first { it.key != "at" }.let { it.key to it.value }
                    val w = if (want.isJsonObject) want.asJsonObject else JsonObject()
                    val now = at.toULong()
                    val got: JsonElement? =
                        when (op) {
                            "next" -> action(sync.next(now))
                            "notices" -> Json.parse(sync.takeNoticesJson())
                            "state" -> {
                                val state = Json.parse(sync.stateJson()).asJsonObject
                                JsonObject().apply { w.keySet().forEach { add(it, state[it] ?: JsonNull.INSTANCE) } }
                            }
                            "fetched" -> {
                                val body = w.opt("body")?.toString() ?: w.str("bodyText") ?: ""
                                val status = (w.opt("status")?.asInt ?: 0).toUShort()
                                sync.onFetch(now, status, w.str("etag"), w.str("retryAfter"), body.toByteArray(), w.str("failure"), w.str("message") ?: "")
                                null
                            }
                            "uploaded" -> {
                                val status = (w.opt("status")?.asInt ?: 0).toUShort()
                                sync.onUpload(now, w["seq"].asLong.toULong(), status, w.str("retryAfter"), w.str("failure"), w.str("message") ?: "")
                                null
                            }
                            "track" -> {
                                client.track(w.str("name") ?: "event", w.opt("value")?.asDouble ?: 1.0, emptyMap())
                                null
                            }
                            "pollNow" -> null.also { sync.pollNow() }
                            "flushNow" -> null.also { sync.flushNow() }
                            "stop" -> null.also { sync.stop(w.opt("flush")?.asBoolean ?: true) }
                            else -> return "$name: step $i: unknown operation $op"
                        }
                    if (got != null && !Json.same(want, got)) return "$name: step $i: $op: expected $want, got $got"
                }
            }
        }
        return null
    }

    /** A `SyncAction` in the vectors' JSON form (upload bytes left out). */
    private fun action(a: SyncAction): JsonObject =
        JsonObject().apply {
            fun str(v: String?): JsonElement = v?.let(::JsonPrimitive) ?: JsonNull.INSTANCE
            addProperty("action", a.kind.name.lowercase())
            when (a.kind) {
                SyncActionKind.FETCH -> {
                    add("url", str(a.url))
                    add("etag", str(a.etag))
                    addProperty("timeoutMs", a.timeoutMs.toLong())
                    addProperty("maxBytes", a.maxBytes.toLong())
                }
                SyncActionKind.UPLOAD -> {
                    add("url", str(a.url))
                    addProperty("seq", a.seq.toLong())
                    addProperty("events", a.events.toLong())
                    addProperty("timeoutMs", a.timeoutMs.toLong())
                }
                SyncActionKind.WAIT -> addProperty("ms", a.waitMs.toLong())
                SyncActionKind.STOP -> {}
            }
        }

    private fun JsonObject.opt(key: String): JsonElement? = get(key)?.takeUnless { it.isJsonNull }

    private fun JsonObject.str(key: String): String? = opt(key)?.asString

    @AfterAll
    fun writeResults() {
        // The generated-bindings-only run (turnout.jni=false) checks the same vectors but does not report.
        if (Turnout.fastPath != "jni" || results.isEmpty()) return
        val files = JsonObject()
        for ((k, v) in results) {
            files.add(k, JsonObject().apply {
                addProperty("passed", v[0])
                addProperty("failed", v[1])
            })
        }
        val out = JsonObject().apply {
            addProperty("platform", "kotlin")
            add("files", files)
        }
        val f = File(root, "target/conformance/kotlin.json")
        f.parentFile.mkdirs()
        f.writeText(GsonBuilder().setPrettyPrinting().create().toJson(out) + "\n")
    }

    private companion object {
        const val SENTINEL = Long.MIN_VALUE + 7
        val KINDS =
            mapOf("BATCH_CHECKSUM" to "checksum", "NOT_A_BATCH" to "not-a-batch", "BATCH_VERSION" to "version", "BATCH_MALFORMED" to "malformed")

        /** The vectors' JSON with `{"$int64": "N"}` as the number N and without `valueText`. */
        fun plain(e: JsonElement): JsonElement =
            when {
                e.isJsonArray -> JsonArray().apply { e.asJsonArray.forEach { add(plain(it)) } }
                e.isJsonObject && e.asJsonObject.has("\$int64") -> JsonPrimitive(BigInteger(e.asJsonObject["\$int64"].asString))
                e.isJsonObject ->
                    JsonObject().apply {
                        for ((k, v) in e.asJsonObject.entrySet()) if (k != "valueText") add(k, plain(v))
                    }
                else -> e
            }

        fun unhex(s: String) = ByteArray(s.length / 2) { s.substring(it * 2, it * 2 + 2).toInt(16).toByte() }
    }
}
