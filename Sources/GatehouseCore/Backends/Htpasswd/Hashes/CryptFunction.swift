// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CCrypt
import Glibc

/// libxcrypt's re-entrant `crypt_rn` and `crypt_gensalt_rn`.
///
/// `crypt_rn` returns NULL on every failure (unlike `crypt_r`, whose "*0" token looks like a
/// result), and its 32 KiB `crypt_data` must be zeroed before use, so each call gets a fresh,
/// zeroed heap block that is wiped afterwards.
enum CryptFunction {
    /// Hashes `phrase` with `setting` (a full stored hash or just its salt prefix).
    /// Returns nil when libxcrypt cannot use the setting.
    static func crypt(phrase: String, setting: String) -> String? {
        // A NUL would end the C string early and verify a prefix of the password.
        guard !phrase.utf8.contains(0), !setting.utf8.contains(0) else { return nil }
        let size = MemoryLayout<crypt_data>.size
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<crypt_data>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        defer {
            explicit_bzero(raw, size)
            raw.deallocate()
        }
        let data = raw.bindMemory(to: crypt_data.self, capacity: 1)
        guard let output = crypt_rn(phrase, setting, data, Int32(size)) else { return nil }
        return String(cString: output)
    }

    /// A fresh setting (prefix, cost and random salt) for `prefix` such as `$2y$` or `$6$`.
    static func generateSetting(prefix: String, cost: UInt) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let result = buffer.withUnsafeMutableBufferPointer { pointer in
            crypt_gensalt_rn(prefix, cost, nil, 0, pointer.baseAddress, Int32(pointer.count))
        }
        guard result != nil else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
