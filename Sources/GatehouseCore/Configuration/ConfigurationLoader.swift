// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

import Glibc
import Yams

extension Configuration {
    /// Reads and validates a YAML configuration file. Relative file paths inside it are taken
    /// relative to the file's directory.
    public static func load(path: String) throws(ConfigurationErrors) -> Configuration {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            throw ConfigurationErrors([ConfigurationError(key: "", line: nil, message: error.description)])
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        return try parse(yaml: text, baseDirectory: directory.isEmpty ? "/" : directory)
    }

    /// Parses and validates YAML text; every problem is reported, each with its key and line.
    public static func parse(yaml text: String, baseDirectory: String = ".") throws(ConfigurationErrors) -> Configuration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
            throw ConfigurationErrors([repeatedKeys(duplicates, firstLine: context.mark.line)])
        } catch {
            throw ConfigurationErrors([ConfigurationError(key: "", line: nil, message: "not valid YAML: \(error)")])
        }
        let reader = YAMLReader()
        var configuration = Configuration()
        let top = reader.mapping(
            root ?? Node.mapping(.init([])),
            key: "",
            allowed: ["listen", "listen_mode", "listen_group", "idle_timeout", "realm", "trusted_proxies", "default_policy", "backends", "cache", "lockout", "log", "tokens", "kerberos", "policies"]
        )
        guard let top else { throw ConfigurationErrors(reader.errors) }

        if let text = reader.string(top["listen"], key: "listen") {
            if let address = ListenAddress(parsing: text) {
                configuration.listen = address
            } else {
                reader.fail("listen", top["listen"], "\"\(text)\" is not host:port, [v6]:port or unix:/path")
            }
        }
        if let text = reader.string(top["listen_mode"], key: "listen_mode") {
            if (3...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }), let mode = UInt16(text, radix: 8) {
                configuration.listenMode = mode
            } else {
                reader.fail("listen_mode", top["listen_mode"], "\"\(text)\" is not an octal file mode such as \"0660\"")
            }
        }
        if let group = reader.string(top["listen_group"], key: "listen_group") {
            if group.isEmpty || group.containsControlCharacter || group.contains(":") {
                reader.fail("listen_group", top["listen_group"], "must be a group name")
            } else if getgrnam(group) == nil {
                reader.fail("listen_group", top["listen_group"], "\"\(group)\" is not a group on this host")
            } else {
                configuration.listenGroup = group
            }
        }
        if let value = reader.duration(top["idle_timeout"], key: "idle_timeout") {
            if value < .seconds(1) {
                reader.fail("idle_timeout", top["idle_timeout"], "must be at least 1s")
            } else {
                configuration.idleTimeout = value
            }
        }
        if let realm = reader.string(top["realm"], key: "realm") {
            if realm.isEmpty || realm.containsControlCharacter {
                reader.fail("realm", top["realm"], "must be non-empty text without control characters")
            } else {
                configuration.realm = realm
            }
        }
        if let proxies = reader.strings(top["trusted_proxies"], key: "trusted_proxies") {
            var networks: [IPNetwork] = []
            for (index, text) in proxies.enumerated() {
                if let network = IPNetwork(parsing: text) {
                    networks.append(network)
                } else {
                    reader.fail("trusted_proxies[\(index + 1)]", reader.sequence(top["trusted_proxies"], key: "")?[index], "\"\(text)\" is not an address or CIDR network")
                }
            }
            configuration.trustedProxies = networks
        }
        configuration.backends = parseBackends(top["backends"], reader: reader, baseDirectory: baseDirectory)
        if let node = top["cache"] { CacheConfiguration.read(node, into: &configuration.cache, reader: reader) }
        if let node = top["lockout"] { LockoutConfiguration.read(node, into: &configuration.lockout, reader: reader) }
        if let node = top["log"] { LogConfiguration.read(node, into: &configuration.log, reader: reader) }
        configuration.policies = parsePolicies(top["policies"], reader: reader)
        configuration.tokens = TokenConfiguration.read(top["tokens"], reader: reader, baseDirectory: baseDirectory)
        configuration.kerberos = KerberosConfiguration.read(top["kerberos"], backends: configuration.backends, reader: reader, baseDirectory: baseDirectory)
        for policy in configuration.policies where policy.negotiate {
            if configuration.kerberos == nil, top["kerberos"] == nil {
                reader.fail("policies.\(policy.name).negotiate", root, "needs a `kerberos:` section (keytab, backend)")
            }
        }
        if let name = reader.string(top["default_policy"], key: "default_policy") {
            configuration.defaultPolicy = name
            if !configuration.policies.contains(where: { $0.name == name }) {
                reader.fail("default_policy", top["default_policy"], "names no policy under `policies`")
            }
        } else if configuration.policies.count == 1 {
            configuration.defaultPolicy = configuration.policies[0].name
        } else if !configuration.policies.isEmpty, !configuration.policies.contains(where: { $0.name == "registry" }) {
            reader.fail("default_policy", root, "is required when there are several policies and none is called registry")
        }
        guard reader.errors.isEmpty else { throw ConfigurationErrors(reader.errors) }
        return configuration
    }

    /// Yams refuses a mapping with repeated keys before our reader sees it. Its own message
    /// quotes the whole file, and the line it names is the first occurrence of whichever key
    /// sorts first with `Node`'s `<`. That order is not total (a list key against a scalar key,
    /// or `1` against `"1"`), so with such keys the line would change from one parse to the
    /// next; it is then left out rather than named at random.
    static func repeatedKeys(_ keys: [String], firstLine: Int) -> ConfigurationError {
        let unnamed = "<uncovertable>"  // Yams' placeholder for a key that is not a scalar
        let lineIsStable = !keys.contains(unnamed) && Set(keys).count == keys.count
        let names = keys.map { $0 == unnamed ? "(a key that is not a string)" : $0.debugDescription }
        // By bytes: String's `==` and `<` would merge or tie canonically equivalent spellings.
        let distinct = Set(names.map { Array($0.utf8) }).sorted { $0.lexicographicallyPrecedes($1) }
            .map { String(decoding: $0, as: UTF8.self) }
        return ConfigurationError(
            key: "",
            line: lineIsStable ? firstLine : nil,
            message: "repeated key\(distinct.count == 1 ? "" : "s") in one mapping: \(distinct.joined(separator: ", ")) (each key may appear once)"
        )
    }

    private static func parseBackends(_ node: Node?, reader: YAMLReader, baseDirectory: String) -> [BackendConfiguration] {
        guard let node else {
            reader.fail("backends", nil, "is required: at least one backend")
            return []
        }
        guard let items = reader.sequence(node, key: "backends") else { return [] }
        if items.isEmpty { reader.fail("backends", node, "needs at least one backend") }
        var backends: [BackendConfiguration] = []
        var names: Set<String> = []
        for (index, item) in items.enumerated() {
            let key = "backends[\(index + 1)]"
            guard case .mapping(let raw) = item else {
                reader.fail(key, item, "expected a mapping")
                continue
            }
            let type = raw["type"]?.string
            switch type {
            case "htpasswd":
                guard let fields = reader.mapping(item, key: key, allowed: ["name", "type", "file", "groups_file"]) else { continue }
                guard let name = requiredName(fields, key: key, node: item, reader: reader, names: &names) else { continue }
                guard let file = reader.string(fields["file"], key: "\(key).file") else {
                    if fields["file"] == nil { reader.fail("\(key).file", item, "is required for an htpasswd backend") }
                    continue
                }
                let path = resolve(file, baseDirectory)
                if FileStamp(path: path)?.isRegularFile != true { reader.fail("\(key).file", fields["file"], "\(path) is not a readable file") }
                var groupsPath: String?
                if let groups = reader.string(fields["groups_file"], key: "\(key).groups_file") {
                    groupsPath = resolve(groups, baseDirectory)
                    if FileStamp(path: groupsPath!)?.isRegularFile != true {
                        reader.fail("\(key).groups_file", fields["groups_file"], "\(groupsPath!) is not a readable file")
                    }
                }
                backends.append(.htpasswd(name: name, file: path, groupsFile: groupsPath))
            case "ldap":
                guard let fields = reader.mapping(item, key: key, allowed: LDAPConfiguration.keys) else { continue }
                guard let name = requiredName(fields, key: key, node: item, reader: reader, names: &names) else { continue }
                if let ldap = parseLDAP(fields, name: name, key: key, node: item, reader: reader, baseDirectory: baseDirectory) {
                    backends.append(.ldap(ldap))
                }
            case nil:
                reader.fail("\(key).type", item, "is required (htpasswd or ldap)")
            case let other?:
                reader.fail("\(key).type", raw["type"], "\"\(other)\" is not htpasswd or ldap")
            }
        }
        return backends
    }

    private static func parseLDAP(
        _ fields: [String: Node],
        name: String,
        key: String,
        node: Node,
        reader: YAMLReader,
        baseDirectory: String
    ) -> LDAPConfiguration? {
        let errorCount = reader.errors.count
        func required(_ field: String) -> String? {
            if fields[field] == nil { reader.fail("\(key).\(field)", node, "is required for an ldap backend") }
            return reader.string(fields[field], key: "\(key).\(field)")
        }
        var preset = LDAPConfiguration.Preset.openldap
        if let text = reader.string(fields["preset"], key: "\(key).preset") {
            if let value = LDAPConfiguration.Preset(rawValue: text) { preset = value } else {
                reader.fail("\(key).preset", fields["preset"], "\"\(text)\" is not active-directory or openldap")
            }
        }
        let urls = reader.strings(fields["urls"], key: "\(key).urls") ?? []
        if fields["urls"] == nil || urls.isEmpty { reader.fail("\(key).urls", fields["urls"] ?? node, "needs at least one ldap:// or ldaps:// URL") }
        let bindDN = required("bind_dn") ?? ""
        let baseDN = required("base_dn") ?? ""
        var ldap = LDAPConfiguration(name: name, preset: preset, urls: urls, bindDN: bindDN, baseDN: baseDN)
        if let value = reader.bool(fields["start_tls"], key: "\(key).start_tls") { ldap.startTLS = value }
        if let value = reader.bool(fields["insecure"], key: "\(key).insecure") { ldap.insecure = value }
        if let value = reader.bool(fields["nested_groups"], key: "\(key).nested_groups") { ldap.nestedGroups = value }
        if let value = reader.integer(fields["pool_size"], key: "\(key).pool_size", range: 1...64) { ldap.poolSize = value }
        if let value = reader.duration(fields["timeout"], key: "\(key).timeout") {
            if value < .milliseconds(100) || value > .seconds(120) {
                reader.fail("\(key).timeout", fields["timeout"], "must be between 100ms and 120s")
            } else {
                ldap.timeout = value
            }
        }
        if let filter = reader.string(fields["user_filter"], key: "\(key).user_filter") {
            if !filter.contains("{username}") || !filter.hasPrefix("(") {
                reader.fail("\(key).user_filter", fields["user_filter"], "must be a filter in parentheses containing {username}")
            }
            ldap.userFilter = filter
        }
        if let value = reader.string(fields["username_attribute"], key: "\(key).username_attribute") { ldap.usernameAttribute = value }
        if let value = reader.string(fields["group_base_dn"], key: "\(key).group_base_dn") { ldap.groupBaseDN = value }
        if let filter = reader.string(fields["group_filter"], key: "\(key).group_filter") {
            if !filter.hasPrefix("(") { reader.fail("\(key).group_filter", fields["group_filter"], "must be a filter in parentheses") }
            ldap.groupFilter = filter
        }
        if let value = reader.string(fields["group_attribute"], key: "\(key).group_attribute") { ldap.groupAttribute = value }
        for (field, path) in [("email_attribute", \LDAPConfiguration.emailAttribute), ("name_attribute", \LDAPConfiguration.nameAttribute)] {
            guard let value = reader.string(fields[field], key: "\(key).\(field)") else { continue }
            if !value.isEmpty, !value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ";") }) {
                reader.fail("\(key).\(field)", fields[field], "\"\(value)\" is not an LDAP attribute name (\"\" turns it off)")
            } else {
                ldap[keyPath: path] = value.isEmpty ? nil : value
            }
        }
        if let value = reader.strings(fields["upn_suffixes"], key: "\(key).upn_suffixes") { ldap.upnSuffixes = value }
        if let value = reader.string(fields["netbios_domain"], key: "\(key).netbios_domain") { ldap.netbiosDomain = value }
        if let file = reader.string(fields["ca_file"], key: "\(key).ca_file") {
            let path = resolve(file, baseDirectory)
            if FileStamp(path: path)?.isRegularFile != true { reader.fail("\(key).ca_file", fields["ca_file"], "\(path) is not a readable file") }
            ldap.caFile = path
        }
        if let file = reader.string(fields["bind_password_file"], key: "\(key).bind_password_file") {
            let path = resolve(file, baseDirectory)
            if FileStamp(path: path)?.isRegularFile != true { reader.fail("\(key).bind_password_file", fields["bind_password_file"], "\(path) is not a readable file") }
            ldap.bindPasswordFile = path
        }
        ldap.bindPasswordEnvironment = reader.string(fields["bind_password_env"], key: "\(key).bind_password_env")
        if ldap.bindPasswordFile == nil, ldap.bindPasswordEnvironment == nil {
            reader.fail("\(key).bind_password_file", node, "the service account needs bind_password_file or bind_password_env")
        }
        for (index, url) in urls.enumerated() {
            let field = "\(key).urls[\(index + 1)]"
            if url.hasPrefix("ldaps://") {
                if ldap.startTLS { reader.fail(field, fields["urls"], "start_tls is for ldap:// URLs; ldaps:// is TLS already") }
            } else if url.hasPrefix("ldap://") {
                if !ldap.startTLS && !ldap.insecure {
                    reader.fail(field, fields["urls"], "a simple bind over plain ldap:// sends passwords in clear: use ldaps://, start_tls: true, or insecure: true (tests on loopback only)")
                }
            } else {
                reader.fail(field, fields["urls"], "\"\(url)\" is not an ldap:// or ldaps:// URL")
            }
        }
        return reader.errors.count == errorCount ? ldap : nil
    }

    private static func requiredName(_ fields: [String: Node], key: String, node: Node, reader: YAMLReader, names: inout Set<String>) -> String? {
        guard let name = reader.string(fields["name"], key: "\(key).name") else {
            if fields["name"] == nil { reader.fail("\(key).name", node, "is required") }
            return nil
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            reader.fail("\(key).name", fields["name"], "use letters, digits, '-' and '_'")
            return nil
        }
        guard names.insert(name).inserted else {
            reader.fail("\(key).name", fields["name"], "\"\(name)\" is used by another backend")
            return nil
        }
        return name
    }

    static func resolve(_ path: String, _ baseDirectory: String) -> String {
        path.hasPrefix("/") ? path : (baseDirectory.hasSuffix("/") ? baseDirectory + path : baseDirectory + "/" + path)
    }

    private static func parsePolicies(_ node: Node?, reader: YAMLReader) -> [Policy] {
        guard let node else {
            reader.fail("policies", nil, "is required: at least one policy")
            return []
        }
        guard case .mapping(let mapping) = node else {
            reader.fail("policies", node, "expected a mapping of policy names to policies")
            return []
        }
        var policies: [Policy] = []
        for (nameNode, body) in mapping {
            guard let name = nameNode.string else { continue }
            let key = "policies.\(name)"
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                reader.fail(key, nameNode, "policy names use letters, digits, '-' and '_' (they appear in /auth/{policy})")
                continue
            }
            guard let fields = reader.mapping(body, key: key, allowed: ["type", "rules", "upstream_groups", "negotiate"]) else { continue }
            guard let typeText = reader.string(fields["type"], key: "\(key).type") else {
                if fields["type"] == nil { reader.fail("\(key).type", body, "is required (registry or http)") }
                continue
            }
            guard let kind = Policy.Kind(rawValue: typeText) else {
                reader.fail("\(key).type", fields["type"], "\"\(typeText)\" is not registry or http")
                continue
            }
            let ruleNodes = reader.sequence(fields["rules"], key: "\(key).rules") ?? []
            if fields["rules"] == nil { reader.fail("\(key).rules", body, "is required (an empty list denies everything)") }
            var rules: [Rule] = []
            for (index, ruleNode) in ruleNodes.enumerated() {
                if let rule = parseRule(ruleNode, policy: name, kind: kind, position: index + 1, reader: reader) { rules.append(rule) }
            }
            var upstreamGroups: [Glob]?
            if let patterns = reader.strings(fields["upstream_groups"], key: "\(key).upstream_groups") {
                upstreamGroups = []
                for (index, pattern) in patterns.enumerated() {
                    do {
                        upstreamGroups?.append(try Glob(pattern))
                    } catch {
                        reader.fail("\(key).upstream_groups[\(index + 1)]", fields["upstream_groups"], error.description)
                    }
                }
            }
            let negotiate = reader.bool(fields["negotiate"], key: "\(key).negotiate") ?? false
            policies.append(Policy(name: name, kind: kind, rules: rules, upstreamGroups: upstreamGroups, negotiate: negotiate))
        }
        if policies.isEmpty && reader.errors.isEmpty { reader.fail("policies", node, "needs at least one policy") }
        return policies
    }

    private static func parseRule(_ node: Node, policy: String, kind: Policy.Kind, position: Int, reader: YAMLReader) -> Rule? {
        let key = "policies.\(policy).rules[\(position)]"
        let whereKey = kind == .registry ? "repositories" : "paths"
        let whatKey = kind == .registry ? "allow" : "methods"
        guard let fields = reader.mapping(node, key: key, allowed: ["name", "users", "groups", "anonymous", "networks", whereKey, whatKey]) else { return nil }
        let errorCount = reader.errors.count
        let label = reader.string(fields["name"], key: "\(key).name") ?? "\(policy)#\(position)"
        let users = reader.strings(fields["users"], key: "\(key).users") ?? []
        let groups = reader.strings(fields["groups"], key: "\(key).groups") ?? []
        let anonymous = reader.bool(fields["anonymous"], key: "\(key).anonymous") ?? false
        if users.isEmpty && groups.isEmpty && !anonymous {
            reader.fail(key, node, "a rule needs a subject: users, groups or anonymous: true")
        }
        for (index, name) in (users + groups).enumerated() where name.isEmpty || name.containsControlCharacter {
            reader.fail(key, node, "user or group name \(index + 1) is empty or has control characters")
        }
        var networks: [IPNetwork]?
        if let texts = reader.strings(fields["networks"], key: "\(key).networks") {
            networks = []
            for (index, text) in texts.enumerated() {
                if let network = IPNetwork(parsing: text) { networks?.append(network) } else {
                    reader.fail("\(key).networks[\(index + 1)]", fields["networks"], "\"\(text)\" is not an address or CIDR network")
                }
            }
            if texts.isEmpty { reader.fail("\(key).networks", fields["networks"], "an empty list matches no client; leave the key out to match every client") }
        }
        var resources: [Glob]?
        if let patterns = reader.strings(fields[whereKey], key: "\(key).\(whereKey)") {
            var globs: [Glob] = []
            for (index, pattern) in patterns.enumerated() {
                do {
                    let glob = try Glob(pattern)
                    if kind == .http, !pattern.hasPrefix("/") {
                        reader.fail("\(key).paths[\(index + 1)]", fields[whereKey], "a path pattern starts with '/'")
                    }
                    globs.append(glob)
                } catch {
                    reader.fail("\(key).\(whereKey)[\(index + 1)]", fields[whereKey], error.description)
                }
            }
            if patterns.isEmpty { reader.fail("\(key).\(whereKey)", fields[whereKey], "an empty list matches nothing; leave the key out to match everywhere") }
            resources = globs
        }
        var allowed: Set<String>?
        switch kind {
        case .registry:
            if let actions = reader.strings(fields["allow"], key: "\(key).allow") {
                for action in actions where !RegistryAction.grantableNames.contains(action) {
                    reader.fail("\(key).allow", fields["allow"], "\"\(action)\" is not one of \(RegistryAction.grantableNames.joined(separator: ", "))")
                }
                allowed = Set(actions)
            } else if fields["allow"] == nil {
                reader.fail("\(key).allow", node, "is required in a registry rule (allow: [] denies)")
            }
        case .http:
            if let methods = reader.strings(fields["methods"], key: "\(key).methods") {
                for method in methods where method.isEmpty || !method.allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "-") }) {
                    reader.fail("\(key).methods", fields["methods"], "\"\(method)\" is not an upper-case HTTP method")
                }
                allowed = Set(methods)
            }
        }
        guard reader.errors.count == errorCount else { return nil }
        return Rule(label: label, users: users, groups: groups, anonymous: anonymous, resources: resources, allowed: allowed, networks: networks)
    }
}
