//! Agreement between raters: percent agreement, Cohen's κ (two raters) and Krippendorff's α
//! (any number of raters, missing ratings allowed; nominal, ordinal or interval). Ratings
//! are a matrix: one row per rater, one column per item, `None` where a rater skipped an item.
//! The unit tests check each statistic against values published in the literature.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
}

/// Pairs of raters agreeing over all pairs, among items with at least two ratings.
pub fn percent_agreement(ratings: &[Vec<Option<u32>>]) -> Option<f64> {
    let (mut agreeing, mut pairs) = (0usize, 0usize);
    for item in items(ratings) {
        for i in 0..item.len() {
            for j in i + 1..item.len() {
                pairs += 1;
                agreeing += usize::from(item[i] == item[j]);
            }
        }
    }
    (pairs > 0).then(|| agreeing as f64 / pairs as f64)
}

/// Cohen's κ of two raters over the items both rated: (p_o − p_e) / (1 − p_e), each rater's
/// own marginals. `None` without items, or when chance agreement is total (both raters
/// always gave one and the same rating).
pub fn cohen_kappa(a: &[Option<u32>], b: &[Option<u32>]) -> Option<f64> {
    let both: Vec<(u32, u32)> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    let n = both.len() as f64;
    if both.is_empty() {
        return None;
    }
    let observed = both.iter().filter(|(x, y)| x == y).count() as f64 / n;
    let mut margins: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for (x, y) in &both {
        margins.entry(*x).or_default().0 += 1.0;
        margins.entry(*y).or_default().1 += 1.0;
    }
    let expected: f64 = margins.values().map(|(x, y)| (x / n) * (y / n)).sum();
    (expected < 1.0).then(|| (observed - expected) / (1.0 - expected))
}

/// Krippendorff's α = 1 − D_o / D_e over the coincidence matrix. `None` when fewer than two
/// pairable ratings exist or every rating is the same value (no expected disagreement).
pub fn krippendorff_alpha(ratings: &[Vec<Option<u32>>], level: Level) -> Option<f64> {
    let values: Vec<u32> = {
        let mut v: Vec<u32> = ratings.iter().flatten().flatten().copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let index = |value: u32| values.binary_search(&value).unwrap_or_default();
    let k = values.len();
    // o[c][k]: coincidences; each item adds 1/(m−1) per ordered pair of its m ratings.
    let mut coincidences = vec![vec![0.0f64; k]; k];
    for item in items(ratings) {
        let m = item.len() as f64;
        for (i, &x) in item.iter().enumerate() {
            for (j, &y) in item.iter().enumerate() {
                if i != j {
                    coincidences[index(x)][index(y)] += 1.0 / (m - 1.0);
                }
            }
        }
    }
    let margins: Vec<f64> = coincidences.iter().map(|row| row.iter().sum()).collect();
    let n: f64 = margins.iter().sum();
    if n < 2.0 {
        return None;
    }
    let delta = |c: usize, d: usize| -> f64 {
        match level {
            Level::Nominal => f64::from(u8::from(c != d)),
            Level::Interval => (f64::from(values[c]) - f64::from(values[d])).powi(2),
            Level::Ordinal => {
                let (lo, hi) = (c.min(d), c.max(d));
                let between: f64 = margins[lo..=hi].iter().sum();
                (between - (margins[lo] + margins[hi]) / 2.0).powi(2)
            }
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..k {
        for d in 0..k {
            observed += coincidences[c][d] * delta(c, d);
            expected += margins[c] * margins[d] * delta(c, d);
        }
    }
    let observed = observed / n;
    let expected = expected / (n * (n - 1.0));
    (expected > 0.0).then(|| 1.0 - observed / expected)
}

/// Each item's ratings, for the items rated at least twice.
fn items(ratings: &[Vec<Option<u32>>]) -> Vec<Vec<u32>> {
    let width = ratings.iter().map(Vec::len).max().unwrap_or(0);
    (0..width)
        .map(|i| {
            ratings
                .iter()
                .filter_map(|row| row.get(i).copied().flatten())
                .collect::<Vec<u32>>()
        })
        .filter(|item| item.len() >= 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.unwrap();
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    /// A contingency table as two raters' ratings.
    fn from_table(table: &[&[usize]]) -> (Vec<Option<u32>>, Vec<Option<u32>>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, row) in table.iter().enumerate() {
            for (j, &count) in row.iter().enumerate() {
                for _ in 0..count {
                    a.push(Some(i as u32));
                    b.push(Some(j as u32));
                }
            }
        }
        (a, b)
    }

    /// Cohen's κ: the worked examples of Wikipedia's "Cohen's kappa" (0.4, 0.1304, 0.2593)
    /// and a 3×3 table with SAS PROC FREQ's published output (0.4842).
    #[test]
    fn cohen_kappa_matches_the_published_examples() {
        let (a, b) = from_table(&[&[20, 5], &[10, 15]]);
        close(cohen_kappa(&a, &b), 0.4);
        close(percent_agreement(&[a, b]), 0.7);
        let (a, b) = from_table(&[&[45, 15], &[25, 15]]);
        close(cohen_kappa(&a, &b), 3.0 / 23.0);
        let (a, b) = from_table(&[&[25, 35], &[5, 35]]);
        close(cohen_kappa(&a, &b), 7.0 / 27.0);
        let (a, b) = from_table(&[&[0, 4, 1], &[0, 8, 0], &[0, 1, 5]]);
        close(cohen_kappa(&a, &b), 107.0 / 221.0);
        assert!(cohen_kappa(&[Some(1), Some(1)], &[Some(1), Some(1)]).is_none());
        assert!(cohen_kappa(&[None], &[Some(1)]).is_none());
    }

    const N: Option<u32> = None;

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12
    /// units, missing values; published α nominal .743, ordinal .815, interval .849.
    #[test]
    fn krippendorff_alpha_matches_krippendorff_2011() {
        let s = Some;
        let data = vec![
            vec![
                s(1),
                s(2),
                s(3),
                s(3),
                s(2),
                s(1),
                s(4),
                s(1),
                s(2),
                N,
                N,
                N,
            ],
            vec![
                s(1),
                s(2),
                s(3),
                s(3),
                s(2),
                s(2),
                s(4),
                s(1),
                s(2),
                s(5),
                N,
                s(3),
            ],
            vec![
                N,
                s(3),
                s(3),
                s(3),
                s(2),
                s(3),
                s(4),
                s(2),
                s(2),
                s(5),
                s(1),
                N,
            ],
            vec![
                s(1),
                s(2),
                s(3),
                s(3),
                s(2),
                s(4),
                s(4),
                s(1),
                s(2),
                s(5),
                s(1),
                N,
            ],
        ];
        close(krippendorff_alpha(&data, Level::Nominal), 113.0 / 152.0);
        close(
            krippendorff_alpha(&data, Level::Ordinal),
            108_577.0 / 133_160.0,
        );
        close(krippendorff_alpha(&data, Level::Interval), 951.0 / 1120.0);
        close(percent_agreement(&data), 43.0 / 55.0);
        // The paper's first example: binary, two observers, α = .095.
        let binary = |v: [u32; 10]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        let data = vec![
            binary([0, 1, 0, 0, 0, 0, 0, 0, 1, 0]),
            binary([1, 1, 1, 0, 0, 1, 0, 0, 0, 0]),
        ];
        close(krippendorff_alpha(&data, Level::Nominal), 2.0 / 21.0);
        close(cohen_kappa(&data[0], &data[1]), 1.0 / 11.0);
    }

    /// Two raters without missing ratings, where nominal α and Cohen's κ differ (values from
    /// the `krippendorff` and scikit-learn packages, and exact fractions).
    #[test]
    fn alpha_and_kappa_differ_on_the_same_ratings() {
        let row = |v: [u32; 10]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        let data = vec![
            row([1, 2, 3, 3, 2, 1, 4, 1, 2, 5]),
            row([1, 2, 3, 4, 2, 2, 4, 1, 3, 5]),
        ];
        close(krippendorff_alpha(&data, Level::Nominal), 98.0 / 155.0);
        close(krippendorff_alpha(&data, Level::Ordinal), 503.0 / 560.0);
        close(cohen_kappa(&data[0], &data[1]), 8.0 / 13.0);
        close(percent_agreement(&data), 0.7);
        assert!(krippendorff_alpha(&[row([3; 10]), row([3; 10])], Level::Ordinal).is_none());
    }
}
