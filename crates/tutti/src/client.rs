//! `tutti client`: a headless jam client for any Jamulus-protocol server. Plays a WAV file, a test
//! tone or silence, writes the mix it receives to a WAV file, sends chat from `--chat` and stdin,
//! prints what happens on the server (musicians, chat, mutes) and says goodbye on Ctrl-C. With
//! `--jsonrpcport` it offers Jamulus' client API (`jamulusclient/*`) and then stays up after the
//! server has gone, so that the controlling program can see that (`getClientInfo`).

use crate::audio_args::{resolve, AudioArgs};
use anyhow::{bail, Context};
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tutti_jam::{country, instrument, ClientEvent};
use tutti_net::{AudioSink, AudioSource, Command, RunningClient};
use tutti_proto::message::{Profile, SkillLevel};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Server to join, HOST[:PORT] (port 22124 if omitted).
    #[arg(short = 'c', long, value_name = "HOST[:PORT]", required_unless_present = "list")]
    pub connect: Option<String>,
    /// Print a directory's server list (name, location, clients, ping) and exit.
    #[arg(long, value_name = "DIRECTORY[:PORT]", conflicts_with = "connect")]
    pub list: Option<String>,
    /// Your name as other musicians see it [default: the --clientname, else "tutti"].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Name of this client instance (Jamulus --clientname); the profile name if --name is absent.
    #[arg(long, value_name = "NAME")]
    pub clientname: Option<String>,
    /// Instrument: a number or a name from the Jamulus list ("Bass Guitar", "vocal", 25 …).
    #[arg(long, value_name = "INSTRUMENT", default_value = "0")]
    pub instrument: String,
    /// Country: a two-letter ISO code or a Qt country number.
    #[arg(long, value_name = "CODE")]
    pub country: Option<String>,
    #[arg(long, value_name = "CITY", default_value = "")]
    pub city: String,
    #[arg(long, value_enum, default_value_t = Skill::None)]
    pub skill: Skill,
    /// What to send: "silence", "tone" or "tone:HZ" (a sine at a quarter of full scale), a 48 kHz WAV file,
    /// or "device" (the sound card; needs a build with the `device` feature).
    #[arg(long, value_name = "SOURCE", default_value = "silence")]
    pub input: String,
    /// Write the mix the server sends us to this WAV file (48 kHz, 16 bit), or play it on the sound card
    /// ("device"; needs a build with the `device` feature).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Send this chat message once connected (repeatable). Lines typed on stdin are sent too.
    #[arg(long, value_name = "TEXT")]
    pub chat: Vec<String>,
    /// Leave after this many seconds [default: run until Ctrl-C].
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Local UDP port [default: any].
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub port: u16,
    /// JSON-RPC (Jamulus' client API, jamulusclient/*).
    #[command(flatten)]
    pub jsonrpc: crate::jsonrpc::Flags,
    /// Accepted for Jamulus compatibility (tutti's client is always headless).
    #[arg(short = 'n', long, hide = true)]
    pub nogui: bool,
    #[command(flatten)]
    pub audio: AudioArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Skill {
    None,
    Beginner,
    Intermediate,
    Expert,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if let Some(directory) = &args.list {
        return crate::list::run(directory);
    }
    let jsonrpc = crate::jsonrpc::endpoint(
        args.jsonrpc.jsonrpcport,
        args.jsonrpc.jsonrpcsecretfile.as_ref(),
        args.jsonrpc.jsonrpcbindip,
    )?;
    let Some(connect) = &args.connect else { bail!("--connect HOST[:PORT] is required") };
    let server = resolve(connect, crate::server::DEFAULT_PORT)?;
    let mut config = args.audio.client_config();
    config.profile = profile(args)?;
    config.channel_levels = jsonrpc.is_some();
    let own_profile = config.profile.clone();
    let channels = usize::from(config.channels);
    // Sound card streams run while these are alive.
    let mut card = Vec::new();
    let source = if args.input == "device" {
        let (source, running) = crate::sound_card::input(channels)?;
        card.push(running);
        source
    } else {
        audio_source(&args.input, channels)?
    };
    let (sink, finish) = match &args.output {
        Some(path) if path.as_os_str() == "device" => {
            let (sink, running) = crate::sound_card::output(channels)?;
            card.push(running);
            (sink, None)
        }
        Some(path) => {
            let (sink, finish) = wav_sink(path, channels)?;
            (sink, Some(finish))
        }
        None => (Box::new(|_: &[f32]| {}) as AudioSink, None),
    };
    let bind = SocketAddr::new(
        if server.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) },
        args.port,
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot install the signal handler")?;
    }
    let client = RunningClient::start(bind, server, config, source, sink)
        .with_context(|| format!("cannot start the client for {server}"))?;
    let api = match jsonrpc {
        Some((address, secret)) => {
            let notifier = crate::jsonrpc::Notifier::default();
            let api =
                Arc::new(crate::jsonrpc::ClientApi::new(own_profile.clone(), client.commands(), notifier.clone()));
            let local = crate::jsonrpc::start(address, secret, api.clone(), notifier)
                .with_context(|| format!("cannot listen for JSON-RPC on TCP {address} (is the port free?)"))?;
            eprintln!("tutti client: JSON-RPC on TCP {local}");
            Some(api)
        }
        None => None,
    };
    eprintln!("tutti client: joining {server} from {}", client.local_addr());
    let typed = stdin_lines();
    let deadline = args.duration.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut pending_chat = args.chat.clone();
    let mut names: Vec<(u8, String)> = Vec::new();
    let mut own_channel = None;
    // With JSON-RPC the client stays up after the server has gone; without, it ends.
    let mut gone = false;
    let result = loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        while let Ok(line) = typed.try_recv() {
            client.command(Command::Chat(line));
        }
        if gone {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let Some(event) = client.next_event(Duration::from_millis(50)) else { continue };
        if let Some(api) = &api {
            api.observe(&event);
        }
        match event {
            ClientEvent::Connected { channel } => {
                println!("connected: channel {channel}");
                own_channel = Some(channel);
            }
            ClientEvent::ClientList(list) => {
                names = list.iter().map(|e| (e.channel, e.profile.name.clone())).collect();
                let who: Vec<String> = list.iter().map(|e| describe(&e.profile)).collect();
                println!("musicians: {}", if who.is_empty() { "(none yet)".to_string() } else { who.join(", ") });
                // Chat once the server knows our profile, so that it carries our name.
                let own_profile = api.as_ref().map_or_else(|| own_profile.clone(), |api| api.profile());
                if list.iter().any(|e| Some(e.channel) == own_channel && e.profile == own_profile) {
                    for text in pending_chat.drain(..) {
                        client.command(Command::Chat(text));
                    }
                }
            }
            ClientEvent::Chat(html) => println!("chat: {html}"),
            ClientEvent::MutedBy { channel, muted } => {
                let name = names.iter().find(|(c, _)| *c == channel).map_or("someone", |(_, n)| n.as_str());
                println!("{name} {} you", if muted { "muted" } else { "unmuted" });
            }
            ClientEvent::RecorderState(state) => println!("recorder: {state:?}"),
            ClientEvent::LicenceRequired => println!("the server asks you to accept its licence"),
            ClientEvent::AudioStarted | ClientEvent::ChannelLevels(_) => {}
            ClientEvent::Disconnected if api.is_some() => {
                println!("disconnected: the server has gone (JSON-RPC stays up until Ctrl-C)");
                gone = true;
            }
            ClientEvent::Disconnected => break Err(anyhow::anyhow!("the server disconnected us")),
        }
    };
    let reception = client.stop().context("the client stopped with an error")?;
    eprintln!(
        "tutti client: received {} audio packets; {} frames lost (concealed), {} late",
        reception.audio_packets, reception.lost_frames, reception.late_frames
    );
    if let Some(finish) = finish {
        finish()?;
    }
    drop(card);
    eprintln!("tutti client: left {server}");
    result
}

fn profile(args: &Args) -> anyhow::Result<Profile> {
    let name = args.name.clone().or_else(|| args.clientname.clone()).unwrap_or_else(|| "tutti".into());
    let instrument = instrument::parse(&args.instrument).with_context(|| {
        format!("unknown instrument {:?} (a number, or a name such as \"Bass Guitar\")", args.instrument)
    })?;
    let country = match &args.country {
        Some(c) => country::parse(c).with_context(|| format!("unknown country {c:?} (a two-letter ISO code)"))?,
        None => 0,
    };
    let skill = match args.skill {
        Skill::None => SkillLevel::NotSet,
        Skill::Beginner => SkillLevel::Beginner,
        Skill::Intermediate => SkillLevel::Intermediate,
        Skill::Expert => SkillLevel::Expert,
    };
    Ok(Profile { country, instrument, skill, name, city: args.city.clone() })
}

fn describe(p: &Profile) -> String {
    let mut s = if p.name.is_empty() { "(no name)".to_string() } else { p.name.clone() };
    if let Some(i) = instrument::name(p.instrument).filter(|_| p.instrument != 0) {
        s += &format!(" [{i}]");
    }
    if let Some(c) = country::iso(p.country).filter(|_| p.country != 0) {
        s += &format!(" ({}{c})", if p.city.is_empty() { String::new() } else { format!("{}, ", p.city) });
    }
    s
}

/// Lines typed on stdin, read on their own thread (ends quietly at EOF).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn audio_source(input: &str, channels: usize) -> anyhow::Result<AudioSource> {
    if input == "silence" {
        return Ok(Box::new(|pcm: &mut [f32]| pcm.fill(0.0)));
    }
    if let Some(rest) = input.strip_prefix("tone") {
        let hz: f32 = match rest.strip_prefix(':') {
            Some(f) => f
                .parse()
                .ok()
                .filter(|f: &f32| *f > 0.0 && *f < 24_000.0)
                .with_context(|| format!("bad tone frequency {f:?} (Hz, below 24000)"))?,
            None if rest.is_empty() => 440.0,
            None => bail!("unknown --input {input:?} (silence, tone, tone:HZ or a WAV file)"),
        };
        let mut tone = tutti_net::Tone::new(hz, channels);
        return Ok(Box::new(move |pcm: &mut [f32]| tone.fill(pcm)));
    }
    let samples = read_wav(Path::new(input), channels)?;
    let mut at = 0;
    Ok(Box::new(move |pcm: &mut [f32]| {
        for s in pcm.iter_mut() {
            *s = samples.get(at).copied().unwrap_or(0.0);
            at += 1;
        }
    }))
}

/// A 48 kHz WAV file as interleaved f32 in `channels` (mono is doubled, stereo averaged to mono).
fn read_wav(path: &Path, channels: usize) -> anyhow::Result<Vec<f32>> {
    let reader = hound::WavReader::open(path)
        .with_context(|| format!("cannot read --input {} (silence, tone, tone:HZ or a WAV file)", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != 48_000 {
        bail!(
            "{} is {} Hz; Jamulus streams are 48000 Hz (resample it first, e.g. with sox)",
            path.display(),
            spec.sample_rate
        );
    }
    let source: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.into_samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>()?
        }
    };
    let from = usize::from(spec.channels).max(1);
    let mut out = Vec::with_capacity(source.len() / from * channels);
    for frame in source.chunks_exact(from) {
        match (from, channels) {
            (1, c) => out.extend(std::iter::repeat_n(frame[0], c)),
            (_, 1) => out.push(frame.iter().sum::<f32>() / from as f32),
            (_, _) => out.extend_from_slice(&frame[..2]),
        }
    }
    Ok(out)
}

type Finish = Box<dyn FnOnce() -> anyhow::Result<()>>;

/// A sink writing 16-bit WAV, and the function that completes the file once the client stopped.
fn wav_sink(path: &Path, channels: usize) -> anyhow::Result<(AudioSink, Finish)> {
    let spec = hound::WavSpec {
        channels: channels as u16,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let writer =
        hound::WavWriter::create(path, spec).with_context(|| format!("cannot create --output {}", path.display()))?;
    let writer = Arc::new(std::sync::Mutex::new(Some(writer)));
    let shared = writer.clone();
    let sink = Box::new(move |pcm: &[f32]| {
        if let Ok(mut guard) = shared.lock() {
            if let Some(w) = guard.as_mut() {
                for &s in pcm {
                    let _ = w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16);
                }
            }
        }
    });
    let shown = path.display().to_string();
    let finish = Box::new(move || {
        let taken = writer.lock().ok().and_then(|mut g| g.take());
        if let Some(w) = taken {
            w.finalize().with_context(|| format!("cannot complete {shown}"))?;
        }
        Ok(())
    });
    Ok((sink, finish))
}
