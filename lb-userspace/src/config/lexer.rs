//! Splits keepalived.conf text into words and braces, line by line.
//!
//! keepalived's reader is line oriented: a statement is a keyword and its arguments up to
//! the end of the line, `#` or `!` starts a comment, and `{` / `}` are tokens of their own
//! wherever they appear. Double quotes group words (with backslash escapes) so arguments may
//! hold spaces or comment characters.

use std::{path::PathBuf, sync::Arc};

use super::diag::{Diagnostics, Pos};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Word(String),
    Open,
    Close,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub pos: Pos,
}

/// The tokens of one source line; statements never span lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub tokens: Vec<Token>,
}

/// Tokenises `text`, reporting unterminated quotes and keeping going.
pub fn lex(file: &Arc<PathBuf>, text: &str, diags: &mut Diagnostics) -> Vec<Line> {
    text.lines()
        .enumerate()
        .map(|(i, line)| Line {
            tokens: lex_line(file, i as u32 + 1, line, diags),
        })
        .filter(|line| !line.tokens.is_empty())
        .collect()
}

fn lex_line(file: &Arc<PathBuf>, line_no: u32, line: &str, diags: &mut Diagnostics) -> Vec<Token> {
    let pos = |col: usize| Pos {
        file: Arc::clone(file),
        line: line_no,
        col: col as u32 + 1,
    };
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '#' | '!' => break,
            '{' => {
                tokens.push(Token {
                    kind: TokenKind::Open,
                    pos: pos(i),
                });
                i += 1;
            }
            '}' => {
                tokens.push(Token {
                    kind: TokenKind::Close,
                    pos: pos(i),
                });
                i += 1;
            }
            '"' => {
                let start = i;
                let mut word = String::new();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        '"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        '\\' if i + 1 < chars.len() => {
                            word.push(unescape(chars[i + 1]));
                            i += 2;
                        }
                        other => {
                            word.push(other);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    diags.error(&pos(start), "unterminated quoted string");
                }
                tokens.push(Token {
                    kind: TokenKind::Word(word),
                    pos: pos(start),
                });
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '{' | '}')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(Token {
                    kind: TokenKind::Word(word),
                    pos: pos(start),
                });
            }
        }
    }
    tokens
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        let file = Arc::new(PathBuf::from("t.conf"));
        let mut diags = Diagnostics::default();
        let lines = lex(&file, text, &mut diags);
        assert!(diags.is_empty(), "{diags}");
        lines
            .into_iter()
            .map(|l| {
                l.tokens
                    .into_iter()
                    .map(|t| match t.kind {
                        TokenKind::Word(w) => w,
                        TokenKind::Open => "{".into(),
                        TokenKind::Close => "}".into(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn comments_and_blank_lines_vanish() {
        assert_eq!(
            words("# a\n! b\n\n  delay_loop 6 # trailing\n"),
            vec![vec!["delay_loop", "6"]]
        );
    }

    #[test]
    fn braces_are_tokens_wherever_they_are() {
        assert_eq!(
            words("track_interface {eth1}"),
            vec![vec!["track_interface", "{", "eth1", "}"]]
        );
    }

    #[test]
    fn quotes_group_words_and_keep_comment_characters() {
        assert_eq!(
            words(r#"notify "/bin/x # \"y\"""#),
            vec![vec!["notify", r#"/bin/x # "y""#]]
        );
    }

    #[test]
    fn unterminated_quote_is_an_error_at_the_quote() {
        let file = Arc::new(PathBuf::from("t.conf"));
        let mut diags = Diagnostics::default();
        lex(&file, "a \"b", &mut diags);
        assert_eq!(
            diags.to_string(),
            "t.conf:1:3: error: unterminated quoted string\n"
        );
    }

    #[test]
    fn columns_count_characters_from_one() {
        let file = Arc::new(PathBuf::from("t.conf"));
        let mut diags = Diagnostics::default();
        let lines = lex(&file, "  é {", &mut diags);
        assert_eq!(lines[0].tokens[1].pos.col, 5);
    }
}
