//! A run's report for people (a table), for programs (JSON) and for CI (JUnit XML), and the
//! side-by-side of two prompt versions.

use std::fmt::Write;

use super::assertion::excerpt;
use super::runner::{CaseReport, SuiteReport};
use crate::store::EvalRunRow;

/// The table `askacme eval run` prints: one line per case, the failing assertion and the
/// answer under a failed one, then the totals.
pub fn table(report: &SuiteReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "suite {} · prompt {} · model {} · judge {} · repeat {}",
        report.suite,
        report.prompt_version.as_deref().unwrap_or("-"),
        report.model.as_deref().unwrap_or("(routes)"),
        report.judge.as_deref().unwrap_or("-"),
        report.repeat
    );
    let width = report
        .cases
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<width$}  {:>9}  {:>6}  {:>9}  result",
        "case", "pass rate", "pass^N", "ms"
    );
    for case in &report.cases {
        let latency = case
            .attempts
            .iter()
            .map(|a| a.outcome.latency_ms)
            .sum::<f64>()
            / case.attempts.len().max(1) as f64;
        let _ = writeln!(
            out,
            "{:<width$}  {:>9}  {:>6}  {:>9.0}  {}",
            case.id,
            format!("{:.0}%", 100.0 * case.pass_rate),
            if case.passed_every_time { "yes" } else { "no" },
            latency,
            if case.passed { "pass" } else { "FAIL" }
        );
        if let Some(failed) = case.first_failure() {
            let _ = writeln!(
                out,
                "{:width$}    {}",
                "",
                failed.failure.as_deref().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{}/{} cases passed (min pass rate {:.0}% per case){}; {} judge replies unparsable; \
         cost ${:.6}; {:.1} s",
        report.cases_passed(),
        report.cases.len() + report.not_run,
        100.0 * report.min_pass_rate,
        if report.not_run > 0 {
            format!(", {} not run after the first failure", report.not_run)
        } else {
            String::new()
        },
        report.judge_unparsable(),
        report.cost_micro_usd as f64 / 1e6,
        (report.finished_at_ms - report.started_at_ms) as f64 / 1000.0
    );
    let _ = writeln!(out, "{}", if report.passed() { "PASSED" } else { "FAILED" });
    out
}

/// JUnit XML, one `<testsuite>` per run, so any CI shows the cases.
pub fn junit(reports: &[SuiteReport]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for report in reports {
        let failures = report.cases.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&report.suite),
            report.cases.len() + report.not_run,
            report.not_run,
            (report.finished_at_ms - report.started_at_ms) as f64 / 1000.0
        );
        for case in &report.cases {
            let time = case
                .attempts
                .iter()
                .map(|a| a.outcome.latency_ms)
                .sum::<f64>()
                / 1000.0;
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
                xml(&report.suite),
                xml(&case.id)
            );
            match case.first_failure().filter(|_| !case.passed) {
                None => out.push_str("/>\n"),
                Some(failed) => {
                    let message = failed.failure.as_deref().unwrap_or_default();
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">pass rate {:.0}% over {} attempts\n{}</failure>\n    </testcase>",
                        xml(message),
                        100.0 * case.pass_rate,
                        case.attempts.len(),
                        xml(&failed.outcome.answer)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || c >= ' ')
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
            out
        })
}

/// Two runs of one suite side by side, the cases whose outcome changed first.
pub fn compare(a: &SuiteReport, b: &SuiteReport) -> String {
    let label = |r: &SuiteReport| r.prompt_version.clone().unwrap_or_else(|| "-".into());
    let (la, lb) = (label(a), label(b));
    let mut rows: Vec<(&CaseReport, Option<&CaseReport>)> = a
        .cases
        .iter()
        .map(|ca| (ca, b.cases.iter().find(|cb| cb.id == ca.id)))
        .collect();
    let changed = |(ca, cb): &(&CaseReport, Option<&CaseReport>)| {
        cb.is_none_or(|cb| cb.passed != ca.passed || cb.pass_rate != ca.pass_rate)
    };
    rows.sort_by_key(|row| !changed(row));
    let width = rows
        .iter()
        .map(|(c, _)| c.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "suite {}: {la} vs {lb}\n{:<width$}  {:>14}  {:>14}",
        a.suite, "case", la, lb
    );
    let mut changes = 0;
    for row in &rows {
        let (ca, cb) = row;
        let cell = |c: &CaseReport| {
            format!(
                "{} {:.0}%",
                if c.passed { "pass" } else { "FAIL" },
                100.0 * c.pass_rate
            )
        };
        let is_changed = changed(row);
        changes += usize::from(is_changed);
        let _ = writeln!(
            out,
            "{:<width$}  {:>14}  {:>14}{}",
            ca.id,
            cell(ca),
            cb.map_or("-".into(), cell),
            if is_changed { "  ← changed" } else { "" }
        );
        if is_changed {
            for (version, case) in [(&la, Some(*ca)), (&lb, *cb)] {
                if let Some(failed) = case.and_then(CaseReport::first_failure) {
                    let _ = writeln!(
                        out,
                        "{:width$}    {version}: {}",
                        "",
                        excerpt(failed.failure.as_deref().unwrap_or_default())
                    );
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{la}: {}/{} passed · {lb}: {}/{} passed · {changes} cases changed",
        a.cases_passed(),
        a.cases.len(),
        b.cases_passed(),
        b.cases.len()
    );
    out
}

/// `askacme eval history`: stored runs, newest first.
pub fn history(runs: &[EvalRunRow]) -> String {
    let mut out = format!(
        "{:<20} {:<16} {:<16} {:<9} {:>8} {:>7} {:>11}  {}\n",
        "started (UTC)", "suite", "prompt", "trigger", "passed", "result", "cost USD", "run"
    );
    for run in runs {
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:<16} {:<9} {:>8} {:>7} {:>11.6}  {}",
            utc(run.started_at_ms),
            run.suite,
            run.prompt_version.as_deref().unwrap_or("-"),
            run.trigger,
            format!("{}/{}", run.cases_passed, run.cases),
            if run.passed { "pass" } else { "FAIL" },
            run.cost_micro_usd as f64 / 1e6,
            run.id
        );
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` of a millisecond timestamp (UTC), without a date crate.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::assertion::Outcome;
    use crate::eval::runner::{Attempt, Trigger};

    fn report(passes: &[(&str, bool)]) -> SuiteReport {
        SuiteReport {
            run_id: "eval_1".into(),
            suite: "demo".into(),
            prompt_version: Some("ask_acme@v3".into()),
            model: None,
            judge: None,
            trigger: Trigger::Cli,
            repeat: 1,
            min_pass_rate: 1.0,
            started_at_ms: 0,
            finished_at_ms: 1500,
            not_run: 0,
            cost_micro_usd: 0,
            cases: passes
                .iter()
                .map(|(id, pass)| CaseReport {
                    id: (*id).into(),
                    tags: vec![],
                    question: "q".into(),
                    attempts: vec![Attempt {
                        pass: *pass,
                        failure: (!pass).then(|| "contains: expected <20 weeks> & more".into()),
                        score: None,
                        judge_unparsable: false,
                        judge_cost_micro_usd: 0,
                        outcome: Outcome {
                            answer: "It is \"six\" weeks".into(),
                            ..Outcome::default()
                        },
                    }],
                    pass_rate: if *pass { 1.0 } else { 0.0 },
                    passed_every_time: *pass,
                    passed: *pass,
                })
                .collect(),
        }
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let xml = junit(&[report(&[("a", true), ("b", false)])]);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("<testcase classname=\"demo\" name=\"a\" time=\"0.000\"/>"));
        assert!(
            xml.contains("expected &lt;20 weeks&gt; &amp; more"),
            "{xml}"
        );
        assert!(xml.contains("It is &quot;six&quot; weeks"), "{xml}");
    }

    #[test]
    fn the_table_names_the_failing_assertion() {
        let text = table(&report(&[("a", true), ("b", false)]));
        assert!(text.contains("1/2 cases passed"), "{text}");
        assert!(text.contains("contains: expected"), "{text}");
        assert!(text.trim_end().ends_with("FAILED"));
    }

    #[test]
    fn compare_lists_changed_cases_first() {
        let mut b = report(&[("a", true), ("b", true)]);
        b.prompt_version = Some("ask_acme@v4".into());
        let text = compare(&report(&[("a", true), ("b", false)]), &b);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].starts_with("b ") && lines[2].contains("changed"),
            "{text}"
        );
        assert!(text.contains("1 cases changed"), "{text}");
    }

    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_083_200_000), "2026-12-01 00:00:00");
        assert_eq!(utc(951_782_400_000 + 3_661_000), "2000-02-29 01:01:01");
    }
}
