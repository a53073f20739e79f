//! From files to logical lines: keepalived's preprocessing.
//!
//! Before any keyword has a meaning, keepalived's reader follows `include` (globs,
//! relative to the including file), skips `@id` lines meant for other hosts, records
//! `$NAME=value` definitions and substitutes `$NAME` / `${NAME}`, and repeats lines for
//! `~SEQ(...)` and `~LST(...)`. This module does the same, keeping for every word the file,
//! line and column it came from, and bounding every expansion so that no input can make it
//! loop or grow without end.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    Options,
    diag::{Diagnostics, Pos},
    lexer::{self, Line, Text},
};

/// More logical lines than any real configuration has, even one generated with `~SEQ`;
/// counts lines that expand to nothing too, so nested sequences cannot spin forever.
const MAX_LINES: usize = 2_000_000;
/// Substitutions on one line before it is deemed self-referential.
const MAX_SUBSTITUTIONS: usize = 1_000;
/// Longest line substitution may produce.
const MAX_LINE_CHARS: usize = 64 * 1024;
/// Nesting of includes, multi-line definitions and sequences.
const MAX_DEPTH: usize = 64;

/// The logical lines of a configuration, and the order they were read in.
pub(super) struct Source {
    pub lines: Vec<Line>,
    /// Reading order of every (file, line), for sorting diagnostics into file order.
    pub order: HashMap<(Arc<PathBuf>, u32), usize>,
}

pub(super) fn read_file(path: &Path, opts: &Options, diags: &mut Diagnostics) -> Source {
    let mut reader = Reader::new(opts, diags);
    reader.file(path, None, 0);
    reader.finish()
}

pub(super) fn read_text(
    name: PathBuf,
    text: &str,
    opts: &Options,
    diags: &mut Diagnostics,
) -> Source {
    let mut reader = Reader::new(opts, diags);
    let file = Arc::new(name);
    if let Ok(canonical) = file.canonicalize() {
        reader.stack.push(canonical);
    }
    reader.text(&file, text, 0);
    reader.finish()
}

struct Definition {
    /// Lines of the value; more than one for a `\`-continued definition.
    lines: Vec<Text>,
}

/// Where a logical line is being produced.
#[derive(Clone)]
struct Here {
    file: Arc<PathBuf>,
    line: u32,
}

impl Here {
    fn pos(&self, col: u32) -> Pos {
        Pos {
            file: Arc::clone(&self.file),
            line: self.line,
            col,
        }
    }
}

struct Reader<'a> {
    opts: &'a Options,
    diags: &'a mut Diagnostics,
    definitions: HashMap<String, Definition>,
    /// A multi-line definition still collecting lines.
    collecting: Option<String>,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    lines: Vec<Line>,
    order: HashMap<(Arc<PathBuf>, u32), usize>,
    /// Logical lines processed so far, against [`MAX_LINES`].
    processed: usize,
    /// Set once the line budget is spent, so the error is reported once.
    exhausted: bool,
    random: u64,
}

impl<'a> Reader<'a> {
    fn new(opts: &'a Options, diags: &'a mut Diagnostics) -> Self {
        let random = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1);
        Self {
            opts,
            diags,
            definitions: HashMap::new(),
            collecting: None,
            stack: Vec::new(),
            lines: Vec::new(),
            order: HashMap::new(),
            processed: 0,
            exhausted: false,
            random,
        }
    }

    fn finish(self) -> Source {
        Source {
            lines: self.lines,
            order: self.order,
        }
    }

    /// Reads a file named on the command line or by an include at `from`.
    fn file(&mut self, path: &Path, from: Option<&Pos>, depth: usize) {
        let at = |path: &Path| {
            from.cloned().unwrap_or(Pos {
                file: Arc::new(path.to_path_buf()),
                line: 1,
                col: 1,
            })
        };
        let canonical = match path.canonicalize() {
            Ok(c) => c,
            Err(err) => {
                self.diags
                    .error(&at(path), format!("cannot read {}: {err}", path.display()));
                return;
            }
        };
        if self.stack.contains(&canonical) {
            self.diags.error(
                &at(path),
                format!("{} includes itself (include cycle)", path.display()),
            );
            return;
        }
        if depth >= MAX_DEPTH {
            self.diags.error(
                &at(path),
                format!("includes nested more than {MAX_DEPTH} deep"),
            );
            return;
        }
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                self.diags
                    .error(&at(path), format!("cannot read {}: {err}", path.display()));
                return;
            }
        };
        self.stack.push(canonical);
        self.text(&Arc::new(path.to_path_buf()), &text, depth);
        self.stack.pop();
    }

    fn text(&mut self, file: &Arc<PathBuf>, text: &str, depth: usize) {
        for (line, raw) in (1..).zip(text.lines()) {
            let here = Here {
                file: Arc::clone(file),
                line,
            };
            self.physical(&here, raw, depth);
        }
        if let Some(name) = self.collecting.take() {
            self.end_definition(&name);
        }
    }

    fn physical(&mut self, here: &Here, raw: &str, depth: usize) {
        let next = self.order.len();
        self.order
            .entry((Arc::clone(&here.file), here.line))
            .or_insert(next);
        let mut text = lexer::text(raw);
        // An unclosed quote is reported when the line is split into words.
        let continued = lexer::decomment(&mut text);
        if let Some(name) = self.collecting.clone() {
            self.collect(&name, text, continued);
            return;
        }
        if continued {
            text.push(('\\', raw.chars().count() as u32));
        }
        self.logical(here, text, depth);
    }

    /// Adds a line to a multi-line definition; an empty or uncontinued line ends it.
    fn collect(&mut self, name: &str, text: Text, continued: bool) {
        if !text.is_empty()
            && let Some(def) = self.definitions.get_mut(name)
        {
            def.lines.push(text);
        }
        if !continued || !self.definitions.contains_key(name) {
            self.collecting = None;
            self.end_definition(name);
        }
    }

    fn end_definition(&mut self, name: &str) {
        if let Some(def) = self.definitions.get_mut(name) {
            def.lines.retain(|l| !l.is_empty());
        }
    }

    /// Conditionals, definitions, sequences and substitution, then include or emit.
    fn logical(&mut self, here: &Here, mut text: Text, depth: usize) {
        if text.is_empty() || self.exhausted {
            return;
        }
        self.processed += 1;
        if self.processed > MAX_LINES {
            self.exhausted = true;
            self.diags.error(
                &here.pos(text[0].1),
                format!("the configuration expands to more than {MAX_LINES} lines"),
            );
            return;
        }
        if depth >= MAX_DEPTH {
            self.diags.error(
                &here.pos(text[0].1),
                format!("definitions or sequences nested more than {MAX_DEPTH} deep"),
            );
            return;
        }
        let mut substitutions = 0;
        loop {
            if text.first().is_some_and(|(c, _)| *c == '@') && !self.conditional(&mut text) {
                return;
            }
            if text.first().is_some_and(|(c, _)| *c == '$') && self.definition(here, &text) {
                return;
            }
            let head = lexer::to_string(&text[..text.len().min(4)]);
            if head == "~SEQ" || head == "~LST" {
                self.sequence(here, &text, depth);
                return;
            }
            if !text.iter().any(|(c, _)| *c == '$') {
                break;
            }
            match self.substitute(here, &mut text, &mut substitutions) {
                Substituted::Nothing => break,
                Substituted::Inline => {
                    lexer::decomment(&mut text);
                    if text.is_empty() {
                        return;
                    }
                }
                Substituted::Lines(lines) => {
                    for line in lines {
                        self.logical(here, line, depth + 1);
                    }
                    return;
                }
                Substituted::Failed => return,
            }
        }
        if self.include(here, &text, depth) {
            return;
        }
        self.emit(here, &text);
    }

    fn emit(&mut self, here: &Here, text: &[(char, u32)]) {
        let tokens = lexer::tokens(&here.file, here.line, text, self.diags);
        if !tokens.is_empty() {
            self.lines.push(Line { tokens });
        }
    }

    /// `@ID rest` keeps `rest` only on the host whose config id is ID; `@^ID` on every
    /// other host. Returns whether the line stays.
    fn conditional(&mut self, text: &mut Text) -> bool {
        let negated = text.get(1).is_some_and(|(c, _)| *c == '^');
        let start = if negated { 2 } else { 1 };
        let Some(end) = text.iter().position(|(c, _)| matches!(c, ' ' | '\t')) else {
            return false;
        };
        let id = lexer::to_string(&text[start.min(end)..end]);
        let matches = self.opts.config_id.as_deref() == Some(id.as_str());
        if matches == negated {
            return false;
        }
        let rest = text[end..]
            .iter()
            .position(|(c, _)| !matches!(c, ' ' | '\t'))
            .map_or(text.len(), |p| end + p);
        text.drain(..rest);
        !text.is_empty()
    }

    /// `$NAME=VALUE`; returns false when the line is not a definition.
    fn definition(&mut self, here: &Here, text: &Text) -> bool {
        let name_end = 1 + text[1..]
            .iter()
            .position(|(c, _)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .unwrap_or(text.len() - 1);
        let name = lexer::to_string(&text[1..name_end]);
        if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return false;
        }
        let mut i = name_end;
        while text.get(i).is_some_and(|(c, _)| matches!(c, ' ' | '\t')) {
            i += 1;
        }
        if text.get(i).is_none_or(|(c, _)| *c != '=') {
            return false;
        }
        i += 1;
        while text.get(i).is_some_and(|(c, _)| matches!(c, ' ' | '\t')) {
            i += 1;
        }
        let mut value: Text = text[i..].to_vec();
        let continued = value.last().is_some_and(|(c, _)| *c == '\\');
        if continued {
            value.pop();
            while value.last().is_some_and(|(c, _)| matches!(c, ' ' | '\t')) {
                value.pop();
            }
        }
        if name.starts_with('_') && STANDARD.contains(&name.as_str()) {
            self.diags.warning(
                &here.pos(text[0].1),
                format!("${name} redefines a predefined definition"),
            );
        }
        self.definitions
            .insert(name.clone(), Definition { lines: vec![value] });
        if continued {
            self.collecting = Some(name);
        }
        true
    }

    /// Replaces defined `$NAME` / `${NAME}` references, rescanning replaced text as
    /// keepalived does (so definitions may refer to later definitions).
    fn substitute(&mut self, here: &Here, text: &mut Text, count: &mut usize) -> Substituted {
        let mut from = 0;
        let mut changed = false;
        while let Some(at) = text[from..]
            .iter()
            .position(|(c, _)| *c == '$')
            .map(|p| from + p)
        {
            let Some(found) = self.reference(text, at) else {
                from = at + 1;
                continue;
            };
            *count += 1;
            if *count > MAX_SUBSTITUTIONS {
                self.diags.error(
                    &here.pos(text[at].1),
                    format!("more than {MAX_SUBSTITUTIONS} substitutions on one line (a definition refers to itself?)"),
                );
                return Substituted::Failed;
            }
            let col = text[at].1;
            let whole_line = at == 0 && found.end == text.len();
            let replacement: Vec<Text> = match found.value {
                Value::Defined(name) => {
                    let lines = &self.definitions[&name].lines;
                    if lines.len() > 1 {
                        if whole_line {
                            return Substituted::Lines(
                                lines.iter().map(|l| at_col(l, col)).collect(),
                            );
                        }
                        self.diags.error(
                            &here.pos(col),
                            format!("multi-line definition ${name} must be alone on its line"),
                        );
                        return Substituted::Failed;
                    }
                    lines.iter().map(|l| at_col(l, col)).collect()
                }
                Value::Standard(s) => {
                    vec![lexer::text(&s).into_iter().map(|(c, _)| (c, col)).collect()]
                }
            };
            let replacement = replacement.into_iter().next().unwrap_or_default();
            let tilde = replacement
                .iter()
                .find(|(c, _)| !matches!(c, ' ' | '\t'))
                .is_some_and(|(c, _)| *c == '~');
            text.splice(at..found.end, replacement);
            changed = true;
            if text.len() > MAX_LINE_CHARS {
                self.diags.error(
                    &here.pos(col),
                    format!("substitution makes the line longer than {MAX_LINE_CHARS} characters"),
                );
                return Substituted::Failed;
            }
            if tilde {
                break;
            }
            from = at;
        }
        if changed {
            Substituted::Inline
        } else {
            Substituted::Nothing
        }
    }

    /// The definition referenced at `text[at]` (a `$`), if any.
    fn reference(&mut self, text: &Text, at: usize) -> Option<Reference> {
        let braced = text.get(at + 1).is_some_and(|(c, _)| *c == '{');
        let start = at + 1 + usize::from(braced);
        let first = text.get(start)?.0;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let end = start
            + text[start..]
                .iter()
                .position(|(c, _)| !(c.is_ascii_alphanumeric() || *c == '_'))
                .unwrap_or(text.len() - start);
        let name = lexer::to_string(&text[start..end]);
        let (params, after) = if braced {
            let close = end + text[end..].iter().position(|(c, _)| *c == '}')?;
            let params = lexer::to_string(&text[end..close]);
            if !params.chars().all(|c| c == ' ' || c.is_ascii_digit()) || params.ends_with(' ') {
                return None;
            }
            (params, close + 1)
        } else {
            if text
                .get(end)
                .is_some_and(|(c, _)| !matches!(c, ' ' | '\t' | ',' | ')'))
            {
                return None;
            }
            (String::new(), end)
        };
        if self.definitions.contains_key(&name) {
            return params.trim().is_empty().then_some(Reference {
                value: Value::Defined(name),
                end: after,
            });
        }
        let value = self.standard(&name, params.trim())?;
        Some(Reference {
            value: Value::Standard(value),
            end: after,
        })
    }

    /// keepalived's predefined definitions.
    fn standard(&mut self, name: &str, params: &str) -> Option<String> {
        if !params.is_empty() && name != "_RANDOM" {
            return None;
        }
        Some(match name {
            "_PWD" => self
                .stack
                .last()
                .and_then(|p| p.parent())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| ".".into()),
            "_INSTANCE" => self.opts.config_id.clone().unwrap_or_default(),
            "_HASH" => "#".into(),
            "_BANG" => "!".into(),
            "_RANDOM" => {
                let mut bounds = params.split_whitespace().map(|n| n.parse::<u64>().ok());
                let min = bounds.next().flatten().unwrap_or(0);
                let max = bounds.next().flatten().unwrap_or(32767).max(min);
                // xorshift: unpredictable enough for spreading timers, as keepalived uses it.
                self.random ^= self.random << 13;
                self.random ^= self.random >> 7;
                self.random ^= self.random << 17;
                (min + self.random % (max - min + 1)).to_string()
            }
            _ => return None,
        })
    }

    /// `~SEQ(VAR, [START,] [STEP,] END) rest` / `~SEQx(...)` / `~LST(VAR, V1, V2...) rest`
    /// / `~LST({V1, V2}, {A, B}, ...) rest`: processes `rest` once per value.
    fn sequence(&mut self, here: &Here, text: &Text, depth: usize) {
        let col = text[0].1;
        let is_seq = text[1].0 == 'S';
        let Some(close) = text.iter().position(|(c, _)| *c == ')') else {
            self.diags.error(&here.pos(col), "sequence without ')'");
            return;
        };
        let spec = lexer::to_string(&text[4..close]);
        let mut rest = text[close + 1..].to_vec();
        let blanks = rest
            .iter()
            .take_while(|(c, _)| matches!(c, ' ' | '\t'))
            .count();
        rest.drain(..blanks);
        let iterations = if is_seq { seq(&spec) } else { lst(&spec) };
        let iterations = match iterations {
            Ok(it) => it,
            Err(message) => {
                let kind = if is_seq { "~SEQ" } else { "~LST" };
                self.diags
                    .error(&here.pos(col), format!("invalid {kind}: {message}"));
                return;
            }
        };
        for assignment in iterations {
            if self.exhausted {
                return;
            }
            for (var, value) in assignment {
                self.definitions.insert(
                    var,
                    Definition {
                        lines: vec![value.chars().map(|c| (c, col)).collect()],
                    },
                );
            }
            self.logical(here, rest.clone(), depth + 1);
        }
    }

    /// `include[rmwba] PATTERN`: reads every file the glob matches, relative to the
    /// including file's directory. Returns false when the line is not an include.
    fn include(&mut self, here: &Here, text: &Text, depth: usize) -> bool {
        let line = lexer::to_string(text);
        let Some((keyword, pattern)) = line.split_once([' ', '\t']) else {
            return false;
        };
        if !matches!(
            keyword,
            "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
        ) {
            return false;
        }
        let pos = here.pos(text[0].1);
        let pattern = pattern.trim().trim_matches('"');
        let base = here
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut files = Vec::new();
        for pattern in braces(pattern) {
            let full = base.join(&pattern);
            let full = full.to_string_lossy();
            match glob::glob_with(&full, glob_options()) {
                Ok(paths) => files.extend(paths.filter_map(Result::ok)),
                Err(err) => {
                    self.diags
                        .error(&pos, format!("bad include pattern '{pattern}': {err}"));
                    return true;
                }
            }
        }
        let has_wildcard = pattern.contains(['*', '?', '[', '{']);
        if files.is_empty() {
            if has_wildcard {
                self.diags
                    .warning(&pos, format!("no file matches include '{pattern}'"));
            } else {
                self.diags
                    .error(&pos, format!("included file {pattern} does not exist"));
            }
        }
        for file in files {
            if file.is_dir() {
                continue;
            }
            self.file(&file, Some(&pos), depth + 1);
        }
        true
    }
}

/// Names keepalived predefines.
const STANDARD: &[&str] = &["_PWD", "_INSTANCE", "_RANDOM", "_HASH", "_BANG"];

fn glob_options() -> glob::MatchOptions {
    glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    }
}

/// csh-style brace expansion, as keepalived's glob does: `a{b,c{d,e}}f` → abf acdf acef.
fn braces(pattern: &str) -> Vec<String> {
    let bytes: Vec<char> = pattern.chars().collect();
    let Some(open) = bytes.iter().position(|&c| c == '{') else {
        return vec![pattern.to_string()];
    };
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &c) in bytes.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_string()];
    };
    let prefix: String = bytes[..open].iter().collect();
    let suffix: String = bytes[close + 1..].iter().collect();
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    bounds
        .windows(2)
        .flat_map(|w| {
            let alt: String = bytes[w[0] + 1..w[1]].iter().collect();
            braces(&format!("{prefix}{alt}{suffix}"))
        })
        .collect()
}

fn at_col(text: &[(char, u32)], col: u32) -> Text {
    text.iter().map(|&(c, _)| (c, col)).collect()
}

enum Substituted {
    Nothing,
    Inline,
    Lines(Vec<Text>),
    Failed,
}

struct Reference {
    value: Value,
    end: usize,
}

enum Value {
    Defined(String),
    Standard(String),
}

/// Upper bound of one sequence, so a typo cannot generate billions of lines.
const MAX_ITERATIONS: i64 = MAX_LINES as i64;

type Assignments = Vec<Vec<(String, String)>>;

/// `VAR, [START,] [STEP,] END` after `~SEQ(` (or `~SEQx(` for hexadecimal values).
fn seq(spec: &str) -> Result<Assignments, String> {
    let (hex, spec) = match spec.strip_prefix('x') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let spec = spec.trim_start().strip_prefix('(').ok_or("expected '('")?;
    let mut parts = spec.split(',').map(str::trim);
    let var = parts
        .next()
        .filter(|v| !v.is_empty())
        .ok_or("no variable")?;
    let numbers = parts.map(number).collect::<Result<Vec<i64>, String>>()?;
    let (start, step, end) = match numbers.as_slice() {
        [end] => (
            if *end < 0 { -1 } else { 1 },
            if *end < 1 { -1 } else { 1 },
            *end,
        ),
        [start, end] => (*start, if start <= end { 1 } else { -1 }, *end),
        [start, step, end] => (*start, *step, *end),
        _ => return Err("expected 1 to 3 numbers".into()),
    };
    if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
        return Err("the step does not lead from start to end".into());
    }
    if hex && (start < 0 || end < 0) {
        return Err("~SEQx needs non-negative numbers".into());
    }
    if (i128::from(end) - i128::from(start)) / i128::from(step) >= i128::from(MAX_ITERATIONS) {
        return Err(format!("more than {MAX_ITERATIONS} iterations"));
    }
    let mut out = Vec::new();
    let mut n = start;
    while (step > 0 && n <= end) || (step < 0 && n >= end) {
        let value = if hex { format!("{n:x}") } else { n.to_string() };
        out.push(vec![(var.to_string(), value)]);
        n += step;
    }
    Ok(out)
}

fn number(text: &str) -> Result<i64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let n = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("'{text}' is not a number"))?;
    Ok(if negative { -n } else { n })
}

/// `VAR, V1, V2...` or `{VAR1, VAR2}, {A1, A2}, ...` after `~LST(`.
fn lst(spec: &str) -> Result<Assignments, String> {
    let spec = spec.trim_start().strip_prefix('(').ok_or("expected '('")?;
    let groups = split_groups(spec)?;
    let (vars, values) = groups.split_first().ok_or("no variable")?;
    if values.is_empty() {
        return Err("no values".into());
    }
    values
        .iter()
        .map(|set| {
            if set.len() > vars.len() {
                return Err("more values than variables".to_string());
            }
            Ok(vars
                .iter()
                .enumerate()
                .map(|(i, var)| (var.clone(), set.get(i).cloned().unwrap_or_default()))
                .collect())
        })
        .collect()
}

/// `a, {b, c}, d` → [[a], [b, c], [d]].
fn split_groups(spec: &str) -> Result<Vec<Vec<String>>, String> {
    let mut groups = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner.find('}').ok_or("'{' without '}'")?;
            groups.push(
                inner[..close]
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .collect(),
            );
            rest = inner[close + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            groups.push(vec![rest[..end].trim().to_string()]);
            rest = &rest[end..];
        }
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    if groups
        .first()
        .is_none_or(|g| g.iter().any(String::is_empty))
    {
        return Err("no variable".into());
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The logical lines of `text` as words joined by spaces, and the diagnostics.
    fn lines_with(text: &str, id: Option<&str>) -> (Vec<String>, String) {
        let mut diags = Diagnostics::default();
        let opts = Options {
            config_id: id.map(str::to_string),
        };
        let source = read_text("t.conf".into(), text, &opts, &mut diags);
        let lines = source
            .lines
            .iter()
            .map(|l| {
                l.tokens
                    .iter()
                    .map(|t| match &t.kind {
                        lexer::TokenKind::Word(w) => w.clone(),
                        lexer::TokenKind::Open => "{".into(),
                        lexer::TokenKind::Close => "}".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        (lines, diags.to_string())
    }

    fn lines(text: &str) -> Vec<String> {
        let (lines, diags) = lines_with(text, Some("main"));
        assert_eq!(diags, "");
        lines
    }

    #[test]
    fn conditional_lines_follow_the_config_id() {
        let text = "@main a 1\n@backup a 2\n@^main b 1\n@^backup b 2\n@main\n";
        assert_eq!(lines(text), ["a 1", "b 2"]);
        let (none, _) = lines_with(text, None);
        assert_eq!(none, ["b 1", "b 2"]);
    }

    #[test]
    /// An undefined `${NAME}` stays, and its braces are block braces, as in keepalived.
    fn definitions_substitute_recursively_at_use_time() {
        let text = "$BASE=10.2.${SUB}\n$SUB=0\nx ${BASE}.100/32\n$SUB=10\nx ${BASE}.100/32\n\
                    $P=240\npriority $P\nkeep $UNDEFINED ${ALSO}\n";
        assert_eq!(
            lines(text),
            [
                "x 10.2.0.100/32",
                "x 10.2.10.100/32",
                "priority 240",
                "keep $UNDEFINED $ { ALSO }"
            ]
        );
    }

    #[test]
    fn multi_line_definitions_expand_to_lines() {
        let text =
            "$BLOCK= \\\n  vrrp_instance VI_${N} { \\\n @main priority 1 \\\n }\n\n$N=7\n$BLOCK\n";
        assert_eq!(lines(text), ["vrrp_instance VI_7 {", "priority 1", "}"]);
    }

    #[test]
    fn predefined_definitions() {
        assert_eq!(lines("a \"${_HASH}${_BANG}\" ${_INSTANCE}"), ["a #! main"]);
        let (random, _) = lines_with("r ${_RANDOM 5 7}", None);
        let n: u32 = random[0][2..].parse().unwrap();
        assert!((5..=7).contains(&n));
    }

    #[test]
    fn self_reference_is_an_error_not_a_hang() {
        let (_, diags) = lines_with("$A=x$A\nline $A\n", None);
        assert!(diags.contains("more than 1000 substitutions"), "{diags}");
    }

    #[test]
    fn sequences_and_lists_repeat_lines() {
        assert_eq!(
            lines("~SEQ(N, 0, 2) ip 10.0.${N}.1"),
            ["ip 10.0.0.1", "ip 10.0.1.1", "ip 10.0.2.1"]
        );
        assert_eq!(lines("~SEQx(N, 0x9, 0x10, 0x2a) ${N}"), ["9", "19", "29"]);
        assert_eq!(lines("~SEQ(N, 2) ${N}"), ["1", "2"]);
        assert_eq!(
            lines("~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(X,1,2) 192.${X}.${IP}.${IP1}"),
            ["192.1.10.1", "192.2.10.1", "192.1.20.4", "192.2.20.4"]
        );
        let (_, diags) = lines_with("~SEQ(N, 1, 0, 5) x", None);
        assert!(diags.contains("invalid ~SEQ"), "{diags}");
        let (_, diags) = lines_with("~SEQ(N, 0, 100000000000) x", None);
        assert!(diags.contains("iterations"), "{diags}");
        // Nested sequences that produce nothing still stop.
        let (_, diags) = lines_with("~SEQ(N, 1, 999999) ~SEQ(M, 1, 999999) $Z=1", None);
        assert!(diags.contains("expands to more than"), "{diags}");
    }

    #[test]
    fn braces_expand_like_csh() {
        assert_eq!(braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(braces("plain"), ["plain"]);
    }

    /// A scratch directory removed when the test ends, pass or fail.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("xlb-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("conf.d")).unwrap();
            Scratch(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn read(path: &Path) -> (Vec<String>, String) {
        let mut diags = Diagnostics::default();
        let source = read_file(path, &Options { config_id: None }, &mut diags);
        let words = source
            .lines
            .iter()
            .map(|l| match &l.tokens[0].kind {
                lexer::TokenKind::Word(w) => format!("{w}@{}", l.tokens[0].pos),
                _ => String::new(),
            })
            .collect();
        (words, diags.to_string())
    }

    #[test]
    fn includes_are_relative_to_the_including_file_and_globbed() {
        let dir = Scratch::new("include");
        dir.write("conf.d/b.conf", "b\ninclude ../c.{x,y}\n");
        dir.write("conf.d/a.conf", "a\n");
        dir.write("c.y", "c\n");
        let main = dir.write("main.conf", "first\ninclude conf.d/*.conf\nlast\n");
        let (words, diags) = read(&main);
        assert_eq!(diags, "");
        let d = dir.0.display();
        assert_eq!(
            words,
            [
                format!("first@{d}/main.conf:1:1"),
                format!("a@{d}/conf.d/a.conf:1:1"),
                format!("b@{d}/conf.d/b.conf:1:1"),
                format!("c@{d}/conf.d/../c.y:1:1"),
                format!("last@{d}/main.conf:3:1"),
            ]
        );
    }

    #[test]
    fn include_cycles_and_missing_files_are_errors_at_the_include() {
        let dir = Scratch::new("cycle");
        dir.write("b.conf", "include main.conf\n");
        let main = dir.write(
            "main.conf",
            "include b.conf\n  include missing.conf\ninclude none*.conf\n",
        );
        let (_, diags) = read(&main);
        let d = dir.0.display();
        assert_eq!(
            diags,
            format!(
                "{d}/b.conf:1:1: error: {d}/main.conf includes itself (include cycle)\n\
                 {d}/main.conf:2:3: error: included file missing.conf does not exist\n\
                 {d}/main.conf:3:1: warning: no file matches include 'none*.conf'\n"
            )
        );
    }
}
