//! One recording session on disk: a folder `DIR/Jam-…` (mode 0700) holding one WAV file (mode 0600,
//! 16-bit PCM, 48 kHz) per continuous connection of a channel, and the project files written when
//! the session ends. Runs on the recorder's writer thread only.

use super::naming::{numbered, session_name, track_name, wav_name};
use super::project::{self, Item};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

type Wav = hound::WavWriter<BufWriter<File>>;

/// Ticks between header updates: a file cut short (crash, full disk) is a valid WAV up to there.
const FLUSH_EVERY_TICKS: u64 = 375;

struct Track {
    address: SocketAddr,
    audio_channels: u8,
    name: String,
    file_name: String,
    path: PathBuf,
    start_tick: u64,
    tick_samples: u32,
    frames: u64,
    wav: Wav,
    last_tick: u64,
}

/// An open session.
pub struct Session {
    dir: PathBuf,
    name: String,
    /// Server tick at which the session started.
    first_tick: u64,
    /// Open files by channel slot.
    open: HashMap<u8, Track>,
    done: Vec<Item>,
    last_flush: u64,
}

/// Creates `dir` (and parents) with mode 0700 if missing, and checks that it is a writable folder.
pub fn prepare_directory(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| format!("'{}' does not exist but could not be created: {e}", dir.display()))?;
    }
    if !dir.is_dir() {
        return Err(format!("'{}' is not a directory", dir.display()));
    }
    let probe = dir.join(format!(".tutti-write-test-{}", std::process::id()));
    match File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("'{}' is not writable: {e}", dir.display())),
    }
}

impl Session {
    /// Starts a session folder in `root` (named after the current UTC time).
    pub fn start(root: &Path, first_tick: u64) -> io::Result<Session> {
        let name = session_name(chrono::Utc::now());
        let dir = root.join(&name);
        let mut builder = DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Session { dir, name, first_tick, open: HashMap::new(), done: Vec::new(), last_flush: first_tick })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one channel's tick (16-bit samples, interleaved) to its file, opening a new file when
    /// the channel is new, reconnected from another address, or changed its channel count.
    pub fn write(
        &mut self,
        tick: u64,
        slot: u8,
        address: SocketAddr,
        name: &str,
        audio_channels: u8,
        samples: &[i16],
    ) -> io::Result<()> {
        let continues = self
            .open
            .get(&slot)
            .is_some_and(|t| t.address == address && t.audio_channels == audio_channels && t.last_tick + 1 == tick);
        if !continues {
            if let Some(track) = self.open.remove(&slot) {
                self.close(track)?;
            }
            let track = self.open_track(tick, address, name, audio_channels, samples.len())?;
            self.open.insert(slot, track);
        }
        let Some(track) = self.open.get_mut(&slot) else { return Ok(()) };
        track.name.clear();
        track.name.push_str(name);
        let mut writer = track.wav.get_i16_writer(samples.len() as u32);
        for &s in samples {
            writer.write_sample(s);
        }
        writer.flush().map_err(hound_error)?;
        track.frames += (samples.len() / usize::from(audio_channels)) as u64;
        track.last_tick = tick;
        Ok(())
    }

    /// After every frame of `tick`: closes the files of channels that were not in it (they left)
    /// and now and then brings every header up to date.
    pub fn end_tick(&mut self, tick: u64) -> io::Result<()> {
        let gone: Vec<u8> = self.open.iter().filter(|(_, t)| t.last_tick != tick).map(|(&s, _)| s).collect();
        for slot in gone {
            if let Some(track) = self.open.remove(&slot) {
                self.close(track)?;
            }
        }
        if tick >= self.last_flush + FLUSH_EVERY_TICKS {
            self.last_flush = tick;
            for track in self.open.values_mut() {
                track.wav.flush().map_err(hound_error)?;
            }
        }
        Ok(())
    }

    /// Closes every file and writes the project files. Returns the session folder.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        let mut first_error = None;
        for (_, track) in std::mem::take(&mut self.open) {
            if let Err(e) = self.close(track) {
                first_error.get_or_insert(e);
            }
        }
        if !self.done.is_empty() {
            let mut ids = uuids();
            self.write_new(&format!("{}.lof", self.name), &project::lof(&self.done))?;
            self.write_new(&format!("{}.rpp", self.name), &project::rpp(&self.done, &mut ids))?;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.dir),
        }
    }

    /// Closes what can be closed after a write error, without project files. A file the failed
    /// write left with a stale header or a partial sample at its end is repaired to a valid WAV of
    /// the whole samples it holds; one without a complete header is removed.
    pub fn abandon(mut self) {
        for (_, track) in std::mem::take(&mut self.open) {
            let _ = track.wav.finalize(); // brings the header up to date if the disk lets it
            if let Err(e) = repair_wav(&track.path, track.audio_channels) {
                tracing::warn!(session = %self.dir.display(), "cannot repair a recording file after the failed write: {e}");
            }
        }
    }

    fn open_track(
        &mut self,
        tick: u64,
        address: SocketAddr,
        name: &str,
        audio_channels: u8,
        samples: usize,
    ) -> io::Result<Track> {
        let start_tick = tick - self.first_tick;
        let base = wav_name(name, address, start_tick, audio_channels);
        let mut file_name = base.clone();
        let mut n = 0;
        while self.dir.join(&file_name).exists() {
            n += 1;
            file_name = numbered(&base, n);
        }
        let path = self.dir.join(&file_name);
        let file = new_file(&path)?;
        let spec = hound::WavSpec {
            channels: u16::from(audio_channels),
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::new(BufWriter::new(file), spec).map_err(hound_error)?;
        Ok(Track {
            address,
            audio_channels,
            name: name.to_string(),
            file_name,
            path,
            start_tick,
            tick_samples: (samples / usize::from(audio_channels)) as u32,
            frames: 0,
            wav,
            last_tick: tick,
        })
    }

    fn close(&mut self, track: Track) -> io::Result<()> {
        self.done.push(Item {
            track: track_name(&track.name, track.address),
            file_name: track.file_name,
            path: track.path,
            start_tick: track.start_tick,
            tick_samples: track.tick_samples,
            frames: track.frames,
        });
        track.wav.finalize().map_err(hound_error)
    }

    /// Writes a project file; an existing file is not overwritten.
    fn write_new(&self, name: &str, text: &str) -> io::Result<()> {
        let path = self.dir.join(name);
        if path.exists() {
            return Ok(());
        }
        let mut file = new_file(&path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }
}

/// Size of the header hound writes for 16-bit PCM with one or two channels.
const WAV_HEADER: u64 = 44;

/// Makes `path` a valid WAV again after a failed write: the sizes in its header are set to the
/// whole samples on disk and anything after them is cut off (both only shrink or overwrite, so
/// they work on a full disk and under a file size limit too). Removes a file shorter than a header.
fn repair_wav(path: &Path, audio_channels: u8) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    if len < WAV_HEADER {
        drop(file);
        return std::fs::remove_file(path);
    }
    let align = 2 * u64::from(audio_channels.max(1));
    let data = ((len - WAV_HEADER) / align * align).min((u64::from(u32::MAX) - 36) / align * align);
    file.set_len(WAV_HEADER + data)?;
    file.write_all_at(&((36 + data) as u32).to_le_bytes(), 4)?;
    file.write_all_at(&(data as u32).to_le_bytes(), 40)?;
    file.sync_all()
}

/// A new file readable and writable by the operator only.
fn new_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn hound_error(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Random version-4 UUIDs (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`) from the standard library's
/// randomly keyed hasher.
fn uuids() -> impl FnMut() -> String {
    let state = RandomState::new();
    let mut counter = 0u64;
    move || {
        let mut word = || {
            counter += 1;
            let mut h = state.build_hasher();
            h.write_u64(counter);
            h.finish()
        };
        let (a, b) = (word(), word());
        let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::repair_wav;
    use std::io::Write;

    #[test]
    fn repair_fits_the_header_to_the_whole_samples_on_disk() {
        let path = std::env::temp_dir().join(format!("tutti-repair-{}.wav", std::process::id()));
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = hound::WavWriter::create(&path, spec).unwrap();
        for s in 0..400i16 {
            wav.write_sample(s).unwrap();
        }
        wav.finalize().unwrap();
        // What a failed write leaves: samples the header does not count, and half a frame.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6]).unwrap();
        drop(file);
        repair_wav(&path, 2).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 800 + 8, "two whole stereo frames kept, the partial one cut");
        let samples: Vec<i16> = hound::WavReader::open(&path).unwrap().into_samples().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 404);
        assert_eq!(&samples[398..], [398, 399, 1, 2, 3, 4]);
        // A file without a whole header is removed.
        std::fs::write(&path, b"RIFF").unwrap();
        repair_wav(&path, 1).unwrap();
        assert!(!path.exists());
    }
}
