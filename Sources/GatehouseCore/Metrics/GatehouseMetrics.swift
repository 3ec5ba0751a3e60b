// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import CLDAP
public import CoreMetrics
import Glibc
import NIOConcurrencyHelpers

/// What Gatehouse counts, through swift-metrics (the HTTP layer exports it for Prometheus).
///
/// Labels carry configured names (policies, backends) and fixed words only, never a user
/// name, a repository or any other value a client chooses: a client must not be able to grow
/// the number of series. A policy name that is not configured is counted as `unknown`.
public final class GatehouseMetrics: Sendable {
    /// Counts nothing: for the command line and for tests that do not look.
    public static let disabled = GatehouseMetrics(factory: NOOPMetricsHandler.instance)

    /// The name of the decision-latency histogram, for choosing its buckets.
    public static let decisionDuration = "gatehouse_decision_duration_seconds"

    let factory: any MetricsFactory
    private let series = NIOLockedValueBox<[SeriesKey: Counter]>([:])
    private let gauges = NIOLockedValueBox<[SeriesKey: Meter]>([:])

    private struct SeriesKey: Hashable {
        let name: String
        let labels: [String]
    }

    /// The cache's counters, created once: they move on every request.
    private let cacheHitsSuccess: Counter
    private let cacheHitsFailure: Counter
    private let cacheMisses: Counter
    /// The lockout's per-refusal counters, created once: a flood of guesses moves them.
    private let lockedOutRequests: Counter
    private let refusals: [String: Counter]
    private let timingWaitMicroseconds: Counter
    /// Token logins by result, created once: a CI fleet moves them on every request.
    private let tokenLogins: [Counter]

    public init(factory: any MetricsFactory) {
        self.factory = factory
        cacheHitsSuccess = Counter(label: "gatehouse_cache_hits_total", dimensions: [("verdict", "success")], factory: factory)
        cacheHitsFailure = Counter(label: "gatehouse_cache_hits_total", dimensions: [("verdict", "failure")], factory: factory)
        cacheMisses = Counter(label: "gatehouse_cache_misses_total", dimensions: [], factory: factory)
        lockedOutRequests = Counter(label: "gatehouse_locked_out_requests_total", dimensions: [], factory: factory)
        refusals = Dictionary(uniqueKeysWithValues: ["pair", "user", "address"].map { scope in
            (scope, Counter(label: "gatehouse_lockout_refusals_total", dimensions: [("scope", scope)], factory: factory))
        })
        timingWaitMicroseconds = Counter(label: "gatehouse_timing_wait_microseconds_total", dimensions: [], factory: factory)
        tokenLogins = TokenLoginResult.allCases.map { Counter(label: "gatehouse_token_logins_total", dimensions: [("result", $0.rawValue)], factory: factory) }
    }

    /// A counter by name and label pairs, created once and then looked up.
    func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
        Self.series(in: series, name, dimensions) { Counter(label: name, dimensions: dimensions, factory: factory) }
    }

    /// A gauge by name and label pairs (a swift-metrics `Meter`: it can go up and down).
    func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> Meter {
        Self.series(in: gauges, name, dimensions) { Meter(label: name, dimensions: dimensions, factory: factory) }
    }

    private static func series<Metric>(
        in table: NIOLockedValueBox<[SeriesKey: Metric]>,
        _ name: String,
        _ dimensions: [(String, String)],
        create: () -> Metric
    ) -> Metric {
        let key = SeriesKey(name: name, labels: dimensions.flatMap { [$0.0, $0.1] })
        return table.withLockedValue { table in
            if let existing = table[key] { return existing }
            let created = create()
            table[key] = created
            return created
        }
    }

    // MARK: Decisions

    /// Every decision series of an engine's policies and backends, created with the engine so
    /// that a decision finds its counter and histogram without a lock or a string key.
    struct DecisionSeries: Sendable {
        private let policies: [String: PolicySeries]
        private let unknown: PolicySeries
        private let backends: [String]

        struct PolicySeries: Sendable {
            /// [outcome][backend index; the last is "none"]
            let decisions: [[Counter]]
            let latency: Timer
        }

        init(metrics: GatehouseMetrics, policies: [String], backends: [String]) {
            self.backends = backends
            func series(_ policy: String) -> PolicySeries {
                let outcomes: [Decision.Outcome] = [.allow, .deny, .challenge, .unavailable]
                return PolicySeries(
                    decisions: outcomes.map { outcome in
                        (backends + ["none"]).map { backend in
                            Counter(label: "gatehouse_decisions_total", dimensions: [("outcome", outcome.rawValue), ("policy", policy), ("backend", backend)], factory: metrics.factory)
                        }
                    },
                    latency: Timer(label: GatehouseMetrics.decisionDuration, dimensions: [("policy", policy)], factory: metrics.factory)
                )
            }
            var table: [String: PolicySeries] = [:]
            for policy in policies { table[policy] = series(policy) }
            self.policies = table
            unknown = series("unknown")
        }

        /// `gatehouse_decisions_total{outcome,policy,backend}` and the latency histogram.
        func record(outcome: Decision.Outcome, policy: String, backend: String?, latency: Duration) {
            let series = policies[policy] ?? unknown
            let row = switch outcome {
            case .allow: 0
            case .deny: 1
            case .challenge: 2
            case .unavailable: 3
            }
            let column = backend.flatMap { name in backends.firstIndex(of: name) } ?? backends.count
            series.decisions[row][column].increment()
            series.latency.recordNanoseconds(latency.nanoseconds)
        }
    }

    // MARK: Cache

    func cacheHit(_ verdict: CredentialCache.Verdict) {
        if case .authenticated = verdict { cacheHitsSuccess.increment() } else { cacheHitsFailure.increment() }
    }

    func cacheMiss() { cacheMisses.increment() }
    func cacheEviction() { counter("gatehouse_cache_evictions_total").increment() }
    /// A success served from the cache because its backend could not be reached.
    func staleAnswer(backend: String) { counter("gatehouse_cache_stale_answers_total", [("backend", backend)]).increment() }

    // MARK: Lockout

    /// A lockout started for a `pair` (user from one address), a `user` or an `address`.
    func lockoutStarted(scope: String) { counter("gatehouse_lockouts_total", [("scope", scope)]).increment() }
    /// A login refused without verification because a `pair` or `user` is locked, or an
    /// `address` is over its ceiling and the cache did not vouch for the credential.
    func refusedGuess(scope: String) {
        lockedOutRequests.increment()
        (refusals[scope] ?? counter("gatehouse_lockout_refusals_total", [("scope", scope)])).increment()
    }
    /// Time spent waiting (a timer, no thread) so that refusals take as long as verifications.
    func timingWait(_ duration: Duration) {
        guard duration > .zero else { return }
        timingWaitMicroseconds.increment(by: Int(duration.microseconds))
    }

    // MARK: Tokens

    /// How a token login ended.
    enum TokenLoginResult: String, CaseIterable {
        /// The rules and the token's scope allowed the request.
        case allowed
        /// The token was good, but the rules or its scope refused this request (403).
        case denied
        /// Malformed, unknown, revoked, expired, wrong secret or owner, owner disabled (401).
        case refused
        /// The store or the owner's backend could not answer (503).
        case unavailable
    }

    func tokenLogin(_ result: TokenLoginResult) {
        tokenLogins[TokenLoginResult.allCases.firstIndex(of: result)!].increment()
    }

    // MARK: LDAP

    /// A failed LDAP operation, by kind: `timeout`, `tls`, `server_down`, `invalid_credentials`, `other`.
    func ldapError(backend: String, _ error: LDAPError) {
        counter("gatehouse_ldap_errors_total", [("backend", backend), ("kind", error.metricKind)]).increment()
    }

    /// A verification that found every LDAP thread busy and had to queue.
    func ldapWait(backend: String) { counter("gatehouse_ldap_pool_waits_total", [("backend", backend)]).increment() }

    /// Connections open and in use in one of a backend's pools (`search` or `bind`).
    func ldapPool(backend: String, pool: String, open: Int, inUse: Int) {
        gauge("gatehouse_ldap_pool_connections", [("backend", backend), ("pool", pool)]).set(open)
        gauge("gatehouse_ldap_pool_in_use", [("backend", backend), ("pool", pool)]).set(inUse)
    }

    /// The configured `pool_size` of an LDAP backend.
    func ldapPoolSize(backend: String, size: Int) {
        gauge("gatehouse_ldap_pool_size", [("backend", backend)]).set(size)
    }

    // MARK: Process

    /// A reload, by `trigger` (`signal`, `file`, `retry`) and `result` (`success`, `failure`).
    public func reload(trigger: String, success: Bool) {
        counter("gatehouse_config_reloads_total", [("trigger", trigger), ("result", success ? "success" : "failure")]).increment()
        if success {
            gauge("gatehouse_config_last_reload_success_timestamp_seconds").set(Double(time(nil)))
        }
    }

    /// `gatehouse_build_info{version} 1`.
    public func buildInfo(version: String) {
        gauge("gatehouse_build_info", [("version", version)]).set(1)
    }
}

extension LDAPError {
    /// The `kind` label of `gatehouse_ldap_errors_total`.
    var metricKind: String {
        switch code {
        case LDAP_TIMEOUT, LDAP_TIMELIMIT_EXCEEDED: "timeout"
        case LDAP_INVALID_CREDENTIALS: "invalid_credentials"
        case _ where step == .tls: "tls"
        case LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR, LDAP_UNAVAILABLE, LDAP_BUSY: "server_down"
        default: "other"
        }
    }
}
