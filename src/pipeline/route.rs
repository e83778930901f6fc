//! Route: the model that answers. A route configured for the question's category wins;
//! otherwise the prompt's own model, the one it was written and evaluated for.

use std::collections::BTreeMap;

use crate::config::Category;

pub fn model_for<'a>(
    routes: &'a BTreeMap<Category, String>,
    category: Category,
    prompt_model: &'a str,
) -> &'a str {
    routes.get(&category).map_or(prompt_model, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_routes_override_the_prompt_model() {
        let routes = BTreeMap::from([(Category::Faq, "fast".to_owned())]);
        assert_eq!(model_for(&routes, Category::Faq, "strong"), "fast");
        assert_eq!(model_for(&routes, Category::Analysis, "strong"), "strong");
    }
}
