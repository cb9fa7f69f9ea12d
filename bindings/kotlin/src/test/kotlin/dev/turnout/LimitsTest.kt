package dev.turnout

import dev.turnout.tools.Json
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File

/**
 * The limits on hostile input (docs/spec.md, section 17): each is a [TurnoutException.Limit]
 * naming the limit (or, for facets, the caller's default with [ErrorCode.INVALID_CONTEXT]); the
 * previous config stays in force and nothing costs more than its input's size. Run with and
 * without the JNI fast path (the POM's `generated-bindings-only` execution).
 */
class LimitsTest {
    private val seed = File(Json.repoRoot(), "examples/configs/seed-rollout.json").readBytes()
    private val example = File(Json.repoRoot(), "examples/configs/example.json").readBytes()
    private val delay = "automatedMessageDelay"

    private fun limit(e: TurnoutException.Limit, name: String) {
        assertTrue(e.message!!.contains(Regex("limit `$name` exceeded: found \\d+, the maximum is \\d+")), e.message)
        assertEquals(name, e.limit)
        assertTrue(e.found!! > e.maximum!!, "${e.found} > ${e.maximum}")
    }

    private fun stillSeed(client: Client) =
        assertEquals(60, client.getVariable(delay, Facets().city(6).service(302)).int64(0), "the previous config is in force")

    /** One segment of 1,000 constraints referenced 10,000 times: 10,000,000 constraints from ~80 KB. */
    private fun blowUpBundle(): ByteArray {
        val constraints = (0 until 1000).joinToString(",") { """{"target":"city","op":"=","value":$it}""" }
        val refs = List(10000) { "\"s\"" }.joinToString(",")
        return """{"schema": 1, "version": 2, "segments": {"s": {"constraints": [$constraints]}},
            "rollouts": [{"variable": "blowUp", "rollouts": [{"value": 1, "segments": [$refs]}], "default": 0}]}"""
            .toByteArray()
    }

    private fun bigFacets(n: Int): Facets {
        val f = Facets().city(6).service(302)
        for (i in 0 until n) f.set("f$i", i.toLong())
        return f
    }

    @Test
    fun `a config over maxConfigBytes is a Limit error, the previous config stays`() {
        limit(assertThrows<TurnoutException.Limit> { Turnout.client(example, ClientOptions(maxConfigBytes = 1000)) }, "config_bytes")
        Turnout.client(seed, ClientOptions(maxConfigBytes = 1000)).use { client ->
            val e = assertThrows<TurnoutException.Limit> { client.updateConfig(example) }
            limit(e, "config_bytes")
            assertTrue(e.message!!.contains("found ${example.size}, the maximum is 1000"), e.message)
            limit(assertThrows<TurnoutException.Limit> { client.validate(example) }, "config_bytes")
            stillSeed(client)
        }
        assertThrows<TurnoutException.Options> { Turnout.client(seed, ClientOptions(maxConfigBytes = 0)) }
    }

    @Test
    fun `a segment referenced 10,000 times is a Limit error`() {
        val bundle = blowUpBundle()
        Turnout.client(seed).use { client ->
            limit(assertThrows<TurnoutException.Limit> { client.updateConfig(bundle) }, "expanded_constraints")
            limit(assertThrows<TurnoutException.Limit> { client.validate(bundle) }, "expanded_constraints")
            limit(assertThrows<TurnoutException.Limit> { Turnout.client(bundle) }, "expanded_constraints")
            stillSeed(client)
            assertEquals(-1, client.getVariable("blowUp", Facets()).int64(-1))
        }
    }

    @Test
    fun `a config of 100 nested arrays is a Limit error`() {
        Turnout.client(seed).use { client ->
            val deep = "[".repeat(100) + "]".repeat(100)
            limit(assertThrows<TurnoutException.Limit> { client.updateConfig(deep.toByteArray()) }, "json_depth")
            stillSeed(client)
        }
    }

    @Test
    fun `facets over a limit answer the default with INVALID_CONTEXT`() {
        Turnout.client(seed).use { client ->
            val v = client.variable(delay)
            val cases =
                mapOf(
                    "2,000 facets" to bigFacets(2000),
                    "a 10,000-byte value" to Facets().city(6).service(302).set("note", "x".repeat(10000)),
                )
            for ((what, facets) in cases) {
                val d = client.getVariable(delay, facets).decision()
                assertEquals(Reason.ERROR, d.reason, what)
                assertEquals(ErrorCode.INVALID_CONTEXT, d.errorCode, what)
                assertNull(d.valueJson, what)
                assertEquals(-7, client.getVariable(delay, facets).int64(-7), what)
                assertEquals("d", client.getVariable(delay, facets).string("d"), what)
                assertEquals(-7.5, client.getVariable(delay, facets).float64(-7.5), what)
                client.context(facets).use { ctx ->
                    assertEquals(-7, ctx.int64(v, -7), what)
                    assertEquals("d", ctx.string(v, "d"), what)
                    assertEquals(ErrorCode.INVALID_CONTEXT, ctx.decision(v).errorCode, what)
                }
                assertEquals(ErrorCode.INVALID_CONTEXT, client.explain(delay, facets).decision.errorCode, what)
                client.track("m", 1.0, facets) // recorded or not, never an error
                stillSeed(client)
            }
            // At the limits: accepted.
            val atLimit = bigFacets(1024 - 3).set("note", "x".repeat(8 shl 10))
            assertEquals(60, client.getVariable(delay, atLimit).int64(0))
        }
    }

    @Test
    fun `a batch that decodes beyond its limit is a Limit error`() {
        // One 1,000-facet set shared by 200 events: ~10 KB on the wire, ~3 MB once every
        // event's copy of the set is counted (the budget: ~1.4 MB).
        val facets = (0 until 1000).joinToString(",", "{", "}") { "\"f$it\":$it" }
        val events =
            (0 until 200).joinToString(",") {
                """{"kind": "track", "name": "m", "service": "s", "time": ${1700000000000 + it}, "count": 1, "value": 1, "facets": $facets}"""
            }
        val json =
            """{"header": {"clientId": "limits", "seq": 1, "createdAtMs": 1700000000000, "sdk": "kotlin-test",
            "sdkVersion": "1", "platform": "jvm", "dropped": 0, "foldOverflow": 0}, "events": [$events]}"""
        val bytes = Turnout.encodeBatchJson(json)
        assertTrue(bytes.size < 100 shl 10, "${bytes.size} bytes")
        limit(assertThrows<TurnoutException.Limit> { Turnout.decodeBatchJson(bytes) }, "decode_expansion")
    }
}
