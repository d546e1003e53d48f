import ArgumentParser
import Foundation
import Jobs
import Torch

struct Realign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "realign",
        abstract: "Make vision-language models hallucinate less: preference data, LoRA preference training, evaluation.",
        subcommands: [Run.self, Demo.self, CLIReference.self, BuildPrefs.self, Train.self, Eval.self, IndexCommand.self, Prefs.self, Generate.self, Merge.self, Serve.self, Inspect.self, Tokenize.self, EmbedText.self, World.self, Bench.self, Doctor.self]
    )
}

// Activations of a few MB are allocated and freed at every layer: keep them in the heap (see the shim).
Torch.tuneAllocator()

Realign.main()
