//! Evaluation end to end: suites run in process and against a server, the judge through the
//! gateway (an unparsable verdict never passes, self-judging is refused, a pairwise verdict
//! that follows the order is caught), and prompt activation gated by the `regression` suite
//! with the default local model, followed by a running server, and rolled back.

use std::time::Duration;

use askacme::config::Config;
use askacme::eval::backend::{InProcess, Remote};
use askacme::eval::judge::{Judge, PairOutcome, SelfJudging};
use askacme::eval::runner::{self, RunOptions};
use askacme::eval::suite::Suite;
use serde_json::json;

use crate::assistant::{ask, repo};
use crate::harness::{App, Fake, TempDir, models_dir};

const FAKES: &str = "[deployments.answerer-dep]\nprovider = \"ai\"\nmodel = \"cited\"\n\
    [deployments.judge-dep]\nprovider = \"ai\"\nmodel = \"judge-5\"\n\
    [deployments.echo-dep]\nprovider = \"ai\"\nmodel = \"echo-user\"\n\
    [deployments.prefers-a-dep]\nprovider = \"ai\"\nmodel = \"prefers-a\"\n\
    [aliases]\nanswerer = [\"answerer-dep\"]\njudge = [\"judge-dep\"]\necho = [\"echo-dep\"]\n\
    prefers-a = [\"prefers-a-dep\"]\n";

const JUDGED: &str = r#"
[suite]
name = "judged"

[[case]]
id = "leave"
model = "answerer"
messages = [{ role = "user", content = "How long is parental leave?" }]
reference = "Employees get 20 weeks of parental leave at full pay."
assert = [
  { type = "contains", value = "20 weeks" },
  { type = "judge", threshold = 4 },
  { type = "similar", threshold = 0.9 },
]
"#;

fn in_process(app: &App, assistant: std::sync::Arc<askacme::pipeline::Assistant>) -> InProcess {
    InProcess {
        assistant,
        gateway: app.state.gateway.clone(),
        embedding_model: "embed".into(),
        no_cache: false,
    }
}

#[tokio::test]
async fn the_judge_grades_through_the_gateway_and_an_unparsable_verdict_never_passes() {
    let (_fake, addr) = Fake::spawn().await;
    let providers =
        format!("[providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n{FAKES}");
    let app = App::spawn(&providers).await;
    let backend = in_process(&app, app.state.assistant().await.unwrap());
    let suite = Suite::parse(JUDGED, "judged.toml").unwrap();
    let options = RunOptions::default();

    let judge = Judge::new(&backend, "judge", None);
    let report = runner::run(&suite, &backend, Some(&judge), &options)
        .await
        .unwrap();
    assert!(report.passed(), "{}", askacme::eval::report::table(&report));
    assert_eq!(report.judge.as_deref(), Some("judge"));
    assert_eq!(report.cases[0].attempts[0].score, Some(5.0));
    // `similar` embeds the answer and the reference: against another reference it fails.
    let similar = Suite::parse(
        &JUDGED
            .replace("{ type = \"judge\", threshold = 4 },", "")
            .replace(
                "20 weeks of parental leave at full pay.\"",
                "six weeks of sabbatical for managers.\"",
            ),
        "similar.toml",
    )
    .unwrap();
    let report = runner::run(&similar, &backend, None, &options)
        .await
        .unwrap();
    let failure = report.cases[0].attempts[0]
        .failure
        .clone()
        .unwrap_or_default();
    assert!(
        failure.starts_with("similar: similarity"),
        "a different reference is not similar: {failure}"
    );
    // The judge's call went through the gateway and is in the request log.
    let log = app.state.gateway.request_log();
    log.flush().await;
    let rows = log.database().recent_requests(10).await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.requested_model == "judge" && r.endpoint == "eval/chat"),
        "{rows:#?}"
    );

    // A judge that answers with something other than the verdict fails the case, and the
    // report counts the unparsable reply.
    let echo = Judge::new(&backend, "echo", None);
    let report = runner::run(&suite, &backend, Some(&echo), &options)
        .await
        .unwrap();
    assert!(!report.passed());
    assert_eq!(report.judge_unparsable(), 1);
    let failure = report.cases[0].attempts[0].failure.clone().unwrap();
    assert!(
        failure.contains("unparsable") && failure.contains("not counted as a pass"),
        "{failure}"
    );

    // The candidate's own model may not judge it unless allowed.
    let config = Config::from_toml_str(&providers).unwrap();
    let guard = SelfJudging::from_config(&config);
    let own = Judge::new(&backend, "answerer", guard);
    let report = runner::run(&suite, &backend, Some(&own), &options)
        .await
        .unwrap();
    let failure = report.cases[0].attempts[0].failure.clone().unwrap();
    assert!(failure.contains("allow_self_judging"), "{failure}");
    let allowed = Config::from_toml_str(&format!(
        "{providers}[eval.judge]\nallow_self_judging = true\n"
    ))
    .unwrap();
    assert!(SelfJudging::from_config(&allowed).is_none());

    // A judge that always prefers the answer shown first is caught by asking both orders.
    let biased = Judge::new(&backend, "prefers-a", None);
    let pair = biased
        .pairwise("How long?", Some("20 weeks."), "20 weeks.", "Six weeks.")
        .await
        .unwrap();
    assert_eq!(pair.outcome(), PairOutcome::PositionInconsistent);
    let fair = Judge::new(&backend, "judge", None);
    let pair = fair.pairwise("How long?", None, "a", "b").await.unwrap();
    assert_eq!(
        pair.outcome(),
        PairOutcome::Unparsable,
        "no `winner` in the reply"
    );

    // The same suite against the server over HTTP passes the same way.
    let remote = Remote::new(&app.base, None, "embed".into(), false);
    let judge = Judge::new(&remote, "judge", None);
    let report = runner::run(&suite, &remote, Some(&judge), &options)
        .await
        .unwrap();
    assert!(report.passed(), "{}", askacme::eval::report::table(&report));
    // A fixed context cannot be given to a server.
    let fixed = Suite::parse(
        "[suite]\nname = \"f\"\n[[case]]\nid = \"c\"\nquestion = \"q?\"\ncontext = \"text\"\nassert = [{ type = \"no_answer\" }]\n",
        "f.toml",
    )
    .unwrap();
    let err = runner::run(&fixed, &remote, None, &options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("in-process"), "{err}");
}

/// Runs the binary; returns whether it succeeded, its stdout and its stderr.
fn askacme(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = crate::harness::cli_output(config, args);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn live_prompt(app: &App) -> String {
    let (_, _, answer) = ask(app, json!({"question": "How long is parental leave?"})).await;
    answer["prompt_version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits (up to 15 s) for the running server to answer with `version`.
async fn until_live(app: &App, version: &str) {
    for _ in 0..30 {
        if live_prompt(app).await == version {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the server never switched to {version}");
}

/// The README's test command runs `regression` here, with the default local model. Then a
/// version that drops the rule to cite sources is refused by the gate, a faithful copy of
/// the live version is activated and picked up by the running server, and a rollback
/// restores the previous version in it.
#[tokio::test]
async fn regression_passes_and_gates_prompt_activation_in_a_running_server() {
    let dir = TempDir::new("gate");
    let v3 = include_str!("../../prompts/ask_acme/v3.toml");
    let no_citations = v3
        .replace("version = \"v3\"", "version = \"v4\"")
        .replace(
            "2. End every sentence with the number of the source it comes from in square brackets, like this: \"<sentence from source 2> [2].\"\n",
            "",
        )
        .replace(
            "Answer in one to three sentences, each ending with its source number in square brackets.",
            "Answer in one to three sentences.",
        );
    assert_eq!(
        no_citations.matches("square brackets").count(),
        0,
        "the broken version must drop every citation instruction"
    );
    let copy = v3.replace("version = \"v3\"", "version = \"v5\"");
    let prompts = dir.0.join("prompts/ask_acme");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(prompts.join("v4.toml"), no_citations).unwrap();
    std::fs::write(prompts.join("v5.toml"), copy).unwrap();
    let prompts_table = format!(
        "[prompts]\ndir = {:?}\n",
        dir.0.join("prompts").display().to_string()
    );
    let app = App::spawn(&prompts_table).await;
    let config = dir.0.join("askacme.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = {:?}\nmodels_dir = {:?}\n[safety]\nlearned_head = {:?}\n{prompts_table}",
            app.data_dir().display().to_string(),
            models_dir().display().to_string(),
            dir.0.join("no-head.json").display().to_string(),
        ),
    )
    .unwrap();
    let handbook = repo("examples/handbook");
    assert!(askacme(&config, &["ingest", handbook.to_str().unwrap()]).0);

    let junit = dir.0.join("regression.xml");
    let (passed, stdout, stderr) = askacme(
        &config,
        &[
            "eval",
            "run",
            "regression",
            "gateway-smoke",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    println!("{stdout}");
    assert!(passed, "{stdout}\n{stderr}");
    assert!(stdout.contains("prompt ask_acme@v3"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"regression\"") && xml.contains("failures=\"0\""),
        "{xml}"
    );
    assert_eq!(live_prompt(&app).await, "ask_acme@v3");

    // The version without the citation rule fails the gate: nothing changes.
    let (activated, stdout, stderr) = askacme(&config, &["prompts", "activate", "ask_acme", "v4"]);
    assert!(!activated, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("NOT activated") && stdout.contains("cites"),
        "{stdout}\n{stderr}"
    );
    // A faithful copy passes and the running server picks it up.
    let (activated, stdout, stderr) = askacme(&config, &["prompts", "activate", "ask_acme", "v5"]);
    assert!(activated, "{stdout}\n{stderr}");
    until_live(&app, "ask_acme@v5").await;
    // Rolling back needs no gate and is followed as well.
    let (rolled, stdout, stderr) = askacme(&config, &["prompts", "rollback", "ask_acme"]);
    assert!(
        rolled && stdout.contains("ask_acme@v3"),
        "{stdout}\n{stderr}"
    );
    until_live(&app, "ask_acme@v3").await;
    let (_, history, _) = askacme(&config, &["prompts", "history", "ask_acme"]);
    let actions: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert_eq!(actions, ["activate", "rollback"], "{history}");
    assert!(
        history.contains("regression") && history.contains("passed"),
        "{history}"
    );
    // Refused and forced activations: a force needs a reason.
    let (forced, _, stderr) = askacme(
        &config,
        &["prompts", "activate", "ask_acme", "v4", "--force"],
    );
    assert!(!forced && stderr.contains("--reason"), "{stderr}");
    // Every run is stored: the CLI's two suites and the two gate runs.
    // Side by side, nothing changed between v3 and its copy (both answered from the caches).
    let (ok, compared, stderr) = askacme(
        &config,
        &[
            "eval",
            "compare",
            "regression",
            "--a",
            "ask_acme@v3",
            "--b",
            "ask_acme@v5",
        ],
    );
    assert!(
        ok && compared.contains("0 cases changed"),
        "{compared}\n{stderr}"
    );
    let (_, runs, _) = askacme(&config, &["eval", "history"]);
    assert_eq!(
        runs.lines().filter(|l| l.contains(" gate ")).count(),
        2,
        "{runs}"
    );
    assert_eq!(
        runs.lines().filter(|l| l.contains(" cli ")).count(),
        4,
        "the CLI's two suites, then compare's two runs: {runs}"
    );
}

/// Production signals over `/v1/ask`: a rephrase in the same conversation marks the answer
/// before it, a question asking for a human is an escalation, a thumbs-up is counted, an
/// unanswered question is a knowledge gap; `GET /admin/stats` shows them. Then a blinded human
/// sample of those answers is written, rated, imported and its agreement computed.
#[tokio::test]
async fn production_signals_are_counted_and_answers_are_sampled_for_human_rating() {
    let (_fake, addr) = Fake::spawn().await;
    let routes = crate::harness::routes_to("fake");
    let app = crate::assistant::handbook_app(&format!(
        "[providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.fake-model]\nprovider = \"ai\"\nmodel = \"cited\"\n\
         [aliases]\nfake = [\"fake-model\"]\n[assistant.routes]\n{routes}"
    ))
    .await;
    let session = |q: &str| json!({"question": q, "session_id": "s-1", "cache": "no-store"});
    let (_, first, _) = ask(&app, session("How long is parental leave?")).await;
    let (_, second, _) = ask(&app, session("How many weeks of parental leave do I get?")).await;
    let (_, human, _) = ask(
        &app,
        json!({"question": "Can I talk to a human about parental leave?"}),
    )
    .await;
    let (_, _, gap) = ask(
        &app,
        json!({"question": "What's the CEO's favorite color?"}),
    )
    .await;
    assert_eq!(gap["status"], "no_answer");
    let rated = app
        .post(
            "/v1/feedback",
            json!({"request_id": second, "rating": "up"}),
        )
        .await;
    assert_eq!(rated.status(), 200);

    let stats: serde_json::Value = app
        .http
        .get(format!("{}/admin/stats?since=1h", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all = &stats["groups"][0];
    assert_eq!(all["answers"], 4, "{stats:#}");
    assert_eq!(all["success"], 3, "{stats:#}");
    assert_eq!(
        all["rephrased"], 1,
        "the first answer was asked again: {stats:#}"
    );
    assert_eq!(all["escalated"], 1, "{stats:#}");
    assert_eq!(all["thumbs_up"], 1, "{stats:#}");
    assert_eq!(
        all["thumbs_down"], 0,
        "the later rating replaced the earlier: {stats:#}"
    );
    assert_eq!(all["thumbs_up_rate"], 1.0, "{stats:#}");
    assert_eq!(
        stats["top_unanswered"][0]["question"],
        "What's the CEO's favorite color?"
    );
    let db = app.state.gateway.request_log().database();
    assert!(
        db.answer(&first).await.unwrap().unwrap().rephrased,
        "the first answer was rephrased"
    );
    assert!(!db.answer(&second).await.unwrap().unwrap().rephrased);
    assert!(db.answer(&human).await.unwrap().unwrap().escalated);
    let by_day: serde_json::Value = app
        .http
        .get(format!("{}/admin/stats?since=1h&by=day", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_day["groups"][0]["answers"], 4, "{by_day:#}");
    assert_eq!(
        by_day["groups"][0]["group"].as_str().unwrap().len(),
        10,
        "a date: {by_day:#}"
    );
    let bad = app
        .http
        .get(format!("{}/admin/stats?since=7w", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // A blinded sample of these answers for two raters, rated and imported.
    let dir = TempDir::new("human");
    let config = dir.0.join("askacme.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = {:?}\nmodels_dir = {:?}\n",
            app.data_dir().display().to_string(),
            models_dir().display().to_string()
        ),
    )
    .unwrap();
    let sample = dir.0.join("sample.csv");
    let (ok, stdout, stderr) = askacme(
        &config,
        &[
            "eval",
            "human",
            "sample",
            "--n",
            "3",
            "--since",
            "1h",
            "--out",
            sample.to_str().unwrap(),
        ],
    );
    assert!(
        ok && stdout.contains("3 of 4 answers"),
        "{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&sample).unwrap();
    assert!(
        !text.contains("req_") && !text.contains("fake"),
        "blinded: {text}"
    );
    // Rater 1 says 5, 1, 4; rater 2 says 5, 1, 2: they disagree on the third item only.
    let mut ratings = [("5", "5"), ("1", "1"), ("4", "2")].into_iter();
    let rated: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| match (i, line.strip_suffix(",,,,")) {
            (0, _) | (_, None) => format!("{line}\n"),
            (_, Some(item)) => {
                let (a, b) = ratings.next().unwrap();
                format!("{item},{a},,{b},\"too vague, I think\"\n")
            }
        })
        .collect();
    assert!(ratings.next().is_none(), "{text}");
    let rated_path = dir.0.join("rated.csv");
    std::fs::write(&rated_path, &rated).unwrap();
    let broken = dir.0.join("broken.csv");
    std::fs::write(&broken, rated.replacen(",5,,5,", ",9,,5,", 1)).unwrap();
    let (ok, _, stderr) = askacme(
        &config,
        &["eval", "human", "import", broken.to_str().unwrap()],
    );
    assert!(!ok && stderr.contains("rater_1_rating"), "{stderr}");
    let (ok, stdout, stderr) = askacme(
        &config,
        &["eval", "human", "import", rated_path.to_str().unwrap()],
    );
    assert!(
        ok && stdout.contains("6 ratings imported"),
        "{stdout}\n{stderr}"
    );
    let (ok, stdout, stderr) = askacme(&config, &["eval", "human", "agreement", "--json"]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["items"], 3);
    assert!(
        (report["percent_agreement"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9,
        "{report:#}"
    );
    assert_eq!(
        report["disagreements"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert!(report["cohen_kappa"].as_f64().is_some(), "{report:#}");

    // Well-rated answers become fine-tuning examples, personal data redacted.
    let (_, mailed, _) = ask(
        &app,
        json!({"question": "How long is parental leave? Write to jane.doe@example.com", "cache": "no-store"}),
    )
    .await;
    app.post(
        "/v1/feedback",
        json!({"request_id": mailed, "rating": "up"}),
    )
    .await;
    let train = dir.0.join("train.jsonl");
    let (ok, stdout, stderr) = askacme(
        &config,
        &[
            "export",
            "finetune",
            "--rating",
            "up",
            "--out",
            train.to_str().unwrap(),
        ],
    );
    assert!(ok && stdout.contains("2 examples"), "{stdout}\n{stderr}");
    let jsonl = std::fs::read_to_string(&train).unwrap();
    assert!(
        !jsonl.contains("jane.doe@example.com") && jsonl.contains("[EMAIL_1]"),
        "{jsonl}"
    );
    let example: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    let messages = example["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant"]);
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("You are AskAcme")
    );
    assert!(
        !messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("Confidential marker"),
        "no canary: {example}"
    );
    let user = messages[1]["content"].as_str().unwrap();
    assert!(
        user.contains("Sources:") && user.contains("How many weeks of parental leave"),
        "{user}"
    );
    assert!(
        messages[2]["content"]
            .as_str()
            .unwrap()
            .contains("20 weeks")
    );
}

/// `[[eval.schedule]]` inside the server: a canary suite runs per model on its schedule
/// without the caches; the model whose provider starts failing is flagged as drift on
/// /metrics, the steady one is not. The job's lease keeps a second instance out.
#[tokio::test]
async fn scheduled_canaries_run_in_the_server_and_flag_drift() {
    let (_fake, addr) = Fake::spawn().await;
    let dir = TempDir::new("schedule");
    std::fs::write(
        dir.0.join("canary.toml"),
        "[suite]\nname = \"canary\"\n[[case]]\nid = \"leave\"\nmodel = \"steady\"\n\
         messages = [{ role = \"user\", content = \"How long is parental leave?\" }]\n\
         assert = [{ type = \"icontains\", value = \"parental leave\" }]\n",
    )
    .unwrap();
    let app = App::spawn(&format!(
        "[providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.steady-dep]\nprovider = \"ai\"\nmodel = \"ok\"\n\
         [deployments.breaking-dep]\nprovider = \"ai\"\nmodel = \"breaks-after-1\"\n\
         [aliases]\nsteady = [\"steady-dep\"]\nbreaking = [\"breaking-dep\"]\n\
         [eval]\nschedule_poll_secs = 1\nsuites_dir = {:?}\n\
         [[eval.schedule]]\nsuite = \"canary\"\nevery = \"1s\"\nmodels = [\"steady\", \"breaking\"]\n",
        dir.0.display().to_string()
    ))
    .await;
    let db = app.state.gateway.request_log().database().clone();
    let mut drifted = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some((first, latest)) = db.scheduled_runs("canary", Some("breaking")).await.unwrap()
            && first.id != latest.id
        {
            assert!(first.passed && !latest.passed, "{first:?} {latest:?}");
            drifted = true;
            break;
        }
    }
    assert!(drifted, "the breaking model's canary never ran twice");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("# HELP askacme_eval_drift 1 when")
            && metrics.contains("\n# TYPE askacme_eval_drift gauge\n")
            && metrics.contains("\n# TYPE askacme_eval_pass_rate gauge\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("askacme_eval_drift{suite=\"canary\",model=\"breaking\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("askacme_eval_drift{suite=\"canary\",model=\"steady\"} 0"),
        "{metrics}"
    );
    let runs = db.eval_runs(Some("canary"), 50).await.unwrap();
    assert!(runs.iter().all(|r| r.trigger == "schedule"));

    // Another instance cannot take a job's lease while it is held.
    let now = askacme::store::now_ms();
    assert!(db.take_lease("job", "a", now, now + 1000).await.unwrap());
    assert!(
        db.take_lease("job", "a", now, now + 1000).await.unwrap(),
        "renewable by its holder"
    );
    assert!(!db.take_lease("job", "b", now, now + 1000).await.unwrap());
    assert!(
        db.take_lease("job", "b", now + 2000, now + 3000)
            .await
            .unwrap(),
        "once expired"
    );
}

/// Without gating suites a version can only be forced, with a reason, and the record says it
/// was forced; the gate's refusal paths change nothing.
#[test]
fn a_version_without_gates_is_only_activated_by_force_with_a_reason() {
    let dir = TempDir::new("force");
    let prompts = dir.0.join("prompts/ask_acme");
    std::fs::create_dir_all(&prompts).unwrap();
    let v3 = include_str!("../../prompts/ask_acme/v3.toml");
    std::fs::write(
        prompts.join("v4.toml"),
        v3.replace("version = \"v3\"", "version = \"v4\""),
    )
    .unwrap();
    let config = dir.0.join("askacme.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = {:?}\nmodels_dir = {:?}\n[prompts]\ndir = {:?}\n[prompts.gates]\nask_acme = []\n",
            dir.0.display().to_string(),
            models_dir().display().to_string(),
            dir.0.join("prompts").display().to_string(),
        ),
    )
    .unwrap();
    let (ok, _, stderr) = askacme(&config, &["prompts", "activate", "ask_acme", "v4"]);
    assert!(!ok && stderr.contains("no gating suites"), "{stderr}");
    let (ok, _, stderr) = askacme(
        &config,
        &[
            "prompts", "activate", "other", "v1", "--force", "--reason", "x",
        ],
    );
    assert!(
        !ok && stderr.contains("not the assistant's prompt"),
        "{stderr}"
    );
    let (ok, _, stderr) = askacme(
        &config,
        &[
            "prompts", "activate", "ask_acme", "v3", "--force", "--reason", "x",
        ],
    );
    assert!(
        !ok && stderr.contains("already the active version"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = askacme(
        &config,
        &[
            "prompts",
            "activate",
            "ask_acme",
            "v4",
            "--force",
            "--reason",
            "hotfix for INC-1",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let (_, history, _) = askacme(&config, &["prompts", "history", "ask_acme"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{history}");
    assert!(
        rows[0].contains(" force ")
            && rows[0].contains("hotfix for INC-1")
            && rows[0].contains("os:"),
        "{history}"
    );
    let (_, list, _) = askacme(&config, &["prompts", "list"]);
    assert!(
        list.lines().any(|l| l.starts_with('*') && l.contains("v4")),
        "{list}"
    );
}
