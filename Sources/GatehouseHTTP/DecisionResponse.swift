// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import HTTPTypes
import Hummingbird
import NIOCore

/// How a ``Decision`` is told to nginx: the status, the `X-Auth-*` headers, the challenge on
/// 401, and an empty body (`Content-Length: 0`) unless a person asked with `?explain`.
/// nginx drops its keep-alive connection to an auth server whose answer has a body.
enum DecisionResponse {
    static let user = HTTPField.Name("X-Auth-User")!
    static let groups = HTTPField.Name("X-Auth-Groups")!
    static let groupsTruncated = HTTPField.Name("X-Auth-Groups-Truncated")!
    static let email = HTTPField.Name("X-Auth-Email")!
    static let name = HTTPField.Name("X-Auth-Name")!
    static let backend = HTTPField.Name("X-Auth-Backend")!
    static let decision = HTTPField.Name("X-Auth-Decision")!
    static let rule = HTTPField.Name("X-Auth-Rule")!
    static let reason = HTTPField.Name("X-Auth-Reason")!

    static func response(for decision: Decision, challenge: String, explain: Bool, policyKind: Policy.Kind?) -> Response {
        var headers = fields(for: decision, challenge: challenge)
        var body = ResponseBody()
        if explain {
            headers[.contentType] = "application/json; charset=utf-8"
            body = ResponseBody(byteBuffer: ByteBuffer(string: DecisionExplanation(decision, policyKind: policyKind).json() + "\n"))
        }
        return Response(status: HTTPResponse.Status(code: decision.status), headers: headers, body: body)
    }

    /// The answer nginx reads, for the event-loop fast path: status and headers, and an empty
    /// body said explicitly (`Content-Length: 0`).
    static func head(for decision: Decision, challenge: String) -> HTTPResponse {
        var headers = fields(for: decision, challenge: challenge)
        headers[.contentLength] = "0"
        return HTTPResponse(status: HTTPResponse.Status(code: decision.status), headerFields: headers)
    }

    /// The `X-Auth-*` headers, the challenge of a 401 and `Cache-Control: no-store`.
    static func fields(for decision: Decision, challenge: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[Self.decision] = decision.outcome.rawValue
        headers[Self.rule] = headerSafe(decision.rule)
        headers[Self.reason] = headerSafe(decision.reason, limit: 1024)
        if decision.outcome == .allow {
            if let user = decision.user {
                headers[Self.user] = headerSafe(user)
                // Whole names only, never cut here (UpstreamGroups stops before a name that
                // would not fit, and says so).
                headers[Self.groups] = decision.upstreamGroups.value
                if decision.upstreamGroups.truncated { headers[Self.groupsTruncated] = "true" }
                if let email = decision.email { headers[Self.email] = headerSafe(email) }
                if let name = decision.displayName { headers[Self.name] = headerSafe(name) }
            }
            if let backend = decision.backend { headers[Self.backend] = backend }
        }
        if decision.status == 401 { headers[.wwwAuthenticate] = challenge }
        headers[.cacheControl] = "no-store"
        return headers
    }

    /// Header values carry no control characters (`?` stands in), whatever a client managed to
    /// put in a name. Identity values (user, e-mail, display name) are never cut: an upstream
    /// must not receive a shortened name as if it were whole; they are bounded already (user
    /// names at 256 bytes, directory attributes by their schema) and the kit buffers 64 KiB.
    /// Only the reason, a sentence for people, is cut at `limit`, and then ends in "…".
    static func headerSafe(_ value: String, limit: Int? = nil) -> String {
        // The usual case, printable ASCII, is returned as is: this runs several times for
        // every answer.
        if value.utf8.count <= limit ?? Int.max, value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return value }
        let scalars = value.unicodeScalars
        let kept = limit.map { scalars.prefix($0) } ?? scalars[...]
        var safe = String(String.UnicodeScalarView(kept.map { scalar in
            scalar.value < 0x80 ? (scalar.value >= 0x20 && scalar.value < 0x7F ? scalar : "?")
                : (scalar.properties.generalCategory == .control ? "?" : scalar)
        }))
        if kept.count < scalars.count { safe += "…" }
        return safe
    }
}
