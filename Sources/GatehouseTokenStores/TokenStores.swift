// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

public import GatehouseCore
public import Logging

/// The stores `tokens.store` can name: `sqlite:` (this module's SQLiteNIO driver) and
/// `postgres://` (PostgresNIO).
public enum TokenStores {
    public static func open(_ settings: TokenConfiguration, logger: Logger) async throws -> any TokenStore {
        switch settings.store {
        case .sqlite(let path): try await SQLiteTokenRunner.open(path: path)
        case .postgres(let location): PostgresTokenRunner.open(location, logger: logger)
        }
    }
}

extension TokenAuthority {
    /// The server's token list over the configured SQLite or PostgreSQL store.
    public convenience init(settings: TokenConfiguration, logger: Logger) {
        self.init(settings: settings, logger: logger, opener: TokenStores.open)
    }
}
