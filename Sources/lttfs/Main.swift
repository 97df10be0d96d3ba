#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

@main
struct LTTFSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lttfs",
        abstract: "LTTng 0.x trace buffers in user space, served as files over FUSE.",
        discussion: """
            Example:
              lttfs mount /mnt/ltt
              echo demo > /mnt/ltt/ltt/setup_trace
              echo 1 > /mnt/ltt/ltt/control/demo/alloc
              echo 1 > /mnt/ltt/ltt/control/demo/enabled
              echo hello > /mnt/ltt/ltt/write_event
            """,
        subcommands: [MountCommand.self, UnmountCommand.self, CtlCommand.self, ConsumeCommand.self, DumpCommand.self, ConvertCommand.self,
                      StatCommand.self, SubbufCommand.self, RecordCommand.self])

    /// Errors are one line on stderr and a non-zero status.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as Failure {
            StandardError.write("lttfs: \(failure.description)\n")
            Glibc.exit(failure.code)
        } catch {
            exit(withError: error)
        }
    }
}
