//! Chat as a Jamulus server relays it (§3.2, §5.6): the sender's name and the text HTML-escaped, wrapped
//! with the server's local time and a colour per channel. Text is formatted and forgotten; nothing
//! here stores it.

use tutti_proto::message::MAX_CHAT;
use tutti_proto::{truncate_utf16, utf16_len};

/// Longest welcome message sent (characters, UTF-16 units).
pub const MAX_WELCOME: usize = 1600;

const COLOURS: [&str; 6] = ["mediumblue", "red", "darkorchid", "green", "maroon", "coral"];

/// Time of day on the server's wall clock, as injected by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl TimeOfDay {
    /// `hh:mm:ss AM/PM`, 12-hour, zero-padded, as the chat prefix shows it.
    fn twelve_hour(&self) -> String {
        let (hour, suffix) = match self.hour % 24 {
            0 => (12, "AM"),
            h @ 1..=11 => (h, "AM"),
            12 => (12, "PM"),
            h => (h - 12, "PM"),
        };
        format!("{hour:02}:{:02}:{:02} {suffix}", self.minute, self.second)
    }
}

/// `&`, `<`, `>` and `"` replaced by entities, so that markup from a user arrives inert.
pub fn escape_html(text: &str) -> String {
    escape_within(text, usize::MAX)
}

/// The escaped form of as many leading characters of `text` as fit in `room` UTF-16 units
/// (an entity is never cut).
fn escape_within(text: &str, room: usize) -> String {
    let mut out = String::with_capacity(text.len().min(room));
    let mut units = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            c => c.encode_utf8(&mut buf),
        };
        units += utf16_len(piece);
        if units > room {
            break;
        }
        out.push_str(piece);
    }
    out
}

/// The chat line every client receives for `text` typed by `name` on `channel`.
///
/// Unlike Jamulus, the text is shortened (never inside an entity) until the whole line
/// fits the 1800 units receivers accept: a long message arrives shortened instead of being dropped.
pub fn chat_line(channel: u8, name: &str, text: &str, time: TimeOfDay) -> String {
    let prefix = format!(
        "<font color=\"{}\">({}) <b>{}</b></font> ",
        COLOURS[usize::from(channel) % COLOURS.len()],
        time.twelve_hour(),
        escape_html(name)
    );
    let room = MAX_CHAT.saturating_sub(utf16_len(&prefix));
    prefix + &escape_within(text, room)
}

/// The chat message a new client receives when the server has a welcome message.
pub fn welcome_line(message: &str) -> String {
    format!("<b>Server Welcome Message:</b> {}", truncate_utf16(message, MAX_WELCOME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_captured_line() {
        // [cap #1284]
        let t = TimeOfDay { hour: 23, minute: 31, second: 11 };
        assert_eq!(
            chat_line(0, "Bob", "hello via JSON-RPC", t),
            "<font color=\"mediumblue\">(11:31:11 PM) <b>Bob</b></font> hello via JSON-RPC"
        );
    }

    #[test]
    fn markup_arrives_inert() {
        let line =
            chat_line(7, "<i>Eve</i>", "<script>alert(1)</script> <a href=\"x\">y</a> & more", TimeOfDay::default());
        assert!(line.starts_with("<font color=\"red\">(12:00:00 AM) <b>&lt;i&gt;Eve&lt;/i&gt;</b></font> "));
        assert!(
            line.ends_with("&lt;script&gt;alert(1)&lt;/script&gt; &lt;a href=&quot;x&quot;&gt;y&lt;/a&gt; &amp; more")
        );
    }

    #[test]
    fn long_text_is_shortened_to_fit_receivers() {
        for text in ["a".repeat(5000), "<".repeat(1700), "🎸".repeat(1000)] {
            let line = chat_line(3, "Name", &text, TimeOfDay { hour: 12, minute: 0, second: 0 });
            assert!(utf16_len(&line) <= MAX_CHAT, "{}", utf16_len(&line));
            assert!(utf16_len(&line) > MAX_CHAT - 5, "shortened no more than needed");
            assert!(!line.ends_with('&') && !line.ends_with("&l") && !line.ends_with("&lt"));
        }
    }

    #[test]
    fn twelve_hour_clock() {
        let t = |hour| TimeOfDay { hour, minute: 5, second: 9 }.twelve_hour();
        assert_eq!([t(0), t(1), t(12), t(13)], ["12:05:09 AM", "01:05:09 AM", "12:05:09 PM", "01:05:09 PM"]);
    }
}
