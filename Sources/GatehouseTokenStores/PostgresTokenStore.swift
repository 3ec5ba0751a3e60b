// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// The shared store: several Gatehouse instances behind one nginx read and write the same
/// PostgreSQL database. One connection per instance is plenty (a poll a second, rare writes);
/// it is opened on first use and again after any failure.
actor PostgresTokenRunner: TokenSQLRunner {
    private let location: PostgresLocation
    private let logger: Logger
    private var connection: PostgresConnection?
    private var nextID = 1

    init(location: PostgresLocation, logger: Logger) {
        self.location = location
        self.logger = logger
    }

    deinit {
        // Dropped without close(): release the socket all the same.
        if let connection, !connection.isClosed { connection.close().whenComplete { _ in } }
    }

    static func open(_ location: PostgresLocation, logger: Logger) -> SQLTokenStore<PostgresTokenRunner> {
        SQLTokenStore(runner: PostgresTokenRunner(location: location, logger: logger))
    }

    package func run(_ sql: String, _ binds: [TokenColumn]) async throws -> [[TokenColumn]] {
        let connection = try await connected()
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .text(let text): bindings.append(text)
            case .integer(let number): bindings.append(number)
            case .null: bindings.appendNull()
            }
        }
        do {
            var rows: [[TokenColumn]] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
                var values: [TokenColumn] = []
                for cell in row { values.append(try Self.column(cell)) }
                rows.append(values)
            }
            return rows
        } catch {
            if connection.isClosed { self.connection = nil }
            throw TokenStoreUnavailable(Self.explain(error))
        }
    }

    package func migrate(_ body: @escaping @Sendable (any TokenSQLRunner) async throws -> Void) async throws {
        _ = try await run("BEGIN", [])
        do {
            // One instance migrates; the others wait here, then find the work done.
            _ = try await run("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7163102548)) AS locked", [])
            try await body(self)
            _ = try await run("COMMIT", [])
        } catch {
            _ = try? await run("ROLLBACK", [])
            throw error
        }
    }

    package func close() async {
        try? await connection?.close()
        connection = nil
    }

    private func connected() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        var configuration: PostgresConnection.Configuration
        switch location.tls {
        case .disable:
            configuration = .init(host: location.host, port: location.port, username: location.user, password: location.password, database: location.database, tls: .disable)
        case .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .fullVerification
            if let file = location.rootCertificate { tls.trustRoots = .file(file) }
            do {
                configuration = .init(host: location.host, port: location.port, username: location.user, password: location.password, database: location.database, tls: .require(try NIOSSLContext(configuration: tls)))
            } catch {
                throw TokenStoreUnavailable("\(location): TLS set-up failed: \(error)")
            }
        }
        configuration.options.connectTimeout = .seconds(3)
        nextID += 1
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: nextID, logger: logger)
            self.connection = connection
            return connection
        } catch {
            throw TokenStoreUnavailable("\(location): \(Self.explain(error))")
        }
    }

    private static func column(_ cell: PostgresCell) throws -> TokenColumn {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8: return .integer(try cell.decode(Int64.self))
        case .int4: return .integer(Int64(try cell.decode(Int32.self)))
        case .int2: return .integer(Int64(try cell.decode(Int16.self)))
        default: return .text(try cell.decode(String.self))
        }
    }

    /// PostgresNIO's errors say little in `description` on purpose; the server's message and
    /// the error code are what an operator needs (neither carries a password).
    private static func explain(_ error: any Error) -> String {
        if let error = error as? TokenStoreUnavailable { return error.description }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return "PostgreSQL: \(message)" }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
}
