//! The order and batching of a tick's audio, without sockets: `Server::handle_timeout_handing_over`
//! hands each batch of mixes over as soon as it is encoded, starting each tick with another listener.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tutti_jam::server::{ENCODES_PER_HAND_OVER, LISTS_PER_TICK, PARALLEL_DECODES_FROM, PARALLEL_ENCODES_FROM};
use tutti_jam::{Client, ClientConfig, ClientEvent, Server, ServerConfig};
use tutti_proto::message::{id, Profile};
use tutti_proto::{AudioCodec, Datagram, Frame};

const STEP: Duration = Duration::from_nanos(1_333_333);

/// One server and `n` OPUS64 clients on a simulated loopback, one 64-sample period per step.
struct Sim {
    server: Server,
    clients: Vec<(SocketAddr, Client)>,
    now: Instant,
    /// Client lists the server has sent so far.
    lists: usize,
}

impl Sim {
    fn new(n: u16, threads: usize) -> Self {
        let server_address: SocketAddr = "127.0.0.1:22124".parse().unwrap();
        let config = ClientConfig {
            profile: Profile { name: "m".into(), ..Profile::default() },
            codec: AudioCodec::Opus64,
            ..ClientConfig::default()
        };
        let clients = (0..n)
            .map(|i| {
                (SocketAddr::from(([127, 0, 0, 1], 23000 + i)), Client::new(server_address, config.clone()).unwrap())
            })
            .collect();
        let server = Server::new(ServerConfig { fast_update: true, max_channels: 150, threads, ..Default::default() });
        Sim { server, clients, now: Instant::now(), lists: 0 }
    }

    /// One period: every client sends a frame and plays one, then the server runs. Returns the
    /// destinations of the audio of each hand-over, when exactly one tick ran.
    fn step(&mut self) -> Option<Vec<Vec<SocketAddr>>> {
        self.now += STEP;
        let now = self.now;
        for (address, client) in &mut self.clients {
            let mut pcm = vec![0.0; client.frame_len()];
            client.send_audio(now, &pcm).unwrap();
            client.receive_audio(&mut pcm).unwrap();
            client.handle_timeout(now);
            while let Some(d) = client.poll_transmit() {
                self.server.handle_datagram(now, *address, &d);
            }
        }
        let (mut batches, mut handed) = (Vec::new(), Vec::new());
        let ticks = self.server.stats().ticks;
        self.server.handle_timeout_handing_over(now, &mut |datagrams| {
            let mut audio = Vec::new();
            for (to, bytes) in datagrams {
                if matches!(Datagram::classify(bytes), Datagram::Audio(_)) {
                    audio.push(to);
                }
                handed.push((to, bytes.to_vec()));
            }
            if !audio.is_empty() {
                batches.push(audio);
            }
        });
        while let Some((to, bytes)) = self.server.poll_transmit() {
            handed.push((to, bytes.to_vec()));
        }
        for (to, bytes) in handed {
            if Frame::parse(&bytes).is_some_and(starts_a_client_list) {
                self.lists += 1;
            }
            if let Some((_, client)) = self.clients.iter_mut().find(|(a, _)| *a == to) {
                client.handle_datagram(now, "127.0.0.1:22124".parse().unwrap(), &bytes);
            }
        }
        (self.server.stats().ticks == ticks + 1).then_some(batches)
    }

    /// Steps until `ticks` steps with exactly one tick each have run; their hand-overs.
    fn ticks(&mut self, ticks: usize) -> Vec<Vec<Vec<SocketAddr>>> {
        let mut out = Vec::new();
        while out.len() < ticks {
            out.extend(self.step());
        }
        out
    }

    /// Runs until every client is connected and faded in.
    fn settle(&mut self) {
        for _ in 0..(4000 * 3 / 4) {
            self.step();
        }
        assert!(self.clients.iter().all(|(_, c)| c.is_connected()));
    }

    /// Every listener sets its own gain for channel 0: no two mixes alike.
    fn distinct_gains(&mut self) {
        let now = self.now;
        for (i, (_, client)) in self.clients.iter_mut().enumerate() {
            client.set_gain(now, 0, 0.05 * (i + 1) as f32);
        }
        for _ in 0..100 {
            self.step();
        }
    }
}

#[test]
fn distinct_mixes_leave_in_small_batches_starting_with_another_listener_each_tick() {
    let n = ENCODES_PER_HAND_OVER + 4;
    let mut sim = Sim::new(n as u16, 1);
    sim.settle();
    sim.distinct_gains();
    let ticks = sim.ticks(2 * n);
    let mut firsts = Vec::new();
    for (t, batches) in ticks.iter().enumerate() {
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [ENCODES_PER_HAND_OVER, 4],
            "tick {t}: batches of {ENCODES_PER_HAND_OVER} encodes, sent as encoded"
        );
        let order: Vec<SocketAddr> = batches.concat();
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), n, "everybody once per tick");
        firsts.push(order[0]);
        if t > 0 {
            // Every listener moves one place later; the last becomes the first.
            let before: Vec<SocketAddr> = ticks[t - 1].concat();
            assert_eq!(order[0], before[n - 1]);
            assert_eq!(order[1..], before[..n - 1]);
        }
    }
    let mut distinct_firsts = firsts[..n].to_vec();
    distinct_firsts.sort();
    distinct_firsts.dedup();
    assert_eq!(distinct_firsts.len(), n, "each listener is first once in {n} ticks");
}

/// A client list, or the first part of one that was split (SPECIAL_SPLIT_MESSAGE: id, count, index).
fn starts_a_client_list(frame: Frame<'_>) -> bool {
    match (frame.id, frame.data) {
        (id::CONN_CLIENTS_LIST, _) => true,
        (id::SPECIAL_SPLIT_MESSAGE, [lo, hi, _, 0, ..]) => u16::from_le_bytes([*lo, *hi]) == id::CONN_CLIENTS_LIST,
        _ => false,
    }
}

#[test]
fn a_shared_mix_is_encoded_once_and_sent_to_all_at_once() {
    let n = 10;
    let mut sim = Sim::new(n as u16, 1);
    sim.settle();
    let before = sim.server.stats().mixes_rendered;
    let ticks = sim.ticks(5);
    for batches in &ticks {
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [n], "one encode, one batch");
    }
    assert!(sim.server.stats().mixes_rendered - before <= 6, "one encode per tick");
}

#[test]
fn with_several_threads_the_tick_is_one_parallel_batch_in_rotating_order() {
    let n = 12;
    let mut sim = Sim::new(n as u16, 2);
    sim.settle();
    sim.distinct_gains();
    let ticks = sim.ticks(3);
    for (t, batches) in ticks.iter().enumerate() {
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [n], "tick {t}");
        if t > 0 {
            assert_eq!(batches[0][0], ticks[t - 1][0][n - 1], "the last listener goes first next");
        }
    }
}

#[test]
fn with_several_threads_only_a_large_tick_wakes_the_workers() {
    // (clients, distinct gains: one encode each; parallel passes per tick: decode and render)
    for (n, passes) in [(PARALLEL_ENCODES_FROM - 1, 0), (PARALLEL_ENCODES_FROM, 1), (PARALLEL_DECODES_FROM, 2)] {
        let mut sim = Sim::new(n as u16, 2);
        sim.settle();
        sim.distinct_gains();
        let (passes_before, ticks_before) = (sim.server.stats().parallel_passes, sim.server.stats().ticks);
        sim.ticks(20);
        let ticks = sim.server.stats().ticks - ticks_before;
        assert_eq!(sim.server.stats().parallel_passes - passes_before, passes * ticks, "{n} clients, {ticks} ticks");
    }
}

#[test]
fn a_changed_client_list_goes_out_to_a_few_clients_a_tick_and_reaches_everybody() {
    let n = 2 * LISTS_PER_TICK + 8;
    let mut sim = Sim::new(n as u16, 1);
    sim.settle();
    for (_, client) in &mut sim.clients {
        while client.poll_event().is_some() {}
    }
    // One musician leaves: everybody else's list is out of date.
    let (address, mut leaving) = sim.clients.pop().unwrap();
    leaving.disconnect();
    while let Some(datagram) = leaving.poll_transmit() {
        sim.server.handle_datagram(sim.now, address, &datagram);
    }
    let before = sim.lists;
    let mut per_tick = Vec::new();
    while per_tick.len() < 8 {
        let lists = sim.lists;
        if sim.step().is_some() {
            per_tick.push(sim.lists - lists);
        }
    }
    assert_eq!(per_tick[..3], [LISTS_PER_TICK, LISTS_PER_TICK, n - 1 - 2 * LISTS_PER_TICK], "{per_tick:?}");
    assert_eq!(sim.lists - before, n - 1, "each of the others once: {per_tick:?}");
    for (_, client) in &mut sim.clients {
        let mut last = None;
        while let Some(event) = client.poll_event() {
            if let ClientEvent::ClientList(list) = event {
                last = Some(list.len());
            }
        }
        assert_eq!(last, Some(n - 1), "the list without the one who left");
    }
}
