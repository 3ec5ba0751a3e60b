// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
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
    /// Bounds memory under a flood of distinct names (see `evict`).
    let maximumKeys: Int

    public convenience init(configuration: LockoutConfiguration) {
        self.init(configuration: configuration, maximumKeys: 100_000)
    }

    init(configuration: LockoutConfiguration, maximumKeys: Int) {
        self.maximumKeys = maximumKeys
        maxFailures = configuration.maxFailures
        window = configuration.window
        self.configuration = configuration
    }

    private static func keys(users: Set<String>, address: String?) -> [String] {
        users.sorted().map { "user:" + $0 } + (address.map { ["address:" + addressKey($0)] } ?? [])
    }

    /// The client an address counts for. An IPv6 client usually holds a whole /64 and can pick
    /// a fresh address for every guess, so IPv6 addresses count per /64 (as fail2ban and most
    /// rate limiters do); IPv4-mapped IPv6 counts as the IPv4 address.
    static func addressKey(_ address: String) -> String {
        guard let bytes = IPNetwork.addressBytes(address) else { return address }
        if bytes.count == 4 { return address }
        if bytes.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
            return bytes.suffix(4).map(String.init).joined(separator: ".")
        }
        var network = in6_addr()
        withUnsafeMutableBytes(of: &network) { raw in
            for index in 0..<8 { raw[index] = bytes[index] }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &network, &text, socklen_t(text.count)) != nil else { return address }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/64"
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
            if state.failures.count >= maximumKeys { evict(&state, now: now) }
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

    /// Makes room under a flood of distinct names without lifting a lockout: stale keys go
    /// first, then the keys with the fewest recent failures (a spray of names leaves one
    /// failure each), the least recently failed first, down to nine tenths of the limit.
    /// Emptying the table instead would let anyone who can send enough distinct names reset
    /// the count of the account they are guessing.
    private func evict(_ state: inout State, now: ContinuousClock.Instant) {
        state.failures = state.failures.filter { $0.value.contains { now - $0 < window } }
        let target = maximumKeys * 9 / 10
        guard state.failures.count > target else { return }
        let ranked = state.failures.map { key, failures in
            (key: key, count: failures.count { now - $0 < window }, last: failures.max() ?? now)
        }.sorted { ($0.count, $0.last) < ($1.count, $1.last) }
        for entry in ranked.prefix(state.failures.count - target) { state.failures.removeValue(forKey: entry.key) }
    }

    /// A successful login clears the user's failures (not the address's).
    public func recordSuccess(users: Set<String>) {
        guard maxFailures > 0 else { return }
        state.withLockedValue { state in
            for user in users { state.failures.removeValue(forKey: "user:" + user) }
        }
    }
}
