//! Statements and blocks: keepalived's grammar before any keyword has a meaning.

use std::iter::Peekable;

use super::{
    diag::{Diagnostics, Pos},
    lexer::{Line, Token, TokenKind},
};

/// Deeper nesting than any keepalived configuration has; stops runaway input early.
const MAX_DEPTH: usize = 32;

/// A word with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub value: String,
    pub pos: Pos,
}

/// `keyword arg... [{ children }]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub keyword: Arg,
    pub args: Vec<Arg>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn pos(&self) -> &Pos {
        &self.keyword.pos
    }

    pub fn name(&self) -> &str {
        &self.keyword.value
    }

    /// The children, or none for a statement without a block.
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or_default()
    }
}

/// Builds the statement tree, reporting unbalanced braces where they matter to the reader:
/// an unclosed block at its opening brace, a stray `}` where it stands.
pub fn parse(lines: Vec<Line>, diags: &mut Diagnostics) -> Vec<Node> {
    let mut tokens = lines
        .into_iter()
        .flat_map(|line| {
            let last = line.tokens.len().saturating_sub(1);
            line.tokens
                .into_iter()
                .enumerate()
                .map(move |(i, t)| (t, i == last))
        })
        .peekable();
    block(&mut tokens, None, 0, diags)
}

type Tokens<I> = Peekable<I>;

fn block<I>(
    tokens: &mut Tokens<I>,
    open: Option<&Pos>,
    depth: usize,
    diags: &mut Diagnostics,
) -> Vec<Node>
where
    I: Iterator<Item = (Token, bool)>,
{
    let mut nodes = Vec::new();
    while let Some((token, ends_line)) = tokens.next() {
        match token.kind {
            TokenKind::Close => match open {
                Some(_) => return nodes,
                None => diags.error(&token.pos, "'}' closes no block"),
            },
            TokenKind::Open => {
                diags.error(&token.pos, "'{' opens a block with no keyword before it");
                nested(tokens, &token.pos, depth, diags);
            }
            TokenKind::Word(word) => {
                let keyword = Arg {
                    value: word,
                    pos: token.pos,
                };
                let mut args = Vec::new();
                let mut at_line_end = ends_line;
                while !at_line_end {
                    let Some((
                        Token {
                            kind: TokenKind::Word(value),
                            pos,
                        },
                        ends,
                    )) = tokens.next_if(|(t, _)| matches!(t.kind, TokenKind::Word(_)))
                    else {
                        break;
                    };
                    args.push(Arg { value, pos });
                    at_line_end = ends;
                }
                let block = tokens
                    .next_if(|(t, _)| t.kind == TokenKind::Open)
                    .map(|(open, _)| nested(tokens, &open.pos, depth, diags));
                nodes.push(Node {
                    keyword,
                    args,
                    block,
                });
            }
        }
    }
    if let Some(open) = open {
        diags.error(open, "block is never closed");
    }
    nodes
}

fn nested<I>(tokens: &mut Tokens<I>, open: &Pos, depth: usize, diags: &mut Diagnostics) -> Vec<Node>
where
    I: Iterator<Item = (Token, bool)>,
{
    if depth + 1 >= MAX_DEPTH {
        diags.error(open, format!("blocks nested more than {MAX_DEPTH} deep"));
        skip_block(tokens);
        return Vec::new();
    }
    block(tokens, Some(open), depth + 1, diags)
}

/// Consumes tokens up to the `}` matching an already consumed `{`.
fn skip_block<I: Iterator<Item = (Token, bool)>>(tokens: &mut Tokens<I>) {
    let mut depth = 1usize;
    for (token, _) in tokens.by_ref() {
        match token.kind {
            TokenKind::Open => depth += 1,
            TokenKind::Close => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            TokenKind::Word(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Options, source::read_text};

    fn tree(text: &str) -> (Vec<Node>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let source = read_text(
            "t.conf".into(),
            text,
            &Options { config_id: None },
            &mut diags,
        );
        (parse(source.lines, &mut diags), diags)
    }

    fn shape(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let mut s = n.name().to_string();
                for a in &n.args {
                    s.push(' ');
                    s.push_str(&a.value);
                }
                if let Some(children) = &n.block {
                    s.push_str(&format!(" {{{}}}", shape(children)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn block_on_one_line() {
        let (nodes, diags) = tree("track_interface { eth1 }\nx 1");
        assert!(diags.is_empty());
        assert_eq!(shape(&nodes), "track_interface {eth1}; x 1");
    }

    #[test]
    fn brace_on_its_own_line() {
        let (nodes, diags) = tree("virtual_server 192.0.2.1 80\n{\n  lb_algo rr\n}\n");
        assert!(diags.is_empty());
        assert_eq!(shape(&nodes), "virtual_server 192.0.2.1 80 {lb_algo rr}");
    }

    #[test]
    fn closing_brace_after_arguments() {
        let (nodes, diags) = tree("a {\n b 1 }\nc");
        assert!(diags.is_empty());
        assert_eq!(shape(&nodes), "a {b 1}; c");
    }

    #[test]
    fn unclosed_block_is_reported_where_it_opens() {
        let (_, diags) = tree("a {\n b {\n c\n }\n");
        assert_eq!(
            diags.to_string(),
            "t.conf:1:3: error: block is never closed\n"
        );
    }

    #[test]
    fn stray_close_is_reported_where_it_stands() {
        let (_, diags) = tree("a\n  }\n");
        assert_eq!(
            diags.to_string(),
            "t.conf:2:3: error: '}' closes no block\n"
        );
    }

    #[test]
    fn runaway_nesting_stops_with_an_error() {
        let (_, diags) = tree(&"a {\n".repeat(100));
        assert!(diags.has_errors());
    }
}
