// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseTokenStores
import Logging

/// `gatehouse token create|list|revoke`: the administrator's side of access tokens.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke access tokens (gth_…) in the configured store.",
        discussion: """
            A token is used as the Basic password with its owner's name. Its rights are the rules \
            evaluated with the owner's current groups and account, narrowed to its scope. Running \
            servers on the same store see a new or revoked token within 2 s.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct StoreOptions: ParsableArguments {
        @Option(help: "YAML configuration file (its `tokens:` section names the store).")
        var config: String = ConfigurationOptions.defaultConfigPath

        /// The configuration, an engine for owner lookups, and the opened store.
        func open() async throws -> (Configuration, DecisionEngine, TokenAuthority) {
            var logger = Logger(label: "gatehouse")
            logger.logLevel = .error
            do {
                let configuration = try Configuration.load(path: config)
                guard let settings = configuration.tokens else {
                    throw setupError("\(config) has no `tokens:` section; access tokens are off")
                }
                let tokens = TokenAuthority(settings: settings, logger: logger)
                let engine = try DecisionEngine(configuration: configuration, logger: logger, tokens: tokens)
                return (configuration, engine, tokens)
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw setupError("\(error)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token; prints it alone on the last line of standard output (shown once)."
        )

        @OptionGroup var store: StoreOptions

        @Option(help: "The owner: a user a backend knows and whose account may log in.")
        var user: String

        @Option(help: "The policy the token is for (default: the configuration's default policy).")
        var policy: String?

        @Option(parsing: .upToNextOption, help: "Repository globs (registry policies), e.g. 'team/*'.")
        var repositories: [String] = []

        @Option(help: "Registry actions, comma-separated: pull, push, delete, catalog.")
        var allow: String?

        @Option(parsing: .upToNextOption, help: "Path globs (http policies), e.g. '/wiki/**'.")
        var paths: [String] = []

        @Option(help: "HTTP methods, comma-separated, e.g. GET,HEAD.")
        var methods: String?

        @Option(help: "Lifetime: 30s, 10m, 12h, 30d; at most tokens.max_lifetime.")
        var expires: String

        @Option(help: "A label for the owner's list (\"ci\", \"laptop\").")
        var name: String = ""

        @Flag(help: "Print the token as JSON (its `token` field is the secret).")
        var json = false

        mutating func validate() throws {
            let registry = !repositories.isEmpty || allow != nil
            let http = !paths.isEmpty || methods != nil
            guard registry != http else { throw ValidationError("Give --repositories and --allow, or --paths and --methods.") }
            if registry, repositories.isEmpty || allow == nil { throw ValidationError("--repositories and --allow go together.") }
            if http, paths.isEmpty || methods == nil { throw ValidationError("--paths and --methods go together.") }
            guard DurationText.parse(expires) != nil else { throw ValidationError("--expires \"\(expires)\" is not a duration such as 30d, 12h or 90m.") }
        }

        func run() async throws {
            let (_, engine, tokens) = try await store.open()
            defer { engine.shutdown() }
            let lifetime = DurationText.parse(expires)!
            let policyName = policy ?? engine.defaultPolicy
            let token: AccessToken
            let secret: TokenSecret
            do {
                let scope = !repositories.isEmpty
                    ? try TokenScope(policy: policyName, kind: .registry, resources: repositories, permissions: Self.list(allow))
                    : try TokenScope(policy: policyName, kind: .http, resources: paths, permissions: Self.list(methods))
                try engine.validate(scope)
                let owner = try await engine.tokenOwner(named: user)
                (token, secret) = try await tokens.create(owner: owner, name: name, scope: scope, lifetime: lifetime)
            } catch {
                await tokens.close()
                throw setupError("\(error)")
            }
            await tokens.close()
            if json {
                print(TokenCommand.json(TokenView(token, secret: secret)))
            } else {
                print("Token \(token.id) for \(token.owner) (backend \(token.backend)), policy \(token.scope.policy): \(token.scope.summary), expires \(TokenView.rfc3339(token.expiresAt)).")
                print("It is shown once; use it as the password of \(token.owner):")
                print(secret.text)
            }
        }

        private static func list(_ text: String?) -> [String] {
            (text ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never a secret).")

        @OptionGroup var store: StoreOptions

        @Option(help: "Only this owner's tokens.")
        var user: String?

        @Flag(help: "Print JSON: {\"tokens\": [...]}.")
        var json = false

        func run() async throws {
            let (_, engine, tokens) = try await store.open()
            defer { engine.shutdown() }
            let list: [AccessToken]
            do {
                if let user { list = try await tokens.list(user: user) } else { list = try await tokens.list(owner: nil) }
            } catch {
                await tokens.close()
                throw setupError("\(error)")
            }
            await tokens.close()
            if json {
                print(TokenCommand.json(["tokens": list.map { TokenView($0) }]))
                return
            }
            let header = ["ID", "NAME", "OWNER", "POLICY", "SCOPE", "EXPIRES", "LAST-USED"]
            let rows = list.map { token in
                let view = TokenView(token)
                return [token.id, token.name.isEmpty ? "-" : token.name, "\(token.owner)@\(token.backend)", token.scope.policy, token.scope.summary,
                        view.expiresAt + (view.expired ? " (expired)" : ""), view.lastUsedAt ?? "never"]
            }
            let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
            for row in [header] + rows {
                print(row.enumerated().map { index, cell in index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke one token by id, or every token of a user; exit 1 when none matched."
        )

        @OptionGroup var store: StoreOptions

        @Argument(help: "The token's id (16 hex digits, as `token list` shows).")
        var id: String?

        @Option(help: "With --all: the owner whose tokens all go.")
        var user: String?

        @Flag(help: "Revoke every token of --user.")
        var all = false

        mutating func validate() throws {
            switch (id, user, all) {
            case (_?, nil, false), (nil, _?, true): return
            default: throw ValidationError("Give a token id, or --user NAME --all.")
            }
        }

        func run() async throws {
            let (_, engine, tokens) = try await store.open()
            defer { engine.shutdown() }
            let count: Int
            do {
                if let id {
                    count = try await tokens.revoke(id: id, owner: nil) ? 1 : 0
                } else {
                    count = try await tokens.revokeAll(user: user!)
                }
            } catch {
                await tokens.close()
                throw setupError("\(error)")
            }
            await tokens.close()
            guard count > 0 else {
                printError(id.map { "gatehouse: there is no token \($0)" } ?? "gatehouse: \(user!) has no tokens")
                throw ExitCode(1)
            }
            print(id.map { "Revoked token \($0); running servers refuse it within 2 s." } ?? "Revoked \(count) token(s) of \(user!); running servers refuse them within 2 s.")
        }
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
