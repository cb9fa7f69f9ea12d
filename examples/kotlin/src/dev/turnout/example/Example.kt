package dev.turnout.example

import dev.turnout.ClientOptions
import dev.turnout.Facets
import dev.turnout.Poller
import dev.turnout.PollerOptions
import dev.turnout.Turnout
import java.io.File
import kotlin.system.exitProcess

/**
 * The turnout Kotlin example: load the example config, decide for a
 * passenger, track an event, and upload the recorded events to a collector.
 *
 * ```text
 * Example COLLECTOR_URL [CONFIG.json]
 * ```
 *
 * (How to run it: examples/kotlin/README.md.)
 */
fun main(args: Array<String>) {
    exitProcess(run(args))
}

/** The example; returns the exit code (0: the events were delivered). */
fun run(args: Array<String>): Int {
    val collector = args.getOrNull(0) ?: return usage()
    val config = File(args.getOrNull(1) ?: "examples/configs/example.json").readBytes()

    Turnout.client(config, ClientOptions(service = "booking")).use { client ->
        // A passenger in Jakarta (city 10), with their booking.
        val facets = Facets().passenger(7).city(10).booking("ADR-123-2-001")

        // One-shot: the decision is taken locally, no network involved.
        val delay = client.getVariable("automatedMessageDelay", facets).int64(30)
        println("automatedMessageDelay for passenger 7 in Jakarta: $delay s")

        // Prepared: build the context and the handle once, then decide many times.
        client.context(facets.copy().country("SG")).use { ctx ->
            val color = ctx.string(client.variable("checkoutButtonColor"), "blue")
            val why = ctx.decision(client.variable("checkoutButtonColor"))
            println("checkoutButtonColor: $color (${why.source.wire}, ${why.reason}${why.experiment?.let { ", $it" } ?: ""})")
        }

        // Track a metric with the same facets: recorded as `booking.pickupSeconds`.
        client.track("pickupSeconds", 42.0, facets)

        // Upload what was recorded (decisions and the track) and acknowledge it.
        Poller(client, PollerOptions(configUrl = null, eventsUrl = collector, onError = { System.err.println("upload: $it") })).use { poller ->
            val delivered = poller.flushNow()
            println("delivered $delivered events to $collector")
            return if (delivered > 0 && client.trackingStats.let { it.queued + it.inFlight + it.retrying } == 0L) 0 else 1
        }
    }
}

private fun usage(): Int {
    System.err.println("usage: Example COLLECTOR_URL [CONFIG.json]")
    return 2
}
