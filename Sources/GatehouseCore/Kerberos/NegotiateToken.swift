// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The token of an `Authorization: Negotiate <base64>` header (RFC 4559).
public enum NegotiateToken {
    /// A ticket of a user in many groups (a big MS-PAC) runs to tens of kilobytes; nginx's
    /// `large_client_header_buffers` must allow it too.
    public static let maximumLength = 64 * 1024

    public enum Parsed: Equatable {
        /// Not a Negotiate header at all (Basic, another scheme).
        case notNegotiate
        case malformed(String)
        case token([UInt8])
    }

    public static func parse(_ value: String) -> Parsed {
        let bytes = Array(value.utf8)
        let scheme = Array("negotiate".utf8)
        guard bytes.count > scheme.count, zip(bytes.prefix(scheme.count), scheme).allSatisfy({ ($0 | 0x20) == $1 }),
            bytes[scheme.count] == UInt8(ascii: " ")
        else { return .notNegotiate }
        guard bytes.count <= maximumLength else { return .malformed("the Negotiate token is longer than \(maximumLength / 1024) KiB") }
        var start = scheme.count
        while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
        var end = bytes.count
        while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        guard end > start, let token = StrictBase64.decode(bytes[start..<end]), !token.isEmpty else {
            return .malformed("the Negotiate token is not base64")
        }
        return .token(token)
    }
}
