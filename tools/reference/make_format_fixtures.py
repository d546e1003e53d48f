"""Preference records as LLaMA-Factory and ms-swift write them (their documented dataset formats), for the
readers' tests: LLaMA-Factory's ShareGPT preference style as a JSON array (with the `dataset_info.json` entry
that declares it) and ms-swift's RLHF `messages` style as JSONL, each with records that must be refused.

    python tools/reference/make_format_fixtures.py Tests/AlignmentTests/Fixtures/formats

Also TRL's conversational vision form (made by trl.data_utils.extract_prompt, written by datasets), the Re-Align
release's pref_data.json, mDPO's sample_data.json form, and LLaMA-Factory's alpaca ranking and OpenAI-style
sharegpt forms declared with their column and tag mappings.
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

# TRL's conversational vision form (its docs' RLAIF-V recipe): prompt / chosen / rejected message lists with
# {"type": "image"} parts and an `images` list, made by TRL's own extract_prompt from implicit-prompt records and
# written by `datasets` as JSONL. Refused: two image parts for one image, and a second user turn.
from datasets import Dataset
from trl.data_utils import extract_prompt


def user(*parts):
    return {"role": "user", "content": list(parts)}


def assistant(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


IMAGE = {"type": "image"}
implicit = [
    {"chosen": [user(IMAGE, {"type": "text", "text": "What is in the picture?"}), assistant("A red circle on a white background.")],
     "rejected": [user(IMAGE, {"type": "text", "text": "What is in the picture?"}), assistant("A red circle next to a blue square.")],
     "images": ["images/a.png"]},
    {"chosen": [{"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
                user({"type": "text", "text": "How many triangles? "}, IMAGE), assistant("Two.")],
     "rejected": [{"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
                  user({"type": "text", "text": "How many triangles? "}, IMAGE), assistant("Three.")],
     "images": ["images/b.png"]},
    {"chosen": [user(IMAGE, IMAGE, {"type": "text", "text": "Compare."}), assistant("x")],
     "rejected": [user(IMAGE, IMAGE, {"type": "text", "text": "Compare."}), assistant("y")], "images": ["images/a.png"]},
    {"chosen": [user(IMAGE, {"type": "text", "text": "Hi"}), assistant("Hello"), user({"type": "text", "text": "Colour?"}), assistant("Red.")],
     "rejected": [user(IMAGE, {"type": "text", "text": "Hi"}), assistant("Hello"), user({"type": "text", "text": "Colour?"}), assistant("Blue.")],
     "images": ["images/a.png"]},
]
explicit = [extract_prompt(dict(r)) | {"images": r["images"]} for r in implicit]
Dataset.from_list(explicit).to_json(os.path.join(out, "trl_vision.jsonl"), lines=True)

# The Re-Align release's pref_data.json (train_rdpo.py reads `image`, `retrieved_image`, and `chosen` / `rejected`
# as [user, assistant] message lists with "<image>\n" in the user turn; images relative to --image_folder).
realign_release = [
    {"id": "coco-1", "image": "a.png", "retrieved_image": "b.png",
     "chosen": [{"role": "user", "content": "<image>\nWhat is in the picture?"}, {"role": "assistant", "content": "A red circle on a white background."}],
     "rejected": [{"role": "user", "content": "<image>\nWhat is in the picture?"}, {"role": "assistant", "content": "A red circle next to a blue square."}]},
    {"id": "coco-2", "image": "b.png", "retrieved_image": "a.png",
     "chosen": [{"role": "user", "content": "<image>\nHow many triangles?"}, {"role": "assistant", "content": "Two."}],
     "rejected": [{"role": "user", "content": "<image>\nHow many triangles?"}, {"role": "assistant", "content": "Three."}]},
    # refused: the two conversations ask different questions
    {"id": "coco-3", "image": "a.png", "retrieved_image": "b.png",
     "chosen": [{"role": "user", "content": "<image>\nA?"}, {"role": "assistant", "content": "x"}],
     "rejected": [{"role": "user", "content": "<image>\nB?"}, {"role": "assistant", "content": "y"}]},
]
with open(os.path.join(out, "realign_pref_data.json"), "w") as f:
    json.dump(realign_release, f, indent=4)

# mDPO's data/sample_data.json form: img_path and the rendered vicuna prompt.
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, "
          "and polite answers to the user's questions.")
mdpo = [
    {"img_path": "images/a.png", "prompt": f"{SYSTEM} USER: <image>\nWhat is in the picture? ASSISTANT:",
     "chosen": "A red circle on a white background.", "rejected": "A red circle next to a blue square."},
    {"img_path": "images/b.png", "prompt": f"{SYSTEM} USER: <image>\nHow many triangles? ASSISTANT:", "chosen": "Two.", "rejected": "Three."},
    # refused: a started answer after ASSISTANT:
    {"img_path": "images/b.png", "prompt": f"{SYSTEM} USER: <image>\nHow many? ASSISTANT: There are", "chosen": " two.", "rejected": " three."},
]
with open(os.path.join(out, "mdpo_data.json"), "w") as f:
    json.dump(mdpo, f, indent=4)

# LLaMA-Factory's alpaca ranking form and its OpenAI-style sharegpt (role/content tags), declared in a second
# dataset_info.json with their column and tag mappings.
alpaca = [
    {"instruction": "<image>Describe the image.", "input": "Be brief.", "chosen": "Two green triangles.",
     "rejected": "Three green triangles and a cat.", "images": ["images/b.png"]},
]
openai_style = [
    {"messages": [{"role": "system", "content": "You are careful."}, {"role": "user", "content": "<image>What is in the picture?"}],
     "chosen": {"role": "assistant", "content": "A red circle on a white background."},
     "rejected": {"role": "assistant", "content": "A red circle next to a blue square."}, "pictures": ["images/a.png"]},
]
os.makedirs(os.path.join(out, "llamafactory"), exist_ok=True)
with open(os.path.join(out, "llamafactory", "alpaca_dpo.json"), "w") as f:
    json.dump(alpaca, f, indent=2)
with open(os.path.join(out, "llamafactory", "openai_dpo.json"), "w") as f:
    json.dump(openai_style, f, indent=2)
with open(os.path.join(out, "llamafactory", "dataset_info.json"), "w") as f:
    json.dump({
        "alpaca_dpo": {"file_name": "alpaca_dpo.json", "ranking": True,
                       "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected", "images": "images"}},
        "openai_dpo": {"file_name": "openai_dpo.json", "formatting": "sharegpt", "ranking": True,
                       "columns": {"messages": "messages", "chosen": "chosen", "rejected": "rejected", "images": "pictures"},
                       "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                                "system_tag": "system"}},
        "not_ranking": {"file_name": "alpaca_dpo.json"},
    }, f, indent=2)
