// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Runs the store's few statements on one database. `$1`, `$2`… bind in order on both
/// PostgreSQL and SQLite (SQLite numbers `$NNN` parameters by first appearance), so one set
/// of statements serves both.
package protocol TokenSQLRunner: Sendable {
    func run(_ sql: String, _ binds: [TokenColumn]) async throws -> [[TokenColumn]]
    /// Runs `statements` as one transaction that no other instance runs at the same time.
    func migrate(_ body: @escaping @Sendable (any TokenSQLRunner) async throws -> Void) async throws
    func close() async
}

/// ``TokenStore`` over SQL: the same schema and statements for SQLite and PostgreSQL.
package struct SQLTokenStore<Runner: TokenSQLRunner>: TokenStore {
    package let runner: Runner

    package init(runner: Runner) {
        self.runner = runner
    }

    package func prepare() async throws {
        try await unavailableOnError {
            try await runner.migrate { runner in
                _ = try await runner.run("CREATE TABLE IF NOT EXISTS gatehouse_schema (version INTEGER NOT NULL)", [])
                let rows = try await runner.run("SELECT version FROM gatehouse_schema", [])
                var version: Int64 = 0
                if let row = rows.first, case .integer(let value) = row.first { version = value } else {
                    _ = try await runner.run("INSERT INTO gatehouse_schema (version) VALUES (0)", [])
                }
                guard version <= Int64(TokenSchema.migrations.count) else {
                    throw TokenStoreUnavailable("the token store has schema version \(version), newer than this Gatehouse (\(TokenSchema.migrations.count)): upgrade Gatehouse")
                }
                for (index, statements) in TokenSchema.migrations.enumerated() where Int64(index + 1) > version {
                    for statement in statements { _ = try await runner.run(statement, []) }
                    _ = try await runner.run("UPDATE gatehouse_schema SET version = $1", [.integer(Int64(index + 1))])
                }
            }
        }
    }

    package func insert(_ token: AccessToken) async throws {
        try await unavailableOnError {
            let placeholders = (1...12).map { "$\($0)" }.joined(separator: ", ")
            _ = try await runner.run("INSERT INTO gatehouse_tokens (\(TokenSchema.columns)) VALUES (\(placeholders))", TokenSchema.values(token))
            try await bumpChangeCount()
        }
    }

    package func list(owner: (user: String, backend: String)?) async throws -> [AccessToken] {
        try await unavailableOnError {
            let rows: [[TokenColumn]]
            if let owner {
                rows = try await runner.run("SELECT \(TokenSchema.columns) FROM gatehouse_tokens WHERE owner = $1 AND backend = $2 ORDER BY created_at DESC, id", [.text(owner.user), .text(owner.backend)])
            } else {
                rows = try await runner.run("SELECT \(TokenSchema.columns) FROM gatehouse_tokens ORDER BY created_at DESC, id", [])
            }
            return try rows.map(TokenSchema.token)
        }
    }

    package func revoke(id: String, owner: (user: String, backend: String)?) async throws -> Bool {
        try await unavailableOnError {
            let rows: [[TokenColumn]]
            if let owner {
                rows = try await runner.run("DELETE FROM gatehouse_tokens WHERE id = $1 AND owner = $2 AND backend = $3 RETURNING id", [.text(id), .text(owner.user), .text(owner.backend)])
            } else {
                rows = try await runner.run("DELETE FROM gatehouse_tokens WHERE id = $1 RETURNING id", [.text(id)])
            }
            if !rows.isEmpty { try await bumpChangeCount() }
            return !rows.isEmpty
        }
    }

    package func revokeAll(user: String) async throws -> Int {
        try await unavailableOnError {
            let rows = try await runner.run("DELETE FROM gatehouse_tokens WHERE owner = $1 RETURNING id", [.text(user)])
            if !rows.isEmpty { try await bumpChangeCount() }
            return rows.count
        }
    }

    package func changeCount() async throws -> Int64 {
        try await unavailableOnError {
            let rows = try await runner.run("SELECT count FROM gatehouse_token_changes WHERE singleton = 1", [])
            guard let row = rows.first, case .integer(let count) = row.first else { throw TokenStoreUnavailable("gatehouse_token_changes has no row") }
            return count
        }
    }

    package func liveTokens(now: Int64) async throws -> [AccessToken] {
        try await unavailableOnError {
            try await runner.run("SELECT \(TokenSchema.columns) FROM gatehouse_tokens WHERE expires_at > $1", [.integer(now)]).map(TokenSchema.token)
        }
    }

    package func recordUse(_ times: [String: Int64]) async throws {
        try await unavailableOnError {
            for (id, time) in times {
                // Never backwards: another instance may have written a later use.
                _ = try await runner.run("UPDATE gatehouse_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)", [.integer(time), .text(id), .integer(time)])
            }
        }
    }

    package func close() async { await runner.close() }

    private func bumpChangeCount() async throws {
        _ = try await runner.run("UPDATE gatehouse_token_changes SET count = count + 1 WHERE singleton = 1", [])
    }

    /// Every failure of the database is "the store is unavailable": a token login then answers
    /// 503, never 401, and password logins go on.
    private func unavailableOnError<T>(_ body: () async throws -> T) async throws(TokenStoreUnavailable) -> T {
        do {
            return try await body()
        } catch let error as TokenStoreUnavailable {
            throw error
        } catch {
            throw TokenStoreUnavailable(String(describing: error))
        }
    }
}
