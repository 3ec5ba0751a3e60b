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
    reload: ReloadSource? = nil
) throws -> some ApplicationProtocol {
    let metrics = GatehouseMetrics(factory: makeMetricsFactory(registry: registry))
    metrics.buildInfo(version: gatehouseVersion)
    let engine = try DecisionEngine(configuration: configuration, logger: logger, metrics: metrics)
    let store = EngineStore(engine: engine, configuration: configuration)
    var audit = logger
    audit[metadataKey: "log"] = "audit"
    let router = buildRouter(store: store, audit: audit, registry: registry)
    let address: BindAddress =
        switch configuration.listen {
        case .tcp(let host, let port): .hostname(host, port: port)
        case .unix(let path): .unixDomainSocket(path: path)
        }
    var services: [any Service] = []
    if let reload {
        services.append(ReloadService(store: store, logger: logger, metrics: metrics, source: reload))
    }
    let idleTimeout = TimeAmount.nanoseconds(Int64(configuration.idleTimeout.components.seconds) * 1_000_000_000 + configuration.idleTimeout.components.attoseconds / 1_000_000_000)
    return Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: idleTimeout)),
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
    let router = Router(context: GatehouseRequestContext.self)
    AuthRoutes(store: store, audit: AuditLog(logger: audit)).register(on: router)
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
        guard let entry = getgrnam(group) else {
            logger.error("listen_group \(group) does not exist; the socket keeps its group")
            return
        }
        if chown(path, uid_t.max, entry.pointee.gr_gid) != 0 {
            logger.error("cannot give \(path) the group \(group): \(String(cString: strerror(errno)))")
        }
    }
    if chmod(path, mode_t(mode)) != 0 {
        logger.error("cannot set the mode of \(path): \(String(cString: strerror(errno)))")
    }
}
