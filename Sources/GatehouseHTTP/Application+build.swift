// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import GatehouseCore
public import Hummingbird
import Glibc
public import Logging
import NIOCore
public import Prometheus
import ServiceLifecycle

/// Builds the HTTP application for `configuration`: the router, the reload service, and the
/// listener. Tests call this with port 0 and drive it through HummingbirdTesting.
///
/// - Parameters:
///   - configuration: a validated configuration.
///   - logger: the process logger; audit lines go to it with the metadata `log=audit`.
///   - registry: where `/metrics` reads from; a new one per application unless given.
///   - reload: rereads the configuration on `SIGHUP` and on file changes; nil disables reloading.
public func buildApplication(
    configuration: Configuration,
    logger: Logger,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    reload: ReloadSource? = nil,
    auditWriter: AuditWriter? = nil,
    tokens: TokenAuthority? = nil
) throws -> some ApplicationProtocol {
    let metrics = GatehouseMetrics(factory: makeMetricsFactory(registry: registry))
    metrics.buildInfo(version: gatehouseVersion)
    let engine = try DecisionEngine(configuration: configuration, logger: logger, metrics: metrics, tokens: tokens)
    let store = EngineStore(engine: engine, configuration: configuration)
    var audit = logger
    audit[metadataKey: "log"] = "audit"
    let auditLog = AuditLog(logger: audit, writer: auditWriter)
    let router = buildRouter(store: store, audit: auditLog, registry: registry)
    TokenRoutes(store: store, logger: audit).register(on: router)
    let address: BindAddress =
        switch configuration.listen {
        case .tcp(let host, let port): .hostname(host, port: port)
        case .unix(let path): .unixDomainSocket(path: path)
        }
    var services: [any Service] = []
    if let reload {
        services.append(ReloadService(store: store, logger: logger, metrics: metrics, source: reload))
    }
    if let tokens {
        services.append(TokenPollService(tokens: tokens))
    }
    let idleTimeout = TimeAmount.nanoseconds(configuration.idleTimeout.nanoseconds)
    return Application(
        router: router,
        // The fast path keeps the idle timeout itself: the router's would not see the requests
        // answered on the event loop, and would close busy connections.
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [AuthFastPathHandler(store: store, audit: auditLog, idleTimeout: idleTimeout), CloseAfterResponseHandler()],
                idleTimeout: nil
            )
        ),
        configuration: ApplicationConfiguration(address: address, serverName: nil),
        services: services,
        onServerRunning: { _ in
            if case .unix(let path) = configuration.listen {
                secureSocket(path: path, mode: configuration.listenMode, group: configuration.listenGroup, logger: logger)
            }
        },
        logger: logger
    )
}

/// The routes of the service, on an existing ``EngineStore``.
public func buildRouter(store: EngineStore, audit: Logger, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) -> Router<GatehouseRequestContext> {
    buildRouter(store: store, audit: AuditLog(logger: audit), registry: registry)
}

func buildRouter(store: EngineStore, audit: AuditLog, registry: PrometheusCollectorRegistry) -> Router<GatehouseRequestContext> {
    let router = Router(context: GatehouseRequestContext.self)
    AuthRoutes(store: store, audit: audit).register(on: router)
    MetricsRoute(registry: registry).register(on: router)
    return router
}

/// The version `gatehouse_build_info` and `gatehouse --version` report.
public let gatehouseVersion = "0.3.0"

/// swift-metrics into Prometheus, with latency buckets for a service that answers in
/// microseconds from its cache and in milliseconds from a directory.
func makeMetricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.durationHistogramBuckets[GatehouseMetrics.decisionDuration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    return factory
}

/// Gives a unix socket the configured mode and group, so that nginx (and nobody else) can
/// connect. Until this runs the socket has the umask's mode, which is stricter or equal for
/// the usual umasks (connecting needs write permission).
func secureSocket(path: String, mode: UInt16, group: String?, logger: Logger) {
    if let group {
        if let entry = getgrnam(group), chown(path, uid_t.max, entry.pointee.gr_gid) != 0 {
            logger.error("cannot give \(path) the group \(group): \(String(cString: strerror(errno)))")
        }
    }
    if chmod(path, mode_t(mode)) != 0 {
        logger.error("cannot set the mode of \(path): \(String(cString: strerror(errno)))")
    }
}

/// Why a unix socket path cannot be used, or nil. A socket file that accepts connections
/// belongs to a running process: binding would silently take its address away (and remove
/// the file on exit). A socket file nobody listens on is left over from a crash and may go.
public func socketPathProblem(_ path: String) -> String? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    guard info.st_mode & S_IFMT == S_IFSOCK else { return "\(path) exists and is not a socket" }
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return "\(path) is too long for a unix socket" }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in bytes.enumerated() { raw[index] = byte }
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    return connected == 0 ? "another process is serving \(path)" : nil
}
