// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers nginx's `/auth` subrequests on the event loop, in front of the router.
///
/// A decision the engine can make without a backend (a cached identity, an anonymous or
/// refused request, a lockout refusal whose timing is known) is written from here, with no
/// Swift task hop: that is most of nginx's traffic, and the router's per-request task cost
/// several times the decision itself. A cache miss goes to ``DecisionEngine/complete(_:)`` on
/// a task and is written when it returns. Everything else (`?explain`, a request with a body,
/// `Connection: close`, `/healthz`, `/readyz`, `/metrics`, after a graceful stop began) passes
/// to the router unchanged.
///
/// Answers leave in the order requests came: while an answer is outstanding (ours, or the
/// router's for a request passed on), later requests wait here and the socket is not read.
/// The handler also keeps the connection's idle timeout (the router's would not see the
/// requests answered here) and holds a graceful stop until its own answers are written.
final class AuthFastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let store: EngineStore
    private let audit: AuditLog
    private let idleTimeout: TimeAmount

    /// Whose request's parts are arriving now.
    private enum Current { case none, own, passedOn, waiting }
    private var current = Current.none
    /// One of our answers is being decided or waits for its time.
    private var answering = false
    /// Requests passed to the router whose answer's end has not been written yet.
    private var passedOn = 0
    /// Parts that arrived while an answer was outstanding, in order.
    private var waiting = CircularBuffer<HTTPRequestPart>()
    /// A `read` asked for while requests wait.
    private var readHeld = false
    /// A graceful stop began: everything goes to the router, which closes the connection.
    private var quiescing = false
    private var heldQuiesceEvent: Any?
    /// An answer said `Connection: close` (a refused body): nothing after it is decided.
    private var closing = false
    private var peer: SocketAddress?
    /// The peer as `trusted_proxies` sees it, worked out once per connection (and again after
    /// a reload that changes `trusted_proxies`).
    private var peerInfo: ClientAddress.Peer?
    private var lastActive = NIODeadline.now()
    private var idleTask: Scheduled<Void>?
    private var requestsOpen = 0
    private var requestBeingRead = false

    init(store: EngineStore, audit: AuditLog, idleTimeout: TimeAmount) {
        self.store = store
        self.audit = audit
        self.idleTimeout = idleTimeout
    }

    // MARK: Connection

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { becameActive(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        becameActive(context)
        context.fireChannelActive()
    }

    private func becameActive(_ context: ChannelHandlerContext) {
        peer = context.channel.remoteAddress
        lastActive = .now()
        scheduleIdleCheck(context, at: lastActive + idleTimeout)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTask?.cancel()
        idleTask = nil
        waiting.removeAll()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTask?.cancel()
        idleTask = nil
    }

    /// Closes a connection that has been silent for `idleTimeout`, unless an answer is being
    /// prepared for a request read whole (its end re-arms the check).
    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard idleTask == nil else { return }
        idleTask = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) {
            self.idleTask = nil
            if self.requestsOpen > 0, !self.requestBeingRead { return }
            let due = self.lastActive + self.idleTimeout
            if NIODeadline.now() >= due {
                context.close(promise: nil)
            } else {
                self.scheduleIdleCheck(context, at: due)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        // The router closes the connection at once when it has no request of its own: not
        // while one of ours is still to be written.
        if answering || !waiting.isEmpty {
            heldQuiesceEvent = event
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let part = unwrapInboundIn(data)
        lastActive = .now()
        switch part {
        case .head:
            requestsOpen += 1
            requestBeingRead = true
        case .end:
            requestBeingRead = false
        case .body:
            break
        }
        // A new request waits while an answer is outstanding or others wait before it; the
        // rest of a request follows its head (route).
        if case .head = part, answering || passedOn > 0 || !waiting.isEmpty {
            waiting.append(part)
            current = .waiting
            return
        }
        route(part, context: context)
    }

    /// Sends one part where it belongs: a head is answered here, passed on, or made to wait;
    /// the rest of a request follows its head.
    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        if case .head(let head) = part {
            guard !answering, passedOn == 0 else {
                current = .waiting
                waiting.append(part)
                return
            }
            if let policy = fastPathPolicy(head) {
                current = .own
                answering = true
                decide(head, policy: policy, context: context)
            } else {
                current = .passedOn
                passedOn += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
            return
        }
        switch current {
        case .own, .none: break  // the empty body of a request answered here
        case .passedOn: context.fireChannelRead(wrapInboundOut(part))
        case .waiting: waiting.append(part)
        }
    }

    /// The policy of a request this handler answers (nil for the default policy, wrapped),
    /// or nil when the router should.
    private func fastPathPolicy(_ head: HTTPRequest) -> String?? {
        guard !quiescing, let target = head.path, Self.methods.contains(head.method) else { return nil }
        let fields = head.headerFields
        // A body, or a client that wants the connection closed: the router's rules apply.
        if fields[.transferEncoding] != nil { return nil }
        if let length = fields[.contentLength], length != "0" { return nil }
        if let connection = fields[.connection], connection.lowercased().contains("close") { return nil }
        let path: Substring
        if let question = target.firstIndex(of: "?") {
            // `?explain` answers with a body: the router's.
            guard !AuthRoutes.wantsExplanation(String(target[target.index(after: question)...])) else { return nil }
            path = target[..<question]
        } else {
            path = target[...]
        }
        if path == "/auth" { return .some(nil) }
        guard path.hasPrefix("/auth/") else { return nil }
        let name = path.dropFirst(6)
        // Policy names are letters, digits, '-' and '_'; anything else is the router's 404.
        guard !name.isEmpty, name.utf8.allSatisfy({ Self.policyByte($0) }) else { return nil }
        return .some(String(name))
    }

    private static let methods: Set<HTTPRequest.Method> = Set(AuthRoutes.methods)

    private static func policyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    private func decide(_ head: HTTPRequest, policy: String?, context: ChannelHandlerContext) {
        let started = ContinuousClock.now
        let snapshot = store.snapshot
        let proxies = snapshot.configuration.trustedProxies
        if peerInfo?.trustedProxies != proxies { peerInfo = ClientAddress.Peer(peer, trustedProxies: proxies) }
        let request = AuthRoutes.authRequest(fields: head.headerFields, method: head.method, policy: policy, peer: peerInfo!, explain: false)
        switch snapshot.engine.decideImmediately(request) {
        case .decided(let decision, let notBefore):
            guard let notBefore, notBefore > .now else {
                answer(decision, request: request, snapshot: snapshot, started: started, context: context)
                return
            }
            // A refusal that must take as long as a verification: a timer on this loop.
            context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(ContinuousClock.now.duration(to: notBefore))) {
                self.answer(decision, request: request, snapshot: snapshot, started: started, context: context)
            }
        case .pending(let pending):
            let engine = snapshot.engine
            let promise = context.eventLoop.makePromise(of: Decision.self)
            promise.completeWithTask { await engine.complete(pending) }
            promise.futureResult.assumeIsolatedUnsafeUnchecked().whenSuccess { decision in
                self.answer(decision, request: request, snapshot: snapshot, started: started, context: context)
            }
        }
    }

    private func answer(_ decision: Decision, request: AuthRequest, snapshot: EngineStore.Snapshot, started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        audit.record(
            decision,
            method: request.method,
            uri: request.originalURIs.first,
            client: request.clientAddress,
            configuration: snapshot.configuration.log,
            latency: started.duration(to: .now)
        )
        guard context.channel.isActive else { return }
        context.write(wrapOutboundOut(.head(DecisionResponse.head(for: decision, challenge: snapshot.engine.challenge(for: decision.policy)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        answering = false
        answerEnded(context)
    }

    // MARK: Answers

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response) where response.headerFields[.connection]?.lowercased() == "close":
            // The router refused a request it could not trust the rest of (a body): the bytes
            // behind it are no requests of ours.
            closing = true
            waiting.removeAll()
            context.write(data, promise: promise)
        case .end:
            context.write(data, promise: promise)
            passedOn -= 1
            answerEnded(context)
        default:
            context.write(data, promise: promise)
        }
    }

    func read(context: ChannelHandlerContext) {
        if answering || !waiting.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// One answer's end is written: re-arm the idle check, then take the requests that waited,
    /// up to the next one that must wait again.
    private func answerEnded(_ context: ChannelHandlerContext) {
        requestsOpen -= 1
        lastActive = .now()
        if requestsOpen == 0 { scheduleIdleCheck(context, at: lastActive + idleTimeout) }
        let passedBefore = passedOn
        var replayed = false
        while !closing, let part = waiting.first {
            if case .head = part, answering || passedOn > 0 { break }
            waiting.removeFirst()
            if case .head = part { current = .none }
            replayed = true
            route(part, context: context)
        }
        // The router's channel hands reads on at "read complete": parts passed on outside a
        // read would sit there unseen.
        if replayed, passedOn > 0 || passedOn != passedBefore { context.fireChannelReadComplete() }
        // Parts that arrive from now on belong behind the ones still waiting.
        if !waiting.isEmpty { current = .waiting }
        guard !answering, waiting.isEmpty else { return }
        if let event = heldQuiesceEvent {
            heldQuiesceEvent = nil
            context.fireUserInboundEventTriggered(event)
        }
        if readHeld {
            readHeld = false
            context.read()
        }
    }
}
