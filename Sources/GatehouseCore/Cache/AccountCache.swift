// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import NIOConcurrencyHelpers

/// Token owners as their backend last described them, so a token login on the hot path asks
/// no directory. Usable owners are kept for the cache `ttl`, refused ones for `negative_ttl`;
/// a changed htpasswd or htgroups file (a new generation) makes every entry stale at once.
final class OwnerCache: Sendable {
    enum State: Sendable {
        case usable(Identity)
        case refused(String)
    }

    private struct Entry {
        let state: State
        let expires: ContinuousClock.Instant
        let generation: Int
    }

    private let entries = NIOLockedValueBox([String: Entry]())
    private let ttl: Duration
    private let negativeTTL: Duration
    /// Owners are few (people with tokens); the bound only stops a pathological store.
    private let capacity = 10_000

    init(configuration: CacheConfiguration) {
        ttl = configuration.ttl
        negativeTTL = configuration.negativeTTL
    }

    func lookUp(backend: String, user: String, generation: Int) -> State? {
        let key = backend + "\u{0}" + user
        return entries.withLockedValue { entries in
            guard let entry = entries[key], entry.generation == generation, entry.expires > .now else { return nil }
            return entry.state
        }
    }

    func store(_ state: State, backend: String, user: String, generation: Int) {
        let lifetime: Duration
        switch state {
        case .usable: lifetime = ttl
        case .refused: lifetime = negativeTTL
        }
        guard lifetime > .zero else { return }
        let entry = Entry(state: state, expires: .now + lifetime, generation: generation)
        entries.withLockedValue { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[backend + "\u{0}" + user] = entry
        }
    }
}
