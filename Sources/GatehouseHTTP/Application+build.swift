// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import GatehouseCore
public import Hummingbird
public import Logging
import ServiceLifecycle

/// Builds the HTTP application for `configuration`: the router, the reload service, and the
/// listener. Tests call this with port 0 and drive it through HummingbirdTesting.
///
/// - Parameters:
///   - configuration: a validated configuration.
///   - logger: the process logger; audit lines go to it under the label `gatehouse.audit`.
///   - reload: rereads the configuration on `SIGHUP`; nil disables the reload service.
public func buildApplication(
    configuration: Configuration,
    logger: Logger,
    reload: (@Sendable () throws -> Configuration)? = nil
) throws -> some ApplicationProtocol {
    let engine = try DecisionEngine(configuration: configuration, logger: logger)
    let store = EngineStore(engine: engine, configuration: configuration)
    var audit = logger
    audit[metadataKey: "log"] = "audit"
    let router = buildRouter(store: store, audit: audit)
    let address: BindAddress =
        switch configuration.listen {
        case .tcp(let host, let port): .hostname(host, port: port)
        case .unix(let path): .unixDomainSocket(path: path)
        }
    var services: [any Service] = []
    if let reload {
        services.append(ReloadService(store: store, logger: logger, load: reload))
    }
    return Application(
        router: router,
        configuration: ApplicationConfiguration(address: address, serverName: nil),
        services: services,
        logger: logger
    )
}

/// The routes of the service, on an existing ``EngineStore``.
public func buildRouter(store: EngineStore, audit: Logger) -> Router<GatehouseRequestContext> {
    let router = Router(context: GatehouseRequestContext.self)
    AuthRoutes(store: store, audit: AuditLog(logger: audit)).register(on: router)
    return router
}
