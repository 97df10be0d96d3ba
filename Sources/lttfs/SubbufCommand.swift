#if canImport(Glibc)
import Glibc
#endif
import LTTFormat
import ArgumentParser
import Foundation
import LTTSystem
import SystemPackage

/// RELAY_* ioctls for shell scripts: GET in one process, PUT in another.
struct SubbufCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subbuf",
        abstract: "Take and give back sub-buffers of a buffer file from a shell script.",
        discussion: """
            Example:
              cookie=$(lttfs subbuf get /mnt/ltt/ltt/mytrace/userspace_0)
              dd if=/mnt/ltt/ltt/mytrace/userspace_0 bs=64k count=1 > sub.bin
              lttfs subbuf put /mnt/ltt/ltt/mytrace/userspace_0 "$cookie"
            Exit status 2 means "not now" (EAGAIN on get, EIO on put: pushed by the writer).
            """,
        subcommands: [Info.self, Get.self, Put.self])

    static func open(_ path: String) throws -> FileDescriptor {
        do {
            return try FileDescriptor.open(path, .readOnly, options: [.nonBlocking, .closeOnExec])
        } catch let error as Errno {
            throw Failure("cannot open \(path): \(error.explained)")
        }
    }

    /// The ioctl's errno, nil when it succeeded.
    static func ioctl(_ fd: FileDescriptor, _ request: RelayIoctl, _ value: inout UInt32) -> Errno? {
        do throws(Errno) {
            try fd.ioctl(request.rawValue, &value)
            return nil
        } catch {
            return error
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print sub-buffer count and size.",
                                                        discussion: "Example:\n  lttfs subbuf info /mnt/ltt/ltt/t/userspace_0")
        @Argument(help: "A buffer file.") var file: String
        func run() throws {
            let fd = try SubbufCommand.open(file)
            defer { try? fd.close() }
            var count: UInt32 = 0, size: UInt32 = 0
            let e1 = SubbufCommand.ioctl(fd, .getSubbufferCount, &count)
            let e2 = SubbufCommand.ioctl(fd, .getSubbufferSize, &size)
            if let e = e1 ?? e2 { throw Failure("\(file): not a buffer file (\(e.explained))") }
            print("n_subbufs \(count)\nsubbuf_size \(size)")
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "RELAY_GET_SUBBUF: print the cookie.",
                                                        discussion: "Example:\n  lttfs subbuf get /mnt/ltt/ltt/t/userspace_0")
        @Argument(help: "A buffer file.") var file: String
        func run() throws {
            let fd = try SubbufCommand.open(file)
            defer { try? fd.close() }
            var cookie: UInt32 = 0
            let e = SubbufCommand.ioctl(fd, .getSubbuffer, &cookie)
            if e == .resourceTemporarilyUnavailable {
                throw Failure("\(file): no complete sub-buffer to take yet (EAGAIN)", code: 2)
            }
            if let e { throw Failure("\(file): RELAY_GET_SUBBUF: \(e.explained)") }
            print(cookie)
        }
    }

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "RELAY_PUT_SUBBUF with a cookie from get.",
                                                        discussion: "Example:\n  lttfs subbuf put /mnt/ltt/ltt/t/userspace_0 65536")
        @Argument(help: "A buffer file.") var file: String
        @Argument(help: "The cookie `get` printed.") var cookie: UInt32
        func run() throws {
            let fd = try SubbufCommand.open(file)
            defer { try? fd.close() }
            var value = cookie
            let e = SubbufCommand.ioctl(fd, .putSubbuffer, &value)
            if e == .ioError {
                // The server refuses a PUT without a GET, a second PUT, and a
                // PUT after the writer pushed the reader: one errno for all.
                // Only a flight recorder pushes its reader.
                let flight = (file as NSString).lastPathComponent.hasPrefix("flight-")
                throw Failure("\(file): RELAY_PUT_SUBBUF \(cookie) refused (EIO): " + (flight
                    ? "no sub-buffer was taken with that cookie: already put, never taken, or the writer overwrote it (flight recorder: its events show as overwritten in stats)"
                    : "no sub-buffer was taken with that cookie: already put, or never taken; nothing was lost"), code: 2)
            }
            if let e { throw Failure("\(file): RELAY_PUT_SUBBUF: \(e.explained)") }
        }
    }
}
