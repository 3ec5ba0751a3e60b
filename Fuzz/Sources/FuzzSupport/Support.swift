// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// Helpers shared by the fuzz targets. Nothing here calls into GatehouseCore: the references
// the targets compare against are written independently of the code under test.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reports a broken invariant and aborts, so that libFuzzer saves the input as a crash.
public func violation(_ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) -> Never {
    let text = "INVARIANT VIOLATION (\(file):\(line)): \(message())\n"
    fputs(text, stderr)
    fflush(stderr)
    abort()
}

/// `violation` unless `condition` holds.
@inline(__always)
public func invariant(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { violation(message(), file: file, line: line) }
}

/// The fuzzer's bytes, as a Swift string the way the service receives text: invalid UTF-8
/// becomes U+FFFD (HTTP header values and files read by the service are valid UTF-8 strings).
public func text(_ data: UnsafePointer<UInt8>, _ size: Int) -> String {
    String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
}

/// A string with every non-printable-ASCII scalar escaped, for messages.
public func shown(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar.value {
        case 0x22: out += "\\\""
        case 0x5C: out += "\\\\"
        case 0x20..<0x7F: out.unicodeScalars.append(scalar)
        default: out += "\\u{\(String(scalar.value, radix: 16))}"
        }
    }
    return out + "\""
}

public func shown(_ value: String?) -> String { value.map { shown($0) } ?? "nil" }

public func shown(_ bytes: [UInt8]) -> String { shown(String(decoding: bytes, as: UTF8.self)) + " \(bytes)" }

/// RFC 4648 §4 base64 with padding, the one canonical spelling.
public func canonicalBase64(_ bytes: [UInt8]) -> [UInt8] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var chunk = bytes[...]
    while !chunk.isEmpty {
        let group = Array(chunk.prefix(3))
        chunk = chunk.dropFirst(3)
        let padded = group + [UInt8](repeating: 0, count: 3 - group.count)
        let value = Int(padded[0]) << 16 | Int(padded[1]) << 8 | Int(padded[2])
        let sextets = [value >> 18 & 63, value >> 12 & 63, value >> 6 & 63, value & 63]
        for (position, sextet) in sextets.enumerated() {
            out.append(position <= group.count ? alphabet[sextet] : UInt8(ascii: "="))
        }
    }
    return out
}

/// A lenient base64 decoder (standard alphabet, `=` only at the end): nil for anything else.
/// Strictness is then checked by re-encoding, independently of how the code under test does it.
public func lenientBase64(_ token: [UInt8]) -> [UInt8]? {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var body = token[...]
    while body.last == UInt8(ascii: "=") { body = body.dropLast() }
    var bits = 0
    var bitCount = 0
    var out: [UInt8] = []
    for byte in body {
        guard let value = alphabet.firstIndex(of: byte) else { return nil }
        bits = (bits << 6 | value) & 0xFFFF
        bitCount += 6
        if bitCount >= 8 {
            bitCount -= 8
            out.append(UInt8(truncatingIfNeeded: bits >> bitCount))
        }
    }
    return out
}

/// Unicode general category Cc (C0 controls, DEL, C1 controls).
public func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
}

public func hasControl(_ value: String) -> Bool { value.unicodeScalars.contains(where: isControl) }

/// Lines as the files' readers must see them: split at LF, a CR right before the LF dropped.
/// Works on Unicode scalars, as nginx and Apache work on bytes.
public func scalarLines(_ text: String) -> [[Unicode.Scalar]] {
    var lines: [[Unicode.Scalar]] = []
    var current: [Unicode.Scalar] = []
    for scalar in text.unicodeScalars {
        if scalar == "\n" {
            if current.last == "\r" { current.removeLast() }
            lines.append(current)
            current = []
        } else {
            current.append(scalar)
        }
    }
    lines.append(current)
    return lines
}

public func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
    var out = ""
    out.unicodeScalars.append(contentsOf: scalars)
    return out
}

// MARK: - Known findings

/// Findings already reported, from `GATEHOUSE_FUZZ_KNOWN` (comma-separated ids). Off by
/// default: every invariant is fatal unless a finding is named here on purpose, so that a long
/// run can look past a reported bug for new ones. Each target lists the ids it knows.
public let knownFindings: Set<String> = {
    guard let value = getenv("GATEHOUSE_FUZZ_KNOWN") else { return [] }
    return Set(String(cString: value).split(separator: ",").map { String($0) })
}()

public func isKnown(_ id: String) -> Bool { knownFindings.contains(id) }

/// Finding `grapheme`: whether one of `delimiters` (':', '#', space, tab) shares a Swift
/// Character (extended grapheme cluster) with another scalar, e.g. ":\u{301}" or " \u{301}".
/// Parsers that compare Characters do not see such a delimiter, byte-oriented readers
/// (nginx, Apache) do.
public func hasMergedDelimiter(_ text: String, _ delimiters: Set<Unicode.Scalar>) -> Bool {
    text.contains { character in
        character.unicodeScalars.count > 1 && character.unicodeScalars.contains(where: { delimiters.contains($0) })
    }
}

/// Runs `body` on each sample before fuzzing starts, so that lazily built globals (and caches
/// of the Swift runtime) are not reported as leaks of the first input that touches them.
public func warmUp(_ samples: [String], _ body: (UnsafePointer<UInt8>, Int) -> CInt) {
    for sample in samples {
        var bytes = Array(sample.utf8)
        bytes.append(0)
        _ = bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count - 1) }
    }
}
