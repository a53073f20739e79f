//! Checks of a configuration against this machine (`xlb check --host`): the interfaces it
//! names exist, and the scripts it runs exist, are executable and are as safe as
//! keepalived's `enable_script_security` demands.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::{
    diag::{Diagnostics, Pos},
    model::{Check, Command, Config},
};

/// Everything this host lacks for `config`, as diagnostics.
pub fn check(config: &Config) -> Diagnostics {
    let mut diags = Diagnostics::default();
    interfaces(config, &mut diags);
    for command in commands(config) {
        script(config, command, &mut diags);
    }
    diags.sort_by_key(|d| (d.pos.file.clone(), d.pos.line, d.pos.col));
    diags
}

fn interfaces(config: &Config, diags: &mut Diagnostics) {
    for instance in &config.vrrp_instances {
        if let Some(interface) = &instance.interface
            && is_loopback(&interface.name)
        {
            diags.error(
                &interface.pos,
                format!(
                    "({}) VRRP cannot run on the loopback interface {}",
                    instance.name, interface.name
                ),
            );
        }
    }
    let mut check = |name: &str, pos: &Pos| {
        if !Path::new("/sys/class/net").join(name).exists() {
            diags.error(pos, format!("interface {name} does not exist on this host"));
        }
    };
    for instance in &config.vrrp_instances {
        if let Some(interface) = &instance.interface {
            check(&interface.name, &interface.pos);
        }
        for tracked in &instance.track.interfaces {
            check(&tracked.name, &tracked.pos);
        }
        for vip in instance
            .virtual_ipaddresses
            .iter()
            .chain(&instance.virtual_ipaddresses_excluded)
        {
            if let Some(dev) = &vip.dev {
                check(dev, &vip.pos);
            }
        }
    }
    for group in &config.vrrp_sync_groups {
        for tracked in &group.track.interfaces {
            check(&tracked.name, &tracked.pos);
        }
    }
}

/// ARPHRD_LOOPBACK, as the kernel reports it in /sys/class/net/IF/type.
fn is_loopback(name: &str) -> bool {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("type"))
        .is_ok_and(|t| t.trim() == "772")
}

/// Every command the configuration may run.
fn commands(config: &Config) -> Vec<&Command> {
    let g = &config.global;
    let mut all: Vec<&Command> = [&g.notify_fifo, &g.vrrp_notify_fifo, &g.lvs_notify_fifo]
        .into_iter()
        .flatten()
        .filter_map(|f| f.script.as_ref())
        .collect();
    all.extend(config.vrrp_scripts.iter().map(|s| &s.command));
    let notifies = config
        .vrrp_instances
        .iter()
        .map(|i| &i.notify)
        .chain(config.vrrp_sync_groups.iter().map(|g| &g.notify));
    for n in notifies {
        all.extend(
            [
                &n.master,
                &n.backup,
                &n.fault,
                &n.stop,
                &n.any,
                &n.master_rx_lower_pri,
            ]
            .into_iter()
            .flatten(),
        );
        all.extend(n.deleted.iter().flatten());
    }
    for vs in &config.virtual_servers {
        all.extend([&vs.quorum.up, &vs.quorum.down].into_iter().flatten());
        for real in &vs.real_servers {
            all.extend([&real.notify_up, &real.notify_down].into_iter().flatten());
            all.extend(real.checks.iter().filter_map(|c| match c {
                Check::Misc(m) => Some(&m.command),
                _ => None,
            }));
        }
    }
    all
}

fn script(config: &Config, command: &Command, diags: &mut Diagnostics) {
    let program = command.program();
    let Some(path) = find_program(program) else {
        diags.error(
            &command.pos,
            format!("script '{program}' does not exist on this host"),
        );
        return;
    };
    let Ok(meta) = path.metadata() else {
        diags.error(
            &command.pos,
            format!("cannot read script {}", path.display()),
        );
        return;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        diags.error(
            &command.pos,
            format!("script {} is not an executable file", path.display()),
        );
        return;
    }
    let user = command
        .user
        .as_ref()
        .or(config.global.script_user.as_ref())
        .map(|u| u.user.as_str());
    if let Some(user) = user
        && nix::unistd::User::from_name(user).ok().flatten().is_none()
    {
        diags.error(
            &command.pos,
            format!("script user '{user}' does not exist on this host"),
        );
    }
    // keepalived only guards scripts that run as root (its default user when
    // keepalived_script does not exist).
    let as_root = user.is_none_or(|u| u == "root");
    if !as_root {
        return;
    }
    let real = path.canonicalize().unwrap_or_else(|_| path.clone());
    for checked in [&path, &real] {
        if let Some(unsafe_part) = insecure_component(checked) {
            let message = format!(
                "script {} runs as root but {} can be changed by a user other than root",
                path.display(),
                unsafe_part.display()
            );
            if config.global.enable_script_security {
                diags.error(
                    &command.pos,
                    format!("{message}; enable_script_security refuses it"),
                );
            } else {
                diags.warning(
                    &command.pos,
                    format!("{message} (enable_script_security would refuse it)"),
                );
            }
            return;
        }
    }
}

/// A program as `execvp` finds it: a path as given, a bare name on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.exists().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The first part of `path` (from `/` down) that someone other than root could replace,
/// by keepalived's rules: owned by non-root, or writable by a non-root group or by
/// everyone (directories with the sticky bit excepted).
fn insecure_component(path: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        let meta = std::fs::symlink_metadata(&prefix).ok()?;
        let mode = meta.mode();
        let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
        let writable = (meta.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0;
        if meta.uid() != 0 || (!sticky_dir && !meta.file_type().is_symlink() && writable) {
            return Some(prefix);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_writable_directories_are_unsafe_unless_sticky() {
        let dir = std::env::temp_dir().join(format!("xlb-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        // The temp dir itself is sticky (1777) and so allowed; ours is not.
        let found = insecure_component(&script);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let fixed = insecure_component(&script);
        std::fs::remove_dir_all(&dir).unwrap();
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(found, Some(dir));
            assert_eq!(fixed, None);
        } else {
            // Owned by us, not root: unsafe either way.
            assert!(found.is_some() && fixed.is_some());
        }
    }

    #[test]
    fn bare_programs_are_found_on_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/nonexistent/xlb-script").is_none());
    }
}
