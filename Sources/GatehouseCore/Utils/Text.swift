// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc

extension Substring.UnicodeScalarView {
    /// Without leading and trailing spaces and tabs, and nothing else: htgroups lines, DN parts
    /// and forwarded addresses trim exactly these (a vertical tab or NBSP is data).
    package var trimmingSpaces: String {
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" }
        // Usually there is nothing to trim: answer without searching.
        guard let first = first, let last = last else { return "" }
        if !isSpace(first), !isSpace(last) { return String(self) }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

extension Substring {
    /// ``Substring/UnicodeScalarView/trimmingSpaces``.
    package var trimmingSpaces: String { unicodeScalars.trimmingSpaces }
}

extension String {
    /// ``Substring/UnicodeScalarView/trimmingSpaces``.
    package var trimmingSpaces: String { self[...].unicodeScalars.trimmingSpaces }
}

/// An environment variable's value, if set.
func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
