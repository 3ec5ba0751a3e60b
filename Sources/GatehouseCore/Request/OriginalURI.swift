// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The client's `$request_uri` as nginx forwards it in `X-Original-URI`, checked to be in the
/// one canonical form that the gate, nginx and the upstream all read the same way.
///
/// Anything that two parsers could read differently is refused: dot segments, `//`,
/// backslashes, encoded `/`, `.`, `\` or control characters, non-ASCII bytes, fragments,
/// absolute-form targets and targets over 8 KiB. Escapes of unreserved characters are decoded
/// (`/%61dmin` is `/admin`), so a rule cannot be sidestepped by spelling a path differently.
public struct OriginalURI: Sendable, Equatable {
    /// The path in canonical form (remaining escapes upper-case), without the query.
    public let path: String
    /// The raw query after `?`, or nil.
    public let query: String?
    /// True when the raw path contained any percent-escape.
    public let pathHadEscapes: Bool

    /// The longest target accepted.
    public static let maximumLength = 8192

    public init(validating raw: String) throws(URIRejection) {
        var raw = raw
        let parsed = raw.withUTF8 { bytes in Result { () throws(URIRejection) in try Self.parse(bytes) } }
        (path, query, pathHadEscapes) = try parsed.get()
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(URIRejection) -> (String, String?, Bool) {
        guard !bytes.isEmpty else { throw URIRejection("the original URI is empty") }
        guard bytes.count <= maximumLength else { throw URIRejection("the original URI is longer than 8 KiB") }
        guard bytes[0] == UInt8(ascii: "/") else { throw URIRejection("the original URI is not an origin-form path") }
        var questionMark: Int?
        var hasEscapes = false
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte > 0x20, byte < 0x7F else { throw URIRejection("the original URI contains a control, space or non-ASCII byte") }
            switch byte {
            case UInt8(ascii: "#"): throw URIRejection("the original URI contains a fragment")
            case UInt8(ascii: "\\"): throw URIRejection("the original URI contains a backslash")
            case UInt8(ascii: "?") where questionMark == nil: questionMark = index
            case UInt8(ascii: "%") where questionMark == nil: hasEscapes = true
            default: break
            }
        }
        let pathEnd = questionMark ?? bytes.count
        let rawPath = UnsafeBufferPointer(rebasing: bytes[0..<pathEnd])
        let query = questionMark.map { String(decoding: UnsafeBufferPointer(rebasing: bytes[($0 + 1)...]), as: UTF8.self) }
        if !hasEscapes {
            try checkSegments(rawPath)
            return (String(decoding: rawPath, as: UTF8.self), query, false)
        }
        let canonical = try decodeUnreserved(rawPath)
        try canonical.withUnsafeBufferPointer { pointer throws(URIRejection) in try checkSegments(pointer) }
        return (String(decoding: canonical, as: UTF8.self), query, true)
    }

    /// Refuses `//` and `.` / `..` segments.
    private static func checkSegments(_ path: UnsafeBufferPointer<UInt8>) throws(URIRejection) {
        var segmentStart = 1
        for index in 1...path.count {
            guard index == path.count || path[index] == UInt8(ascii: "/") else { continue }
            let length = index - segmentStart
            if length == 0, index < path.count { throw URIRejection("the original URI contains an empty path segment ('//')") }
            if length == 1, path[segmentStart] == UInt8(ascii: ".") { throw URIRejection("the original URI contains a dot segment") }
            if length == 2, path[segmentStart] == UInt8(ascii: "."), path[segmentStart + 1] == UInt8(ascii: ".") {
                throw URIRejection("the original URI contains a dot segment")
            }
            segmentStart = index + 1
        }
    }

    private static func decodeUnreserved(_ path: UnsafeBufferPointer<UInt8>) throws(URIRejection) -> [UInt8] {
        let digits = Array("0123456789ABCDEF".utf8)
        var canonical: [UInt8] = []
        canonical.reserveCapacity(path.count)
        var index = 0
        while index < path.count {
            let byte = path[index]
            guard byte == UInt8(ascii: "%") else {
                canonical.append(byte)
                index += 1
                continue
            }
            guard index + 2 < path.count, let high = hexValue(path[index + 1]), let low = hexValue(path[index + 2]) else {
                throw URIRejection("the original URI has a malformed percent-escape")
            }
            let decoded = high << 4 | low
            switch decoded {
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "."):
                throw URIRejection("the original URI encodes '/', '\\' or '.' in its path")
            case 0x00..<0x20, 0x7F:
                throw URIRejection("the original URI encodes a control character")
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"):
                canonical.append(decoded)
            default:
                canonical += [UInt8(ascii: "%"), digits[Int(decoded >> 4)], digits[Int(decoded & 0x0F)]]
            }
            index += 3
        }
        return canonical
    }

    /// Query parameters, percent-decoded (`+` is a space), in order. Throws on a malformed escape.
    public func queryItems() throws(URIRejection) -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        var items: [(name: String, value: String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.percentDecode(parts[0]), let value = Self.percentDecode(parts.count > 1 ? parts[1] : "") else {
                throw URIRejection("the original URI has a malformed query")
            }
            items.append((name, value))
        }
        return items
    }

    private static func percentDecode(_ text: Substring) -> String? {
        var output: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else { return nil }
                output.append(high << 4 | low)
                index += 3
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
                index += 1
            case let byte:
                output.append(byte)
                index += 1
            }
        }
        return String(validating: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Why a request target is refused (always a 403).
public struct URIRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
