// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Yams

extension TokenConfiguration {
    /// `tokens:` — nil when the section is absent (tokens off).
    static func read(_ node: Node?, reader: YAMLReader, baseDirectory: String) -> TokenConfiguration? {
        guard let tokens = reader.mapping(node, key: "tokens", allowed: ["store", "max_lifetime", "self_service"]) else { return nil }
        var settings = TokenConfiguration(store: .sqlite(path: "/var/lib/gatehouse/tokens.db"))
        if let text = reader.string(tokens["store"], key: "tokens.store") {
            do {
                settings.store = try TokenStoreLocation(parsing: text, baseDirectory: baseDirectory)
            } catch {
                reader.fail("tokens.store", tokens["store"], error.description)
            }
        }
        if let value = reader.duration(tokens["max_lifetime"], key: "tokens.max_lifetime") {
            if value < .seconds(60) { reader.fail("tokens.max_lifetime", tokens["max_lifetime"], "must be at least 1m") } else { settings.maxLifetime = value }
        }
        if let value = reader.bool(tokens["self_service"], key: "tokens.self_service") { settings.selfService = value }
        return settings
    }
}
