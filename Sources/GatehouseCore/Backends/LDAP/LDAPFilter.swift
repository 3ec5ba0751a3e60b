// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// RFC 4515 escaping of values placed into LDAP search filters. Every user-supplied value goes
/// through here: unescaped, `*)(uid=*` would match every entry.
public enum LDAPFilter {
    /// Escapes NUL, `(`, `)`, `*` and `\` as `\XX`; other bytes, UTF-8 included, pass through.
    public static func escape(_ value: String) -> String {
        var output = ""
        output.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\u{0}", "(", ")", "*", "\\": output += hex(UInt8(scalar.value))
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// Every byte as `\XX`: for binary values such as an objectSid.
    public static func escape(bytes: [UInt8]) -> String {
        bytes.map(hex).joined()
    }

    /// Replaces each `{name}` in `template` by the escaped value, in one pass, so that a value
    /// that itself contains `{dn}` is never substituted again.
    public static func fill(_ template: String, _ values: [String: String]) -> String {
        var result = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            if let close = rest[open...].firstIndex(of: "}"), let value = values[String(rest[rest.index(after: open)..<close])] {
                result += escape(value)
                rest = rest[rest.index(after: close)...]
            } else {
                result.append("{")
                rest = rest[rest.index(after: open)...]
            }
        }
        return result + rest
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return "\\" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }
}
