// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import NIOConcurrencyHelpers

/// How long real verifications take, per class of verification (an htpasswd hash's cost class,
/// an LDAP search and bind), as a running average.
///
/// A refused login that is never verified (a locked-out user, a user no backend knows, an
/// address over its ceiling) waits this long on a timer before it is answered, so that timing
/// does not tell it from a wrong password, and a flood of refused guesses costs no hashing.
final class VerificationTimes: Sendable {
    private let estimates = NIOLockedValueBox([String: Duration]())

    /// Adds one measured verification: an exponentially weighted average (1/8 new), so one
    /// slow outlier (a busy machine) moves the estimate by an eighth.
    func record(_ duration: Duration, for verificationClass: String) {
        estimates.withLockedValue { estimates in
            if let previous = estimates[verificationClass] {
                estimates[verificationClass] = previous + (duration - previous) / 8
            } else {
                estimates[verificationClass] = duration
            }
        }
    }

    /// The current estimate, or nil before the first measurement.
    func estimate(for verificationClass: String) -> Duration? {
        estimates.withLockedValue { $0[verificationClass] }
    }

    /// Waits until `started + estimate` without holding a thread (a timer); returns at once when
    /// that moment has passed.
    static func wait(_ estimate: Duration, since started: ContinuousClock.Instant) async {
        let deadline = started + estimate
        guard deadline > .now else { return }
        try? await Task.sleep(until: deadline, clock: .continuous)
    }
}
