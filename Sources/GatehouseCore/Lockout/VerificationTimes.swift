// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import NIOConcurrencyHelpers

/// How long real verifications take, per class of verification (an htpasswd hash's cost class,
/// an LDAP search and bind): the median of the last 15 measured.
///
/// A refused login that is never verified (a locked-out user, a user no backend knows, an
/// address over its ceiling) waits this long on a timer before it is answered, so that timing
/// does not tell it from a wrong password, and a flood of refused guesses costs no hashing.
final class VerificationTimes: Sendable {
    private struct Samples {
        var recent: [Duration] = []
        var next = 0
        var median: Duration = .zero
    }

    /// How many recent verifications the estimate looks at.
    static let window = 15
    private let samples = NIOLockedValueBox([String: Samples]())

    /// Adds one measured verification. The median, not an average: a verification slowed by a
    /// busy machine (seen here: 250 ms among 90 ms ones) must not make every refusal wait
    /// longer than a typical wrong password, which timing would then tell apart.
    func record(_ duration: Duration, for verificationClass: String) {
        samples.withLockedValue { table in
            var entry = table[verificationClass] ?? Samples()
            if entry.recent.count < Self.window {
                entry.recent.append(duration)
            } else {
                entry.recent[entry.next] = duration
                entry.next = (entry.next + 1) % Self.window
            }
            let sorted = entry.recent.sorted()
            entry.median = sorted[sorted.count / 2]
            table[verificationClass] = entry
        }
    }

    /// The current estimate, or nil before the first measurement.
    func estimate(for verificationClass: String) -> Duration? {
        samples.withLockedValue { $0[verificationClass]?.median }
    }

    /// Waits until `started + estimate` without holding a thread (a timer); returns at once when
    /// that moment has passed.
    static func wait(_ estimate: Duration, since started: ContinuousClock.Instant) async {
        let deadline = started + estimate
        guard deadline > .now else { return }
        try? await Task.sleep(until: deadline, clock: .continuous)
    }
}
