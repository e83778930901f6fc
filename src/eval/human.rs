//! Human evaluation: a reproducible, stratified, blinded sample of production answers written
//! as CSV for raters; their files imported back; and the agreement between them (and with the
//! judge) computed with `agreement`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::agreement::{Level, cohen_kappa, krippendorff_alpha, percent_agreement};
use super::backend::BackendError;
use super::judge::Judge;
use crate::store::{AnswerRow, Database, HumanRating, StoreError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum HumanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{file}: {message}")]
    Import { file: String, message: String },
    #[error("{0}")]
    SelfJudging(String),
}

/// One blinded item: what a rater sees (no model, prompt version, cost or status).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub item_id: String,
    pub request_id: String,
    pub question: String,
    pub answer: String,
}

/// Up to `n` production answers since `since_ms`, stratified by category and status (each
/// stratum gets its proportional share, largest remainders first, every stratum at least one
/// when `n` allows), chosen reproducibly from `seed`, in an order that hides the strata.
pub fn sample(answers: &[AnswerRow], n: usize, seed: u64) -> Vec<Item> {
    let mut strata: BTreeMap<(&str, &str), Vec<&AnswerRow>> = BTreeMap::new();
    for answer in answers {
        strata
            .entry((answer.category.as_str(), answer.status.as_str()))
            .or_default()
            .push(answer);
    }
    let total = answers.len();
    let n = n.min(total);
    let sizes: Vec<usize> = strata.values().map(Vec::len).collect();
    let quotas = allocate(&sizes, n);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut items: Vec<Item> = Vec::with_capacity(n);
    for (rows, quota) in strata.into_values().zip(quotas) {
        let mut rows = rows;
        rng.shuffle(&mut rows);
        items.extend(rows.into_iter().take(quota).map(|row| Item {
            item_id: item_id(seed, &row.request_id),
            request_id: row.request_id.clone(),
            question: row.question.clone(),
            answer: row.answer.clone(),
        }));
    }
    items.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    items
}

/// Seats per stratum for a sample of `n` from strata of `sizes`: proportional, the seats left
/// over going to the largest remainders (`share − seats`), every stratum at least one when `n`
/// allows.
fn allocate(sizes: &[usize], n: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let exact: Vec<f64> = sizes
        .iter()
        .map(|&len| n as f64 * len as f64 / total.max(1) as f64)
        .collect();
    let floor = usize::from(n >= sizes.len());
    let mut seats: Vec<usize> = exact
        .iter()
        .zip(sizes)
        .map(|(e, &len)| (e.floor() as usize).max(floor).min(len))
        .collect();
    let owed = |seats: &[usize], i: usize| exact[i] - seats[i] as f64;
    let mut assigned: usize = seats.iter().sum();
    while assigned < n {
        let Some(i) = (0..sizes.len())
            .filter(|&i| seats[i] < sizes[i])
            .max_by(|&a, &b| owed(&seats, a).total_cmp(&owed(&seats, b)).then(b.cmp(&a)))
        else {
            break;
        };
        seats[i] += 1;
        assigned += 1;
    }
    // The one-per-stratum floor can overshoot: take back from the most over-served stratum
    // that keeps at least one.
    while assigned > n {
        let Some(i) = (0..sizes.len())
            .filter(|&i| seats[i] > floor)
            .min_by(|&a, &b| owed(&seats, a).total_cmp(&owed(&seats, b)).then(a.cmp(&b)))
        else {
            break;
        };
        seats[i] -= 1;
        assigned -= 1;
    }
    seats
}

/// A stable id that does not reveal the request: the same answer in the same sample always
/// gets the same id.
fn item_id(seed: u64, request_id: &str) -> String {
    let digest = Sha256::digest(format!("{seed}:{request_id}").as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("item_{hex}")
}

/// The CSV raters fill in: the item, then a rating and a comment column per rater.
pub fn csv(items: &[Item], raters: usize) -> String {
    let mut header = vec!["item_id".to_owned(), "question".into(), "answer".into()];
    for r in 1..=raters {
        header.push(format!("rater_{r}_rating"));
        header.push(format!("rater_{r}_comment"));
    }
    let mut out = csv_line(&header);
    for item in items {
        let mut fields = vec![
            item.item_id.clone(),
            item.question.clone(),
            item.answer.clone(),
        ];
        fields.extend(std::iter::repeat_n(String::new(), 2 * raters));
        out.push_str(&csv_line(&fields));
    }
    out
}

fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    format!("{}\r\n", quoted.join(","))
}

/// RFC 4180 records (quoted fields may hold commas, quotes and line breaks), each with the
/// file line it starts on. A leading byte-order mark (spreadsheets write one) is skipped.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let (mut line, mut starts) = (1, 1);
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push((starts, std::mem::take(&mut record)));
                starts = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((starts, record));
    }
    Ok(records)
}

/// A rating cell: 1–5, or good (5) / bad (1); empty is no rating.
fn rating(cell: &str) -> Result<Option<u8>, String> {
    match cell.trim().to_lowercase().as_str() {
        "" => Ok(None),
        "good" => Ok(Some(5)),
        "bad" => Ok(Some(1)),
        other => match other.parse::<u8>() {
            Ok(n @ 1..=5) => Ok(Some(n)),
            _ => Err(format!("rating `{cell}` is not 1-5, good or bad")),
        },
    }
}

/// The ratings of a rated file: every `<rater>_rating` column, with its `<rater>_comment` when
/// present.
pub fn read_ratings(file: &str, text: &str) -> Result<Vec<HumanRating>, HumanError> {
    let invalid = |message: String| HumanError::Import {
        file: file.to_owned(),
        message,
    };
    let records = parse_csv(text).map_err(invalid)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Err(invalid("empty file".into()));
    };
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let item = column("item_id").ok_or_else(|| invalid("no `item_id` column".into()))?;
    let raters: Vec<(String, usize, Option<usize>)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let rater = h.trim().strip_suffix("_rating")?;
            Some((rater.to_owned(), i, column(&format!("{rater}_comment"))))
        })
        .collect();
    if raters.is_empty() {
        return Err(invalid("no `<rater>_rating` column".into()));
    }
    let mut ratings = Vec::new();
    for (line, row) in rows {
        let Some(item_id) = row.get(item).filter(|id| !id.trim().is_empty()) else {
            continue;
        };
        for (rater, rating_at, comment_at) in &raters {
            let cell = row.get(*rating_at).map(String::as_str).unwrap_or_default();
            let value = rating(cell)
                .map_err(|m| invalid(format!("line {line}, column `{rater}_rating`: {m}")))?;
            if let Some(value) = value {
                let comment = comment_at
                    .and_then(|c| row.get(c))
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty());
                ratings.push(HumanRating {
                    item_id: item_id.trim().to_owned(),
                    rater: rater.clone(),
                    rating: value,
                    comment,
                });
            }
        }
    }
    Ok(ratings)
}

/// Stores a sample's items so imported ratings can be traced to their answers.
pub async fn record_sample(db: &Database, items: &[Item]) -> Result<(), StoreError> {
    let pairs: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.item_id.clone(), i.request_id.clone()))
        .collect();
    db.record_human_items(&pairs, now_ms()).await
}

#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub item_id: String,
    pub question: String,
    pub ratings: BTreeMap<String, u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementReport {
    pub items: usize,
    pub raters: Vec<String>,
    pub percent_agreement: Option<f64>,
    /// Cohen's κ when exactly two raters rated.
    pub cohen_kappa: Option<f64>,
    pub krippendorff_alpha_ordinal: Option<f64>,
    pub disagreements: Vec<Disagreement>,
    /// The judge's agreement with each rater, good (4–5) versus not, where it scored the
    /// items: `(rater, percent agreement, κ)`.
    pub judge: Option<JudgeAgreement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JudgeAgreement {
    pub model: String,
    pub unparsable: usize,
    pub per_rater: Vec<(String, Option<f64>, Option<f64>)>,
    /// α (ordinal) over the people, and over the people with the judge as one more rater.
    pub alpha_humans: Option<f64>,
    pub alpha_with_judge: Option<f64>,
}

/// Agreement over every imported rating; with `judge`, the judge scores each rated answer
/// (a rubric of correctness and helpfulness for an employee) and is compared with the people.
pub async fn agreement(
    db: &Database,
    judge: Option<&Judge<'_>>,
) -> Result<AgreementReport, HumanError> {
    let ratings = db.human_ratings().await?;
    let mut raters: Vec<String> = ratings.iter().map(|r| r.rater.clone()).collect();
    raters.sort();
    raters.dedup();
    let mut by_item: BTreeMap<String, BTreeMap<String, u8>> = BTreeMap::new();
    for rating in &ratings {
        by_item
            .entry(rating.item_id.clone())
            .or_default()
            .insert(rating.rater.clone(), rating.rating);
    }
    let items: Vec<&String> = by_item.keys().collect();
    let matrix =
        |raters: &[String], extra: Option<&BTreeMap<String, u8>>| -> Vec<Vec<Option<u32>>> {
            let mut rows: Vec<Vec<Option<u32>>> = raters
                .iter()
                .map(|r| {
                    items
                        .iter()
                        .map(|i| by_item[*i].get(r).map(|&v| u32::from(v)))
                        .collect()
                })
                .collect();
            if let Some(extra) = extra {
                rows.push(
                    items
                        .iter()
                        .map(|i| extra.get(*i).map(|&v| u32::from(v)))
                        .collect(),
                );
            }
            rows
        };
    let humans = matrix(&raters, None);
    let mut disagreements = Vec::new();
    for (item, scores) in &by_item {
        let mut values = scores.values();
        let first = values.next();
        if values.any(|v| Some(v) != first) {
            let question = db
                .human_item_answer(item)
                .await?
                .map(|a| a.question)
                .unwrap_or_default();
            disagreements.push(Disagreement {
                item_id: item.clone(),
                question,
                ratings: scores.clone(),
            });
        }
    }
    let judge = match judge {
        None => None,
        Some(judge) => {
            let mut scores = BTreeMap::new();
            let mut unparsable = 0;
            for item in &items {
                let Some(answer) = db.human_item_answer(item).await? else {
                    continue;
                };
                let outcome = super::assertion::Outcome {
                    model: answer.model.clone(),
                    ..super::assertion::Outcome::default()
                };
                if let Some(why) = judge.refuses(&outcome) {
                    return Err(HumanError::SelfJudging(why));
                }
                let verdict = judge
                    .rubric(
                        &answer.question,
                        None,
                        &answer.answer,
                        Some("How correct and helpful is this answer for an employee asking the question? An answer that declines when it should answer, or states something doubtful, is not helpful."),
                    )
                    .await?;
                match verdict.headline() {
                    Some(score) => {
                        scores.insert((*item).clone(), score);
                    }
                    None => unparsable += 1,
                }
            }
            let good = |v: Option<u32>| v.map(|v| u32::from(v >= 4));
            let judged: Vec<Option<u32>> = items
                .iter()
                .map(|i| scores.get(*i).map(|&v| u32::from(v)))
                .collect();
            let per_rater = raters
                .iter()
                .zip(&humans)
                .map(|(rater, row)| {
                    let a: Vec<Option<u32>> = row.iter().map(|&v| good(v)).collect();
                    let b: Vec<Option<u32>> = judged.iter().map(|&v| good(v)).collect();
                    (
                        rater.clone(),
                        percent_agreement(&[a.clone(), b.clone()]),
                        cohen_kappa(&a, &b),
                    )
                })
                .collect();
            Some(JudgeAgreement {
                model: judge.model.clone(),
                unparsable,
                per_rater,
                alpha_humans: krippendorff_alpha(&humans, Level::Ordinal),
                alpha_with_judge: krippendorff_alpha(
                    &matrix(&raters, Some(&scores)),
                    Level::Ordinal,
                ),
            })
        }
    };
    Ok(AgreementReport {
        items: items.len(),
        percent_agreement: percent_agreement(&humans),
        cohen_kappa: match humans.as_slice() {
            [a, b] => cohen_kappa(a, b),
            _ => None,
        },
        krippendorff_alpha_ordinal: krippendorff_alpha(&humans, Level::Ordinal),
        raters,
        disagreements,
        judge,
    })
}

pub fn agreement_table(report: &AgreementReport) -> String {
    let show = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.3}"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} items rated by {} raters ({})\npercent agreement {} · Cohen's κ {} · Krippendorff's α (ordinal) {}",
        report.items,
        report.raters.len(),
        report.raters.join(", "),
        show(report.percent_agreement),
        show(report.cohen_kappa),
        show(report.krippendorff_alpha_ordinal)
    );
    if let Some(judge) = &report.judge {
        let _ = writeln!(
            out,
            "judge {}: α with the judge as a rater {} (people alone {}); {} replies unparsable",
            judge.model,
            show(judge.alpha_with_judge),
            show(judge.alpha_humans),
            judge.unparsable
        );
        for (rater, agree, kappa) in &judge.per_rater {
            let _ = writeln!(
                out,
                "  judge vs {rater}: agreement {} · κ {} (good = 4–5)",
                show(*agree),
                show(*kappa)
            );
        }
    }
    let _ = writeln!(out, "\n{} disagreements:", report.disagreements.len());
    for d in &report.disagreements {
        let ratings: Vec<String> = d.ratings.iter().map(|(r, v)| format!("{r} {v}")).collect();
        let _ = writeln!(
            out,
            "  {} [{}] {}",
            d.item_id,
            ratings.join(", "),
            d.question
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(i: usize, category: &str, status: &str) -> AnswerRow {
        AnswerRow {
            request_id: format!("req_{i}"),
            created_at_ms: i as i64,
            endpoint: "/v1/ask".into(),
            key_id: None,
            session_id: None,
            user: None,
            question: format!("question {i}, with \"quotes\""),
            answer: format!("answer {i}\nsecond line"),
            status: status.into(),
            category: category.into(),
            prompt_version: "ask_acme@v3".into(),
            model: Some("strong".into()),
            cache: "miss".into(),
            cost_micro_usd: 0,
            saved_micro_usd: 0,
            latency_ms: 1.0,
            escalated: false,
            rephrased: false,
            standalone: None,
            stage_latency_json: None,
        }
    }

    #[test]
    fn samples_are_stratified_reproducible_and_blinded() {
        let mut answers: Vec<AnswerRow> = (0..80).map(|i| answer(i, "faq", "success")).collect();
        answers.extend((80..95).map(|i| answer(i, "faq", "no_answer")));
        answers.extend((95..100).map(|i| answer(i, "schedule", "filtered")));
        let picked = sample(&answers, 20, 7);
        assert_eq!(picked.len(), 20);
        let count = |status: &str| {
            picked
                .iter()
                .filter(|i| {
                    answers
                        .iter()
                        .any(|a| a.request_id == i.request_id && a.status == status)
                })
                .count()
        };
        assert_eq!(
            (count("success"), count("no_answer"), count("filtered")),
            (16, 3, 1)
        );
        assert_eq!(sample(&answers, 20, 7), picked, "same seed, same sample");
        let requests = |items: &[Item]| {
            let mut ids: Vec<String> = items.iter().map(|i| i.request_id.clone()).collect();
            ids.sort();
            ids
        };
        assert_ne!(
            requests(&sample(&answers, 20, 8)),
            requests(&picked),
            "another seed, other answers"
        );
        assert_eq!(sample(&answers, 500, 1).len(), 100);
        let text = csv(&picked, 2);
        assert!(text.starts_with("item_id,question,answer,rater_1_rating,rater_1_comment,rater_2_rating,rater_2_comment\r\n"));
        assert!(
            !text.contains("req_") && !text.contains("strong"),
            "blinded: {text}"
        );
    }

    #[test]
    fn seats_follow_the_largest_remainders_after_the_one_per_stratum_floor() {
        assert_eq!(allocate(&[46, 45, 9], 10), [5, 4, 1]);
        assert_eq!(allocate(&[98, 1, 1], 3), [1, 1, 1]);
        assert_eq!(allocate(&[80, 15, 5], 20), [16, 3, 1]);
        assert_eq!(allocate(&[5, 5], 1).iter().sum::<usize>(), 1);
        assert_eq!(allocate(&[2, 1], 10), [2, 1]);
    }

    #[test]
    fn rated_files_round_trip_and_bad_cells_are_refused_with_their_place() {
        let items = sample(
            &[answer(1, "faq", "success"), answer(2, "faq", "success")],
            2,
            1,
        );
        let text = csv(&items, 2)
            .replacen(",,,,\r\n", ",4,\"fine, thanks\",good,\r\n", 1)
            .replacen(",,,,\r\n", ",2,,,\r\n", 1);
        let ratings = read_ratings("r.csv", &text).unwrap();
        assert_eq!(ratings.len(), 3, "{ratings:?}");
        assert_eq!(ratings[0].rater, "rater_1");
        assert_eq!(
            (ratings[0].rating, ratings[0].comment.as_deref()),
            (4, Some("fine, thanks"))
        );
        assert_eq!(ratings[1].rating, 5, "good is 5");
        // The second record starts on line 4: the first one's answer spans two lines.
        let err = read_ratings("r.csv", &text.replace(",2,,,", ",7,,,")).unwrap_err();
        assert!(
            err.to_string().contains("line 4, column `rater_1_rating`"),
            "{err}"
        );
        assert!(read_ratings("r.csv", "question\r\nq\r\n").is_err());
    }
}
