package dev.turnout

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Bad input from the host gives a typed exception (or the caller's default), never a crash. */
class BadInputTest {
    private val config = """{"variable": "delay", "rollouts": [{"value": 60, "constraints":
        [{"target": "city", "op": "=", "value": 6}]}], "default": 30}"""

    @Test
    fun `malformed configs are rejected with every problem, the previous config stays`() {
        val e = assertThrows<TurnoutException.Config> { Turnout.client("{not json") }
        assertTrue(e.message!!.isNotBlank())
        Turnout.client(config).use { client ->
            val bad = assertThrows<TurnoutException.Config> { client.updateConfig("""{"variable": "delay", "rollouts": 5}""".toByteArray()) }
            assertTrue(bad.message!!.contains("rollouts"), bad.message)
            assertEquals("INVALID_CONFIG", bad.code)
            assertEquals(listOf("rollouts"), bad.problems.map { it.field }, "${bad.problems}")
            assertThrows<TurnoutException.Config> { client.validate(byteArrayOf(0xFF.toByte(), 0x00)) }
            assertEquals(60, client.getVariable("delay", Facets().city(6)).int64(0), "the previous config is in force")
        }
    }

    @Test
    fun `a rejected document in an accepted bundle is reported structured`() {
        val good = """{"schema": 1, "rollouts": [{"variable": "a", "rollouts": [], "default": 1},
            {"variable": "b", "rollouts": [], "default": 2}]}"""
        val bad = """{"schema": 1, "rollouts": [{"variable": "a", "rollouts": [], "default": 10},
            {"variable": "b", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "~~", "value": 1}]}], "default": 20}]}"""
        Turnout.client(good).use { client ->
            val r = client.updateConfig(bad.toByteArray()).rejected.single()
            assertTrue(r.keptLastGood && !r.killSwitch, "$r")
            val p = r.problems.single()
            assertEquals(Pair("rollout \"b\"", "rollouts[0].constraints[0].op"), Pair(p.document, p.field), "$p")
            assertEquals("$p (last good version kept)", r.toString())
        }
    }

    @Test
    fun `wrong types answer the caller's default with TYPE_MISMATCH`() {
        Turnout.client(config).use { client ->
            val facets = Facets().city(6)
            assertEquals("dflt", client.getVariable("delay", facets).string("dflt"))
            assertEquals(true, client.getVariable("delay", facets).bool(true))
            assertEquals(60.0, client.getVariable("delay", facets).float64(0.0), "an integer is a number")
            client.context(facets).use { ctx ->
                val v = client.variable("delay")
                assertEquals("dflt", ctx.string(v, "dflt"))
                assertEquals(false, ctx.bool(v, false))
                assertEquals(-1, ctx.int64(client.variable("missing"), -1))
                val d = ctx.decision(client.variable("missing"))
                assertEquals(Source.FALLBACK, d.source)
                assertEquals(ErrorCode.FLAG_NOT_FOUND, d.errorCode)
            }
        }
    }

    @Test
    fun `bad facets and options are typed errors`() {
        assertThrows<TurnoutException.Facets> { Facets().set("score", Double.NaN) }
        assertThrows<TurnoutException.Facets> { Facets().set("score", Double.POSITIVE_INFINITY) }
        assertThrows<TurnoutException.Facets> { Facets.of(mapOf("list" to listOf(1, 2))) }
        assertThrows<TurnoutException.Facets> { Facets.of(mapOf("big" to java.math.BigInteger.TWO.pow(64))) }
        val o = assertThrows<TurnoutException.Options> { Turnout.client(config, ClientOptions(maxQueue = 0)) }
        assertTrue(o.message!!.contains("maxQueue"), o.message)
        Turnout.client(config).use { client ->
            assertEquals("NO_FIXED_CLOCK", assertThrows<TurnoutException.State> { client.setTimeMs(1) }.code)
            assertThrows<IllegalArgumentException> { client.takeBatch(0) }
        }
        assertEquals("NOT_A_BATCH", assertThrows<TurnoutException.Batch> { Turnout.decodeBatchJson(byteArrayOf(1, 2, 3)) }.code)
        assertEquals("INVALID_BATCH", assertThrows<TurnoutException.Batch> { Turnout.encodeBatchJson("""{"header": {}}""") }.code)
    }

    @Test
    fun `closed handles throw Closed`() {
        val client = Turnout.client(config)
        val v = client.variable("delay")
        val ctx = client.context(Facets().city(6))
        val value = client.getVariable("delay", Facets().city(6))
        ctx.close()
        ctx.close() // idempotent
        assertThrows<TurnoutException.Closed> { ctx.int64(v, 0) }
        assertThrows<TurnoutException.Closed> { ctx.decision(v) }
        val other = client.context(Facets().city(6))
        assertEquals(60, other.int64(v, 0))
        client.close()
        assertThrows<TurnoutException.Closed> { client.variable("delay") }
        assertThrows<TurnoutException.Closed> { client.context(Facets()) }
        assertThrows<TurnoutException.Closed> { value.int64(0) }
        assertThrows<TurnoutException.Closed> { client.takeBatch() }
        val closed = assertThrows<TurnoutException.Closed> { other.int64(v, 0) }
        assertTrue(closed.what.startsWith("variable"), "the cached variable was released with its client: ${closed.what}")
        assertEquals("{\"city\":6}", other.facetsJson, "a context outlives its client")
        other.close()
        client.close() // idempotent
    }
}
