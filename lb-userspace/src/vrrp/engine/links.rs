//! Interfaces that come and go. An instance whose interface is deleted goes to FAULT, its
//! sockets closed; when an interface of that name is back and up (with a new index), the
//! instance opens its sockets there and starts over from BACKUP, so the election decides.

use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{error, info};

use super::{Engine, Event};
use crate::{
    net::{self, LinkEvent},
    vrrp::{
        plan::RebindError,
        track::{Status, Tracked},
    },
};

impl Engine {
    pub(super) async fn on_link(
        &mut self,
        event: LinkEvent,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        match event {
            LinkEvent::Changed(link) => {
                let up = link.up;
                let key = Tracked::Interface(link.name);
                self.track_changed(key, Status::Up(up), now, events).await;
                if up {
                    self.rebind_all(now, events).await;
                }
            }
            LinkEvent::Removed(link) => {
                self.unbind(link.ifindex, &link.name, now, events).await;
                let key = Tracked::Interface(link.name);
                self.track_changed(key, Status::Up(false), now, events)
                    .await;
            }
            // The source address an instance waits for may have come.
            LinkEvent::Addressed(_) => self.rebind_all(now, events).await,
        }
    }

    async fn unbind(
        &mut self,
        ifindex: u32,
        name: &str,
        now: Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let on_it: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].instance.ifindex() == Some(ifindex))
            .collect();
        if on_it.is_empty() {
            return;
        }
        info!("Interface {name} deleted");
        for &i in &on_it {
            self.instances[i].instance.unbind();
        }
        self.listen_where_bound();
        for i in on_it {
            self.apply_tracking(i, now, events).await;
        }
    }

    /// Takes up again every instance whose interface is back and up.
    async fn rebind_all(&mut self, now: Instant, events: &mpsc::UnboundedSender<Event>) {
        for i in 0..self.instances.len() {
            if self.instances[i].instance.ifindex().is_some() {
                continue;
            }
            let ifname = self.instances[i].instance.plan.ifname.clone();
            let Some(ifindex) = self.up_index(&ifname).await else {
                continue;
            };
            let name = self.instances[i].name().to_owned();
            match self.instances[i].instance.rebind(ifindex).await {
                Ok(()) => {
                    info!("({name}) Interface {ifname} is back (index {ifindex}): resuming");
                    self.listen_where_bound();
                    let changes = self.start_instance(i, now).await;
                    self.after(i, changes, now, events).await;
                }
                Err(e @ RebindError::NoSource(_)) => info!("({name}) waiting: {e}"),
                Err(e) => error!("({name}) cannot use {ifname} again: {e}"),
            }
        }
    }

    /// The index of interface `name` if it exists and is up.
    async fn up_index(&self, name: &str) -> Option<u32> {
        let ifindex = net::index(name).ok()?;
        let link = self.netlink.link_state(ifindex).await.ok()?;
        link.up.then_some(ifindex)
    }
}
