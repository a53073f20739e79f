//! Tracked objects: `vrrp_script`, `track_file`, `vrrp_track_process`.

use std::{path::PathBuf, time::Duration};

use super::{
    args, block, block_name, command_from, flag, parsed, script_user, set, set_some, track_weight,
    unknown, unsupported, value,
};
use crate::config::{
    diag::Diagnostics,
    model::{Command, TrackFile, TrackFileInit, TrackProcess, TrackWeight, VrrpScript},
    tree::Node,
};

/// keepalived's bound on a `vrrp_script` weight.
pub(super) const SCRIPT_WEIGHT: i64 = 253;
/// keepalived's bound on `track_file` and `vrrp_track_process` weights.
pub(super) const FILE_WEIGHT: i64 = 254;

pub(super) fn script(node: &Node, diags: &mut Diagnostics) -> Option<VrrpScript> {
    let name = block_name(node, diags);
    let mut command: Option<Command> = None;
    let mut user = None;
    let mut script = VrrpScript {
        pos: node.pos().clone(),
        name: name.map(|n| n.value.clone()).unwrap_or_default(),
        command: Command {
            pos: node.pos().clone(),
            argv: Vec::new(),
            user: None,
        },
        interval: Duration::from_secs(1),
        timeout: None,
        weight: TrackWeight::default(),
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    for child in block(node, diags) {
        match child.name() {
            "script" => {
                if let Some(args) = args(child, 1, usize::MAX, diags) {
                    if let Some(extra) = args.get(1) {
                        diags.warning(
                            &extra.pos,
                            "words after the command are ignored, as keepalived does; \
                             quote the command with its arguments",
                        );
                    }
                    command = command_from(child, &args[..1], diags);
                }
            }
            "interval" => set(&mut script.interval, child, diags, positive_seconds),
            "timeout" => set_some(&mut script.timeout, child, diags, positive_seconds),
            "weight" => {
                let whole = [std::slice::from_ref(&child.keyword), &child.args].concat();
                if let Some(w) = track_weight(child, &whole, SCRIPT_WEIGHT, diags) {
                    script.weight = w;
                }
            }
            "rise" => set(&mut script.rise, child, diags, value::repeat),
            "fall" => set(&mut script.fall, child, diags, value::repeat),
            "user" => user = args(child, 1, 2, diags).and_then(script_user),
            "init_fail" => script.init_fail = flag(child, diags),
            _ => unknown(child, diags),
        }
    }
    name?;
    let Some(mut command) = command else {
        diags.error(
            node.pos(),
            format!("vrrp_script '{}' has no 'script'", script.name),
        );
        return None;
    };
    command.user = user.or(command.user);
    script.command = command;
    Some(script)
}

/// Whole seconds of at least 1, as script intervals and timeouts are read.
fn positive_seconds(text: &str) -> Result<Duration, String> {
    match value::whole_seconds(text)? {
        d if d.is_zero() => Err("must be at least 1 second".into()),
        d => Ok(d),
    }
}

pub(super) fn file(node: &Node, diags: &mut Diagnostics) -> Option<TrackFile> {
    let name = block_name(node, diags);
    let mut path = None;
    let mut file = TrackFile {
        pos: node.pos().clone(),
        name: name.map(|n| n.value.clone()).unwrap_or_default(),
        file: PathBuf::new(),
        weight: TrackWeight {
            weight: 1,
            reverse: false,
        },
        init: None,
    };
    for child in block(node, diags) {
        match child.name() {
            "file" => set_some(&mut path, child, diags, |v| Ok(PathBuf::from(v))),
            "weight" => {
                let whole = [std::slice::from_ref(&child.keyword), &child.args].concat();
                if let Some(w) = track_weight(child, &whole, FILE_WEIGHT, diags) {
                    file.weight = w;
                }
            }
            "init_file" => file.init = init_file(child, diags),
            _ => unknown(child, diags),
        }
    }
    name?;
    let Some(path) = path else {
        diags.error(
            node.pos(),
            format!("track_file '{}' has no 'file'", file.name),
        );
        return None;
    };
    file.file = path;
    Some(file)
}

/// `init_file [VALUE] [overwrite]`.
fn init_file(node: &Node, diags: &mut Diagnostics) -> Option<TrackFileInit> {
    let mut init = TrackFileInit {
        value: 0,
        overwrite: false,
    };
    for arg in args(node, 0, 2, diags)? {
        if arg.value == "overwrite" {
            init.overwrite = true;
        } else {
            init.value = parsed(
                arg,
                value::signed(&arg.value, i64::from(i32::MIN), i64::from(i32::MAX)),
                diags,
            )?;
        }
    }
    Some(init)
}

/// `vrrp_track_process`: read for its name and shape; xlb does not track processes yet.
pub(super) fn process(node: &Node, diags: &mut Diagnostics) -> Option<TrackProcess> {
    unsupported(node, diags);
    let name = block_name(node, diags);
    let mut process = TrackProcess {
        pos: node.pos().clone(),
        name: name.map(|n| n.value.clone()).unwrap_or_default(),
        process: Vec::new(),
        weight: TrackWeight::default(),
        quorum: 1,
        quorum_max: None,
    };
    for child in block(node, diags) {
        match child.name() {
            "process" => {
                if let Some(args) = args(child, 1, usize::MAX, diags) {
                    process.process = args.iter().map(|a| a.value.clone()).collect();
                }
            }
            "weight" => {
                let whole = [std::slice::from_ref(&child.keyword), &child.args].concat();
                if let Some(w) = track_weight(child, &whole, FILE_WEIGHT, diags) {
                    process.weight = w;
                }
            }
            "quorum" => set(&mut process.quorum, child, diags, value::count),
            "quorum_max" => set_some(&mut process.quorum_max, child, diags, value::count),
            "param_match" => {
                args(child, 0, 1, diags);
            }
            "delay" | "terminate_delay" | "fork_delay" => {
                super::arg_value(child, diags, value::seconds);
            }
            "full_command" => {
                flag(child, diags);
            }
            _ => unknown(child, diags),
        }
    }
    name?;
    Some(process)
}
