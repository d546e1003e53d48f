"""Preference records as LLaMA-Factory and ms-swift write them (their documented dataset formats), for the
readers' tests: LLaMA-Factory's ShareGPT preference style as a JSON array (with the `dataset_info.json` entry
that declares it) and ms-swift's RLHF `messages` style as JSONL, each with records that must be refused.

    python tools/reference/make_format_fixtures.py Tests/AlignmentTests/Fixtures/formats
"""
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

# LLaMA-Factory data/README.md: "ranking": true, "formatting": "sharegpt", columns messages/chosen/rejected/images.
llamafactory = [
    {"conversations": [{"from": "human", "value": "<image>What is in the picture?"}],
     "chosen": {"from": "gpt", "value": "A red circle on a white background."},
     "rejected": {"from": "gpt", "value": "A red circle next to a blue square."},
     "images": ["images/a.png"]},
    {"conversations": [{"from": "system", "value": "You are a careful assistant."},
                       {"from": "human", "value": "Describe the image.\n<image>"}],
     "chosen": {"from": "gpt", "value": "Two green triangles."},
     "rejected": {"from": "gpt", "value": "Three green triangles and a cat."},
     "images": ["images/b.png"]},
    # refused: two placeholders for one image
    {"conversations": [{"from": "human", "value": "<image><image>Compare them."}],
     "chosen": {"from": "gpt", "value": "x"}, "rejected": {"from": "gpt", "value": "y"}, "images": ["images/a.png"]},
    # refused: two human turns
    {"conversations": [{"from": "human", "value": "<image>Hi"}, {"from": "gpt", "value": "Hello"},
                       {"from": "human", "value": "What colour is it?"}],
     "chosen": {"from": "gpt", "value": "Red."}, "rejected": {"from": "gpt", "value": "Blue."}, "images": ["images/a.png"]},
]
with open(os.path.join(out, "llamafactory_dpo.json"), "w") as f:
    json.dump(llamafactory, f, indent=2, ensure_ascii=False)
with open(os.path.join(out, "dataset_info.json"), "w") as f:
    json.dump({"shapes_dpo": {"file_name": "llamafactory_dpo.json", "formatting": "sharegpt", "ranking": True,
                              "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                                          "images": "images"}}}, f, indent=2)

# ms-swift docs (Customization / custom dataset, RLHF): messages ending with the chosen reply, rejected_response,
# images, and rejected_images for an image-side negative.
swift = [
    {"messages": [{"role": "system", "content": "You are a careful assistant."},
                  {"role": "user", "content": "<image>What is in the picture?"},
                  {"role": "assistant", "content": "A red circle on a white background."}],
     "rejected_response": "A red circle next to a blue square.", "images": ["images/a.png"]},
    {"messages": [{"role": "user", "content": "<image>How many triangles?"},
                  {"role": "assistant", "content": "Two."}],
     "rejected_response": [{"role": "assistant", "content": "Three."}],
     "images": ["images/b.png"], "rejected_images": ["images/a.png"]},
    # refused: a second user turn
    {"messages": [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": "Hello"},
                  {"role": "user", "content": "Colour?"}, {"role": "assistant", "content": "Red."}],
     "rejected_response": "Blue.", "images": ["images/a.png"]},
    # refused: a placeholder without an image
    {"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A circle."}],
     "rejected_response": "A square."},
]
with open(os.path.join(out, "swift_dpo.jsonl"), "w") as f:
    for r in swift:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
