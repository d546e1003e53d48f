import ArgumentParser
import Foundation

/// `realign cli-reference`: every command's --help as one Markdown page (docs/cli.md is its output, and a test
/// checks that the two agree).
struct CLIReference: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cli-reference", abstract: "Print every command's --help as Markdown (docs/cli.md).", shouldDisplay: false)

    static let columns = 110

    func run() throws {
        print(Self.markdown(), terminator: "")
    }

    static func markdown() -> String {
        var out = """
            # Command-line reference

            Every command's `--help`, as the binary prints it. This page is generated (`make docs` runs \
            `realign cli-reference > docs/cli.md`) and a test checks that it equals the binary's output.

            """
        func visit(_ command: ParsableCommand.Type, path: [String]) {
            let name = path.joined(separator: " ")
            let help = path.count == 1 ? Realign.helpMessage(columns: columns) : Realign.helpMessage(for: command, columns: columns)
            out += "\n## \(name)\n\n```text\n" + help.trimmingCharacters(in: .newlines) + "\n```\n"
            for sub in command.configuration.subcommands where sub.configuration.shouldDisplay {
                visit(sub, path: path + [sub._commandName])
            }
        }
        visit(Realign.self, path: ["realign"])
        return out
    }
}
