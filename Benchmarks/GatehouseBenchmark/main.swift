// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

// Time per decision of the rule engine, release build:
//   swift run -c release gatehouse-benchmark
// Prints the median over rounds of nanoseconds per decision for a 50-rule policy.

import GatehouseCore

@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

func measure(_ name: String, iterations: Int = 200_000, rounds: Int = 7, _ body: () -> Bool) {
    var samples: [Double] = []
    var allowed = 0
    for _ in 0..<rounds {
        let clock = ContinuousClock()
        let started = clock.now
        for _ in 0..<iterations where body() { allowed += 1 }
        let elapsed = started.duration(to: clock.now)
        let (seconds, attoseconds) = elapsed.components
        samples.append((Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(iterations))
    }
    samples.sort()
    let median = samples[samples.count / 2]
    print("\(name.padding(50)) median \(String(format1: median)) ns/decision (min \(String(format1: samples[0])), max \(String(format1: samples[samples.count - 1]))), allowed \(allowed / rounds)/\(iterations)")
}

extension String {
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(tenths % 10)"
    }
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

// 48 team rules that do not apply to the requester, then the two that decide.
var rules: [Rule] = []
for team in 1...48 {
    rules.append(
        Rule(
            label: "bench#\(team)",
            users: [],
            groups: ["team-\(team)"],
            anonymous: false,
            resources: [try! Glob("team-\(team)/**"), try! Glob("shared/team-\(team)-*")],
            allowed: ["pull", "push"]
        )
    )
}
rules.append(Rule(label: "bench#49", users: ["*"], groups: [], anonymous: false, resources: [try! Glob("${user}/*")], allowed: ["pull", "push"]))
rules.append(Rule(label: "bench#50", users: ["*"], groups: [], anonymous: false, resources: nil, allowed: ["pull"]))
let policy = Policy(name: "bench", kind: .registry, rules: rules)
let identity = Identity(user: "alice", groups: ["developers", "readers", "staff", "vpn", "wiki-editors"], backend: "bench")
let access = Access(action: "pull", resource: "library/ubuntu")
print("policy with \(policy.rules.count) rules; the deciding rule is the last one")

measure("rules only (50 rules, last decides)") {
    policy.evaluate(access, identity: identity, trace: false).allowed
}
measure("rules only, ${user} rule decides (#49)") {
    policy.evaluate(Access(action: "push", resource: "alice/app"), identity: identity, trace: false).allowed
}
measure("URI check + registry route + rules") {
    guard let uri = try? OriginalURI(validating: "/v2/library/ubuntu/manifests/22.04"),
        let accesses = try? policy.accesses(method: "GET", uri: uri)
    else { return false }
    return accesses.allSatisfy { policy.evaluate($0, identity: identity, trace: false).allowed }
}
measure("same, with the explain trace", iterations: 50_000) {
    policy.evaluate(access, identity: identity, trace: true).allowed
}
