// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Crypto

/// The secret a client presents: `gth_` + 16 hex digits (the token's id) + `_` + 43 base64url
/// characters (256 random bits). 64 characters, fixed, so that anything else is refused before
/// a lookup, and the prefix lets secret scanners find leaked ones (as GitHub's `ghp_` does).
///
/// The random part is long enough that one SHA-256 is all the hashing a stored copy needs: no
/// password-style slow hash, so a token login costs what a cached password login costs.
public struct TokenSecret: Sendable {
    public static let prefix = "gth_"
    static let idLength = 16
    static let secretLength = 43
    public static let length = 4 + idLength + 1 + secretLength

    /// The whole `gth_…` string: shown once, then forgotten.
    public let text: String
    public let id: String

    /// A new random token.
    public static func generate() -> TokenSecret {
        var generator = SystemRandomNumberGenerator()
        let idBytes = (0..<8).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secretBytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let id = Hex.encode(idBytes)
        let text = prefix + id + "_" + base64URL(secretBytes)
        return TokenSecret(text: text, id: id)
    }

    private init(text: String, id: String) {
        self.text = text
        self.id = id
    }

    /// Nil unless `text` has exactly the shape of a token.
    public init?(parsing text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == Self.length, text.hasPrefix(Self.prefix) else { return nil }
        let idRange = 4..<(4 + Self.idLength)
        guard AccessToken.isID(String(decoding: bytes[idRange], as: UTF8.self)) else { return nil }
        guard bytes[4 + Self.idLength] == UInt8(ascii: "_") else { return nil }
        guard bytes[(4 + Self.idLength + 1)...].allSatisfy(Self.isBase64URL) else { return nil }
        self.text = text
        self.id = String(decoding: bytes[idRange], as: UTF8.self)
    }

    /// What the store keeps.
    public var hash: [UInt8] { Self.hash(text) }

    static func hash(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    /// Whether this is the secret whose hash the store keeps, in time that does not depend on
    /// where the two differ.
    public func matches(_ stored: [UInt8]) -> Bool { ConstantTime.equals(hash, stored) }

    /// Whether a password is meant as a token (then it never goes to a backend as a password).
    public static func looksLikeToken(_ password: String) -> Bool { password.hasPrefix(prefix) }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// RFC 4648 §5 without padding: the secret must survive URLs, YAML and shells unquoted.
    private static func base64URL(_ bytes: [UInt8]) -> String {
        String(StrictBase64.encode(bytes).compactMap { character -> Character? in
            switch character {
            case "+": "-"
            case "/": "_"
            case "=": nil
            default: character
            }
        })
    }
}

/// Hex text of bytes, for hashes in the store.
enum Hex {
    static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 15)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 2 == 0 else { return nil }
        func value(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x61...0x66: byte - 0x61 + 10
            default: nil
            }
        }
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let high = value(bytes[index]), let low = value(bytes[index + 1]) else { return nil }
            output.append(high << 4 | low)
            index += 2
        }
        return output
    }
}
