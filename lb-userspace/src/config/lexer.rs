//! One logical line of keepalived.conf: comments off, then words and braces.
//!
//! keepalived's reader is line oriented: a statement is a keyword and its arguments up to
//! the end of the line, `#` or `!` outside double quotes starts a comment (`\#` and `\!`
//! are the characters themselves), and `{` / `}` outside quotes are tokens of their own
//! wherever they appear. Words may be quoted with `"` or `'` and use backslash escapes, as
//! keepalived.conf(5) describes for quoted strings.

use std::{path::PathBuf, sync::Arc};

use super::{
    diag::{Diagnostics, Pos},
    value,
};

/// Characters of a line, each with the column it was written at. Text substituted from a
/// `$NAME` definition carries the column of the `$`.
pub type Text = Vec<(char, u32)>;

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

/// The tokens of one logical line; statements never span lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub tokens: Vec<Token>,
}

/// Columns of a physical line, counting characters from 1.
pub fn text(line: &str) -> Text {
    line.chars().zip(1..).collect()
}

pub fn to_string(text: &[(char, u32)]) -> String {
    text.iter().map(|(c, _)| c).collect()
}

/// Removes the comment, leading and trailing blanks as keepalived does. Returns whether
/// the line ends in a `\` continuation (which is removed).
pub fn decomment(text: &mut Text) -> bool {
    let start = text
        .iter()
        .position(|(c, _)| !matches!(c, ' ' | '\t'))
        .unwrap_or(text.len());
    text.drain(..start);
    let mut quote = false;
    let mut comment = None;
    let mut continued = false;
    let mut i = 0;
    while i < text.len() {
        match text[i].0 {
            '"' if comment.is_none() => quote = !quote,
            '\\' if i + 1 == text.len() => {
                text.truncate(i);
                continued = true;
                break;
            }
            '\\' => {
                if !quote && comment.is_none() && matches!(text[i + 1].0, '#' | '!') {
                    text.remove(i);
                } else {
                    i += 1;
                }
            }
            '#' | '!' if !quote && comment.is_none() => comment = Some(i),
            _ => {}
        }
        i += 1;
    }
    if let Some(at) = comment {
        text.truncate(at);
    }
    while text.last().is_some_and(|(c, _)| matches!(c, ' ' | '\t')) {
        text.pop();
    }
    continued
}

/// Splits a decommented line into words and braces.
pub fn tokens(
    file: &Arc<PathBuf>,
    line: u32,
    text: &[(char, u32)],
    diags: &mut Diagnostics,
) -> Vec<Token> {
    let pos = |col: u32| Pos {
        file: Arc::clone(file),
        line,
        col,
    };
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&(c, col)) = text.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '{' || c == '}' {
            i += 1;
            tokens.push(Token {
                kind: if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                },
                pos: pos(col),
            });
            continue;
        }
        let mut word = String::new();
        let mut quote: Option<(char, u32)> = None;
        while let Some(&(c, at)) = text.get(i) {
            i += 1;
            match (quote, c) {
                (None, c) if c.is_whitespace() || c == '{' || c == '}' => {
                    i -= 1;
                    break;
                }
                (_, '\\') => {
                    let mut rest = text[i..].iter().map(|&(c, _)| c).peekable();
                    match value::escape(&mut rest) {
                        Some(e) => word.push(e),
                        None => diags.error(
                            &pos(at),
                            "'\\' at the end of the line continues nothing \
                             (only $NAME= definitions continue)",
                        ),
                    }
                    i = text.len() - rest.len();
                }
                (None, '"' | '\'') => quote = Some((c, at)),
                (Some((q, _)), c) if c == q => quote = None,
                (_, c) => word.push(c),
            }
        }
        if let Some((q, at)) = quote {
            diags.error(&pos(at), format!("unterminated {q}quoted{q} string"));
        }
        tokens.push(Token {
            kind: TokenKind::Word(word),
            pos: pos(col),
        });
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(line: &str) -> (Vec<String>, Diagnostics) {
        let file = Arc::new(PathBuf::from("t.conf"));
        let mut diags = Diagnostics::default();
        let mut t = text(line);
        decomment(&mut t);
        let words = tokens(&file, 1, &t, &mut diags)
            .into_iter()
            .map(|t| match t.kind {
                TokenKind::Word(w) => w,
                TokenKind::Open => "{".into(),
                TokenKind::Close => "}".into(),
            })
            .collect();
        (words, diags)
    }

    fn words(line: &str) -> Vec<String> {
        let (words, diags) = lex(line);
        assert!(diags.is_empty(), "{diags}");
        words
    }

    #[test]
    fn comments_end_the_line() {
        assert_eq!(words("  delay_loop 6 # trailing"), ["delay_loop", "6"]);
        assert_eq!(words("a!b"), ["a"]);
        assert!(words("! whole line").is_empty());
    }

    #[test]
    fn escaped_comment_characters_are_kept() {
        assert_eq!(words(r"auth_pass a\#b\!c"), ["auth_pass", "a#b!c"]);
    }

    #[test]
    fn braces_are_tokens_wherever_they_are() {
        assert_eq!(
            words("track_interface{eth1}"),
            ["track_interface", "{", "eth1", "}"]
        );
    }

    #[test]
    fn quotes_group_words_and_keep_comment_characters() {
        assert_eq!(
            words(r#"notify "/bin/x # \"y\"" 'a b{'"#),
            ["notify", r#"/bin/x # "y""#, "a b{"]
        );
        assert_eq!(words(r#"ab"cd ef"gh"#), ["abcd efgh"]);
    }

    #[test]
    fn continuation_is_reported_and_removed() {
        let mut t = text("$X=a \\");
        assert!(decomment(&mut t));
        assert_eq!(to_string(&t), "$X=a");
    }

    #[test]
    fn unterminated_quotes_are_errors_at_the_quote() {
        let (_, diags) = lex("a 'b");
        assert_eq!(
            diags.to_string(),
            "t.conf:1:3: error: unterminated 'quoted' string\n"
        );
        let (_, diags) = lex("a \"b # no comment in quotes");
        assert_eq!(
            diags.to_string(),
            "t.conf:1:3: error: unterminated \"quoted\" string\n"
        );
    }

    #[test]
    fn columns_count_characters_from_one() {
        let file = Arc::new(PathBuf::from("t.conf"));
        let mut diags = Diagnostics::default();
        let tokens = tokens(&file, 1, &text("  é {"), &mut diags);
        assert_eq!(tokens[1].pos.col, 5);
    }
}
