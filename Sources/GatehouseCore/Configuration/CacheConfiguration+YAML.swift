// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Yams

extension CacheConfiguration {
    /// `cache:` — its keys, checked, over the defaults.
    static func read(_ node: Node, into settings: inout CacheConfiguration, reader: YAMLReader) {
        guard let cache = reader.mapping(node, key: "cache", allowed: ["ttl", "negative_ttl", "stale_grace", "max_entries"]) else { return }
        if let value = reader.duration(cache["ttl"], key: "cache.ttl") { settings.ttl = value }
        if let value = reader.duration(cache["negative_ttl"], key: "cache.negative_ttl") { settings.negativeTTL = value }
        if let value = reader.duration(cache["stale_grace"], key: "cache.stale_grace") { settings.staleGrace = value }
        if let value = reader.integer(cache["max_entries"], key: "cache.max_entries", range: 0...10_000_000) { settings.maxEntries = value }
    }
}
