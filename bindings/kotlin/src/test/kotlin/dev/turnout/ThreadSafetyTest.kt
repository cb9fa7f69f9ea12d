package dev.turnout

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong
import kotlin.concurrent.thread

class ThreadSafetyTest {
    private fun config(gen: Int) =
        """{"schema": 1, "version": $gen, "rollouts": [{"variable": "delay", "rollouts": [
             {"value": ${60 + gen % 2}, "constraints": [{"target": "city", "op": "=", "value": 6}]}],
             "default": ${30 + gen % 2}}]}""".toByteArray()

    @Test
    fun `8 threads evaluate while another updates the config 1,000 times`() {
        Turnout.client(config(0)).use { client ->
            val stop = AtomicBoolean(false)
            val problems = ConcurrentLinkedQueue<String>()
            val decisions = AtomicLong()
            val started = CountDownLatch(8)
            val readers =
                (0 until 8).map { t ->
                    thread(name = "reader-$t") {
                        val v = client.variable("delay")
                        val city6 = client.context(Facets().city(6).passenger(t.toLong()))
                        val other = client.context(Facets().city(7).passenger(t.toLong()))
                        started.countDown()
                        var i = 0L
                        try {
                            while (!stop.get()) {
                                // Old or new config: 60/61 in city 6, 30/31 elsewhere; never the caller's default.
                                val a = city6.int64(v, -1)
                                val b = other.int64(v, -1)
                                val c = client.getVariable("delay", Facets().city(if (i % 2 == 0L) 6 else 8).passenger(i)).int64(-1)
                                if (a !in 60..61 || b !in 30..31 || c !in (if (i % 2 == 0L) 60..61 else 30..31)) {
                                    problems += "thread $t: $a $b $c"
                                }
                                if (i % 64 == 0L) {
                                    val d = city6.decision(v)
                                    if (d.valueJson !in setOf("60", "61") || d.source != Source.ROLLOUT) problems += "thread $t: $d"
                                }
                                i++
                            }
                        } catch (e: Throwable) {
                            problems += "thread $t: $e"
                        } finally {
                            decisions.addAndGet(i * 3)
                            city6.close()
                            other.close()
                        }
                    }
                }
            started.await()
            for (gen in 1..1000) {
                assertEquals(gen.toLong(), client.updateConfig(config(gen)).version)
                if (gen % 100 == 0) client.takeBatch(10_000)?.let { client.ack(it.seq) }
            }
            stop.set(true)
            readers.forEach { it.join() }
            assertTrue(problems.isEmpty(), problems.take(5).joinToString("\n"))
            assertTrue(decisions.get() > 8 * 3, "readers ran: ${decisions.get()} decisions")
            assertEquals(1000L, client.configVersion)
        }
    }

    @Test
    fun `closing handles while other threads use them throws Closed, never crashes`() {
        Turnout.client(config(0)).use { client ->
            val v = client.variable("delay")
            val problems = ConcurrentLinkedQueue<String>()
            repeat(200) {
                val ctx = client.context(Facets().city(6))
                val go = CountDownLatch(1)
                val users =
                    (0 until 4).map {
                        thread {
                            go.await()
                            repeat(200) {
                                try {
                                    val x = ctx.int64(v, -1)
                                    if (x != 60L) problems += "got $x"
                                } catch (_: TurnoutException.Closed) {
                                    // closed under us: the expected outcome after close
                                }
                            }
                        }
                    }
                go.countDown()
                ctx.close()
                users.forEach { it.join() }
            }
            assertTrue(problems.isEmpty(), problems.take(5).joinToString("\n"))
        }
    }
}
