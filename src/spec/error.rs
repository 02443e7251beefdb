//! Spec problems, located at `FILE:LINE:COL`.

use std::fmt;
use std::ops::Range;

/// One problem in a spec file. `line` and `col` are 1-based; `col` counts characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for SpecError {}

/// Several problems found in one file, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl SpecErrors {
    /// A problem with the file as a whole (unreadable, too large, not UTF-8), shown at 1:1.
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        SpecErrors(vec![SpecError {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: message.into(),
        }])
    }
}

/// Turns byte offsets into `line:col` for one file's text.
pub(crate) struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Locator { file, text }
    }

    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> SpecError {
        let (line, col) = span.map_or((1, 1), |s| self.line_col(s.start));
        SpecError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.text, offset)
    }
}

/// 1-based line and character column of a byte offset in `text` (clamped into it).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_line_and_character_column() {
        let text = "a = 1\nbé = 2\n";
        let loc = Locator::new("x.toml", text);
        assert_eq!(loc.error(Some(0..1), "m").to_string(), "x.toml:1:1: m");
        let offset = text.find("= 2").unwrap();
        assert_eq!(loc.error(Some(offset..offset), "m").col, 4);
        assert_eq!(loc.error(None, "m").line, 1);
        assert_eq!(loc.error(Some(999..1000), "m").line, 3);
    }
}
