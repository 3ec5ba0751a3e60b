// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// Durations as the configuration and the command line write them: `500ms`, `10s`, `5m`,
/// `1h`, `30d`. A whole number and one unit; nothing else, so that `1.5h` or `5 m` is an
/// error rather than a guess.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (unit, milliseconds) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count)
            if unit == "s", number.hasSuffix("m") { continue }
            guard !number.isEmpty, number.allSatisfy(\.isASCII), let value = Int64(number), value >= 0, value < 1_000_000_000,
                value <= Int64.max / 1_000_000 / milliseconds
            else {
                return nil
            }
            return .milliseconds(value * milliseconds)
        }
        return nil
    }

    /// `1h30m` style is not accepted on input; output picks the largest whole unit.
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.milliseconds
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where milliseconds % size == 0 && milliseconds >= size {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}

extension Duration {
    /// Whole nanoseconds (NIO's `TimeAmount`, metrics, timers); saturates far beyond any timeout.
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : product &+ attoseconds / 1_000_000_000
    }

    /// Whole microseconds.
    package var microseconds: Int64 { nanoseconds / 1000 }

    /// Whole milliseconds.
    package var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
