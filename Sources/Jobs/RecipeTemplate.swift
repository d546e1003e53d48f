/// The annotated recipe `realign run --print-default` writes: every key, with its default or an example.
public enum RecipeTemplate {
    public static let annotated = """
        # A ReAlign recipe (docs/recipes.md). Relative paths are relative to this file's folder.
        # Keys follow LLaMA-Factory's and TRL's names where one exists.

        model_name_or_path: models/llava-1.5-7b-hf   # the base model: a Hugging Face folder (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL)
        output_dir: runs/realign                     # every stage's files and the report (realign run --out overrides)
        seed: 0                                      # the training runs' seed unless they name their own

        # The retrieval knowledge base (Re-Align): every image embedded by the base model's vision tower.
        # Without this section, a re-align pair recipe builds its own from its samples' images.
        knowledge_base:
          images: data/samples.jsonl                 # a folder of images, or a JSONL with image fields
          index_kind: flat                           # flat (exact), hnsw, ivf, ivfpq
          batch_size: 16

        # Pair recipes: each writes pairs/<name>.jsonl (resumable) and its summary.
        pairs:
          - name: realign
            method: realign                          # realign, vapr, or file (pairs made elsewhere: give path)
            samples: data/samples.jsonl              # {"id","image","prompt"[,"chosen"]}; paths relative to the file
            format: samples                          # samples, or another tool's preference form (auto, trl, llamafactory, swift, ...)
            sentence_model: models/all-MiniLM-L6-v2  # the similarity filter's sentence-transformers folder
            chosen: given                            # given, or a backend: local:DIR, openai:URL[#model]
            masker: rules                            # rules, or a backend
            # mask_words: data/words.txt             # extra words for the rule masker
            inducer: local                           # local (the base model), or a backend
            induce_mode: continue                    # continue or instruct
            k: 5                                     # retrieved images tried per sample
            tau: 0.95                                # a completion is rejected when its cosine to the chosen answer is below tau
            concurrency: 4
            # api_key_env: OPENAI_API_KEY            # the variable holding an openai: backend's key (never written anywhere)
            timeout: 120
            retries: 4
          - name: vapr
            method: vapr
            samples: data/samples.jsonl
            editor: rules                            # rules (word classes), or a backend
            # editor_lexicon: data/lexicon.json
            classifier: rules
            max_reuse: 3                             # uses of one substitution before it is refused
            # max_length_gap: 8
            # max_edit_distance: 40

        # Hyperparameters every training run starts from (each run may override any of them).
        training_defaults:
          finetuning_type: lora                      # lora or full
          num_train_epochs: 1
          # max_steps: 100                           # instead of epochs
          per_device_train_batch_size: 1
          gradient_accumulation_steps: 8
          learning_rate: 1.0e-5
          mm_projector_lr: 2.0e-5                    # 0 freezes the projector
          weight_decay: 0.0
          warmup_ratio: 0.03
          lr_scheduler_type: cosine                  # constant, linear, cosine
          max_grad_norm: 1.0
          lora_rank: 128
          lora_alpha: 256
          lora_dropout: 0.05
          lora_target: all-linear
          use_rslora: false
          pref_beta: 0.1
          label_smoothing: 0.0
          save_steps: 50
          bf16: false
          gradient_checkpointing: false
          seeds: [42]                                # one run per seed (after the first: <name>-seed<N>)

        # Training runs: each writes train/<name>/ (adapter/, metrics.jsonl, checkpoints) and resumes.
        training:
          - name: realign-rdpo
            pairs: realign                           # a pair recipe's name, or a file of pairs
            pref_loss: rdpo                          # an objective or a mix: rdpo, dpo, mdpo, "rdpo+0.1*sft" (realign train --objective help)
          - name: vapr-dpo
            pairs: vapr
            pref_loss: dpo

        # Benchmarks: every model (base and each run) answers each; eval/<model>/<name>.answers.jsonl.
        benchmarks:
          - name: pope-adversarial
            benchmark: pope                          # pope, mme, hallusionbench, chair, exact
            questions: data/pope/coco_pope_adversarial.jsonl
            image_root: data/coco/val2014            # default: the questions file's folder
            rule: pope                               # pope: pope, lmms-eval, vlmevalkit; mme: mme, vlmevalkit
            max_new_tokens: 4
            batch_size: 8
          - name: chair
            benchmark: chair
            questions: data/chair/annotations.jsonl  # {"image_id","image","objects"}
            prompt: Please describe this image in detail.
            max_new_tokens: 128

        report:
          title: ReAlign report

        """
}
