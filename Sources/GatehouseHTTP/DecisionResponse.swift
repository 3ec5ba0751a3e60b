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
    static let backend = HTTPField.Name("X-Auth-Backend")!
    static let decision = HTTPField.Name("X-Auth-Decision")!
    static let rule = HTTPField.Name("X-Auth-Rule")!
    static let reason = HTTPField.Name("X-Auth-Reason")!

    static func response(for decision: Decision, challenge: String, explain: Bool) -> Response {
        var headers = HTTPFields()
        headers[Self.decision] = decision.outcome.rawValue
        headers[Self.rule] = headerSafe(decision.rule)
        headers[Self.reason] = headerSafe(decision.reason)
        if decision.outcome == .allow {
            if let user = decision.user {
                headers[Self.user] = headerSafe(user)
                headers[Self.groups] = headerSafe(decision.groups.map(listItem).joined(separator: ","))
            }
            if let backend = decision.backend { headers[Self.backend] = backend }
        }
        if decision.status == 401 { headers[.wwwAuthenticate] = challenge }
        headers[.cacheControl] = "no-store"
        var body = ResponseBody()
        if explain {
            headers[.contentType] = "application/json; charset=utf-8"
            body = ResponseBody(byteBuffer: ByteBuffer(string: DecisionExplanation(decision).json() + "\n"))
        }
        return Response(status: HTTPResponse.Status(code: decision.status), headers: headers, body: body)
    }

    /// One group of the comma-separated `X-Auth-Groups`: `%` and `,` are percent-encoded, so
    /// that a group named `ops,admins` (an AD cn may hold a comma) does not read as `admins`
    /// upstream. Other names pass unchanged.
    static func listItem(_ group: String) -> String {
        guard group.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "%") }) else { return group }
        var encoded = ""
        for scalar in group.unicodeScalars {
            switch scalar {
            case "%": encoded += "%25"
            case ",": encoded += "%2C"
            default: encoded.unicodeScalars.append(scalar)
            }
        }
        return encoded
    }

    /// Header values carry no control characters, whatever a client managed to put in a name.
    static func headerSafe(_ value: String) -> String {
        // The usual case, printable ASCII, is returned as is: this runs several times for
        // every answer.
        if value.utf8.count <= 1024, value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return value }
        return String(String.UnicodeScalarView(value.unicodeScalars.prefix(1024).map { scalar in
            scalar.properties.generalCategory == .control ? "?" : scalar
        }))
    }
}
