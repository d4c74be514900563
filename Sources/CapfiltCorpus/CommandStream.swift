// `pipe:` inputs, the webdataset convention for object stores (`pipe:aws s3 cp s3://bucket/00000.tar -`): the
// shard is the standard output of a shell command, read as it arrives (one chunk in memory, never the whole
// shard). The command's exit status is checked at the end of its output, so a download that fails half way is
// a failed source, never a short shard taken for a whole one.
//
// posix_spawn rather than Foundation's Process: the child's descriptors, signal dispositions and the wait for
// its status must be exact (Process reaps children from its own thread and leaves inherited dispositions, so a
// parent that ignores SIGPIPE would pass that on to `curl | zstd -d`).

import CapfiltWebDataset
import Foundation

/// The standard output of `/bin/sh -c COMMAND`, run in a given folder with standard input from /dev/null.
///
/// The command runs in capfilt's process group (a Ctrl-C on the terminal or a scheduler's signal reaches it too)
/// with default signal dispositions. Its standard error is kept, the last 2 KiB of it, for the failure message.
/// Dropping the stream before its end kills the command (SIGKILL) and reaps it. Not thread-safe: one reader.
final class CommandStream: ByteStream {
    /// The command as the spec writes it, after `pipe:`.
    let command: String
    /// The source's name in messages (`pipe:` and the command).
    let display: String
    private let pid: pid_t
    private var output: Int32
    private var status: Int32?
    private let errors: StandardErrorTail
    /// Bytes read so far, for the failure message.
    private var bytesRead: Int64 = 0

    /// How much of the command's standard error a failure message quotes.
    static let errorTailBytes = 2048

    /// Starts the command. Throws a ``TarError`` of kind `.streamFailed` when it cannot be started.
    init(command: String, display: String, directory: String) throws {
        self.command = command
        self.display = display
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else { throw Self.startFailure(display, "pipe", errno) }
        guard pipe(&errPipe) == 0 else {
            let code = errno
            outPipe.forEach { close($0) }
            throw Self.startFailure(display, "pipe", code)
        }
        // Close-on-exec, so that no other child (a second command) holds these pipes open; dup2 clears it on
        // the command's own 1 and 2.
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        // The folder is passed as an argument, never spliced into the script; the command itself runs in a
        // shell of its own (`sh -c COMMAND`, exactly as webdataset runs it).
        let arguments = ["/bin/sh", "-c", "cd -- \"$1\" || exit 126; exec /bin/sh -c \"$2\"", "capfilt-pipe", directory, command]
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, "/bin/sh", &actions, &attributes, &cArguments, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw Self.startFailure(display, "/bin/sh", spawned)
        }
        pid = child
        output = outPipe[0]
        errors = StandardErrorTail(descriptor: errPipe[0], keep: Self.errorTailBytes)
    }

    deinit {
        if output >= 0 { close(output) }
        if status == nil {
            // Abandoned before its end (a stop, a unit given up): the command has nothing more to do.
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        }
    }

    func read(upTo count: Int) throws -> [UInt8] {
        guard status == nil else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        while true {
            let got = bytes.withUnsafeMutableBytes { Glibc.read(output, $0.baseAddress, count) }
            if got > 0 {
                bytesRead += Int64(got)
                bytes.removeLast(count - got)
                return bytes
            }
            if got < 0 && errno == EINTR { continue }
            if got < 0 {
                let code = errno
                throw TarError(.streamFailed, path: display, offset: bytesRead,
                               detail: "reading the command's output failed (\(String(cString: strerror(code))))")
            }
            try end()
            return []
        }
    }

    /// The end of the output: waits for the command and throws unless it exited with status 0.
    private func end() throws {
        close(output)
        output = -1
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 {
            guard errno == EINTR else { raw = -1; break }
        }
        status = raw
        // Writers of standard error other than the command (a daemon it started) must not hold the reader up.
        let stderr = errors.text(waitingAtMost: 2)
        let quoted = stderr.isEmpty ? "it wrote nothing to standard error" : "its standard error ends: \(stderr.debugDescription)"
        let exit = raw & 0x7f == 0 ? Int((raw >> 8) & 0xff) : nil
        let signal = raw & 0x7f != 0 && raw & 0x7f != 0x7f ? Int(raw & 0x7f) : nil
        if raw == -1 {
            throw TarError(.streamFailed, path: display, offset: bytesRead, detail: "the command's exit status cannot be read")
        }
        if let exit, exit == 0 { return }
        let how: String
        if let exit {
            how = exit == 127 ? "exited with status 127 (command not found)"
                : exit == 126 ? "exited with status 126 (not executable, or the spec's folder cannot be entered)"
                : "exited with status \(exit)"
        } else {
            let name = signal.flatMap { strsignal(Int32($0)).map { String(cString: $0) } } ?? "a signal"
            how = "was killed by signal \(signal ?? 0) (\(name))"
        }
        throw TarError(.streamFailed, path: display, offset: bytesRead,
                       detail: "the command \(how) after writing \(bytesRead) bytes; \(quoted)")
    }

    private static func startFailure(_ display: String, _ what: String, _ code: Int32) -> TarError {
        TarError(.streamFailed, path: display, offset: 0,
                 detail: "the command cannot be started (\(what): \(String(cString: strerror(code))))")
    }
}

/// Reads a command's standard error on a thread of its own (so a chatty command never blocks on a full pipe),
/// keeping only its last bytes.
private final class StandardErrorTail: @unchecked Sendable {
    private let lock = NSLock()
    private var tail: [UInt8] = []
    private let finished = DispatchSemaphore(value: 0)

    init(descriptor: Int32, keep: Int) {
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { break }
                lock.lock()
                tail += chunk[0..<got]
                if tail.count > keep { tail.removeFirst(tail.count - keep) }
                lock.unlock()
            }
            close(descriptor)
            finished.signal()
        }
        thread.stackSize = 1 << 18
        thread.start()
    }

    /// What was read, as text (invalid UTF-8 repaired, surrounding white space trimmed), once the pipe closed
    /// or `seconds` passed.
    func text(waitingAtMost seconds: Double) -> String {
        _ = finished.wait(timeout: .now() + seconds)
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: tail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
