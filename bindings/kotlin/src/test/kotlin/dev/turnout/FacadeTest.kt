package dev.turnout

import dev.turnout.tools.Json
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File

/** The facade's own behaviour: builders, options, handles, tracking, batches. */
class FacadeTest {
    private val example = File(Json.repoRoot(), "examples/configs/example.json").readBytes()

    @Test
    fun `facets builder keeps order, replaces, removes, encodes exactly`() {
        val f = Facets().passenger(9_007_199_254_740_993).city(6).booking("ADR-\"1\"\n").set("score", 0.25).set("vip", true)
        assertEquals(listOf("pax", "city", "booking", "score", "vip"), f.toMap().keys.toList())
        assertEquals(
            """{"pax":9007199254740993,"city":6,"booking":"ADR-\"1\"\u000a","score":0.25,"vip":true}""",
            String(f.toJson()),
        )
        f.city(10)
        assertEquals(10L, f["city"])
        assertTrue(f.remove("score"))
        assertFalse(f.remove("score"))
        assertEquals(4, f.size)
        assertEquals(f, f.copy())
        assertEquals(Facets().set("name", "Zürich 中文 😀").toMap(), Facets.of(mapOf("name" to "Zürich 中文 😀", "absent" to null)).toMap())
        assertEquals("""{"name":"Zürich 中文 😀","n":-9223372036854775808}""", String(Facets().set("name", "Zürich 中文 😀").set("n", Long.MIN_VALUE).toJson()))
        // Every well-known name, as the native library reads it back.
        val all =
            Facets().passenger(1).driver(2).service(3).city(4).country("SG").booking("B").location("w21z")
                .session("s").request("r").device("d").tag("t").ts(1_700_000_000)
        Turnout.emptyClient().use { c ->
            c.context(all).use { ctx ->
                val want = """{"pax":1,"drv":2,"svc":3,"city":4,"country":"SG","booking":"B","loc":"w21z","session":"s","req":"r","device":"d","tag":"t","ts":1700000000}"""
                assertTrue(Json.same(Json.parse(want), Json.parse(ctx.facetsJson)), ctx.facetsJson)
            }
        }
    }

    @Test
    fun `ids above 2^53 bucket exactly on both paths`() {
        Turnout.client(example).use { c ->
            val v = c.variable("automatedMessageDelay")
            // 2^53 + 1 and 2^53 + 2 are one double apart but different longs.
            for (pax in listOf(9_007_199_254_740_993L, 9_007_199_254_740_994L, Long.MAX_VALUE)) {
                val f = Facets().city(10).passenger(pax)
                val expected = c.explain("automatedMessageDelay", f).decision
                assertEquals(expected.valueJson, c.getVariable("automatedMessageDelay", f).int64(0).toString())
                c.context(f).use { assertEquals(expected.valueJson, it.int64(v, 0).toString()) }
            }
        }
    }

    @Test
    fun `options reach the engine`() {
        val o = ClientOptions(service = "booking", decisionEvents = DecisionEvents.EXPERIMENTS, excludeFacets = listOf("device"), fixedTimeMs = 42)
        assertEquals(
            """{"service":"booking","decisionEvents":"experiments","excludeFacets":["device"],"sdk":"turnout-kotlin","sdkVersion":"${ClientOptions.SDK_VERSION}","platform":"jvm","fixedTimeMs":42}""",
            o.toJson(),
        )
        Turnout.client(example, ClientOptions(service = "booking", excludeFacets = listOf("device"), clientId = "c-1")).use { c ->
            c.track("fare", 12.5, Facets().passenger(1).device("secret"))
            val batch = c.takeBatch()!!
            val json = Json.parse(Turnout.decodeBatchJson(batch.bytes)).asJsonObject
            assertEquals("c-1", json.getAsJsonObject("header")["clientId"].asString)
            assertEquals("turnout-kotlin", json.getAsJsonObject("header")["sdk"].asString)
            assertEquals("jvm", json.getAsJsonObject("header")["platform"].asString)
            val event = json.getAsJsonArray("events").single().asJsonObject
            assertEquals("booking.fare", event["name"].asString)
            assertFalse(event.getAsJsonObject("facets").has("device"), "excluded facet not recorded")
        }
    }

    @Test
    fun `variables are cached per name and survive updates`() {
        Turnout.client(example).use { c ->
            assertSame(c.variable("automatedMessageDelay"), c.variable("automatedMessageDelay"))
            val v = c.variable("automatedMessageDelay")
            c.context(Facets().city(6).service(302)).use { ctx ->
                assertEquals(60, ctx.int64(v, 0))
                val report = c.updateConfig("""{"variable": "automatedMessageDelay", "rollouts": [], "default": 45}""".toByteArray())
                assertTrue(report.hasChanges)
                assertTrue(report.removed.contains("rewardsFlow"), "$report")
                assertEquals(45, ctx.int64(v, 0), "the same handles answer from the new config")
            }
            v.close() // owned by the client: a no-op
            assertEquals(45, c.getVariable("automatedMessageDelay", Facets()).int64(0))
        }
    }

    @Test
    fun `decisions, explanations, experiments and the clock`() {
        Turnout.client(example, ClientOptions(fixedTimeMs = 1_528_733_748_000)).use { c ->
            val d = c.getVariable("automatedMessageDelay", Facets().city(6).service(302)).decision()
            assertEquals(Decision("automatedMessageDelay", "60", "60s delay", Source.ROLLOUT, null, 0, null, Reason.TARGETING_MATCH, null), d)
            assertEquals("60", c.getVariable("automatedMessageDelay", Facets().city(6).service(302)).json())
            val e = c.explain("automatedMessageDelay", Facets().city(6).service(302))
            assertEquals(d, e.decision)
            assertTrue(e.steps.isNotEmpty())
            val exp = c.getVariables("checkout.buttonColorTest", Facets().country("SG").passenger(7))
            assertTrue(exp.all { it.experiment == null || it.experiment == "checkout.buttonColorTest" }, "$exp")
            assertEquals(setOf("checkoutButtonColor", "checkoutCopy"), exp.map { it.variable }.toSet())
            assertNotNull(c.configVersion)
            assertTrue(c.variableNames.contains("rewardsFlow"))
        }
    }

    @Test
    fun `the fixed clock supplies ts when it is absent`() {
        val promo = """{"variable": "promo", "rollouts": [{"value": true, "constraints":
            [{"target": "ts", "op": ">", "value": 1600000000}]}], "default": false}"""
        Turnout.client(promo, ClientOptions(fixedTimeMs = 1_528_733_748_000)).use { c ->
            val v = c.variable("promo")
            c.context(Facets()).use { ctx ->
                assertFalse(ctx.bool(v, true))
                c.setTimeMs(1_700_000_000_000)
                assertTrue(ctx.bool(v, false))
                assertFalse(c.getVariable("promo", Facets().ts(1_500_000_000)).bool(true), "an explicit ts wins")
            }
        }
    }

    @Test
    fun `batches - take, nack gives the same bytes back, ack forgets`() {
        Turnout.client(example).use { c ->
            assertNull(c.takeBatch())
            c.context(Facets().city(6).service(302).passenger(1)).use { ctx ->
                val v = c.variable("automatedMessageDelay")
                repeat(3) { ctx.int64(v, 0) }
                ctx.track("pickupSeconds", 42.0)
            }
            val b = c.takeBatch()!!
            assertEquals(2L, b.events, "three decisions folded into one event, plus the track")
            assertEquals(1L, c.trackingStats.inFlight)
            assertTrue(c.nack(b.seq))
            val again = c.takeBatch()!!
            assertEquals(b.seq, again.seq)
            assertTrue(b.bytes.contentEquals(again.bytes))
            assertTrue(c.ack(again.seq))
            assertFalse(c.ack(again.seq), "unknown after ack")
            val stats = c.trackingStats
            assertEquals(4L, stats.recorded)
            assertEquals(2L, stats.folded)
            assertEquals(0L, stats.inFlight)
            val events = Json.parse(Turnout.decodeBatchJson(b.bytes)).asJsonObject.getAsJsonArray("events")
            assertEquals(3, events[0].asJsonObject["count"].asInt)
        }
    }

    @Test
    fun `versions and the fast path`() {
        assertEquals(1, Turnout.specVersion)
        assertTrue(Turnout.libraryVersion.isNotBlank())
        assertEquals(if (System.getProperty("turnout.jni") == "false") "uniffi" else "jni", Turnout.fastPath)
    }

    @Test
    fun `the native library comes from the classpath, as in the published jar`() {
        // No jna.library.path: the library is the resource /<jna-prefix>/libturnout_ffi.so,
        // extracted once, and JNA (and the JNI fast path) loaded that file.
        assertNull(System.getProperty("jna.library.path"))
        val file = dev.turnout.internal.NativeLoader.extracted
        assertNotNull(file, "${dev.turnout.internal.NativeLoader.resource} not extracted")
        assertTrue(file!!.isFile)
        assertEquals(file, com.sun.jna.NativeLibrary.getInstance(dev.turnout.internal.NativeLoader.NAME).file)
    }
}
