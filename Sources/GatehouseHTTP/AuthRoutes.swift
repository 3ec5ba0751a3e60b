// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/auth`, `/auth/{policy}`, `/healthz` and `/readyz`.
struct AuthRoutes {
    static let originalMethod = HTTPField.Name("X-Original-Method")!
    static let originalURI = HTTPField.Name("X-Original-URI")!
    static let realIP = HTTPField.Name("X-Real-IP")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// nginx sends auth subrequests as GET, but a person with curl may use any method.
    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    let store: EngineStore
    let audit: AuditLog

    func register(on router: Router<GatehouseRequestContext>) {
        for method in Self.methods {
            router.on("/auth", method: method) { request, context in
                await self.decide(request, context: context, policy: nil)
            }
            router.on("/auth/:policy", method: method) { request, context in
                await self.decide(request, context: context, policy: context.parameters.get("policy"))
            }
        }
        router.get("/healthz") { _, _ in Response(status: .ok) }
        router.get("/readyz") { _, _ in await self.readiness() }
    }

    func decide(_ request: Request, context: GatehouseRequestContext, policy: String?) async -> Response {
        let started = ContinuousClock.now
        // The router forgives "/auth/" and "/auth//registry"; we do not: an nginx location whose
        // policy variable came out empty must not silently get the default policy.
        let expectedPath = policy.map { "/auth/\($0)" } ?? "/auth"
        guard request.uri.path == expectedPath else {
            return Response(status: .notFound, headers: [DecisionResponse.decision: "deny", DecisionResponse.rule: "unknown-policy"])
        }
        let headers = request.headers
        // nginx sends no body (the kit clears Content-Length). A body means a client talks to us
        // directly, and its framing is only checked after we answer: refuse before deciding, so
        // a malformed body can never carry a request of its own past a decision.
        if headers[.transferEncoding] != nil || (headers[.contentLength].map { $0 != "0" } ?? false) {
            return Response(
                status: .badRequest,
                headers: [DecisionResponse.decision: "deny", DecisionResponse.rule: "invalid-request", DecisionResponse.reason: "an auth request carries a body", .connection: "close"]
            )
        }
        let snapshot = store.snapshot
        let explain = Self.wantsExplanation(request.uri.query)
        let authRequest = Self.authRequest(
            fields: headers,
            method: request.method,
            policy: policy,
            peer: ClientAddress.Peer(context.remoteAddress, trustedProxies: snapshot.configuration.trustedProxies),
            explain: explain
        )
        let decision = await snapshot.engine.decide(authRequest)
        audit.record(
            decision,
            method: authRequest.method,
            uri: authRequest.originalURIs.first,
            client: authRequest.clientAddress,
            configuration: snapshot.configuration.log,
            latency: started.duration(to: .now)
        )
        return DecisionResponse.response(
            for: decision,
            challenge: snapshot.engine.challenge(for: decision.policy),
            explain: explain,
            policyKind: snapshot.engine.policies[decision.policy]?.kind
        )
    }

    private func readiness() async -> Response {
        var problems: [String] = []
        for backend in store.snapshot.engine.backends {
            if let problem = await backend.readinessProblem() { problems.append("\(backend.name): \(problem)") }
        }
        guard problems.isEmpty else {
            return Response(status: .serviceUnavailable, body: ResponseBody(byteBuffer: .init(string: problems.joined(separator: "\n") + "\n")))
        }
        return Response(status: .ok)
    }

    /// What nginx's subrequest asks: the client's method, URI, credentials and address. The
    /// router and ``AuthFastPathHandler`` both read requests with this.
    static func authRequest(
        fields: HTTPFields,
        method: HTTPRequest.Method,
        policy: String?,
        peer: ClientAddress.Peer,
        explain: Bool
    ) -> AuthRequest {
        AuthRequest(
            credentials: .authorizationHeaders(fields[values: .authorization]),
            method: fields[originalMethod] ?? method.rawValue,
            originalURIs: fields[values: originalURI],
            policyName: policy,
            clientAddress: ClientAddress.resolve(peer, fields: fields),
            wantsTrace: explain
        )
    }

    static func wantsExplanation(_ query: String?) -> Bool {
        guard let query else { return false }
        return query.split(separator: "&").contains { $0 == "explain" || $0.hasPrefix("explain=") }
    }
}
