"""`realign serve` as the official `openai` Python client uses it (not in CI; needs `pip install openai`):
plain and streamed chat completions (with include_usage and logprobs), a continued assistant message, and a
refused unsupported field. Starts the server itself on a free port.

    python tools/reference/check_serve_openai.py .build/release/realign Tests/ModelsTests/Fixtures/tiny-llava
"""
import base64
import os
import re
import subprocess
import sys

import openai

realign, model_folder = sys.argv[1], sys.argv[2]
env = dict(os.environ, REALIGN_CHECK_KEY="sk-check-only")
server = subprocess.Popen([realign, "serve", "--model", model_folder, "--port", "0", "--api-key-env", "REALIGN_CHECK_KEY"],
                          stderr=subprocess.PIPE, text=True, env=env)
try:
    for line in server.stderr:
        found = re.search(r"listening on (http://[0-9.]+:[0-9]+/v1)", line)
        if found:
            break
    else:
        sys.exit("the server did not start")
    client = openai.OpenAI(base_url=found.group(1), api_key="sk-check-only")
    model = client.models.list().data[0].id
    png = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AlignmentTests", "Fixtures", "prefs", "images", "0-red-circle.png")
    image = "data:image/png;base64," + base64.b64encode(open(png, "rb").read()).decode()
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": "What is it?"}]}]

    plain = client.chat.completions.create(model=model, messages=messages, max_tokens=12, logprobs=True, top_logprobs=2)
    text = plain.choices[0].message.content
    assert len(plain.choices[0].logprobs.content) == plain.usage.completion_tokens
    print("plain:", repr(text), plain.usage)

    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=12, stream=True,
                                            stream_options={"include_usage": True}, logprobs=True, top_logprobs=2)
    pieces, usage, finish, logprobs = [], None, None, []
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
            if choice.logprobs and choice.logprobs.content:
                logprobs += choice.logprobs.content
    assert "".join(pieces) == text, ("".join(pieces), text)
    assert usage == plain.usage and finish == plain.choices[0].finish_reason
    assert [(t.token, t.logprob) for t in logprobs] == [(t.token, t.logprob) for t in plain.choices[0].logprobs.content]
    print("streamed:", len(pieces), "chunks, same text, logprobs and usage")

    continued = client.chat.completions.create(model=model, messages=messages + [{"role": "assistant", "content": "It is"}],
                                               max_tokens=5, extra_body={"continue_final_message": True, "add_generation_prompt": False})
    print("continued:", repr(continued.choices[0].message.content))

    try:
        client.chat.completions.create(model=model, messages=messages, response_format={"type": "json_object"})
        sys.exit("response_format json_object was accepted")
    except openai.BadRequestError as e:
        print("refused as it should be:", e.message[:100])
    print("ok")
finally:
    server.terminate()
