// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Foundation
@testable import GatehouseCore
@testable import GatehouseHTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import NIOConcurrencyHelpers
import Testing

/// What an operator watches: `/metrics`, the audit lines, reloads.
@Suite("Operations")
struct OperationsTests {
    typealias Fixture = AuthEndpointTests.Fixture

    /// Log lines as a handler receives them (after the logger's metadata is merged).
    final class LogCapture: Sendable {
        let lines = NIOLockedValueBox<[(message: String, metadata: Logger.Metadata)]>([])

        var logger: Logger {
            Logger(label: "test") { _ in Handler(capture: self) }
        }

        struct Handler: LogHandler {
            let capture: LogCapture
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                var all = metadata
                all.merge(event.metadata ?? [:]) { _, new in new }
                capture.lines.withLockedValue { $0.append(("\(event.message)", all)) }
            }
        }

        var auditLines: [Logger.Metadata] { lines.withLockedValue { $0.filter { $0.metadata["log"] == "audit" }.map(\.metadata) } }
    }

    /// The value of one series in a Prometheus text exposition, or nil if absent.
    static func value(_ series: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    static func scrape(_ client: some TestClientProtocol) async throws -> String {
        try await client.execute(uri: "/metrics", method: .get) { response in
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            return String(buffer: response.body)
        }
    }

    @Test func metricFamiliesAppearAndMove() async throws {
        let fixture = try Fixture()
        let app = try buildApplication(configuration: fixture.configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await app.test(.router) { client in
            let pull = "/v2/team/app/manifests/1"
            func ask(_ user: String?, _ password: String, method: String = "GET", uri: String = pull, path: String = "/auth") async throws -> HTTPResponse.Status {
                try await client.execute(uri: path, method: .get, headers: AuthEndpointTests.headers(user: user, password: password, method: method, uri: uri)) { $0.status }
            }
            #expect(try await ask("reader", "reader-pw") == .ok)
            #expect(try await ask("reader", "reader-pw") == .ok)
            #expect(try await ask("reader", "reader-pw", method: "PUT") == .forbidden)
            #expect(try await ask("zz-hostile-user", "nope", uri: "/v2/zz-secret-repository/manifests/1") == .unauthorized)
            #expect(try await ask("zz-hostile-user", "nope", uri: "/v2/zz-secret-repository/manifests/1") == .unauthorized)
            #expect(try await ask("reader", "reader-pw", path: "/auth/zz-no-such-policy") == .notFound)

            let text = try await Self.scrape(client)
            #expect(Self.value(#"gatehouse_decisions_total{outcome="allow",policy="registry",backend="local"}"#, in: text) == 2)
            #expect(Self.value(#"gatehouse_decisions_total{outcome="deny",policy="registry",backend="local"}"#, in: text) == 1)
            #expect(Self.value(#"gatehouse_decisions_total{outcome="challenge",policy="registry",backend="none"}"#, in: text) == 2)
            #expect(Self.value(#"gatehouse_decisions_total{outcome="deny",policy="unknown",backend="none"}"#, in: text) == 1, "a policy name from the path is not a label value")
            // reader: one miss, then hits; the unknown user: one miss, then a negative hit.
            #expect(Self.value("gatehouse_cache_misses_total", in: text) == 2)
            #expect(Self.value(#"gatehouse_cache_hits_total{verdict="success"}"#, in: text) == 2)
            #expect(Self.value(#"gatehouse_cache_hits_total{verdict="failure"}"#, in: text) == 1)
            #expect(Self.value(#"gatehouse_decision_duration_seconds_count{policy="registry"}"#, in: text) == 5)
            #expect(Self.value(#"gatehouse_build_info{version="\#(gatehouseVersion)"}"#, in: text) == 1)
            #expect(!text.contains("zz-"), "no user name, repository or policy a client chose appears in /metrics")
            #expect(!text.contains("reader"))

            // Moving: one more allowed request shows up in the next scrape.
            #expect(try await ask("reader", "reader-pw") == .ok)
            let again = try await Self.scrape(client)
            #expect(Self.value(#"gatehouse_decisions_total{outcome="allow",policy="registry",backend="local"}"#, in: again) == 3)
        }
    }

    @Test func lockoutsAreCounted() async throws {
        let fixture = try Fixture()
        fixture.configuration.lockout = LockoutConfiguration()
        fixture.configuration.lockout.maxFailures = 2
        let app = try buildApplication(configuration: fixture.configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await app.test(.router) { client in
            for password in ["a", "b", "c", "reader-pw"] {
                try await client.execute(uri: "/auth", method: .get, headers: AuthEndpointTests.headers(user: "reader", password: password, uri: "/v2/x/manifests/1")) { response in
                    #expect(response.status == .unauthorized)
                }
            }
            let text = try await Self.scrape(client)
            #expect(Self.value(#"gatehouse_lockouts_total{scope="pair"}"#, in: text) == 1)
            #expect(Self.value("gatehouse_locked_out_requests_total", in: text) == 2)
        }
    }

    @Test func auditLinesCarryTheDecisionButNoSecret() async throws {
        let fixture = try Fixture()
        let capture = LogCapture()
        let app = try buildApplication(configuration: fixture.configuration, logger: capture.logger)
        // Control characters never reach the log through a user name (the parser refuses them);
        // quotes and backslashes do, and must not forge a field.
        let hostile = #"eve" decision=allow \"#
        let secrets = ["reader-pw", "wrong-pw", "hostile-pw", Data("reader:reader-pw".utf8).base64EncodedString()]
        try await app.test(.router) { client in
            for (user, password, method, status) in [("reader", "reader-pw", "GET", HTTPResponse.Status.ok), ("reader", "reader-pw", "DELETE", .forbidden), ("reader", "wrong-pw", "GET", .unauthorized), (hostile, "hostile-pw", "GET", .unauthorized)] {
                try await client.execute(uri: "/auth", method: .get, headers: AuthEndpointTests.headers(user: user, password: password, method: method, uri: "/v2/team/app/manifests/1")) { response in
                    #expect(response.status == status)
                }
            }
        }
        let lines = capture.auditLines
        #expect(lines.map { $0["decision"]?.description } == ["allow", "deny", "challenge", "challenge"])
        #expect(lines.map { $0["status"]?.description } == ["200", "403", "401", "401"])
        #expect(lines.map { $0["user"]?.description } == ["reader", "reader", "-", "-"], "a failed login names no user: it would reveal which names exist")
        #expect(lines[0]["backend"]?.description == "local")
        #expect(lines[0]["repository"]?.description == "team/app")
        #expect(lines[0]["action"]?.description == "pull")
        #expect(lines[0]["client"] != nil)
        #expect(lines[0]["latency_ms"] != nil)
        #expect(lines[0]["cached"]?.description == "false")
        for line in lines {
            let rendered = line.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            for secret in secrets { #expect(!rendered.contains(secret), "the audit line must not contain \(secret)") }
            #expect(!rendered.unicodeScalars.contains { $0.properties.generalCategory == .control }, "control characters are escaped")
        }
        let details = lines.compactMap { $0["detail"]?.description }.joined(separator: "\n")
        #expect(details.contains(#"eve\" decision\u{3d}allow \\"#), "the hostile name is in the log detail, escaped, and adds no field")
    }

    /// `gatehouse serve` formats audit lines itself and writes them in batches; each line must
    /// say exactly what the logger's metadata said (same keys, same escaped values), in both
    /// formats, and a hostile value must not add a field to either.
    @Test func preformattedLinesMatchTheLoggerFields() throws {
        let capture = LogCapture()
        let audit = AuditLog(logger: { var l = capture.logger; l[metadataKey: "log"] = "audit"; return l }())
        var decision = Decision(
            outcome: .challenge, status: 401, policy: "registry", client: nil, user: nil, groups: [], backend: nil, email: nil, displayName: nil,
            action: "pull", repository: "team/app", path: nil, rule: "authentication", reason: "invalid user name or password",
            logDetail: #"user "eve" decision=allow \"#, cached: false, trace: []
        )
        decision.upstreamGroups = .none
        let hostileURI = "/v2/x\" rule=allow/manifests/1"
        audit.record(decision, method: "GET", uri: hostileURI, client: "192.0.2.1", configuration: LogConfiguration(), latency: .microseconds(1234))
        let expected = try #require(capture.auditLines.first)
        // Text: key=value pairs in sorted order, between "gatehouse:" and " [GatehouseHTTP] decision".
        let text = audit.line(decision, method: "GET", uri: hostileURI, client: "192.0.2.1", format: .text, latency: .microseconds(1234))
        #expect(text.hasSuffix(" [GatehouseHTTP] decision\n"))
        let body = try #require(text.range(of: "info test: ").map { text[$0.upperBound...] }).dropLast(" [GatehouseHTTP] decision\n".count)
        let rendered = expected.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        #expect(String(body) == rendered)
        // JSON: one object whose fields equal the metadata, status a number, cached a boolean.
        let json = audit.line(decision, method: "GET", uri: hostileURI, client: "192.0.2.1", format: .json, latency: .microseconds(1234))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["status"] as? Int == 401)
        #expect(object["cached"] as? Bool == false)
        #expect(object["message"] as? String == "decision" && object["level"] as? String == "info")
        #expect(object["uri"] as? String == hostileURI, "JSON keeps the value exact")
        #expect(Set(object.keys).subtracting(["time", "level", "label", "message"]) == Set(expected.keys))
    }

    /// Identity headers are never cut (an upstream would take a shortened name for a whole
    /// one); the reason, a sentence, and long log values are cut visibly, ending in "…".
    @Test func longValuesAreWholeOrVisiblyCut() {
        var decision = Decision.make(.allow, policy: "wiki", rule: "wiki#1", reason: String(repeating: "r", count: 3000))
        decision.user = "alice"
        decision.displayName = String(repeating: "N", count: 1500)
        decision.email = String(repeating: "e", count: 1100) + "@corp.example"
        let fields = DecisionResponse.fields(for: decision, challenge: "Basic")
        #expect(fields[DecisionResponse.name] == decision.displayName)
        #expect(fields[DecisionResponse.email] == decision.email)
        #expect(fields[DecisionResponse.reason]?.hasSuffix("…") == true)
        #expect(fields[DecisionResponse.reason]?.unicodeScalars.count == 1025)
        #expect(AuditLog.cut(String(repeating: "u", count: 600)).hasSuffix("…"))
        #expect(AuditLog.cut("short") == "short")
    }

    @Test func jsonLinesEscapeEverythingAClientSends() throws {
        var line = ""
        let hostile = "a\"b\\c\nd\re\tf\u{0}g\u{1B}h\u{7F}i\u{2028}j ü 🚀"
        JSONLogHandler.appendString(hostile, to: &line)
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0.value == 0x2028 })
        let parsed = try JSONSerialization.jsonObject(with: Data("[\(line)]".utf8)) as? [String]
        #expect(parsed == [hostile], "escaping is lossless: the log shipper sees the exact value")

        var object = ""
        JSONLogHandler.append(.dictionary(["n": .stringConvertible(3), "b": .stringConvertible(true), "s": .array([.string("x\n")])]), to: &object)
        #expect(object == #"{"b":true,"n":3,"s":["x\n"]}"#)
        #expect(JSONLogHandler.timestamp().count == "2026-11-29T18:04:05.123Z".count)
    }

    @Test func reloadRefusesABrokenConfigurationAndKeepsServing() async throws {
        let fixture = try Fixture()
        let registry = PrometheusCollectorRegistry()
        let metrics = GatehouseMetrics(factory: makeMetricsFactory(registry: registry))
        let capture = LogCapture()
        let engine = try DecisionEngine(configuration: fixture.configuration, logger: capture.logger, metrics: metrics)
        let store = EngineStore(engine: engine, configuration: fixture.configuration)
        let next = NIOLockedValueBox<Result<Configuration, ConfigurationErrors>>(.failure(ConfigurationErrors([ConfigurationError(key: "cache.ttl", line: 3, message: "is not a duration")])))
        let service = ReloadService(store: store, logger: capture.logger, metrics: metrics, source: ReloadSource(load: { try next.withLockedValue { $0 }.get() }, configurationFile: nil))

        #expect(await service.reload(.file) == .invalid)
        #expect(store.snapshot.engine.realm == "Registry", "the old configuration keeps serving")
        #expect(capture.lines.withLockedValue { $0.contains { $0.message.contains("reload refused") && $0.message.contains("cache.ttl") } })

        // A backend that cannot reach its directory is refused as well.
        var unreachable = fixture.configuration
        let passwordFile = fixture.directory.appendingPathComponent("bind-password").path
        try Data("secret\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        var ldap = LDAPConfiguration(name: "corp", preset: .openldap, urls: ["ldap://127.0.0.1:1"], bindDN: "cn=svc,dc=example,dc=org", baseDN: "dc=example,dc=org")
        ldap.insecure = true
        ldap.bindPasswordFile = passwordFile
        ldap.timeout = .seconds(1)
        unreachable.backends.append(.ldap(ldap))
        next.withLockedValue { $0 = .success(unreachable) }
        #expect(await service.reload(.signal) == .backendNotReady, "refused, and tried again later")
        #expect(store.snapshot.engine.backends.count == 1)

        var renamed = fixture.configuration
        renamed.realm = "Renamed"
        next.withLockedValue { $0 = .success(renamed) }
        #expect(await service.reload(.signal) == .applied)
        #expect(store.snapshot.engine.realm == "Renamed")

        let text = registry.emitToString()
        #expect(Self.value(#"gatehouse_config_reloads_total{trigger="file",result="failure"}"#, in: text) == 1)
        #expect(Self.value(#"gatehouse_config_reloads_total{trigger="signal",result="failure"}"#, in: text) == 1)
        #expect(Self.value(#"gatehouse_config_reloads_total{trigger="signal",result="success"}"#, in: text) == 1)
        #expect(Self.value("gatehouse_config_last_reload_success_timestamp_seconds", in: text).map { $0 > 1_700_000_000 } == true)
    }
}
