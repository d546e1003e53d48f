import ArgumentParser
import Foundation
import Torch

struct Realign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "realign",
        abstract: "Make vision-language models hallucinate less: preference data, LoRA preference training, evaluation.",
        subcommands: [Doctor.self, Inspect.self, Tokenize.self, Generate.self, EmbedText.self, Train.self, Prefs.self, Merge.self, IndexCommand.self, Eval.self, BuildPrefs.self, Serve.self, Bench.self, World.self, Demo.self]
    )
}

// Activations of a few MB are allocated and freed at every layer: keep them in the heap (see the shim).
Torch.tuneAllocator()

Realign.main()
