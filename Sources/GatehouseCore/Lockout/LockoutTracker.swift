// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
import NIOConcurrencyHelpers

/// Failed logins, counted so that guessing stops without locking out the people around the
/// guesser (the idea of Entra ID's smart lockout, on an HTTP Basic gate).
///
/// Three counters take every failure, each over a sliding `window`:
/// - **pair** (user, address), `max_failures`: the user is refused *from that address only*;
///   alice's own desk keeps working while someone guesses her password elsewhere.
/// - **user**, `user_max_failures` (higher): a guesser spread over many addresses; the user is
///   refused from everywhere.
/// - **address**, `address_max_failures` (higher still): a sprayer trying many users from one
///   address. The address gets no *new* verifications, but a credential verified correct within
///   the cache `ttl` still passes, so the office behind that NAT keeps working.
///
/// The same wrong password repeated from one address (a client retrying a stale secret) counts
/// once. Each counter is a fixed-size record (two window buckets, a lock deadline and the last
/// few wrong-password fingerprints): O(1) time and memory per key, whatever `max_failures` is.
/// Directory outages are never failures.
public final class LockoutTracker: Sendable {
    /// What a counter counts for.
    public enum Scope: String, Sendable, CaseIterable {
        case pair, user, address
    }

    /// A typed counter key: the text appears only in log lines.
    struct Key: Hashable, Sendable, CustomStringConvertible {
        let scope: Scope
        let user: String
        let address: String

        var description: String {
            switch scope {
            case .pair: "user \(user) from \(address)"
            case .user: "user \(user)"
            case .address: "address \(address)"
            }
        }
    }

    /// One sliding-window counter: the failures of the current and the previous window-long
    /// bucket, weighted by how much of the previous one still lies inside the window.
    struct Counter: Sendable {
        var bucketStart: ContinuousClock.Instant
        var current: Int32 = 0
        var previous: Int32 = 0
        /// Verifications started and not finished: they count toward the limit, so that 32
        /// concurrent guesses cannot all pass the check before the first failure is counted.
        var pending: Int32 = 0
        var lockedUntil: ContinuousClock.Instant?
        var lastFailure: ContinuousClock.Instant
        /// Keyed hashes of the last wrong passwords (pair counters only).
        var fingerprints: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var nextFingerprint: UInt8 = 0

        init(now: ContinuousClock.Instant) {
            bucketStart = now
            lastFailure = now
        }

        mutating func advance(to now: ContinuousClock.Instant, window: Duration) {
            // A lock that has run its window ends with a clean slate: the sliding estimate
            // would otherwise keep refusing for up to another window.
            if let lockedUntil, now >= lockedUntil {
                self.lockedUntil = nil
                current = 0
                previous = 0
                bucketStart = now
            }
            let elapsed = bucketStart.duration(to: now)
            guard elapsed >= window else { return }
            previous = elapsed < window * 2 ? current : 0
            current = 0
            bucketStart = elapsed < window * 2 ? bucketStart + window : now
        }

        /// Failures within the last window (the previous bucket weighted by its overlap).
        func estimate(at now: ContinuousClock.Instant, window: Duration) -> Double {
            let elapsed = bucketStart.duration(to: now) / window
            return Double(current) + Double(previous) * max(0, 1 - elapsed)
        }

        func isLocked(at now: ContinuousClock.Instant) -> Bool {
            lockedUntil.map { now < $0 } ?? false
        }

        func remembers(_ fingerprint: UInt64) -> Bool {
            let f = fingerprints
            return f.0 == fingerprint || f.1 == fingerprint || f.2 == fingerprint || f.3 == fingerprint
        }

        mutating func remember(_ fingerprint: UInt64) {
            switch nextFingerprint & 3 {
            case 0: fingerprints.0 = fingerprint
            case 1: fingerprints.1 = fingerprint
            case 2: fingerprints.2 = fingerprint
            default: fingerprints.3 = fingerprint
            }
            nextFingerprint &+= 1
        }
    }

    /// What the counters say about a login before any verification.
    public struct Status: Sendable, Equatable {
        /// Refuse without verifying, whatever the password: the pair or the user is locked.
        public let locked: Scope?
        /// The address is over its ceiling: refuse unless the cache vouches for the credential.
        public let addressOverCeiling: Bool
        /// For the log: which counter refuses.
        public let reason: String?
        /// Whether this user has failures counted from this address (a success clears them).
        public let pairHasFailures: Bool

        static let open = Status(locked: nil, addressOverCeiling: false, reason: nil, pairHasFailures: false)
    }

    private let state = NIOLockedValueBox([Key: Counter]())
    /// The settings this tracker counts with; a reload with the same settings keeps the tracker.
    public let configuration: LockoutConfiguration
    /// Bounds memory under a flood of distinct names (see `evict`).
    let maximumKeys: Int

    public convenience init(configuration: LockoutConfiguration) {
        self.init(configuration: configuration, maximumKeys: 100_000)
    }

    init(configuration: LockoutConfiguration, maximumKeys: Int) {
        self.maximumKeys = maximumKeys
        self.configuration = configuration
    }

    private var isEnabled: Bool { configuration.maxFailures > 0 }

    private func limit(_ scope: Scope) -> Int {
        switch scope {
        case .pair: configuration.maxFailures
        case .user: configuration.userMaxFailures
        case .address: configuration.addressMaxFailures
        }
    }

    /// The counters a failure of `users` (one name per backend) from `address` touches. Without
    /// an address (`gatehouse check`), the pair is the user with "no address".
    private static func keys(users: Set<String>, address: String?) -> [Key] {
        let client = address.map(addressKey)
        var keys: [Key] = []
        for user in users.sorted() {
            keys.append(Key(scope: .pair, user: user, address: client ?? "-"))
            keys.append(Key(scope: .user, user: user, address: ""))
        }
        if let client { keys.append(Key(scope: .address, user: "", address: client)) }
        return keys
    }

    /// The client an address counts for. An IPv6 client usually holds a whole /64 and can pick
    /// a fresh address for every guess, so IPv6 addresses count per /64 (as fail2ban and most
    /// rate limiters do); IPv4-mapped IPv6 counts as the IPv4 address.
    static func addressKey(_ address: String) -> String {
        guard let bytes = IPNetwork.addressBytes(address) else { return address }
        if bytes.count == 4 { return address }
        if let mapped = IPNetwork.mappedIPv4(bytes) { return mapped.map(String.init).joined(separator: ".") }
        var network = in6_addr()
        withUnsafeMutableBytes(of: &network) { raw in
            for index in 0..<8 { raw[index] = bytes[index] }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &network, &text, socklen_t(text.count)) != nil else { return address }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/64"
    }

    /// Whether a login known under `users` from `address` may be verified.
    public func status(users: Set<String>, address: String?) -> Status {
        guard isEnabled else { return .open }
        // The usual case, nobody failing: no keys to build.
        guard !state.withLockedValue({ $0.isEmpty }) else { return .open }
        let now = ContinuousClock.now
        let keys = Self.keys(users: users, address: address)
        return state.withLockedValue { counters -> Status in
            guard !counters.isEmpty else { return .open }
            var addressOver = false
            var pairHasFailures = false
            for key in keys {
                guard let counter = counters[key] else { continue }
                if key.scope == .pair { pairHasFailures = true }
                guard counter.isLocked(at: now) else { continue }
                if key.scope == .address {
                    addressOver = true
                    continue
                }
                return Status(
                    locked: key.scope,
                    addressOverCeiling: false,
                    reason: "locked out: too many failed logins for \(key) within \(configuration.window)",
                    pairHasFailures: pairHasFailures
                )
            }
            guard addressOver else { return Status(locked: nil, addressOverCeiling: false, reason: nil, pairHasFailures: pairHasFailures) }
            return Status(
                locked: nil,
                addressOverCeiling: true,
                reason: "address \(keys.last!.address) is over its ceiling of failed logins; only cached credentials pass",
                pairHasFailures: pairHasFailures
            )
        }
    }

    /// Counts a failed login whose wrong password has the keyed hash `fingerprint`; returns the
    /// scopes whose lockout this failure starts (empty when it was a repeat, or nothing started).
    @discardableResult
    public func recordFailure(users: Set<String>, address: String?, fingerprint: UInt64) -> [Scope] {
        guard isEnabled else { return [] }
        let now = ContinuousClock.now
        let keys = Self.keys(users: users, address: address)
        let window = configuration.window
        return state.withLockedValue { counters -> [Scope] in
            // A repeat of a wrong password from this address counts nowhere: a client retrying
            // a stale secret is one mistake.
            let repeatKey = keys.first { $0.scope == .pair }
            if let repeatKey, let counter = counters[repeatKey], counter.remembers(fingerprint) {
                counters[repeatKey]?.lastFailure = now
                return []
            }
            if counters.count + keys.count > maximumKeys { evict(&counters, now: now) }
            var started: [Scope] = []
            for key in keys {
                var counter = counters[key] ?? Counter(now: now)
                counter.advance(to: now, window: window)
                counter.current &+= 1
                counter.lastFailure = now
                if key == repeatKey { counter.remember(fingerprint) }
                if !counter.isLocked(at: now), counter.estimate(at: now, window: window) >= Double(limit(key.scope)) {
                    // Locked for a whole window from the failure that reached the limit.
                    counter.lockedUntil = now + window
                    started.append(key.scope)
                }
                counters[key] = counter
            }
            return started
        }
    }

    /// Claims a verification for a login not answered from the cache: nil when it may go
    /// ahead (then call ``finishVerification(users:address:outcome:)`` exactly once), else the
    /// scope that refuses it: a locked counter, or a pair or user counter whose failures plus
    /// verifications in flight already reach its limit. Without this, guesses sent in parallel would all be verified before
    /// the first failure is counted.
    public func reserveVerification(users: Set<String>, address: String?) -> Scope? {
        guard isEnabled else { return nil }
        let now = ContinuousClock.now
        let keys = Self.keys(users: users, address: address)
        let window = configuration.window
        // The address counter takes no claims: an office behind one NAT may have hundreds of
        // right passwords in verification at once (a morning, or the first minutes after a
        // reload emptied the cache), and they must not count against its ceiling. A sprayer
        // can overshoot that ceiling by its connection count at most, once.
        let claimed = keys.filter { $0.scope != .address }
        return state.withLockedValue { counters -> Scope? in
            for key in keys {
                guard var counter = counters[key] else { continue }
                counter.advance(to: now, window: window)
                counters[key] = counter
                if counter.isLocked(at: now) { return key.scope }
                let inFlight = key.scope == .address ? 0 : Double(counter.pending)
                if counter.estimate(at: now, window: window) + inFlight >= Double(limit(key.scope)) { return key.scope }
            }
            if counters.count + claimed.count > maximumKeys { evict(&counters, now: now) }
            for key in claimed {
                var counter = counters[key] ?? Counter(now: now)
                counter.pending += 1
                counters[key] = counter
            }
            return nil
        }
    }

    /// How a reserved verification ended.
    public enum VerificationOutcome: Sendable {
        /// Wrong password or unknown user; the keyed hash of the password tried.
        case failed(fingerprint: UInt64)
        case succeeded
        /// The backend could not answer: not a failure.
        case unknown
    }

    /// Ends a verification claimed with ``reserveVerification(users:address:)``, counting it;
    /// returns the scopes whose lockout it starts.
    @discardableResult
    public func finishVerification(users: Set<String>, address: String?, outcome: VerificationOutcome) -> [Scope] {
        guard isEnabled else { return [] }
        let keys = Self.keys(users: users, address: address).filter { $0.scope != .address }
        state.withLockedValue { counters in
            for key in keys {
                guard var counter = counters[key] else { continue }
                counter.pending = max(0, counter.pending - 1)
                // A claim on a counter that has counted nothing leaves nothing behind.
                if counter.pending == 0, counter.current == 0, counter.previous == 0, counter.lockedUntil == nil {
                    counters.removeValue(forKey: key)
                } else {
                    counters[key] = counter
                }
            }
        }
        switch outcome {
        case .failed(let fingerprint): return recordFailure(users: users, address: address, fingerprint: fingerprint)
        case .succeeded: recordSuccess(users: users, address: address)
        case .unknown: break
        }
        return []
    }

    /// A verified login clears the failures of that user from that address (not the user's
    /// across addresses, which a distributed guesser would otherwise reset by waiting for the
    /// user to log in, and not the address's).
    public func recordSuccess(users: Set<String>, address: String?) {
        guard isEnabled else { return }
        let keys = Self.keys(users: users, address: address).filter { $0.scope == .pair }
        let now = ContinuousClock.now
        state.withLockedValue { counters in
            for key in keys where counters[key]?.isLocked(at: now) == false && counters[key]?.pending == 0 { counters.removeValue(forKey: key) }
        }
    }

    /// Makes room under a flood of distinct names without lifting a lockout: keys whose window
    /// has passed go first, then the keys with the fewest recent failures (a spray of names
    /// leaves one failure each), the least recently failed first, down to nine tenths of the
    /// limit. Locked keys stay. Emptying the table instead would let anyone who can send
    /// enough distinct names reset the count of the account they are guessing.
    private func evict(_ counters: inout [Key: Counter], now: ContinuousClock.Instant) {
        let window = configuration.window
        counters = counters.filter { $0.value.isLocked(at: now) || $0.value.pending > 0 || ($0.value.current + $0.value.previous > 0 && $0.value.lastFailure.duration(to: now) < window) }
        let target = maximumKeys * 9 / 10
        guard counters.count > target else { return }
        let ranked = counters.filter { !$0.value.isLocked(at: now) && $0.value.pending == 0 }
            .map { (key: $0.key, count: $0.value.estimate(at: now, window: window), last: $0.value.lastFailure) }
            .sorted { ($0.count, $0.last) < ($1.count, $1.last) }
        for entry in ranked.prefix(counters.count - target) { counters.removeValue(forKey: entry.key) }
    }

    /// How many counters are held (for tests of the bound).
    var count: Int { state.withLockedValue { $0.count } }
}
