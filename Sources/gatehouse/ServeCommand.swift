// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import GatehouseCore
import GatehouseTokenStores
import GatehouseHTTP
import Glibc
import Hummingbird
import Logging

/// `gatehouse serve`: the HTTP service nginx asks.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve /auth for nginx auth_request.",
        discussion: """
            Without --config, serves the seed policy on the embedded defaults: any user in \
            --htpasswd may log in and pull; members of --push-group (in --groups) may also push. \
            SIGHUP, or a change to the configuration file or a file it names, rereads the \
            configuration; SIGTERM finishes in-flight requests and exits.
            """
    )

    @OptionGroup var source: ConfigurationOptions

    @Option(help: "host:port, [v6]:port or unix:/path (default 127.0.0.1:9180).")
    var listen: String?

    mutating func validate() throws {
        if let listen, ListenAddress(parsing: listen) == nil {
            throw ValidationError("--listen \"\(listen)\" is not host:port, [v6]:port or unix:/path.")
        }
    }

    func run() async throws {
        let source = self.source
        let listen = self.listen.flatMap(ListenAddress.init(parsing:))
        let load: @Sendable () throws -> Configuration = {
            var configuration = try source.load()
            if let listen { configuration.listen = listen }
            return configuration
        }
        let configuration: Configuration
        do {
            configuration = try load()
        } catch {
            throw setupError("\(error)")
        }
        if case .unix(let path) = configuration.listen, let problem = socketPathProblem(path) {
            throw setupError("cannot listen on unix:\(path): \(problem)")
        }
        let level = Logger.Level(rawValue: configuration.log.level) ?? .info
        switch configuration.log.format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "gatehouse")
        // Audit lines are written in batches by a thread of their own, never by an event loop.
        let auditWriter = AuditWriter()
        defer { auditWriter.shutdown() }
        // Opened on first use by the poll, so that a database that is down delays token
        // logins (503) and nothing else.
        let tokens = configuration.tokens.map { TokenAuthority(settings: $0, logger: logger) }
        let app = try buildApplication(
            configuration: configuration,
            logger: logger,
            reload: ReloadSource(load: load, configurationFile: source.configurationFile),
            auditWriter: auditWriter,
            tokens: tokens
        )
        logger.notice("serving", metadata: ["listen": "\(configuration.listen)", "policies": "\(configuration.policies.map(\.name))", "version": "\(gatehouseVersion)"])
        try await app.runService()
        // Every line of a request that was answered is written before the process says it
        // stopped, and before it exits.
        auditWriter.shutdown()
        if case .unix(let path) = configuration.listen { unlink(path) }
        logger.notice("stopped")
    }
}
