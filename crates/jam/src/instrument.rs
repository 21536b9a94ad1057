//! The instrument IDs of a profile (PROTOCOL.md §3.6): names for people, numbers on the wire.

/// Names of the 3.9.1 instrument table, by ID.
pub const NAMES: [&str; 50] = [
    "None",
    "Drum Set",
    "Djembe",
    "Electric Guitar",
    "Acoustic Guitar",
    "Bass Guitar",
    "Keyboard",
    "Synthesizer",
    "Grand Piano",
    "Accordion",
    "Vocal",
    "Microphone",
    "Harmonica",
    "Trumpet",
    "Trombone",
    "French Horn",
    "Tuba",
    "Saxophone",
    "Clarinet",
    "Flute",
    "Violin",
    "Cello",
    "Double Bass",
    "Recorder",
    "Streamer",
    "Listener",
    "Guitar+Vocal",
    "Keyboard+Vocal",
    "Bodhran",
    "Bassoon",
    "Oboe",
    "Harp",
    "Viola",
    "Congas",
    "Bongo",
    "Vocal Bass",
    "Vocal Tenor",
    "Vocal Alto",
    "Vocal Soprano",
    "Banjo",
    "Mandolin",
    "Ukulele",
    "Bass Ukulele",
    "Vocal Baritone",
    "Vocal Lead",
    "Mountain Dulcimer",
    "Scratching",
    "Rapping",
    "Vibraphone",
    "Conductor",
];

/// The name of instrument `id`, if 3.9.1 knows it.
pub fn name(id: u32) -> Option<&'static str> {
    NAMES.get(id as usize).copied()
}

/// An instrument by number or by name (case and spaces, dashes or underscores ignored).
pub fn parse(text: &str) -> Option<u32> {
    if let Ok(id) = text.trim().parse::<u32>() {
        return Some(id);
    }
    let simple = |s: &str| s.chars().filter(|c| c.is_alphanumeric() || *c == '+').collect::<String>().to_lowercase();
    let wanted = simple(text);
    NAMES.iter().position(|n| simple(n) == wanted).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_numbers() {
        assert_eq!(super::parse("double-bass"), Some(22));
        assert_eq!(super::parse("Guitar+Vocal"), Some(26));
        assert_eq!(super::parse("7"), Some(7));
        assert_eq!(super::parse("kazoo"), None);
        assert_eq!(super::name(49), Some("Conductor"));
    }
}
