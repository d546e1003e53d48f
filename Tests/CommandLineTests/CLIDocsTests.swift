import Foundation
import TestSupport
import Testing

/// docs/cli.md is what the binary prints: it cannot drift from the commands.
@Suite struct CLIDocsTests {
    @Test func docsCLIEqualsTheBinarysHelp() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try realignExecutable())
        p.arguments = ["cli-reference"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let committed = try Data(contentsOf: repositoryRoot.appendingPathComponent("docs/cli.md"))
        #expect(printed == committed, "docs/cli.md is stale: run `make docs`")
        let text = String(decoding: printed, as: UTF8.self)
        for command in ["run", "demo", "build-prefs", "train", "eval pope", "index build", "prefs convert", "serve", "bench model"] {
            #expect(text.contains("\n## realign \(command)\n"), "\(command)")
        }
    }
}
