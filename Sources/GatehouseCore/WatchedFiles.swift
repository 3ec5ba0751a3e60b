// Gatehouse — an nginx auth_request service
// SPDX-License-Identifier: Apache-2.0

/// The files a running configuration depends on, and the version of each seen last: the
/// reload service polls them so that an edit on disk takes effect without a signal.
public struct WatchedFiles: Sendable {
    public let paths: [String]
    private var stamps: [FileStamp?]

    public init(paths: [String]) {
        var unique: [String] = []
        for path in paths where !unique.contains(path) { unique.append(path) }
        self.paths = unique
        stamps = unique.map { FileStamp(path: $0) }
    }

    /// Whether any file changed, appeared or vanished since the last call; remembers the new
    /// versions either way, so one edit is reported once.
    public mutating func refresh() -> Bool {
        let now = paths.map { FileStamp(path: $0) }
        defer { stamps = now }
        return now != stamps
    }
}

extension Configuration {
    /// Every file the configuration reads: htpasswd and group files, bind password files and
    /// CA files. A change to any of them is a reason to reload.
    public var referencedFiles: [String] {
        backends.flatMap { backend -> [String] in
            switch backend {
            case .htpasswd(_, let file, let groupsFile): [file] + (groupsFile.map { [$0] } ?? [])
            case .ldap(let settings): [settings.bindPasswordFile, settings.caFile].compactMap { $0 }
            }
        }
    }
}
