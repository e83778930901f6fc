//! Input safety. For now the checks every request needs: a question that is not empty and not
//! longer than configured. Prompt-injection and PII filters plug in here later.

use crate::gateway::GatewayError;

/// The question, trimmed, or a 400 naming the `question` field.
pub fn check_input(question: &str, max_chars: usize) -> Result<String, GatewayError> {
    let question = question.trim();
    if question.is_empty() {
        return Err(GatewayError::invalid(
            "`question` must not be empty",
            "question",
        ));
    }
    let chars = question.chars().count();
    if chars > max_chars {
        return Err(GatewayError::invalid(
            format!("`question` is {chars} characters long; the limit is {max_chars}"),
            "question",
        ));
    }
    Ok(question.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_overlong_questions() {
        assert_eq!(check_input("  Hi?\n", 10).unwrap(), "Hi?");
        assert!(check_input(" \n\t", 10).is_err());
        assert!(check_input("ééééé", 5).is_ok(), "characters, not bytes");
        let err = check_input("ééééééé", 5).unwrap_err();
        assert!(err.to_string().contains("limit is 5"), "{err}");
    }
}
