// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Yams

extension LockoutConfiguration {
    /// `lockout:` — its keys and how they relate, over the defaults.
    static func read(_ node: Node, into settings: inout LockoutConfiguration, reader: YAMLReader) {
        guard let lockout = reader.mapping(node, key: "lockout", allowed: ["max_failures", "user_max_failures", "address_max_failures", "window"]) else { return }
        if let value = reader.integer(lockout["max_failures"], key: "lockout.max_failures", range: 0...1_000_000) {
            settings.maxFailures = value
        }
        if let value = reader.integer(lockout["user_max_failures"], key: "lockout.user_max_failures", range: 1...1_000_000) {
            settings.userMaxFailures = value
        }
        if let value = reader.integer(lockout["address_max_failures"], key: "lockout.address_max_failures", range: 1...1_000_000) {
            settings.addressMaxFailures = value
        }
        if let value = reader.duration(lockout["window"], key: "lockout.window") {
            if value < .seconds(1) { reader.fail("lockout.window", lockout["window"], "must be at least 1s") } else { settings.window = value }
        }
        if settings.maxFailures > 0, settings.userMaxFailures < settings.maxFailures {
            reader.fail("lockout.user_max_failures", lockout["user_max_failures"], "must be at least max_failures (\(settings.maxFailures)): it counts the same user over every address")
        }
        if settings.maxFailures > 0, settings.addressMaxFailures < settings.maxFailures {
            reader.fail("lockout.address_max_failures", lockout["address_max_failures"], "must be at least max_failures (\(settings.maxFailures)): it counts every user from the address")
        }
    }
}
