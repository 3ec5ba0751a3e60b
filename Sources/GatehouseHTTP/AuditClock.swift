// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
import NIOConcurrencyHelpers

/// The timestamps of audit lines, formatted once a second instead of once a line: `localtime`
/// and `strftime` cost more than a cached decision.
final class AuditClock: Sendable {
    static let shared = AuditClock()

    private struct Cache {
        var second = -1
        /// swift-log's `StreamLogHandler` format, local time: `2026-11-29T18:53:14+0000`.
        var text = ""
        /// ``JSONLogHandler``'s format up to the seconds, UTC: `2026-11-29T18:53:14`.
        var jsonPrefix = ""
    }

    private let cache = NIOLockedValueBox(Cache())

    func textTimestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return current(now.tv_sec).text
    }

    func jsonTimestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = String(now.tv_nsec / 1_000_000 + 1000).dropFirst()
        return current(now.tv_sec).jsonPrefix + "." + milliseconds + "Z"
    }

    private func current(_ second: Int) -> Cache {
        cache.withLockedValue { cache in
            guard cache.second != second else { return cache }
            var seconds = second
            var local = tm()
            localtime_r(&seconds, &local)
            var buffer = [CChar](repeating: 0, count: 64)
            strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
            var utc = tm()
            gmtime_r(&seconds, &utc)
            var jsonBuffer = [CChar](repeating: 0, count: 64)
            strftime(&jsonBuffer, jsonBuffer.count, "%Y-%m-%dT%H:%M:%S", &utc)
            cache = Cache(
                second: second,
                text: String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                jsonPrefix: String(decoding: jsonBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            )
            return cache
        }
    }
}
