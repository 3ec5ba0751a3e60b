// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import NIOConcurrencyHelpers

/// Failed logins per user and per client address within `lockout.window`. Beyond
/// `lockout.max_failures` the answer is a 401 without checking the password, until the oldest
/// failure leaves the window. Directory outages are never failures.
public final class LockoutTracker: Sendable {
    private struct State {
        var failures: [String: [ContinuousClock.Instant]] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let maxFailures: Int
    private let window: Duration
    /// The settings this tracker counts with; a reload with the same settings keeps the tracker.
    public let configuration: LockoutConfiguration
    /// Bounds memory under a flood of distinct names: the table is cleared of stale keys, then
    /// emptied if still this large.
    static let maximumKeys = 100_000

    public init(configuration: LockoutConfiguration) {
        maxFailures = configuration.maxFailures
        window = configuration.window
        self.configuration = configuration
    }

    private static func keys(users: Set<String>, address: String?) -> [String] {
        users.sorted().map { "user:" + $0 } + (address.map { ["address:" + $0] } ?? [])
    }

    /// Why a login known under `users` (one name per backend) from `address` is locked out, or nil.
    public func lockReason(users: Set<String>, address: String?) -> String? {
        guard maxFailures > 0 else { return nil }
        let now = ContinuousClock.now
        return state.withLockedValue { state -> String? in
            for key in Self.keys(users: users, address: address) {
                let recent = (state.failures[key] ?? []).filter { now - $0 < window }
                if recent.count >= maxFailures { return "locked out: \(recent.count) failed logins for \(key) within \(window)" }
            }
            return nil
        }
    }

    /// Counts a failed login; returns one sentence per key (`user:…`, `address:…`) whose lockout
    /// this failure starts.
    @discardableResult
    public func recordFailure(users: Set<String>, address: String?) -> [String] {
        guard maxFailures > 0 else { return [] }
        let now = ContinuousClock.now
        return state.withLockedValue { state -> [String] in
            if state.failures.count >= Self.maximumKeys {
                state.failures = state.failures.filter { $0.value.contains { now - $0 < window } }
                if state.failures.count >= Self.maximumKeys { state.failures.removeAll() }
            }
            var started: [String] = []
            for key in Self.keys(users: users, address: address) {
                var recent = (state.failures[key] ?? []).filter { now - $0 < window }
                recent.append(now)
                if recent.count > maxFailures { recent.removeFirst(recent.count - maxFailures) }
                if recent.count == maxFailures { started.append("lockout started for \(key)") }
                state.failures[key] = recent
            }
            return started
        }
    }

    /// A successful login clears the user's failures (not the address's).
    public func recordSuccess(users: Set<String>) {
        guard maxFailures > 0 else { return }
        state.withLockedValue { state in
            for user in users { state.failures.removeValue(forKey: "user:" + user) }
        }
    }
}
