import Alignment
import ArgumentParser
import Foundation
import Jobs
import JSON

/// Preference data between tools.
struct Prefs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Preference data between tools: convert pairs to and from LLaMA-Factory, ms-swift and TRL.",
        subcommands: [Convert.self])

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert preference pairs between ReAlign, LLaMA-Factory, ms-swift and TRL forms.",
            discussion: """
                Reads any form `realign train` reads (JSONL or a JSON array; --from to insist on one, or a \
                LLaMA-Factory dataset_info.json with --dataset), writes --to's form: a JSON array when --out ends \
                in .json, JSONL otherwise. Records that cannot be read are reported on stderr with their position \
                and skipped. --to llamafactory also writes (or updates) dataset_info.json beside --out with an \
                entry for it. Image paths stay absolute unless the image lies under --out's folder. The retrieved \
                image (rdpo) is written as a retrieved_image key those tools ignore (ms-swift's rejected_images beside a \
                rejected_response would make one pair, chosen with the image against rejected with the retrieved \
                image, not rdpo's two). Relative image paths: LLaMA-Factory resolves them against its dataset_dir \
                (the out folder), ms-swift and TRL against the working directory (ms-swift: or ROOT_IMAGE_DIR).
                """)

        @Option(help: "Preference data in any readable form, or a LLaMA-Factory dataset_info.json (with --dataset).") var input: String
        @Option(help: "The form to write: llamafactory, swift, trl or realign.") var to: String
        @Option(help: "Where to write (.json: a JSON array; otherwise JSONL).") var out: String
        @Option(help: "The input's form (default: told record by record): \(PreferenceFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var from = "auto"
        @Option(help: "With a dataset_info.json --input: the dataset entry to read.") var dataset: String?
        @Option(help: "Folder that the input's image paths are relative to (default: the input's folder).") var imageRoot: String?
        @Option(help: "With --to llamafactory: the name of the dataset_info.json entry (default: --out's file name without extension).") var name: String?

        func run() throws {
            guard let target = PreferenceExport.Format(rawValue: to) else {
                throw ValidationError("--to must be one of \(PreferenceExport.Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let source = try PreferenceSource(path: input, format: from, dataset: dataset, formatFlag: "--from")
            let loaded: (records: [PreferenceRecord], problems: [RecordProblem])
            do {
                loaded = try PreferenceData.load(source.path, imageRoot: imageRoot, requireRejected: false, format: source.format,
                                                 datasetInfo: source.datasetInfo)
            } catch { throw CleanExit.message(error) }
            for p in loaded.problems { log("skipped \(p)") }
            guard !loaded.records.isEmpty else { throw CleanExit.message(PreferenceDataError("\(input): no readable records (\(loaded.problems.count) reported)")) }
            do {
                try PreferenceExport.write(loaded.records, as: target, to: out)
                if target == .llamafactory {
                    let (info, entry) = try PreferenceExport.registerInDatasetInfo(out, name: name)
                    log("dataset_info.json entry '\(entry)' written to \(info)")
                }
            } catch { throw CleanExit.message(error) }
            log("converted \(loaded.records.count) record(s) to \(target.rawValue) in \(out)" + (loaded.problems.isEmpty ? "" : "; skipped \(loaded.problems.count)"))
        }
    }
}

