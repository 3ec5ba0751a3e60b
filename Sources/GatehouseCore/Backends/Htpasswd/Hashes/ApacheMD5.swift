// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Crypto

/// Apache's `$apr1$` MD5 scheme (htpasswd's default), which libxcrypt does not implement.
enum ApacheMD5 {
    static let prefix = "$apr1$"
    private static let itoa64 = Array("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// The full `$apr1$salt$hash` string for `password` and `salt` (at most 8 characters are used).
    static func hash(password: [UInt8], salt: [UInt8]) -> String {
        let salt = Array(salt.prefix(8))
        let magic = Array(prefix.utf8)

        var alternate = Insecure.MD5()
        alternate.update(data: password)
        alternate.update(data: salt)
        alternate.update(data: password)
        let alternateDigest = Array(alternate.finalize())

        var context = Insecure.MD5()
        context.update(data: password)
        context.update(data: magic)
        context.update(data: salt)
        var remaining = password.count
        while remaining > 0 {
            context.update(data: alternateDigest.prefix(min(16, remaining)))
            remaining -= 16
        }
        var bits = password.count
        while bits != 0 {
            context.update(data: bits & 1 != 0 ? [0] : [password.first ?? 0])
            bits >>= 1
        }
        var final = Array(context.finalize())

        for round in 0..<1000 {
            var step = Insecure.MD5()
            step.update(data: round & 1 != 0 ? password : final)
            if round % 3 != 0 { step.update(data: salt) }
            if round % 7 != 0 { step.update(data: password) }
            step.update(data: round & 1 != 0 ? final : password)
            final = Array(step.finalize())
        }

        var encoded: [UInt8] = []
        func append(_ a: UInt8, _ b: UInt8, _ c: UInt8, count: Int) {
            var value = UInt32(a) << 16 | UInt32(b) << 8 | UInt32(c)
            for _ in 0..<count {
                encoded.append(itoa64[Int(value & 0x3F)])
                value >>= 6
            }
        }
        append(final[0], final[6], final[12], count: 4)
        append(final[1], final[7], final[13], count: 4)
        append(final[2], final[8], final[14], count: 4)
        append(final[3], final[9], final[15], count: 4)
        append(final[4], final[10], final[5], count: 4)
        append(0, 0, final[11], count: 2)
        return prefix + String(decoding: salt, as: UTF8.self) + "$" + String(decoding: encoded, as: UTF8.self)
    }

    /// A random 8-character salt from the crypt alphabet.
    static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<8).map { _ in itoa64[Int(generator.next(upperBound: UInt(itoa64.count)))] }
    }
}
