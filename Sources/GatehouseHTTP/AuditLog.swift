// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Logging

/// One log line per decision, never with a password, a hash or an `Authorization` value.
/// Values that came from a client are escaped, so that nobody can forge log lines.
struct AuditLog {
    let logger: Logger

    func record(_ decision: Decision, method: String, uri: String?, client: String?, configuration: LogConfiguration, latency: Duration) {
        if configuration.denialsOnly, decision.outcome == .allow { return }
        // Building the line costs more than deciding from the cache: skip it when it is not kept.
        guard logger.logLevel <= .info else { return }
        // In text lines a value must not contain `key=value` of its own: a user name like
        // `x decision=allow` would otherwise add a field that grep finds.
        // JSON lines escape every value losslessly themselves; escaping here too would double it.
        let text = configuration.format == .text
        func escape(_ value: String) -> String { text ? Self.escape(value, equalsSign: true) : String(value.unicodeScalars.prefix(512)) }
        var metadata: Logger.Metadata = [
            "decision": .string(decision.outcome.rawValue),
            "status": .stringConvertible(decision.status),
            "policy": .string(escape(decision.policy)),
            "rule": .string(escape(decision.rule)),
            "method": .string(escape(method)),
            "uri": .string(escape(uri ?? "-")),
            "client": .string(escape(client ?? "-")),
            "user": .string(escape(decision.user ?? "-")),
            "backend": .string(decision.backend ?? "-"),
            "cached": .stringConvertible(decision.cached),
            "latency_ms": .string(Self.milliseconds(latency)),
        ]
        if let action = decision.action { metadata["action"] = .string(action) }
        if let repository = decision.repository { metadata["repository"] = .string(escape(repository)) }
        if let path = decision.path { metadata["path"] = .string(escape(path)) }
        if decision.upstreamGroups.truncated {
            // The upstream got an incomplete list: say so where the operator looks.
            metadata["groups_truncated"] = .string("\(decision.upstreamGroups.count) of \(decision.upstreamGroups.offered) sent")
        }
        if let detail = decision.logDetail { metadata["detail"] = .string(escape(detail)) }
        metadata["reason"] = .string(escape(decision.reason))
        logger.info("decision", metadata: metadata)
    }

    /// Control characters, line and paragraph separators, quotes and backslashes (and `=`, for
    /// text lines) become visible escapes; long values are cut.
    static func escape(_ value: String, equalsSign: Bool = false) -> String {
        // The usual case, printable ASCII with nothing to escape, is returned as is: this runs
        // for a dozen values on every request.
        if value.utf8.count <= 512, value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "\"") && !(equalsSign && $0 == UInt8(ascii: "=")) }) {
            return value
        }
        var output = ""
        for scalar in value.unicodeScalars.prefix(512) {
            switch scalar {
            case "\\": output += "\\\\"
            case "\"": output += "\\\""
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "=" where equalsSign: output += "\\u{3d}"
            case _ where [.control, .format, .lineSeparator, .paragraphSeparator].contains(scalar.properties.generalCategory):
                output += "\\u{\(String(scalar.value, radix: 16))}"
            default: output.unicodeScalars.append(scalar)
            }
        }
        if value.unicodeScalars.count > 512 { output += "…" }
        return output
    }

    private static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
    }
}
