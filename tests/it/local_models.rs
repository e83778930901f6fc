//! The local provider with real models: SmolLM2-135M for generation mechanics, MiniLM for
//! embeddings. `askacme models fetch smollm2-135m-instruct all-minilm-l6-v2` must have run.

use serde_json::{Value, json};

use crate::harness::{App, request_id, sse_events};

/// A greedy request to SmolLM2. It bypasses the response cache: these tests are about what
/// the model does, so every request must reach it.
fn tiny(prompt: &str, extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "temperature": 0, "max_tokens": 40, "cache": "no-store",
                          "messages": [{"role": "user", "content": prompt}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn answer(app: &App, body: Value) -> Value {
    let response = app.post("/v1/chat/completions", body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn text(body: &Value) -> String {
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn greedy_decoding_is_deterministic_and_streaming_matches() {
    let app = App::spawn("").await;
    let prompt = "List three colours of the rainbow.";
    let first = answer(&app, tiny(prompt, json!({}))).await;
    let second = answer(&app, tiny(prompt, json!({}))).await;
    assert!(!text(&first).trim().is_empty());
    assert_eq!(
        text(&first),
        text(&second),
        "temperature 0 must be deterministic"
    );
    let usage = &first["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 5);
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);

    let response = app
        .post(
            "/v1/chat/completions",
            tiny(
                prompt,
                json!({"stream": true, "stream_options": {"include_usage": true}}),
            ),
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let mut streamed = String::new();
    let mut usage = Value::Null;
    let mut chunks_with_text = 0;
    for (_, data) in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(piece);
            chunks_with_text += 1;
        }
        if !chunk["usage"].is_null() {
            usage = chunk["usage"].clone();
        }
    }
    assert_eq!(
        streamed,
        text(&first),
        "streaming yields the same text as non-streaming"
    );
    assert!(chunks_with_text > 1, "tokens arrive one by one");
    assert_eq!(
        usage["completion_tokens"],
        first["usage"]["completion_tokens"]
    );
    let row = app.log_row(&id).await;
    assert_eq!(
        row.completion_tokens,
        first["usage"]["completion_tokens"].as_u64().unwrap(),
        "streams are logged with final usage"
    );
    assert_eq!(row.provider.as_deref(), Some("local"));
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_are_respected() {
    let app = App::spawn("").await;
    let prompt = "Write a long story about a lighthouse keeper.";
    let limited = answer(&app, tiny(prompt, json!({"max_tokens": 5}))).await;
    assert_eq!(limited["usage"]["completion_tokens"], 5);
    assert_eq!(limited["choices"][0]["finish_reason"], "length");

    let full = text(&answer(&app, tiny(prompt, json!({"max_tokens": 40}))).await);
    // Stop at a word from the middle of the unconstrained answer.
    let words: Vec<&str> = full.split_whitespace().collect();
    assert!(words.len() > 6, "answer too short to test stops: {full:?}");
    let stop = words[4];
    let cut = full.find(stop).unwrap();
    for stream in [false, true] {
        let body = tiny(
            prompt,
            json!({"max_tokens": 40, "stop": [stop], "stream": stream}),
        );
        let got = if stream {
            let events = sse_events(
                &app.post("/v1/chat/completions", body)
                    .await
                    .text()
                    .await
                    .unwrap(),
            );
            events
                .iter()
                .filter(|(_, d)| d != "[DONE]")
                .filter_map(|(_, d)| {
                    serde_json::from_str::<Value>(d).unwrap()["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect::<String>()
        } else {
            let response = answer(&app, body).await;
            assert_eq!(response["choices"][0]["finish_reason"], "stop");
            text(&response)
        };
        assert_eq!(
            got,
            full[..cut],
            "stream={stream}: output ends right before the stop sequence {stop:?}"
        );
    }
}

#[tokio::test]
async fn a_prompt_longer_than_the_context_window_is_a_client_error() {
    let app = App::spawn("[providers.local]\ncontext_tokens = 256\n").await;
    let long = "Please summarise the travel policy. ".repeat(60);
    let response = app
        .post("/v1/chat/completions", tiny(&long, json!({})))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context window"),
        "{body}"
    );
}

#[tokio::test]
async fn concurrent_requests_beyond_the_limit_queue_and_all_finish() {
    let app = App::spawn("[providers.local]\nmax_concurrent = 2\n").await;
    let requests = (0..4).map(|i| {
        app.post(
            "/v1/chat/completions",
            tiny(&format!("Count to {i}."), json!({"max_tokens": 8})),
        )
    });
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn minilm_scores_paraphrases_above_unrelated_text() {
    let app = App::spawn("").await;
    let texts = [
        "How many days of annual leave do I get?",
        "What is my yearly vacation allowance?",
        "The printer on floor 3 is out of toner.",
    ];
    let response = app
        .post("/v1/embeddings", json!({"model": "embed", "input": texts}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let vectors: Vec<Vec<f32>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    assert_eq!(vectors[0].len(), 384);
    let norm: f32 = vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-3,
        "vectors are L2-normalised, norm {norm}"
    );
    let paraphrase = askacme::models::embedder::cosine(&vectors[0], &vectors[1]);
    let unrelated = askacme::models::embedder::cosine(&vectors[0], &vectors[2]);
    assert!(paraphrase > 0.5, "paraphrase similarity {paraphrase}");
    assert!(
        paraphrase > unrelated + 0.3,
        "paraphrase {paraphrase} vs unrelated {unrelated}"
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 10);

    // base64 (what the official client asks for by default) carries the same floats.
    let response = app
        .post(
            "/v1/embeddings",
            json!({"model": "embed", "input": texts[0], "encoding_format": "base64"}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(decoded.len(), 384);
    assert!(
        decoded
            .iter()
            .zip(&vectors[0])
            .all(|(a, b)| (a - b).abs() < 1e-5)
    );

    // Inputs are batched by length inside the embedder; vectors still come back in input order.
    let long = "A much longer text about the parental leave policy, which gives the primary caregiver twenty weeks at full pay.";
    let mixed = [long, texts[2], "Hi", texts[0]];
    let response = app
        .post("/v1/embeddings", json!({"model": "embed", "input": mixed}))
        .await;
    let body: Value = response.json().await.unwrap();
    let vector = |i: usize| -> Vec<f32> {
        body["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    for (i, expected) in [(1, &vectors[2]), (3, &vectors[0])] {
        assert_eq!(body["data"][i]["index"], i);
        let similarity = askacme::models::embedder::cosine(&vector(i), expected);
        assert!(similarity > 0.9999, "input {i}: {similarity}");
    }
}

#[tokio::test]
async fn a_model_that_is_not_downloaded_gets_a_503_saying_how_to_fetch_it() {
    let app = App::spawn(
        "[deployments.ghost]\nprovider = \"local\"\nmodel = \"/nonexistent/model.gguf\"\n",
    )
    .await;
    let response = app
        .post(
            "/v1/chat/completions",
            json!({"model": "ghost", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("models list"),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_is_logged_as_cancelled() {
    let app = App::spawn("").await;
    let mut response = app
        .post(
            "/v1/chat/completions",
            tiny(
                "Write a very long essay about the sea.",
                json!({"max_tokens": 400, "stream": true}),
            ),
        )
        .await;
    let id = request_id(&response);
    let first = response.chunk().await.unwrap();
    assert!(first.is_some(), "the stream started");
    drop(response);
    let log = app.state.gateway.request_log();
    for _ in 0..100 {
        log.flush().await;
        if let Some(row) = log.database().request(&id).await.unwrap() {
            assert_eq!(row.status, askacme::store::RequestStatus::Cancelled);
            assert!(
                row.completion_tokens < 400,
                "generation stopped early: {}",
                row.completion_tokens
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no log row for the cancelled stream {id}");
}

/// `response_format: json_object` on a local model constrains decoding with a JSON grammar:
/// even the 135M model, which rambles in prose when asked for JSON, returns an object.
#[tokio::test]
async fn json_mode_makes_a_local_model_answer_with_a_json_object() {
    let app = App::spawn("").await;
    let prompt = "Describe a cat as JSON with the keys name and colour.";
    let body = answer(
        &app,
        tiny(
            prompt,
            json!({"max_tokens": 60, "response_format": {"type": "json_object"}}),
        ),
    )
    .await;
    let content = text(&body);
    let parsed: Value = serde_json::from_str(content.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {content:?}"));
    assert!(parsed.is_object(), "{content}");
    let free = text(&answer(&app, tiny(prompt, json!({"max_tokens": 60}))).await);
    assert_ne!(free, content, "the grammar changed what was generated");
}

/// A prompt that starts like the last one (the same system prompt) evaluates only what
/// differs, reports the rest as cached prompt tokens, and answers as it would have afresh.
/// Only whole chat turns are reused: a question that begins like the last one still has its
/// whole turn evaluated, so what a context served before never changes how a prompt is cut
/// into batches (and so its rounding, and so a greedy answer).
#[tokio::test]
async fn a_shared_prompt_prefix_is_evaluated_once_and_answers_do_not_change() {
    let app = App::spawn("[providers.local]\nmax_concurrent = 1").await;
    let ask = |question: &str| {
        json!({"model": "tiny", "temperature": 0, "max_tokens": 24, "cache": "no-store",
               "messages": [
                   {"role": "system", "content": "You are a terse assistant for Acme Corp employees. Answer in one short sentence."},
                   {"role": "user", "content": question}]})
    };
    let cached = |body: &Value| body["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64();
    let fruit = answer(&app, ask("Name a fruit.")).await;
    let colour = answer(&app, ask("Name a colour.")).await;
    let shared = cached(&colour).unwrap_or(0);
    assert!(
        shared > 10 && shared < colour["usage"]["prompt_tokens"].as_u64().unwrap(),
        "the system prompt was reused, the question was not: {colour}"
    );
    let longer = answer(&app, ask("Name a colour and a fruit.")).await;
    assert_eq!(
        cached(&longer),
        Some(shared),
        "a question sharing its first words with the last one is evaluated whole: {longer}"
    );
    let again = answer(&app, ask("Name a fruit.")).await;
    assert_eq!(
        text(&again),
        text(&fruit),
        "reuse does not change a greedy answer"
    );
    assert_eq!(cached(&again), Some(shared), "{again}");
}

/// A conversation's next request reuses the evaluation of all its earlier turns: it goes back
/// to the context that served the turn before (of two, with unrelated work in between), and
/// there the assistant's opening was evaluated apart from the last turn, so the turns before
/// it are whole pieces the next prompt shares.
#[tokio::test]
async fn a_conversation_reuses_its_earlier_turns_on_the_context_that_served_them() {
    let app = App::spawn("[providers.local]\nmax_concurrent = 2").await;
    let ask = |messages: &[Value]| {
        json!({"model": "tiny", "temperature": 0, "max_tokens": 12, "cache": "no-store",
               "messages": messages})
    };
    let cached = |body: &Value| {
        body["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0)
    };
    let prompt = |body: &Value| body["usage"]["prompt_tokens"].as_u64().unwrap();
    let mut messages = vec![
        json!({"role": "system", "content": "You are a terse assistant for Acme Corp employees."}),
        json!({"role": "user", "content": "Name a fruit."}),
    ];
    let first = answer(&app, ask(&messages)).await;
    messages.push(json!({"role": "assistant", "content": text(&first)}));
    messages.push(json!({"role": "user", "content": "Name another one."}));
    let second = answer(&app, ask(&messages)).await;
    // Work that shares only the system turn goes to the other context, which holds no
    // conversation to lose.
    let unrelated = [
        messages[0].clone(),
        json!({"role": "user", "content": "Name a colour."}),
    ];
    answer(&app, ask(&unrelated)).await;
    messages.push(json!({"role": "assistant", "content": text(&second)}));
    messages.push(json!({"role": "user", "content": "And a third?"}));
    let third = answer(&app, ask(&messages)).await;
    // Everything of the second prompt but the assistant's opening (a few tokens).
    assert!(
        cached(&third) < prompt(&second) && cached(&third) + 8 >= prompt(&second),
        "second: {second}\nthird: {third}"
    );
    assert!(
        cached(&second) > 0 && cached(&second) < prompt(&first),
        "the system turn, on the context that served the first turn: {second}"
    );
}

/// Prompt-lookup drafting checks guesses copied from the prompt in one decode call each and
/// keeps only those the model picks itself: the greedy answer is the one that one token per
/// call gives, in fewer calls.
#[test]
fn drafting_keeps_the_greedy_answer_in_fewer_decode_calls() {
    use askacme::models::catalog;
    use askacme::models::generator::{
        ChatTurn, GenerationEvent, GeneratorOptions, GgufGenerator, SamplingParams,
    };
    let path = catalog::find("smollm2-135m-instruct")
        .unwrap()
        .load_path(&crate::harness::models_dir());
    let run = |draft_tokens| {
        let options = GeneratorOptions {
            threads: 2,
            max_concurrent: 1,
            context_tokens: 1024,
            batch_tokens: 512,
            reuse_prefix: true,
            draft_tokens,
        };
        let generator = GgufGenerator::load(&path, &options).unwrap();
        let turns = vec![ChatTurn {
            role: "user".into(),
            content: "Repeat this sentence exactly, once: Employees who have completed six months \
                      of service receive sixteen weeks of fully paid parental leave."
                .into(),
        }];
        let params = SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: Some(40),
            stop: Vec::new(),
            seed: 0,
            json: false,
        };
        let mut events = generator.generate(turns, params);
        let mut text = String::new();
        loop {
            match events.blocking_recv().unwrap() {
                GenerationEvent::Text(t) => text.push_str(&t),
                GenerationEvent::Done(stats) => return (text, stats),
                GenerationEvent::Failed(e) => panic!("{e}"),
            }
        }
    };
    let (plain_text, plain) = run(0);
    let (drafted_text, drafted) = run(8);
    assert!(plain_text.contains("sixteen weeks"), "{plain_text}");
    assert_eq!(drafted_text, plain_text);
    assert_eq!(drafted.completion_tokens, plain.completion_tokens);
    assert_eq!((plain.drafted_tokens, plain.accepted_tokens), (0, 0));
    assert!(
        drafted.accepted_tokens >= 5 && drafted.accepted_tokens <= drafted.drafted_tokens,
        "{drafted:?}"
    );
    // Kept guesses may run past the end of the answer (the prompt's own end-of-turn token is
    // a guess too), so they save at most one call each.
    assert!(
        drafted.decode_calls < plain.decode_calls
            && drafted.decode_calls + drafted.accepted_tokens >= plain.decode_calls,
        "{drafted:?} / {plain:?}"
    );
}
