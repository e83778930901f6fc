"""The official OpenAI client against AskAcme: every call must work unmodified."""
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key="not-needed-without-auth", max_retries=0)
messages = [{"role": "user", "content": "Say hello to the Acme team."}]
passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception as e:  # report every failure, then fail the run
        failed += 1
        print(f"FAIL {name}: {e!r}")


def plain_chat():
    r = client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=20)
    assert r.choices[0].message.content.strip(), r
    assert r.usage.completion_tokens > 0, r.usage
    assert r.choices[0].finish_reason in ("stop", "length"), r


def streamed_chat():
    plain = client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=20)
    stream = client.chat.completions.create(
        model="tiny", messages=messages, temperature=0, max_tokens=20, stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
    assert text == plain.choices[0].message.content, (text, plain.choices[0].message.content)
    assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens, usage


def embeddings():
    texts = ["How many days of annual leave do I get?", "What is my yearly vacation allowance?",
             "The printer on floor 3 is out of toner."]
    # The client asks for base64 by default and decodes it; it must equal the float encoding.
    b64 = client.embeddings.create(model="embed", input=texts)
    floats = client.embeddings.create(model="embed", input=texts, encoding_format="float")
    assert len(b64.data) == 3 and len(b64.data[0].embedding) == 384, b64
    for a, b in zip(b64.data, floats.data):
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) < 1e-6
    v = [d.embedding for d in b64.data]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert dot(v[0], v[1]) > dot(v[0], v[2]) + 0.3, (dot(v[0], v[1]), dot(v[0], v[2]))


def unknown_model_is_not_found():
    try:
        client.chat.completions.create(model="no-such-model", messages=messages)
    except openai.NotFoundError as e:
        assert "no-such-model" in str(e), e
        return
    raise AssertionError("expected NotFoundError")


def models_list():
    ids = {m.id for m in client.models.list()}
    assert {"tiny", "embed", "strong", "fast"} <= ids, ids


for name, fn in [("plain chat", plain_chat), ("streamed chat", streamed_chat), ("embeddings", embeddings),
                 ("unknown model", unknown_model_is_not_found), ("models list", models_list)]:
    check(name, fn)
print(f"openai-compat: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
