//! The data plane pinned on the BPF file system, so that it outlives the agent.
//!
//! Maps and the interfaces' XDP links are pinned in one directory per agent. An agent that
//! dies (killed, crashed, upgraded) leaves them forwarding; the next one adopts them when
//! they are the maps its own object defines, loading its programs against them and
//! swapping the links' program atomically, so that no flow, NAT connection or persistence
//! template is lost. Maps that differ (another xlb's layout, another `--flows`) cannot be
//! adopted: the directory is cleared and the data plane starts afresh.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
};

use aya::maps::MapInfo;
use aya_obj::Object;

/// Where the agent of run directory `run_dir` pins its data plane when not told otherwise:
/// one directory per run directory, as each names one agent.
pub fn default_dir(run_dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    let escaped: String = absolute
        .to_string_lossy()
        .trim_matches('/')
        .chars()
        .map(|c| if c == '/' { '-' } else { c })
        .collect();
    Path::new("/sys/fs/bpf/xlb").join(escaped)
}

/// One agent's pinning directory.
#[derive(Clone, Debug)]
pub struct Pins {
    dir: PathBuf,
}

/// What a pinning directory holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// No pinned map: a data plane to create.
    Nothing,
    /// Every map of the object, pinned as the object defines it: a data plane to adopt.
    Adoptable,
    /// Pinned maps this object cannot use, and why.
    Foreign(String),
}

/// A map as the object defines it, or as the kernel reports a pinned one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type {}, key {} B, value {} B, {} entries, flags {:#x}",
            self.map_type, self.key_size, self.value_size, self.max_entries, self.flags
        )
    }
}

impl Pins {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where map `name` is pinned.
    pub fn map(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where the link that attaches the balancer to `interface` is pinned.
    pub fn link(&self, interface: &str) -> PathBuf {
        self.dir.join(format!("link-{interface}"))
    }

    /// Makes the directory, and its parents.
    pub fn create(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)
    }

    /// What the directory holds, measured against the maps of `object` (with the sizes
    /// the agent gives them: `max_entries` by map name).
    pub fn find(&self, object: &[u8], max_entries: &[(&str, u32)]) -> io::Result<Found> {
        let object = Object::parse(object).map_err(io::Error::other)?;
        let mut pinned = 0;
        let mut mismatch = None;
        let mut names: Vec<&String> = object.maps.keys().collect();
        names.sort();
        for name in names {
            let map = &object.maps[name];
            let wanted = Shape {
                map_type: map.map_type(),
                key_size: map.key_size(),
                value_size: map.value_size(),
                max_entries: max_entries
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(map.max_entries(), |(_, entries)| *entries),
                flags: map.map_flags(),
            };
            match pinned_shape(&self.map(name))? {
                Some(found) if found == wanted => pinned += 1,
                Some(found) => {
                    pinned += 1;
                    mismatch.get_or_insert(format!(
                        "map {name} is pinned as ({found}), this xlb defines it as ({wanted})"
                    ));
                }
                None => {
                    mismatch.get_or_insert(format!("map {name} is not pinned"));
                }
            }
        }
        Ok(match (pinned, mismatch) {
            (0, _) => Found::Nothing,
            (_, None) => Found::Adoptable,
            (_, Some(why)) => Found::Foreign(why),
        })
    }

    /// Removes every pin, which frees the maps and detaches the links that no process
    /// holds open, and the directory.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// The shape of the map pinned at `path`, if one is.
fn pinned_shape(path: &Path) -> io::Result<Option<Shape>> {
    if !path.exists() {
        return Ok(None);
    }
    let info = MapInfo::from_pin(path).map_err(io::Error::other)?;
    let map_type = info.map_type().map_err(io::Error::other)? as u32;
    Ok(Some(Shape {
        map_type,
        key_size: info.key_size(),
        value_size: info.value_size(),
        max_entries: info.max_entries(),
        flags: info.map_flags(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_directory_has_a_directory_of_its_own() {
        assert_eq!(
            default_dir(Path::new("/run/xlb")),
            Path::new("/sys/fs/bpf/xlb/run-xlb")
        );
        assert_ne!(
            default_dir(Path::new("/tmp/a/xlb-run")),
            default_dir(Path::new("/tmp/b/xlb-run"))
        );
    }
}
