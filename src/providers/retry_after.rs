//! How long an upstream asks us to wait: `retry-after-ms` (OpenAI) or `Retry-After` (RFC 9110
//! §10.2.3). The header values come from servers we do not control, so parsing them must never
//! panic (`Duration::from_secs_f64` does on `inf` or `1e20`) and never yield a wait so long that
//! a later `Instant + Duration` overflows: anything unusable is `None`, everything else is
//! clamped to [`MAX_RETRY_AFTER`].

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The longest wait we ever report. No upstream is worth waiting a day for, and the bound keeps
/// every deadline computed from a wait far from `Instant`'s limits.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The wait an upstream response asks for. `retry-after-ms` is more precise, so it wins when it
/// is valid; a broken one falls back to `Retry-After` rather than hiding it.
pub(crate) fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = text(headers, "retry-after-ms").and_then(parse_ms) {
        return Some(wait);
    }
    parse_value(text(headers, RETRY_AFTER.as_str())?, now)
}

/// A `Retry-After` value: delta-seconds or an HTTP-date. Besides the RFC's `1*DIGIT`, fractional
/// and exponent forms (`1.5`, `1e3`) are accepted, since some servers send them.
pub(crate) fn parse_value(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(secs) = number(value) {
        return seconds(secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    // A date already past (or an upstream clock behind ours) means: retry now.
    let wait = date.duration_since(now).unwrap_or_default();
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A `retry-after-ms` value: milliseconds, integer or fractional.
pub(crate) fn parse_ms(value: &str) -> Option<Duration> {
    number(value.trim()).and_then(|ms| seconds(ms / 1000.0))
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A non-negative decimal number. The leading digit keeps out what `f64::from_str` would also
/// take: signs, `inf`, `infinity` and `NaN`. A numeral too large for `f64` parses as infinity,
/// which [`seconds`] clamps like any other huge wait.
fn number(value: &str) -> Option<f64> {
    if !value.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn seconds(secs: f64) -> Option<Duration> {
    // `>=` is false for NaN, which `f64::min` would otherwise turn into the cap.
    (secs >= 0.0)
        .then(|| secs.min(MAX_RETRY_AFTER.as_secs_f64()))
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
}

#[cfg(test)]
mod tests {
    use proptest::prop_assert;
    use proptest::test_runner::TestCaseError;
    use reqwest::header::HeaderValue;

    use super::*;

    /// Tue, 14 Nov 2023 22:13:20 GMT.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for &(name, value) in pairs {
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_values() {
        let in_30s = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        let past = httpdate::fmt_http_date(now() - Duration::from_secs(1000));
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            ("0", Some(Duration::ZERO)),
            ("1.5", Some(Duration::from_millis(1500))),
            (" 3 ", Some(Duration::from_secs(3))),
            ("\t7", Some(Duration::from_secs(7))),
            ("2e1", Some(Duration::from_secs(20))),
            ("86400", Some(MAX_RETRY_AFTER)),
            ("86401", Some(MAX_RETRY_AFTER)),
            ("1e20", Some(MAX_RETRY_AFTER)),
            ("1e999", Some(MAX_RETRY_AFTER)),
            ("99999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("-1", None),
            ("+1", None),
            ("-0", None),
            (".5", None),
            ("inf", None),
            ("infinity", None),
            ("-inf", None),
            ("NaN", None),
            ("nan", None),
            ("", None),
            ("   ", None),
            ("soon", None),
            ("12abc", None),
            ("1 2", None),
            ("1,5", None),
            (in_30s.as_str(), Some(Duration::from_secs(30))),
            (past.as_str(), Some(Duration::ZERO)),
            // RFC 850 and asctime, the obsolete forms recipients must still accept.
            (
                "Tuesday, 14-Nov-23 22:14:20 GMT",
                Some(Duration::from_secs(60)),
            ),
            ("Tue Nov 14 22:14:50 2023", Some(Duration::from_secs(90))),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_RETRY_AFTER)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            // The weekday does not match the date.
            ("Wed, 14 Nov 2023 22:13:50 GMT", None),
            ("Tue, 14 Nov 2023 25:13:50 GMT", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_value(value, now()),
                expected,
                "Retry-After: {value:?}"
            );
        }
    }

    #[test]
    fn retry_after_ms_values() {
        let cases = [
            ("250", Some(Duration::from_millis(250))),
            ("62.5", Some(Duration::from_micros(62_500))),
            (" 10 ", Some(Duration::from_millis(10))),
            ("86400000", Some(MAX_RETRY_AFTER)),
            ("1e20", Some(MAX_RETRY_AFTER)),
            ("-250", None),
            ("inf", None),
            ("NaN", None),
            ("", None),
            ("Tue, 14 Nov 2023 22:13:50 GMT", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_ms(value), expected, "retry-after-ms: {value:?}");
        }
    }

    #[test]
    fn retry_after_ms_wins_when_valid() {
        let now = now();
        assert_eq!(
            from_headers(&headers(&[("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            from_headers(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "2")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            from_headers(
                &headers(&[("retry-after-ms", "inf"), ("retry-after", "2")]),
                now
            ),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            from_headers(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            from_headers(&headers(&[("retry-after", "1e20")]), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(from_headers(&headers(&[("retry-after", "NaN")]), now), None);
        assert_eq!(from_headers(&HeaderMap::new(), now), None);
    }

    /// Whatever `value` is, parsing it directly or as either header neither panics nor
    /// exceeds the cap.
    fn check(value: &str) -> Result<(), TestCaseError> {
        let bounded = |wait: Option<Duration>| wait.is_none_or(|wait| wait <= MAX_RETRY_AFTER);
        prop_assert!(bounded(parse_value(value, now())));
        prop_assert!(bounded(parse_ms(value)));
        // Most strings are not valid header values; only the rest can reach `from_headers`.
        if let Ok(header) = HeaderValue::from_str(value) {
            for name in ["retry-after-ms", "retry-after"] {
                let mut map = HeaderMap::new();
                map.insert(name, header.clone());
                prop_assert!(bounded(from_headers(&map, now())), "{name}: {value:?}");
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_bounded(arbitrary in ".*", printable in "[ -~\t]{0,40}") {
            check(&arbitrary)?;
            check(&printable)?;
        }

        #[test]
        fn numbers_never_panic_and_are_bounded(
            value in "[0-9]{0,30}(\\.[0-9]{0,10})?(e[0-9]{1,4})?"
        ) {
            check(&value)?;
            // Every one of these that starts with a digit is a valid (if huge) number.
            if value.starts_with(|c: char| c.is_ascii_digit()) {
                prop_assert!(parse_value(&value, now()).is_some(), "{value:?}");
                prop_assert!(parse_ms(&value).is_some(), "{value:?}");
            }
        }
    }
}
