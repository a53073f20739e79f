//! Block readers: from the statement tree to the model.
//!
//! Each reader walks one kind of block, turns every keyword it knows into model values and
//! reports the rest: keywords keepalived knows but xlb does not act on are warnings, old
//! spellings are warnings naming the modern one, anything else is an error.

mod checker;
mod global;
mod lvs;
mod track;
mod vrrp;

use super::{
    diag::Diagnostics,
    model::{Command, Config, ScriptUser, TrackWeight},
    tree::{Arg, Node},
    value,
};

/// Top-level blocks keepalived knows and xlb does not act on yet.
const UNSUPPORTED_TOP: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "track_group",
    "garp_group",
    "interface_up_down_delays",
    "bfd_instance",
    "SSL",
];

/// Process-wide settings, which configs carry at the top level or inside `global_defs`,
/// and xlb does not act on yet.
const UNSUPPORTED_PROCESS: &[&str] = &[
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
    "linkbeat_use_polling",
];

/// Reads a whole configuration tree into the model, before cross-checks.
pub(super) fn config(nodes: &[Node], diags: &mut Diagnostics) -> Config {
    let mut config = Config::default();
    let mut instances = Vec::new();
    for node in nodes {
        match node.name() {
            "global_defs" => global::read(node, &mut config.global, diags),
            "vrrp_script" => config.vrrp_scripts.extend(track::script(node, diags)),
            "vrrp_track_file" => {
                renamed(node, "track_file", diags);
                config.track_files.extend(track::file(node, diags));
            }
            "track_file" => config.track_files.extend(track::file(node, diags)),
            "vrrp_track_process" => config.track_processes.extend(track::process(node, diags)),
            "vrrp_instance" => instances.extend(vrrp::instance(node, diags)),
            "vrrp_sync_group" => config
                .vrrp_sync_groups
                .extend(vrrp::sync_group(node, diags)),
            "virtual_server_group" => config
                .virtual_server_groups
                .extend(lvs::virtual_server_group(node, diags)),
            "virtual_server" => config
                .virtual_servers
                .extend(lvs::virtual_server(node, diags)),
            name if UNSUPPORTED_TOP.contains(&name) || UNSUPPORTED_PROCESS.contains(&name) => {
                unsupported(node, diags)
            }
            _ => unknown(node, diags),
        }
    }
    config.vrrp_instances = instances
        .into_iter()
        .filter_map(|draft| vrrp::finish(draft, &config.global, diags))
        .collect();
    config
}

/// The arguments of a statement that takes between `min` and `max` of them and no block.
fn args<'a>(node: &'a Node, min: usize, max: usize, diags: &mut Diagnostics) -> Option<&'a [Arg]> {
    no_block(node, diags);
    let n = node.args.len();
    if n < min || n > max {
        let expected = match (min, max) {
            (0, 0) => "no arguments".to_string(),
            (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
            (a, usize::MAX) => format!("at least {a} argument{}", if a == 1 { "" } else { "s" }),
            (a, b) => format!("{a} to {b} arguments"),
        };
        diags.error(node.pos(), format!("'{}' takes {expected}", node.name()));
        return None;
    }
    Some(&node.args)
}

fn no_block(node: &Node, diags: &mut Diagnostics) {
    if node.block.is_some() {
        diags.error(node.pos(), format!("'{}' takes no block", node.name()));
    }
}

/// The only argument of a statement.
fn one<'a>(node: &'a Node, diags: &mut Diagnostics) -> Option<&'a Arg> {
    args(node, 1, 1, diags).map(|a| &a[0])
}

/// Reads the only argument with `read`, reporting at the argument what is wrong with it.
fn arg_value<T>(
    node: &Node,
    diags: &mut Diagnostics,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    one(node, diags).and_then(|arg| parsed(arg, read(&arg.value), diags))
}

fn set<T>(
    slot: &mut T,
    node: &Node,
    diags: &mut Diagnostics,
    read: impl FnOnce(&str) -> Result<T, String>,
) {
    if let Some(v) = arg_value(node, diags, read) {
        *slot = v;
    }
}

fn set_some<T>(
    slot: &mut Option<T>,
    node: &Node,
    diags: &mut Diagnostics,
    read: impl FnOnce(&str) -> Result<T, String>,
) {
    if let Some(v) = arg_value(node, diags, read) {
        *slot = Some(v);
    }
}

fn parsed<T>(arg: &Arg, result: Result<T, String>, diags: &mut Diagnostics) -> Option<T> {
    result
        .map_err(|message| diags.error(&arg.pos, message))
        .ok()
}

/// A keyword that is a switch: present means on.
fn flag(node: &Node, diags: &mut Diagnostics) -> bool {
    args(node, 0, 0, diags);
    true
}

/// `KEYWORD [<BOOL>]`: on when the value is left out.
fn boolean(node: &Node, diags: &mut Diagnostics) -> Option<bool> {
    match args(node, 0, 1, diags)? {
        [] => Some(true),
        [arg] => parsed(arg, value::boolean(&arg.value), diags),
        _ => None,
    }
}

/// The children of a block keyword, reporting a missing block.
fn block<'a>(node: &'a Node, diags: &mut Diagnostics) -> &'a [Node] {
    if node.block.is_none() {
        diags.error(node.pos(), format!("'{}' needs a {{ }} block", node.name()));
    }
    node.children()
}

/// `KEYWORD NAME { ... }`: the name, or `None` (reported) when it is missing.
fn block_name<'a>(node: &'a Node, diags: &mut Diagnostics) -> Option<&'a Arg> {
    match node.args.as_slice() {
        [name] => Some(name),
        _ => {
            diags.error(
                node.pos(),
                format!("'{}' needs exactly one name", node.name()),
            );
            None
        }
    }
}

/// The words of a value block (`group { A B }`), each line's words in order.
fn words<'a>(node: &'a Node, diags: &mut Diagnostics) -> Vec<&'a Arg> {
    block(node, diags)
        .iter()
        .flat_map(|line| {
            no_block(line, diags);
            std::iter::once(&line.keyword).chain(&line.args)
        })
        .collect()
}

fn unknown(node: &Node, diags: &mut Diagnostics) {
    diags.error(node.pos(), format!("unknown keyword '{}'", node.name()));
}

/// A keyword keepalived knows and xlb reads but does not act on.
fn unsupported(node: &Node, diags: &mut Diagnostics) {
    diags.warning(
        node.pos(),
        format!(
            "'{}' is not supported by xlb yet and is ignored",
            node.name()
        ),
    );
}

/// An old spelling that still means `modern`.
fn renamed(node: &Node, modern: &str, diags: &mut Diagnostics) {
    diags.warning(
        node.pos(),
        format!("'{}' is the old name of '{modern}'", node.name()),
    );
}

/// `KEYWORD "PROGRAM ARGS..." [USER [GROUP]]`: a command keepalived would run.
fn command(node: &Node, diags: &mut Diagnostics) -> Option<Command> {
    let args = args(node, 1, 3, diags)?;
    command_from(node, args, diags)
}

fn command_from(node: &Node, args: &[Arg], diags: &mut Diagnostics) -> Option<Command> {
    let argv = parsed(&args[0], value::command_words(&args[0].value), diags)?;
    Some(Command {
        pos: node.pos().clone(),
        argv,
        user: script_user(&args[1..]),
    })
}

fn script_user(args: &[Arg]) -> Option<ScriptUser> {
    let (user, group) = args.split_first()?;
    Some(ScriptUser {
        user: user.value.clone(),
        group: group.first().map(|g| g.value.clone()),
    })
}

/// `weight N [reverse|noreverse]` at the start of `args`, with keepalived's bound.
fn track_weight(
    node: &Node,
    args: &[Arg],
    bound: i64,
    diags: &mut Diagnostics,
) -> Option<TrackWeight> {
    let (weight, rest) = match args {
        [w, n, rest @ ..] if w.value == "weight" => (n, rest),
        [w] if w.value == "weight" => {
            diags.error(&w.pos, "'weight' needs a value");
            return None;
        }
        [other, ..] => {
            diags.error(
                &other.pos,
                format!("expected 'weight', found '{}'", other.value),
            );
            return None;
        }
        [] => {
            diags.error(node.pos(), "expected 'weight'");
            return None;
        }
    };
    let weight = parsed(weight, value::signed(&weight.value, -bound, bound), diags)? as i32;
    let reverse = match rest {
        [] => false,
        [r] if r.value == "reverse" => true,
        [r] if r.value == "noreverse" || r.value == "no_reverse" => false,
        [r, ..] => {
            diags.error(&r.pos, format!("unexpected '{}' after the weight", r.value));
            return None;
        }
    };
    Some(TrackWeight { weight, reverse })
}

/// What the readers' tests share.
#[cfg(test)]
mod testing {
    use crate::config::{Config, Options, parse_str_with};

    /// `text` read as a whole configuration, with the warnings it drew; panics with the
    /// diagnostics of one that does not load.
    pub fn read(text: &str) -> (Config, String) {
        match parse_str_with("t.conf", text, &Options { config_id: None }) {
            Ok(loaded) => (loaded.config, loaded.warnings.to_string()),
            Err(diags) => panic!("{diags}"),
        }
    }
}
