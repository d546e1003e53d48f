"""Writes the small image set the preference-data tests run on: 12 PNGs of coloured shapes on a plain
background, with a question and a correct (chosen) answer for each (Tests/PreferenceTests/Fixtures/shapes)."""
import json
import os
import sys

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60), "yellow": (230, 210, 30),
           "purple": (140, 40, 170), "orange": (240, 140, 20)}
BACKGROUNDS = {"white": (255, 255, 255), "gray": (128, 128, 128)}
SCENES = [  # (colour, shape, count, background, question)
    ("red", "circle", 1, "white", "Describe the image."),
    ("blue", "square", 2, "white", "What is in the picture?"),
    ("green", "triangle", 3, "gray", "How many shapes are there?"),
    ("yellow", "circle", 2, "gray", "What color are the shapes?"),
    ("purple", "square", 1, "white", "Describe the image."),
    ("orange", "triangle", 1, "white", "What shape is shown?"),
    ("red", "square", 3, "gray", "Describe the image."),
    ("blue", "circle", 1, "gray", "What is in the picture?"),
    ("green", "square", 2, "white", "How many shapes are there?"),
    ("yellow", "triangle", 2, "white", "What color are the shapes?"),
    ("purple", "circle", 3, "gray", "Describe the image."),
    ("orange", "square", 1, "gray", "What shape is shown?"),
]
NUMBERS = {1: "one", 2: "two", 3: "three"}


def draw(colour, shape, count, background):
    img = Image.new("RGB", (96, 96), BACKGROUNDS[background])
    d = ImageDraw.Draw(img)
    size = 26
    for i in range(count):
        x = 8 + i * 30
        y = 35 - (i % 2) * 14
        box = [x, y, x + size, y + size]
        if shape == "circle":
            d.ellipse(box, fill=COLOURS[colour])
        elif shape == "square":
            d.rectangle(box, fill=COLOURS[colour])
        else:
            d.polygon([(x + size / 2, y), (x, y + size), (x + size, y + size)], fill=COLOURS[colour])
    return img


def answer(colour, shape, count, background, question):
    things = f"{NUMBERS[count]} {colour} {shape}{'s' if count > 1 else ''}"
    if question.startswith("How many"):
        return f"There are {NUMBERS[count]} shapes: {things} on a {background} background." if count > 1 else f"There is one shape: a {colour} {shape}."
    if question.startswith("What color"):
        return f"The shapes are {colour}, on a {background} background."
    if question.startswith("What shape"):
        return f"The image shows a {colour} {shape} on a {background} background."
    if count == 1:
        return f"The image shows a single {colour} {shape} in the middle of a {background} background."
    return f"The image shows {things} side by side on a {background} background."


def main(out):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        for i, scene in enumerate(SCENES):
            colour, shape, count, background, question = scene
            name = f"images/{i:02d}-{colour}-{shape}.png"
            draw(colour, shape, count, background).save(os.path.join(out, name), optimize=True)
            f.write(json.dumps({"id": f"s{i:02d}", "image": name, "prompt": question,
                                "chosen": answer(*scene)}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/PreferenceTests/Fixtures/shapes")
