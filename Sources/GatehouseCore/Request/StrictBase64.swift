// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Base64 (RFC 4648 §4) that accepts exactly one spelling per byte string: the standard
/// alphabet, mandatory padding, and zero bits in the unused tail. Two different headers can
/// therefore never decode to the same credentials.
enum StrictBase64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    static func decode(_ input: some Collection<UInt8>) -> [UInt8]? {
        let input = Array(input)
        guard !input.isEmpty, input.count % 4 == 0 else { return nil }
        var padding = 0
        if input[input.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[input.count - 2] == UInt8(ascii: "=") { padding += 1 }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            var quad: UInt32 = 0
            for offset in 0..<4 {
                let byte = input[index + offset]
                let isPad = index + offset >= input.count - padding
                let value: UInt8
                if isPad {
                    value = 0
                } else {
                    value = reverse[Int(byte)]
                    guard value != 0xFF else { return nil }
                }
                quad = quad << 6 | UInt32(value)
            }
            output.append(UInt8(truncatingIfNeeded: quad >> 16))
            output.append(UInt8(truncatingIfNeeded: quad >> 8))
            output.append(UInt8(truncatingIfNeeded: quad))
            index += 4
        }
        output.removeLast(padding)
        // Canonical form: the bits the padding hides must be zero.
        let last = input.count - padding - 1
        if padding == 1, reverse[Int(input[last])] & 0x03 != 0 { return nil }
        if padding == 2, reverse[Int(input[last])] & 0x0F != 0 { return nil }
        return output
    }

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            output.append(alphabet[Int(triple >> 18 & 0x3F)])
            output.append(alphabet[Int(triple >> 12 & 0x3F)])
            output.append(remaining > 1 ? alphabet[Int(triple >> 6 & 0x3F)] : UInt8(ascii: "="))
            output.append(remaining > 2 ? alphabet[Int(triple & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
