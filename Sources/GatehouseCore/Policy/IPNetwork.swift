// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a
/// single host), for `trusted_proxies`.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefixLength: Int
    public let description: String

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.addressBytes(String(parts[0])) else { return nil }
        let maximum = address.count * 8
        let prefix: Int
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maximum).contains(value) else { return nil }
            prefix = value
        } else {
            prefix = maximum
        }
        bytes = address
        prefixLength = prefix
        description = text
    }

    /// Whether `address` (textual IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is inside.
    public func contains(_ address: String) -> Bool {
        guard let client = ClientIP(address) else { return false }
        return contains(client)
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`), if it is one.
    static func mappedIPv4(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16, bytes.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) else { return nil }
        return Array(bytes.suffix(4))
    }

    /// Whether a parsed address is inside (parse once, test against many networks).
    public func contains(_ client: ClientIP) -> Bool {
        var candidate = client.bytes
        if candidate.count == 16, bytes.count == 4, let mapped = Self.mappedIPv4(candidate) { candidate = mapped }
        guard candidate.count == bytes.count else { return false }
        var remaining = prefixLength
        for index in bytes.indices where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            guard candidate[index] & mask == bytes[index] & mask else { return false }
            remaining -= 8
        }
        return true
    }

    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

extension IPNetwork {
    /// Whether `text` is a textual IPv4 or IPv6 address.
    public static func addressBytesValid(_ text: String) -> Bool {
        addressBytes(text) != nil
    }
}

/// A client's IPv4 or IPv6 address, parsed once per request for `networks` rules.
public struct ClientIP: Sendable, Equatable {
    let bytes: [UInt8]

    public init?(_ text: String) {
        guard let bytes = IPNetwork.addressBytes(text) else { return nil }
        self.bytes = bytes
    }
}
