// Load the example config, decide for a passenger, track an event and send
// the recorded events to the collector URL given on the command line.
import Foundation
import Turnout

let args = CommandLine.arguments
guard args.count >= 2, let collector = URL(string: args[1]) else {
    FileHandle.standardError.write(Data("usage: TurnoutExample COLLECTOR_URL [CONFIG.json]\n".utf8))
    exit(2)
}
let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let configURL = args.count >= 3 ? URL(fileURLWithPath: args[2]) : root.appendingPathComponent("examples/configs/example.json")

do {
    let client = try Client(contentsOf: configURL, options: ClientOptions(service: "booking"))

    // One-shot: facets built per call.
    let delay = try client.getVariable("automatedMessageDelay", Facets().passenger(7).city(10))
    print("automatedMessageDelay for passenger 7 in Jakarta: \(delay.int64(30)) (\(delay.source), \(delay.reason))")

    // Prepared: a handle and a context once, then the hot call.
    let color = try client.variable("checkoutButtonColor")
    let ctx = try client.context(["pax": 1003, "country": "SG"])
    print("checkoutButtonColor for passenger 1003: \(try ctx.string(color, default: "blue"))")

    // A metric, recorded with its facets.
    try client.track("pickupSeconds", value: 42, facets: Facets().passenger(7).booking("ADR-123-2-001"))

    // Upload: take a batch, POST it, ack on success (nack keeps it for a retry).
    let transport = URLSessionTransport()
    while let batch = try client.takeBatch(maxEvents: 1000) {
        var request = URLRequest(url: collector)
        request.httpMethod = "POST"
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.httpBody = batch.bytes
        do {
            let response = try transport.send(request)
            guard (200..<300).contains(response.status) else { throw TurnoutError.http(status: response.status, message: "collector refused") }
            try client.ack(batch.seq)
            print("batch \(batch.seq): \(batch.events) events, \(batch.bytes.count) bytes -> \(collector)")
        } catch {
            try client.nack(batch.seq)
            FileHandle.standardError.write(Data("upload failed, batch \(batch.seq) kept for a retry: \(error)\n".utf8))
            exit(1)
        }
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
