// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Logging

/// One log line per decision, never with a password, a hash or an `Authorization` value.
/// Values that came from a client are escaped, so that nobody can forge log lines.
struct AuditLog: Sendable {
    let logger: Logger
    /// When set (`gatehouse serve`), lines are formatted here, in the process log's format,
    /// and written in batches off the event loop; else they go through `logger` (tests).
    let writer: AuditWriter?

    init(logger: Logger, writer: AuditWriter? = nil) {
        self.logger = logger
        self.writer = writer
    }

    func record(_ decision: Decision, method: String, uri: String?, client: String?, configuration: LogConfiguration, latency: Duration) {
        if configuration.denialsOnly, decision.outcome == .allow { return }
        // Building the line costs more than deciding from the cache: skip it when it is not kept.
        guard logger.logLevel <= .info else { return }
        if let writer {
            writer.append(line(decision, method: method, uri: uri, client: client, format: configuration.format, latency: latency))
            return
        }
        // In text lines a value must not contain `key=value` of its own: a user name like
        // `x decision=allow` would otherwise add a field that grep finds.
        // JSON lines escape every value losslessly themselves; escaping here too would double it.
        let text = configuration.format == .text
        func escape(_ value: String) -> String { text ? Self.escape(value, equalsSign: true) : Self.cut(value) }
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
        if let token = decision.token { metadata["token"] = .string(token) }
        if let principal = decision.principal {
            metadata["auth"] = .string("negotiate")
            metadata["principal"] = .string(escape(principal))
        }
        metadata["reason"] = .string(escape(decision.reason))
        logger.info("decision", metadata: metadata)
    }

    /// One audit line, exactly as the process log's handler would write it (swift-log's
    /// `StreamLogHandler` for text, ``JSONLogHandler`` for JSON): the same keys, sorted, the
    /// same escaping, so that greps and log shippers see no difference.
    func line(_ decision: Decision, method: String, uri: String?, client: String?, format: LogConfiguration.Format, latency: Duration) -> String {
        let text = format == .text
        func escape(_ value: String) -> String { text ? Self.escape(value, equalsSign: true) : Self.cut(value) }
        // Sorted by key, as both handlers sort them.
        var fields: [(String, AuditValue)] = []
        fields.reserveCapacity(18)
        if let action = decision.action { fields.append(("action", .text(action))) }
        if decision.principal != nil { fields.append(("auth", .text("negotiate"))) }
        fields.append(("backend", .text(decision.backend ?? "-")))
        fields.append(("cached", .bool(decision.cached)))
        fields.append(("client", .text(escape(client ?? "-"))))
        fields.append(("decision", .text(decision.outcome.rawValue)))
        if let detail = decision.logDetail { fields.append(("detail", .text(escape(detail)))) }
        if decision.upstreamGroups.truncated {
            fields.append(("groups_truncated", .text("\(decision.upstreamGroups.count) of \(decision.upstreamGroups.offered) sent")))
        }
        fields.append(("latency_ms", .text(Self.milliseconds(latency))))
        fields.append(("log", .text("audit")))
        fields.append(("method", .text(escape(method))))
        if let path = decision.path { fields.append(("path", .text(escape(path)))) }
        fields.append(("policy", .text(escape(decision.policy))))
        if let principal = decision.principal { fields.append(("principal", .text(escape(principal)))) }
        fields.append(("reason", .text(escape(decision.reason))))
        if let repository = decision.repository { fields.append(("repository", .text(escape(repository)))) }
        fields.append(("rule", .text(escape(decision.rule))))
        fields.append(("status", .number(decision.status)))
        // The token's id (16 hex digits), never its secret.
        if let token = decision.token { fields.append(("token", .text(token))) }
        fields.append(("uri", .text(escape(uri ?? "-"))))
        fields.append(("user", .text(escape(decision.user ?? "-"))))
        var line: String
        if text {
            line = AuditClock.shared.textTimestamp() + " info " + logger.label + ":"
            for (key, value) in fields {
                line += " " + key + "="
                switch value {
                case .text(let string): line += string
                case .bool(let flag): line += flag ? "true" : "false"
                case .number(let number): line += String(number)
                }
            }
            line += " [GatehouseHTTP] decision\n"
        } else {
            line = "{\"time\":\"" + AuditClock.shared.jsonTimestamp() + "\",\"level\":\"info\",\"label\":"
            JSONLogHandler.appendString(logger.label, to: &line)
            line += ",\"message\":\"decision\""
            for (key, value) in fields {
                line += ",\"" + key + "\":"
                switch value {
                case .text(let string): JSONLogHandler.appendString(string, to: &line)
                case .bool(let flag): line += flag ? "true" : "false"
                case .number(let number): line += String(number)
                }
            }
            line += "}\n"
        }
        return line
    }

    private enum AuditValue {
        case text(String)
        case bool(Bool)
        case number(Int)
    }

    /// A JSON value needs no escaping here (the JSON handler escapes losslessly) but is cut at
    /// 512 scalars like a text one, and then says so with "…".
    static func cut(_ value: String) -> String {
        guard value.utf8.count > 512, value.unicodeScalars.count > 512 else { return value }
        return String(String.UnicodeScalarView(value.unicodeScalars.prefix(512))) + "…"
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
        output.reserveCapacity(value.utf8.count + 16)
        for scalar in value.unicodeScalars.prefix(512) {
            // Printable ASCII needs no Unicode properties (looking them up cost more than the
            // rest of a refused guess).
            if scalar.value >= 0x20, scalar.value < 0x7F, scalar != "\\", scalar != "\"", !(equalsSign && scalar == "=") {
                output.unicodeScalars.append(scalar)
                continue
            }
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
        let micros = duration.microseconds
        return "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"
    }
}
