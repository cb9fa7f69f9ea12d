package dev.turnout

import com.sun.net.httpserver.HttpServer
import dev.turnout.tools.Json
import dev.turnout.tools.Runner
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.net.InetSocketAddress
import java.util.concurrent.CopyOnWriteArrayList

/** The example (examples/kotlin) and the demo runner, run for real. */
class ToolsTest {
    private val root = Json.repoRoot()

    @Test
    fun `the example delivers its decisions and track to a collector`() {
        val bodies = CopyOnWriteArrayList<ByteArray>()
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/events") { ex ->
            bodies += ex.requestBody.use { it.readBytes() }
            ex.sendResponseHeaders(200, -1)
            ex.close()
        }
        server.start()
        try {
            val url = "http://127.0.0.1:${server.address.port}/events"
            val code = dev.turnout.example.run(arrayOf(url, File(root, "examples/configs/example.json").path))
            assertEquals(0, code)
            val events = bodies.flatMap { Json.parse(Turnout.decodeBatchJson(it)).asJsonObject.getAsJsonArray("events").map { e -> e.asJsonObject } }
            assertTrue(events.any { it["kind"].asString == "decision" && it["name"].asString == "automatedMessageDelay" }, "$events")
            assertEquals("booking.pickupSeconds", events.single { it["kind"].asString == "track" }["name"].asString)
            assertEquals(2, dev.turnout.example.run(emptyArray()), "usage")
        } finally {
            server.stop(0)
        }
    }

    @Test
    fun `the demo runner writes the contract's lines and a timing`(
        @TempDir dir: File,
    ) {
        val config = File(root, "examples/configs/example.json")
        val contexts = File(root, "examples/contexts.jsonl")
        val out = File(dir, "decisions.jsonl")
        val timing = File(dir, "timing.json")
        val now = 1_763_800_000_000L
        val code =
            Runner.run(
                arrayOf("--config", config.path, "--contexts", contexts.path, "--now-ms", "$now", "--out", out.path, "--timing", timing.path),
            )
        assertEquals(0, code)
        val inputs = contexts.readLines().filter { it.isNotBlank() }.map { Json.parse(it).asJsonObject }
        val lines = out.readLines().map { Json.parse(it).asJsonObject }
        assertEquals(inputs.size, lines.size)
        // Exactly the keys of `turnout eval`, in its order.
        assertTrue(lines.all { it.keySet().toList() == listOf("variable", "value", "source", "experiment", "rule", "choice", "reason", "errorCode") })
        assertEquals("""{"variable":"automatedMessageDelay","value":60,"source":"rollout","experiment":null,"rule":0,"choice":null,"reason":"TARGETING_MATCH","errorCode":null}""", lines[0].toString())
        assertEquals("FLAG_NOT_FOUND", lines.last()["errorCode"].asString)
        // The same decisions through the one-shot path (the generated API).
        Turnout.client(config.readBytes(), ClientOptions(fixedTimeMs = now)).use { c ->
            for ((input, line) in inputs.zip(lines)) {
                val d = c.getVariable(input["variable"].asString, Json.facets(input.getAsJsonObject("facets"))).decision()
                assertTrue(Json.same(Json.decision(d), line), "$input: $line")
            }
        }
        val t = Json.read(timing).asJsonObject
        assertEquals("kotlin", t["platform"].asString)
        assertEquals(inputs.size, t["decisions"].asInt)
        assertTrue(t["nsPerDecisionMedian"].asDouble > 0)
    }
}
