// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Yams

extension LogConfiguration {
    /// `log:` — level, format and denials_only, over the defaults.
    static func read(_ node: Node, into settings: inout LogConfiguration, reader: YAMLReader) {
        guard let log = reader.mapping(node, key: "log", allowed: ["level", "format", "denials_only"]) else { return }
        if let level = reader.string(log["level"], key: "log.level") {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            if levels.contains(level) { settings.level = level } else {
                reader.fail("log.level", log["level"], "\"\(level)\" is not one of \(levels.joined(separator: ", "))")
            }
        }
        if let format = reader.string(log["format"], key: "log.format") {
            if let value = LogConfiguration.Format(rawValue: format) { settings.format = value } else {
                reader.fail("log.format", log["format"], "\"\(format)\" is not text or json")
            }
        }
        if let value = reader.bool(log["denials_only"], key: "log.denials_only") { settings.denialsOnly = value }
    }
}
