// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The path of an http policy's request as the upstream application will see it, and the
/// other readings an upstream may make of it.
///
/// nginx forwards `$request_uri` untouched, and ``OriginalURI`` has already refused what any
/// two parsers read differently (dot segments, `//`, encoded `/` `.` `\`). Application servers
/// still normalise further, and a rule must judge the path they serve, not the one we read:
///
/// - `;` path parameters (Tomcat, Jetty, Spring, WebLogic drop them from each segment):
///   removed before matching, so `/wiki/admin;x/secret` is judged as `/wiki/admin/secret`; a
///   segment that is empty or a dot segment once they are gone (`..;`, `.;x`) is refused.
/// - An escaped `;` (`%3B`) or `%` (`%25`, double encoding: IIS, and frameworks that decode
///   twice) and escapes that are not UTF-8 (overlong `%C0%AE`): refused, as Spring Security's
///   strict firewall does.
/// - A segment ending in `.` or an escaped space (IIS and Windows drop them: `/admin.` is
///   `/admin`): refused.
/// - Letter case (IIS, ASP.NET and Express match paths case-insensitively), a trailing slash
///   (Express, Spring MVC before 6 and Rails ignore it) and a `.json`-style suffix on the last
///   segment (Rails formats, Spring's suffix matching): a request is allowed only when no rule
///   explicitly denies any of these readings (see ``Policy/evaluate(_:identity:client:trace:)``).
public struct HTTPPath: Sendable, Equatable {
    /// The canonical path with every segment's `;` parameters removed: what rules match.
    public let path: String
    /// Other spellings an upstream may treat as the same resource (trailing slash toggled,
    /// last segment without its suffix).
    public let alternateReadings: [String]

    public init(canonical uriPath: String) throws(URIRejection) {
        var uriPath = uriPath
        let result = uriPath.withUTF8 { bytes in Result { () throws(URIRejection) in try Self.strip(bytes) } }
        path = try result.get()
        alternateReadings = Self.readings(of: path)
    }

    private static func strip(_ bytes: UnsafeBufferPointer<UInt8>) throws(URIRejection) -> String {
        // Fast path: no parameters, escapes or dots to look at.
        if !bytes.contains(where: { $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: ".") }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        // `bytes` starts with "/" (OriginalURI guarantees an origin-form path).
        while index < bytes.count {
            precondition(bytes[index] == UInt8(ascii: "/"))
            var end = index + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "/") { end += 1 }
            let segment = UnsafeBufferPointer(rebasing: bytes[(index + 1)..<end])
            let parameters = segment.firstIndex(of: UInt8(ascii: ";"))
            let name = UnsafeBufferPointer(rebasing: segment[segment.startIndex..<(parameters ?? segment.endIndex)])
            if parameters != nil {
                if name.isEmpty { throw URIRejection("the original URI has a path segment that is empty once its ';' parameters are removed") }
                if name.elementsEqual([UInt8(ascii: ".")]) || name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                    throw URIRejection("the original URI contains a dot segment with ';' parameters")
                }
            }
            try checkEscapes(name)
            if name.last == UInt8(ascii: ".") { throw URIRejection("the original URI has a path segment ending in '.'") }
            if name.count >= 3, name[name.count - 3] == UInt8(ascii: "%"), name[name.count - 2] == UInt8(ascii: "2"), name[name.count - 1] == UInt8(ascii: "0") {
                throw URIRejection("the original URI has a path segment ending in an escaped space")
            }
            output.append(UInt8(ascii: "/"))
            output.append(contentsOf: name)
            index = end
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Escapes are upper-case `%XX` here (OriginalURI canonicalised them). `%3B` and `%25` are
    /// refused; bytes of 0x80 and above must spell UTF-8.
    private static func checkEscapes(_ name: UnsafeBufferPointer<UInt8>) throws(URIRejection) {
        var index = 0
        var pending: [UInt8] = []
        func flush() throws(URIRejection) {
            guard !pending.isEmpty else { return }
            guard String(validating: pending, as: UTF8.self) != nil else {
                throw URIRejection("the original URI has percent-escapes that are not UTF-8")
            }
            pending.removeAll(keepingCapacity: true)
        }
        while index < name.count {
            guard name[index] == UInt8(ascii: "%"), index + 2 < name.count else {
                try flush()
                index += 1
                continue
            }
            let value = hex(name[index + 1]) << 4 | hex(name[index + 2])
            switch value {
            case UInt8(ascii: ";"): throw URIRejection("the original URI encodes ';' in its path")
            case UInt8(ascii: "%"): throw URIRejection("the original URI encodes '%' in its path (double encoding)")
            case 0x80...: pending.append(value)
            default: try flush()
            }
            index += 3
        }
        try flush()
    }

    private static func hex(_ byte: UInt8) -> UInt8 {
        byte <= UInt8(ascii: "9") ? byte &- UInt8(ascii: "0") : byte &- UInt8(ascii: "A") &+ 10
    }

    /// The path and the path without the last segment's suffix, each with its trailing slash
    /// toggled: `/a/admin.json` also reads as `/a/admin.json/`, `/a/admin` and `/a/admin/`.
    private static func readings(of path: String) -> [String] {
        guard path.utf8.count > 1 else { return [] }
        var forms = [path]
        if path.utf8.last != UInt8(ascii: "/"), let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")),
            let dot = path.utf8[path.utf8.index(after: slash)...].lastIndex(of: UInt8(ascii: ".")),
            dot > path.utf8.index(after: slash)
        {
            forms.append(String(path[..<dot]))
        }
        var readings: [String] = []
        for form in forms {
            if form != path { readings.append(form) }
            readings.append(form.utf8.last == UInt8(ascii: "/") ? String(form.dropLast()) : form + "/")
        }
        return readings
    }
}
