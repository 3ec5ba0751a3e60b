// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Comparison of secrets whose running time depends only on their lengths, never on where
/// they first differ.
enum ConstantTime {
    static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(lhs, rhs) { difference |= a ^ b }
        return difference == 0
    }
}
