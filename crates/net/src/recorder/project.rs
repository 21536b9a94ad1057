//! The project files written when a recording session ends, in the text Jamulus 3.9.1 writes:
//! an Audacity list of files (`.lof`) and a REAPER project (`.rpp`), one track per musician and
//! address, one item per WAV file, positions in seconds from the session start.

use std::fmt::Write;
use std::path::PathBuf;

/// One finished WAV file of the session.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `NAME-ADDR` with the musician's name when the file was closed.
    pub track: String,
    /// File name inside the session folder.
    pub file_name: String,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Session tick at which the file starts, and the tick length in samples.
    pub start_tick: u64,
    pub tick_samples: u32,
    /// Samples per audio channel in the file.
    pub frames: u64,
}

impl Item {
    fn position(&self) -> f64 {
        self.start_tick as f64 * f64::from(self.tick_samples) / 48_000.0
    }

    fn length(&self) -> f64 {
        self.frames as f64 / 48_000.0
    }
}

/// Items grouped by track, tracks sorted by name, items by start.
fn by_track(items: &[Item]) -> Vec<(&str, Vec<&Item>)> {
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by(|a, b| a.track.cmp(&b.track).then(a.start_tick.cmp(&b.start_tick)));
    let mut tracks: Vec<(&str, Vec<&Item>)> = Vec::new();
    for item in sorted {
        match tracks.last_mut() {
            Some((track, list)) if *track == item.track => list.push(item),
            _ => tracks.push((&item.track, vec![item])),
        }
    }
    tracks
}

/// Audacity: `file "<name>" offset <seconds>` per file.
pub fn lof(items: &[Item]) -> String {
    let mut out = String::new();
    for (_, list) in by_track(items) {
        for item in list {
            let _ = writeln!(out, "file \"{}\" offset {:.14}", item.file_name, item.position());
        }
    }
    out
}

/// REAPER: one `TRACK` per musician and address, one `ITEM` per file. `uuid` gives a new
/// `xxxxxxxx-xxxx-…` identifier each call.
pub fn rpp(items: &[Item], uuid: &mut dyn FnMut() -> String) -> String {
    let mut out = String::new();
    out.push_str("<REAPER_PROJECT 0.1 \"5.0\" 1551567848\n");
    out.push_str("  RECORD_PATH \"\" \"\"\n  SAMPLERATE 48000 0 0\n  TEMPO 120 4 4\n");
    let mut iid = 0;
    for (track, list) in by_track(items) {
        let id = uuid();
        let _ = writeln!(out, "  <TRACK {{{id}}}\n    NAME {track}\n    TRACKID {{{id}}}");
        for (n, item) in list.iter().enumerate() {
            let _ = writeln!(out, "    <ITEM \n      FADEIN 0 0 0 0 0 0\n      FADEOUT 0 0 0 0 0 0");
            let _ = writeln!(out, "      POSITION {:.14}\n      LENGTH {:.14}", item.position(), item.length());
            let _ = writeln!(out, "      IGUID {{{}}}\n      IID {iid}\n      NAME {track} ({})", uuid(), n + 1);
            let _ = writeln!(out, "      GUID {{{}}}", uuid());
            let _ = writeln!(out, "      <SOURCE WAVE\n        FILE \"{}\"\n      >\n    >", item.path.display());
            iid += 1;
        }
        out.push_str("  >\n");
    }
    out.push_str(">\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(track: &str, file: &str, start: u64, frames: u64) -> Item {
        Item {
            track: track.into(),
            file_name: file.into(),
            path: PathBuf::from("/rec/Jam-20261125-074206513").join(file),
            start_tick: start,
            tick_samples: 128,
            frames,
        }
    }

    /// The files a real Jamulus 3.9.1 server wrote for two clients (track ids replaced by counters).
    #[test]
    fn same_text_as_the_real_server() {
        let items = [
            item("Zoe_A_b-127_0_0_1_39168", "____-127_0_0_1_39168-0-1.wav", 0, 97152),
            item("Bob_-127_0_0_1_58190", "____-127_0_0_1_58190-60-1.wav", 60, 65280),
        ];
        assert_eq!(
            lof(&items),
            "file \"____-127_0_0_1_58190-60-1.wav\" offset 0.16000000000000\n\
             file \"____-127_0_0_1_39168-0-1.wav\" offset 0.00000000000000\n"
        );
        let mut n = 0;
        let text = rpp(&items, &mut || {
            n += 1;
            format!("u{n}")
        });
        let expected = "<REAPER_PROJECT 0.1 \"5.0\" 1551567848
  RECORD_PATH \"\" \"\"
  SAMPLERATE 48000 0 0
  TEMPO 120 4 4
  <TRACK {u1}
    NAME Bob_-127_0_0_1_58190
    TRACKID {u1}
    <ITEM 
      FADEIN 0 0 0 0 0 0
      FADEOUT 0 0 0 0 0 0
      POSITION 0.16000000000000
      LENGTH 1.36000000000000
      IGUID {u2}
      IID 0
      NAME Bob_-127_0_0_1_58190 (1)
      GUID {u3}
      <SOURCE WAVE
        FILE \"/rec/Jam-20261125-074206513/____-127_0_0_1_58190-60-1.wav\"
      >
    >
  >
  <TRACK {u4}
    NAME Zoe_A_b-127_0_0_1_39168
    TRACKID {u4}
    <ITEM 
      FADEIN 0 0 0 0 0 0
      FADEOUT 0 0 0 0 0 0
      POSITION 0.00000000000000
      LENGTH 2.02400000000000
      IGUID {u5}
      IID 1
      NAME Zoe_A_b-127_0_0_1_39168 (1)
      GUID {u6}
      <SOURCE WAVE
        FILE \"/rec/Jam-20261125-074206513/____-127_0_0_1_39168-0-1.wav\"
      >
    >
  >
>
";
        assert_eq!(text, expected);
    }
}
