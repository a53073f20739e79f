//! Typed handles on the balancer's maps.

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, MapError, PerCpuArray, PerCpuValues, ProgramArray, RingBuf},
    programs::ProgramFd,
    util::nr_cpus,
};
use lb_common::{
    Family,
    conn_count::RealConns,
    maps::{Real, Service, VipKey, name, tunnel_source_index},
    stats::{Counters, Event},
    timeouts::Timeouts,
    tunnel::TunnelSource,
};

use super::XdpError;
use crate::ctl::ConnCounts;

pub struct Maps {
    vips: HashMap<MapData, VipKey, Service>,
    tables: Array<MapData, u32>,
    reals: Array<MapData, Real>,
    timeouts: Array<MapData, Timeouts>,
    stages: ProgramArray<MapData>,
    conns: Array<MapData, RealConns>,
    real_stats: PerCpuArray<MapData, Counters>,
    events: PerCpuArray<MapData, u64>,
    tunnel_sources: Array<MapData, TunnelSource>,
    pub neigh_misses: Option<RingBuf<MapData>>,
    cpus: usize,
}

impl Maps {
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, XdpError> {
        let cpus = nr_cpus().map_err(|(_, source)| XdpError::Map {
            map: "(possible CPUs)",
            source: MapError::IoError(source),
        })?;
        Ok(Self {
            vips: typed(ebpf, name::VIPS)?,
            tables: typed(ebpf, name::TABLES)?,
            reals: typed(ebpf, name::REALS)?,
            timeouts: typed(ebpf, name::TIMEOUTS)?,
            stages: typed(ebpf, name::STAGES)?,
            conns: typed(ebpf, name::CONNS)?,
            real_stats: typed(ebpf, name::REAL_STATS)?,
            events: typed(ebpf, name::EVENTS)?,
            tunnel_sources: typed(ebpf, name::TUNNEL_SOURCES)?,
            neigh_misses: Some(typed(ebpf, name::NEIGH_MISSES)?),
            cpus,
        })
    }

    pub fn set_service(&mut self, key: &VipKey, value: &Service) -> Result<(), XdpError> {
        self.vips.insert(key, value, 0).map_err(err(name::VIPS))
    }

    pub fn remove_service(&mut self, key: &VipKey) -> Result<(), XdpError> {
        match self.vips.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(XdpError::Map {
                map: name::VIPS,
                source,
            }),
        }
    }

    pub fn write_table(&mut self, base: u32, table: &[u32]) -> Result<(), XdpError> {
        for (i, real) in table.iter().enumerate() {
            self.tables
                .set(base + i as u32, real, 0)
                .map_err(err(name::TABLES))?;
        }
        Ok(())
    }

    pub fn set_tunnel_source(
        &mut self,
        family: Family,
        source: &TunnelSource,
    ) -> Result<(), XdpError> {
        self.tunnel_sources
            .set(tunnel_source_index(family), source, 0)
            .map_err(err(name::TUNNEL_SOURCES))
    }

    /// Every installed service.
    pub fn services(&self) -> Result<Vec<(VipKey, Service)>, XdpError> {
        self.vips
            .iter()
            .collect::<Result<_, _>>()
            .map_err(err(name::VIPS))
    }

    pub fn real(&self, index: u32) -> Result<Real, XdpError> {
        self.reals.get(&index, 0).map_err(err(name::REALS))
    }

    pub fn set_real(&mut self, index: u32, real: &Real) -> Result<(), XdpError> {
        self.reals.set(index, real, 0).map_err(err(name::REALS))
    }

    /// Puts `program` in `STAGES` at `index`, where the balancer tail-calls it.
    pub fn set_stage(&mut self, index: u32, program: &ProgramFd) -> Result<(), XdpError> {
        self.stages
            .set(index, program, 0)
            .map_err(err(name::STAGES))
    }

    pub fn set_timeouts(&mut self, timeouts: &Timeouts) -> Result<(), XdpError> {
        self.timeouts
            .set(0, timeouts, 0)
            .map_err(err(name::TIMEOUTS))
    }

    /// Zeroes the connection counts of a real slot given to a new real.
    pub fn reset_conns(&mut self, index: u32) -> Result<(), XdpError> {
        self.conns
            .set(index, RealConns::default(), 0)
            .map_err(err(name::CONNS))
    }

    /// The connections of a real slot, inactive ones as they count in `window`.
    pub fn conns(&self, index: u32, window: u32) -> Result<ConnCounts, XdpError> {
        let conns = self.conns.get(&index, 0).map_err(err(name::CONNS))?;
        Ok(ConnCounts {
            active: conns.active(),
            inactive: conns.inactive(window),
        })
    }

    /// Zeroes the counters of a real slot given to a new real.
    pub fn reset_real_stats(&mut self, index: u32) -> Result<(), XdpError> {
        let zero = self.zero_counters()?;
        self.real_stats
            .set(index, zero, 0)
            .map_err(err(name::REAL_STATS))
    }

    pub fn real_stats(&self, index: u32) -> Result<Counters, XdpError> {
        let values = self
            .real_stats
            .get(&index, 0)
            .map_err(err(name::REAL_STATS))?;
        Ok(Counters::sum(values.iter()))
    }

    pub fn events(&self) -> Result<Vec<(Event, u64)>, XdpError> {
        Event::ALL
            .into_iter()
            .map(|event| {
                let values = self
                    .events
                    .get(&(event as u32), 0)
                    .map_err(err(name::EVENTS))?;
                Ok((event, values.iter().sum()))
            })
            .collect()
    }

    fn zero_counters(&self) -> Result<PerCpuValues<Counters>, XdpError> {
        PerCpuValues::try_from(vec![Counters::default(); self.cpus]).map_err(|source| {
            XdpError::Map {
                map: "(per-CPU values)",
                source: MapError::IoError(source),
            }
        })
    }
}

fn typed<M>(ebpf: &mut Ebpf, map: &'static str) -> Result<M, XdpError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let raw = ebpf.take_map(map).ok_or(XdpError::Missing(map))?;
    M::try_from(raw).map_err(err(map))
}

fn err(map: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { map, source }
}
