//! Which virtual addresses this node serves, as VRRP decides them.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use crate::{config::Config, vrrp};

/// A VIP that some `vrrp_instance` manages is served only while that instance is MASTER; a
/// VIP no instance mentions is always served (a director without VRRP, as in LVS setups
/// where something else moves the address).
#[derive(Debug, Default)]
pub struct Ownership {
    managed: HashSet<IpAddr>,
    mastered: HashMap<String, Vec<IpAddr>>,
}

impl Ownership {
    pub fn new(config: &Config) -> Self {
        Self {
            managed: managed(config),
            mastered: HashMap::new(),
        }
    }

    /// Follows a reloaded configuration. What each instance masters changes with the
    /// events its reload sends (removed instances stop, changed VIPs are reported).
    pub fn reconfigure(&mut self, config: &Config) {
        self.managed = managed(config);
    }

    /// Follows a state change; true when what this node serves may have changed.
    pub fn record(&mut self, event: &vrrp::Event) -> bool {
        let before = self.mastered.get(&event.instance).cloned();
        if event.state == vrrp::State::Master {
            self.mastered
                .insert(event.instance.clone(), event.vips.clone());
        } else {
            self.mastered.remove(&event.instance);
        }
        before != self.mastered.get(&event.instance).cloned()
    }

    pub fn serves(&self, vip: IpAddr) -> bool {
        !self.managed.contains(&vip) || self.mastered.values().any(|vips| vips.contains(&vip))
    }
}

/// The VIPs some `vrrp_instance` of `config` manages.
fn managed(config: &Config) -> HashSet<IpAddr> {
    config
        .vrrp_instances
        .iter()
        .flat_map(|i| {
            i.virtual_ipaddresses
                .iter()
                .chain(&i.virtual_ipaddresses_excluded)
        })
        .map(|a| a.addr)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const CONFIG: &str = "
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        203.0.113.10
    }
}
";

    fn event(state: vrrp::State) -> vrrp::Event {
        vrrp::Event {
            instance: "VI_1".into(),
            state,
            vips: vec!["203.0.113.10".parse().unwrap()],
        }
    }

    #[test]
    fn a_managed_vip_is_served_only_by_the_master() {
        let config = parse_str("t.conf", CONFIG).unwrap().config;
        let mut ownership = Ownership::new(&config);
        let vip: IpAddr = "203.0.113.10".parse().unwrap();
        assert!(!ownership.serves(vip));
        assert!(ownership.record(&event(vrrp::State::Master)));
        assert!(ownership.serves(vip));
        assert!(!ownership.record(&event(vrrp::State::Master)));
        assert!(ownership.record(&event(vrrp::State::Backup)));
        assert!(!ownership.serves(vip));
    }

    #[test]
    fn an_unmanaged_vip_is_always_served() {
        let config = parse_str("t.conf", CONFIG).unwrap().config;
        assert!(Ownership::new(&config).serves("203.0.113.99".parse().unwrap()));
    }
}
