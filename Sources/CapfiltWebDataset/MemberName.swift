// Which member names are safe to use as relative paths. Shards come from the open web via img2dataset and
// others; a name is only ever a key or a file name under our own output directory, never an escape from it.

/// Path-safety checks for tar member names.
public enum MemberName {
    /// Longest name we accept; Linux's PATH_MAX. Longer names cannot be created on disk anyway.
    public static let maxLength = 4096

    /// Why `name` is unsafe to use as a relative path, or nil when it is safe.
    ///
    /// Refused: empty names; NUL or other control characters (they truncate C strings and forge log lines);
    /// backslashes (a separator on Windows, so `..\evil` escapes there); absolute paths and Windows drive
    /// prefixes; any `..` component; names with no component besides `.`; names over ``maxLength`` bytes.
    /// A leading `./` is fine: `tar -C dir .` writes it.
    public static func unsafeReason(_ name: String) -> String? {
        if name.isEmpty { return "the name is empty" }
        let bytes = Array(name.utf8)
        if bytes.contains(0) { return "the name contains a NUL byte" }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            return "the name contains a control character"
        }
        if bytes.count > maxLength { return "the name is longer than \(maxLength) bytes" }
        if bytes.contains(UInt8(ascii: "\\")) {
            return "the name contains a backslash (a path separator on Windows)"
        }
        if bytes.first == UInt8(ascii: "/") { return "the name is an absolute path" }
        if bytes.count >= 2, bytes[1] == UInt8(ascii: ":"),
           (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[0] & 0xdf) {
            return "the name starts with a Windows drive prefix"
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: true)
        if components.contains("..") { return "the name has a '..' component that escapes the output directory" }
        if components.allSatisfy({ $0 == "." }) { return "the name has no file component, only '.'" }
        return nil
    }
}
