// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The user-id and password carried by an HTTP `Authorization: Basic …` header (RFC 7617).
///
/// Parsing is strict on purpose: a lenient decoder lets different byte strings collide
/// (invalid UTF-8 becoming U+FFFD) or lets a NUL byte truncate a password in C.
///
/// ```swift
/// let credentials = try BasicCredentials(authorizationHeader: "Basic YWxpY2U6czNjcmV0")
/// // credentials.user == "alice"
/// ```
public struct BasicCredentials: Sendable, Equatable {
    /// Everything before the first `:` of the decoded token.
    public let user: String
    /// Everything after the first `:`; never empty, never contains NUL.
    public let password: String

    /// Longest `Authorization` value we read; longer ones are malformed.
    public static let maximumHeaderLength = 4096
    /// Longest user-id in UTF-8 bytes.
    public static let maximumUserLength = 256
    /// Longest password in UTF-8 bytes (libxcrypt refuses more than 512).
    public static let maximumPasswordLength = 512

    /// Builds credentials from already separated values, applying the same rules as the header parser.
    public init(user: String, password: String) throws(BasicCredentialsError) {
        try Self.validate(user: user, password: password)
        self.user = user
        self.password = password
    }

    /// Parses an `Authorization` header value.
    public init(authorizationHeader value: String) throws(BasicCredentialsError) {
        let bytes = Array(value.utf8)
        guard bytes.count <= Self.maximumHeaderLength else { throw .tooLong }
        // The scheme is a case-insensitive token (RFC 7235 §2.1), followed by at least one space.
        let scheme = Array("basic".utf8)
        guard bytes.count > scheme.count,
            zip(bytes.prefix(scheme.count), scheme).allSatisfy({ ($0 | 0x20) == $1 })
        else { throw .notBasic }
        var index = scheme.count
        guard bytes[index] == UInt8(ascii: " ") else { throw .notBasic }
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        var end = bytes.count
        while end > index, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        guard let decoded = StrictBase64.decode(bytes[index..<end]) else { throw .badBase64 }
        guard let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { throw .missingColon }
        guard let user = String(validating: decoded[..<colon], as: UTF8.self),
            let password = String(validating: decoded[(colon + 1)...], as: UTF8.self)
        else { throw .badUTF8 }
        try Self.validate(user: user, password: password)
        self.user = user
        self.password = password
    }

    private static func validate(user: String, password: String) throws(BasicCredentialsError) {
        guard !user.isEmpty else { throw .emptyUser }
        guard !password.isEmpty else { throw .emptyPassword }
        guard user.utf8.count <= maximumUserLength, password.utf8.count <= maximumPasswordLength else { throw .tooLong }
        // RFC 7617 forbids control characters; a NUL would truncate the value at the C boundary.
        guard !user.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .controlCharacter
        }
        guard !password.utf8.contains(0) else { throw .controlCharacter }
    }
}

/// Why an `Authorization` header was not accepted as Basic credentials.
public enum BasicCredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
    case notBasic, badBase64, missingColon, badUTF8, emptyUser, emptyPassword, controlCharacter, tooLong

    public var description: String {
        switch self {
        case .notBasic: "the Authorization header is not Basic credentials"
        case .badBase64: "the Basic credentials are not valid base64"
        case .missingColon: "the Basic credentials have no ':' between user and password"
        case .badUTF8: "the Basic credentials are not valid UTF-8"
        case .emptyUser: "the user name is empty"
        case .emptyPassword: "the password is empty"
        case .controlCharacter: "the credentials contain control characters"
        case .tooLong: "the credentials are too long"
        }
    }
}
