//! Modelfiles others can reuse in tests, fixtures and documentation.

/// The seed's code-review Modelfile as the article prints it. Ollama refuses
/// it: the trailing `# …` on line 4 is part of the temperature value.
pub const CODE_REVIEW: &str = r#"FROM codellama:13b
SYSTEM """You are a senior code reviewer. Review the code you are given for bugs,
security issues and readability. Be concise and specific."""
PARAMETER temperature 0.1 # low temperature for consistent reviews
PARAMETER num_ctx 8192
PARAMETER num_predict 2048
"#;

/// [`CODE_REVIEW`] after the offered fix: the comment on its own line.
pub const CODE_REVIEW_FIXED: &str = r#"FROM codellama:13b
SYSTEM """You are a senior code reviewer. Review the code you are given for bugs,
security issues and readability. Be concise and specific."""
# low temperature for consistent reviews
PARAMETER temperature 0.1
PARAMETER num_ctx 8192
PARAMETER num_predict 2048
"#;
