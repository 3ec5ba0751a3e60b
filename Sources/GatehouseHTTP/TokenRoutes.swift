// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Crypto
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The self-service endpoints: a user manages their own access tokens with their password.
///
/// `GET /tokens/` (the page), `GET /tokens`, `POST /tokens` (JSON), `DELETE /tokens/{id}`.
/// Not on the hot path: each call authenticates like a login (cache, lockout, timing), and a
/// token is never accepted here (a leaked token must not mint more). A POST must say it is
/// JSON, which a cross-site form cannot, and every answer is `no-store`.
struct TokenRoutes {
    static let requestedWith = HTTPField.Name("X-Requested-With")!

    let store: EngineStore
    let logger: Logger
    private let pageHeaders: HTTPFields

    init(store: EngineStore, logger: Logger) {
        self.store = store
        self.logger = logger
        pageHeaders = Self.pageHeaders()
    }

    func register(on router: Router<GatehouseRequestContext>) {
        // The router treats /tokens and /tokens/ alike; the slash picks the page.
        router.get("/tokens") { request, context in
            if request.uri.path.hasSuffix("/") { return page() }
            return await manage(request, context) { tokens, owner, _ in
                let list = try await tokens.list(owner: owner)
                return json(.ok, TokenList(tokens: list.map { TokenView($0) }))
            }
        }
        router.post("/tokens") { request, context in
            await manage(request, context) { tokens, owner, engine in
                try await create(request, tokens: tokens, owner: owner, engine: engine, client: clientAddress(request, context))
            }
        }
        router.delete("/tokens/:id") { request, context in
            await manage(request, context) { tokens, owner, _ in
                // Only a token id's shape goes on to the store and the log.
                let id = context.parameters.get("id") ?? ""
                guard AccessToken.isID(id), try await tokens.revoke(id: id, owner: owner) else { return error(.notFound, "there is no such token of yours") }
                logger.notice("access token revoked", metadata: ["id": "\(id)", "owner": "\(owner.user)", "by": "self-service", "client": "\(clientAddress(request, context) ?? "-")"])
                return Response(status: .noContent, headers: [.cacheControl: "no-store"])
            }
        }
    }

    private struct TokenList: Encodable {
        let tokens: [TokenView]
    }

    private struct CreateRequest: Decodable {
        let name: String?
        let policy: String?
        let repositories: [String]?
        let actions: [String]?
        let paths: [String]?
        let methods: [String]?
        let expires: String?
    }

    private func create(_ request: Request, tokens: TokenAuthority, owner: Identity, engine: DecisionEngine, client: String?) async throws -> Response {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            return error(.unsupportedMediaType, "send the request as Content-Type: application/json")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 64 * 1024)
        } catch {
            return self.error(.contentTooLarge, "the request is larger than 64 KiB")
        }
        let asked: CreateRequest
        do {
            asked = try JSONDecoder().decode(CreateRequest.self, from: Data(body.readableBytesView))
        } catch {
            return self.error(.badRequest, "the body is not the JSON object this endpoint takes")
        }
        let scope: TokenScope
        do {
            let policy = asked.policy ?? engine.defaultPolicy
            switch (asked.repositories ?? asked.actions, asked.paths ?? asked.methods) {
            case (_?, nil):
                scope = try TokenScope(policy: policy, kind: .registry, resources: asked.repositories ?? [], permissions: asked.actions ?? [])
            case (nil, _?):
                scope = try TokenScope(policy: policy, kind: .http, resources: asked.paths ?? [], permissions: asked.methods ?? [])
            default:
                return error(.badRequest, "give repositories and actions (registry) or paths and methods (http), not both")
            }
            try engine.validate(scope)
        } catch {
            return self.error(.badRequest, "\(error)")
        }
        guard let expires = asked.expires, let lifetime = DurationText.parse(expires) else {
            return error(.badRequest, "expires must be a duration such as 30d, 12h or 90m")
        }
        do {
            let (token, secret) = try await tokens.create(owner: owner, name: asked.name ?? "", scope: scope, lifetime: lifetime)
            logger.notice("access token created", metadata: [
                "id": "\(token.id)", "owner": "\(token.owner)", "backend": "\(token.backend)", "policy": "\(scope.policy)",
                "scope": "\(scope.summary)", "expires": "\(TokenView.rfc3339(token.expiresAt))", "by": "self-service", "client": "\(client ?? "-")",
            ])
            return json(.created, TokenView(token, secret: secret))
        } catch let refusal as TokenRequestError {
            return error(.badRequest, refusal.description)
        }
    }

    /// Authenticates the caller with a password, then runs `body` with their identity.
    private func manage(
        _ request: Request,
        _ context: GatehouseRequestContext,
        _ body: (TokenAuthority, Identity, DecisionEngine) async throws -> Response
    ) async -> Response {
        let snapshot = store.snapshot
        guard let tokens = snapshot.engine.tokens, tokens.settings.selfService else {
            return error(.notFound, "access tokens are not enabled here")
        }
        let client = clientAddress(request, context)
        switch await snapshot.engine.authenticateManager(.authorizationHeaders(request.headers[values: .authorization]), address: client) {
        case .identity(let identity):
            do {
                return try await body(tokens, identity, snapshot.engine)
            } catch {
                logger.error("token store unavailable for self-service", metadata: ["error": "\(error)"])
                return self.error(.serviceUnavailable, "the token store is unavailable; try again later")
            }
        case .tokenPresented:
            return error(.forbidden, "a token cannot manage tokens: sign in with your password")
        case .refused(let detail):
            logger.info("token self-service login refused", metadata: ["client": "\(client ?? "-")", "detail": "\(detail)"])
            var response = error(.unauthorized, "invalid user name or password")
            // The page asks with X-Requested-With, and shows its own message instead of the
            // browser's password dialog.
            if request.headers[Self.requestedWith] == nil {
                response.headers[.wwwAuthenticate] = snapshot.engine.challenge
            }
            return response
        case .unavailable(let reason):
            logger.error("token self-service: backend unavailable", metadata: ["error": "\(reason)"])
            return error(.serviceUnavailable, "the directory is unavailable; try again later")
        }
    }

    private func clientAddress(_ request: Request, _ context: GatehouseRequestContext) -> String? {
        ClientAddress.resolve(ClientAddress.Peer(context.remoteAddress, trustedProxies: store.snapshot.configuration.trustedProxies), fields: request.headers)
    }

    private func page() -> Response {
        Response(status: .ok, headers: pageHeaders, body: ResponseBody(byteBuffer: ByteBuffer(string: TokenPage.html)))
    }

    private func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store", .xContentTypeOptions: "nosniff"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    private func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, ["error": message])
    }

    /// The page may run its own inline script and style, by hash, and talk to this origin only.
    private static func pageHeaders() -> HTTPFields {
        func hash(between open: String, and close: String) -> String {
            guard let start = TokenPage.html.range(of: open), let end = TokenPage.html.range(of: close, range: start.upperBound..<TokenPage.html.endIndex) else { return "'none'" }
            let digest = SHA256.hash(data: Data(TokenPage.html[start.upperBound..<end.lowerBound].utf8))
            return "'sha256-\(Data(digest).base64EncodedString())'"
        }
        let policy = "default-src 'none'; script-src \(hash(between: "<script>", and: "</script>")); style-src \(hash(between: "<style>", and: "</style>")); connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
        return [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: policy,
            .cacheControl: "no-store",
            .xContentTypeOptions: "nosniff",
            HTTPField.Name("X-Frame-Options")!: "DENY",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
    }
}
