// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import Glibc
import NIOCore
import SQLiteNIO

/// The embedded store: one SQLite file, shared by the server and the command line on the same
/// host (WAL journal, busy timeout, so a `token create` never fails because the server reads).
///
/// Each operation opens the file anew. At one poll a second that costs nothing worth
/// measuring, and it means a file that was replaced, truncated or corrupted under a running
/// server is noticed at the next poll (a long-lived connection answers from its page cache
/// and would keep serving the old tokens).
struct SQLiteTokenRunner: TokenSQLRunner {
    let path: String

    static func open(path: String) async throws(TokenStoreUnavailable) -> SQLTokenStore<SQLiteTokenRunner> {
        // Created 0600 before SQLite sees it: the file holds who may push what.
        let descriptor = Glibc.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw TokenStoreUnavailable("cannot open \(path): \(String(cString: strerror(errno)))") }
        Glibc.close(descriptor)
        return SQLTokenStore(runner: SQLiteTokenRunner(path: path))
    }

    package func run(_ sql: String, _ binds: [TokenColumn]) async throws -> [[TokenColumn]] {
        try await withConnection { connection in try await Self.query(connection, sql, binds) }
    }

    package func migrate(_ body: @escaping @Sendable (any TokenSQLRunner) async throws -> Void) async throws {
        try await withConnection { connection in
            // WAL is a property of the file: set once, kept by every later connection.
            _ = try await Self.query(connection, "PRAGMA journal_mode = WAL", [])
            // IMMEDIATE: the write lock first, so two processes cannot both decide to migrate.
            _ = try await Self.query(connection, "BEGIN IMMEDIATE", [])
            do {
                try await body(OneConnection(connection: connection))
                _ = try await Self.query(connection, "COMMIT", [])
            } catch {
                _ = try? await Self.query(connection, "ROLLBACK", [])
                throw error
            }
        }
    }

    package func close() async {}

    private func withConnection<T: Sendable>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        do {
            _ = try await Self.query(connection, "PRAGMA busy_timeout = 5000", [])
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// The statements of a migration, on the connection that holds its transaction.
    private struct OneConnection: TokenSQLRunner {
        let connection: SQLiteConnection
        func run(_ sql: String, _ binds: [TokenColumn]) async throws -> [[TokenColumn]] { try await SQLiteTokenRunner.query(connection, sql, binds) }
        func migrate(_ body: @escaping @Sendable (any TokenSQLRunner) async throws -> Void) async throws { try await body(self) }
        func close() async {}
    }

    static func query(_ connection: SQLiteConnection, _ sql: String, _ binds: [TokenColumn]) async throws -> [[TokenColumn]] {
        let rows = try await connection.query(sql, binds.map { value -> SQLiteData in
            switch value {
            case .text(let text): .text(text)
            case .integer(let number): .integer(SQLiteInt64(number))
            case .null: .null
            }
        })
        return rows.map { row in
            row.columns.map { column in
                switch column.data {
                case .integer(let number): .integer(Int64(number))
                case .text(let text): .text(text)
                case .float(let number): .integer(Int64(number))
                case .blob, .null: .null
                }
            }
        }
    }
}
