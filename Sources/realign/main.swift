import ArgumentParser
import Foundation
import Torch

struct Realign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "realign",
        abstract: "Make vision-language models hallucinate less: preference data, LoRA preference training, evaluation.",
        subcommands: [Doctor.self, Inspect.self, Tokenize.self, Generate.self, EmbedText.self, Bench.self]
    )
}

Realign.main()
