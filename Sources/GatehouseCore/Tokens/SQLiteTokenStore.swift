// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
import NIOConcurrencyHelpers
import NIOCore
import SQLiteNIO

/// The embedded store: one SQLite file, shared by the server and the command line on the same
/// host (WAL journal, busy timeout, so a `token create` never fails because the server reads).
final class SQLiteTokenRunner: TokenSQLRunner {
    let connection: SQLiteConnection
    private let closed = NIOLockedValueBox(false)

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    deinit {
        // A store dropped without close() (a failed start, a test that stopped early) still
        // releases its handle; the future keeps the connection alive until then.
        if !closed.withLockedValue({ $0 }) { _ = connection.close() }
    }

    static func open(path: String) async throws(TokenStoreUnavailable) -> SQLTokenStore<SQLiteTokenRunner> {
        // Created 0600 before SQLite sees it: the file holds who may push what.
        let descriptor = Glibc.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw TokenStoreUnavailable("cannot open \(path): \(String(cString: strerror(errno)))") }
        Glibc.close(descriptor)
        do {
            let connection = try await SQLiteConnection.open(storage: .file(path: path))
            let runner = SQLiteTokenRunner(connection: connection)
            _ = try await runner.run("PRAGMA busy_timeout = 5000", [])
            _ = try await runner.run("PRAGMA journal_mode = WAL", [])
            return SQLTokenStore(runner: runner)
        } catch {
            throw TokenStoreUnavailable("sqlite:\(path): \(error)")
        }
    }

    func run(_ sql: String, _ binds: [TokenColumn]) async throws -> [[TokenColumn]] {
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

    func migrate(_ body: @escaping @Sendable (any TokenSQLRunner) async throws -> Void) async throws {
        // IMMEDIATE: the write lock first, so two processes cannot both decide to migrate.
        _ = try await run("BEGIN IMMEDIATE", [])
        do {
            try await body(self)
            _ = try await run("COMMIT", [])
        } catch {
            _ = try? await run("ROLLBACK", [])
            throw error
        }
    }

    func close() async {
        guard closed.withLockedValue({ closed in
            defer { closed = true }
            return !closed
        }) else { return }
        try? await connection.close()
    }
}
